"""Tables and link items for both sides: ours from cloudformation.yaml, the recipe's in its own format."""

import time

from local_stack.template import create_table as create_project_table


def create_our_table(client, table_name):
    """The project table, built from the template's own definition so the schema cannot drift."""
    create_project_table(client, table_name)


def our_item(short_id, url, created_at=None, created_by="bench"):
    """A link item as the admin store writes it (pk/sk, and list_pk/list_sk for the by_list index)."""
    created_at = created_at or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "pk": {"S": short_id},
        "sk": {"S": "link"},
        "list_pk": {"S": "links"},
        "list_sk": {"S": f"{created_at}#{short_id}"},
        "url": {"S": url},
        "created_at": {"S": created_at},
        "created_by": {"S": created_by},
        "is_active": {"BOOL": True},
        "click_count": {"N": "0"},
        "bot_count": {"N": "0"},
    }


def short_id(n):
    """The n-th benchmark id: 7 characters, like a random id."""
    return f"b{n:06d}"
