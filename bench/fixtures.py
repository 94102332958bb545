"""Tables and link items for both sides: ours from cloudformation.yaml, the recipe's in its own format.

Our item layout comes from the admin store's own constants (the webapp/store/ package), so the
benchmarks write exactly what the store writes and read what it reads.
"""

import time

from local_stack.template import create_table as create_project_table
from webapp.store import LINK_SK, list_shard


def create_our_table(client, table_name):
    """The project table, built from the template's own definition so the schema cannot drift."""
    create_project_table(client, table_name)


def our_item(short_id, url, created_at=None, created_by="bench"):
    """A link item as the admin store writes it: counters live in their own items, not here."""
    created_at = created_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "pk": {"S": short_id},
        "sk": {"S": LINK_SK},
        "list_pk": {"S": list_shard(short_id)},
        "list_sk": {"S": f"{created_at}#{short_id}"},
        "url": {"S": url},
        "created_at": {"S": created_at},
        "created_by": {"S": created_by},
        "is_active": {"BOOL": True},
    }


def short_id(n):
    """The n-th benchmark id: 7 characters, like a random id."""
    return f"b{n:06d}"
