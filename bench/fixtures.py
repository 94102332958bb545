"""Tables and link items for both sides: ours from cloudformation.yaml, the recipe's in its own format.

Our item layout comes from the admin store's own constants (the webapp/store/ package), so the
benchmarks write exactly what the store writes and read what it reads.
"""

import secrets
import time

from botocore.exceptions import ClientError

from local_stack.template import create_salts_table
from local_stack.template import create_table as create_project_table
from webapp.store import LINK_SK, list_shard


def create_our_table(client, table_name):
    """The project table, built from the template's own definition so the schema cannot drift."""
    create_project_table(client, table_name)


def seed_salts(client, table_name, days):
    """The salts' own table (the template's SaltsTable), made unless it exists, with a salt for each day (UTC
    YYYY-MM-DD), as aggregator/salts.py writes them: so the redirect's measured path includes the visitor hash
    (one salt GetItem per container and day) as deployed."""
    try:
        create_salts_table(client, table_name)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    for day in days:
        client.put_item(TableName=table_name, Item={"pk": {"S": "salt#"}, "sk": {"S": day},
                                                    "salt": {"B": secrets.token_bytes(32)}})


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
