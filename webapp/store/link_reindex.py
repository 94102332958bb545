"""Writing the search and filter entries of links stored before they had any (webapp/store/link_index.py).

Links created or edited since the index exists carry their entries; older links are found only by
the default list until this has run once. It pages through every list key of by_list (links# and
archived#), reads each page's link items and puts their entries. Puts are idempotent, so a run that
stops half-way is simply run again; it reads and writes in proportion to the number of links, which is
why it is an operator's command and never part of a request. An edit landing during a run may leave an
entry of the version this run read: searches re-check every link they find, so such an entry costs one
wasted read and never a wrong result.
"""
from webapp.store import link_index
from webapp.store.links import ARCHIVED_PK_PREFIX, LINK_SK, LIST_PK_PREFIX, LIST_SHARDS
from webapp.store.table import LIST_INDEX, _key, _marshal

PAGE = 100  # link items per BatchGetItem


def reindex(table, progress=None):
    """Put the index entries of every link; return (links, entries) written."""
    links = entries = 0
    for prefix in (LIST_PK_PREFIX, ARCHIVED_PK_PREFIX):
        for shard in range(LIST_SHARDS):
            start = None
            while True:
                kwargs = {"ExclusiveStartKey": start} if start else {}
                resp = table.call("query", TableName=table.name, IndexName=LIST_INDEX,
                                  KeyConditionExpression="list_pk = :p",
                                  ExpressionAttributeValues={":p": {"S": f"{prefix}{shard}"}},
                                  ProjectionExpression="pk", Limit=PAGE, **kwargs)
                ids = [item["pk"]["S"] for item in resp.get("Items", [])]
                items = table.batch_get([_key(short_id, LINK_SK) for short_id in ids], consistent=True) if ids else []
                puts = [entry for item in items for entry in link_index.entries(item)]
                table.batch_put([_marshal(entry) for entry in puts])
                links, entries = links + len(items), entries + len(puts)
                if progress:
                    progress(links, entries)
                start = resp.get("LastEvaluatedKey")
                if not start:
                    break
    return links, entries
