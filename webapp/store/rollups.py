"""Read the aggregator's rollups (pk "rollup#<YYYY-MM-DD>", one item per region and stream shard) for
the home dashboard, and the titles of its top links.

A range of days costs one Query per day (plus a page per 1 MB, which the day's number of shards and
regions bounds) and at most one BatchGetItem of titles: never a request per link. Each read returns
how many requests it made, so a test and the benchmark can hold it to that.
"""
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

from webapp import clock, link_rules
from webapp.store import stats_items
from webapp.store.links import LINK_SK
from webapp.store.table import _key, _marshal, _unmarshal

ROLLUP_PK_PREFIX = "rollup#"
# Days are independent Queries: a few at once cut a 60-day read's wall time (bench/analytics.py measures
# the dashboard's); more would only queue behind botocore's 10 pooled connections.
_WORKERS = 6
TITLES_MAX = 100  # BatchGetItem's limit: one request


@dataclass
class RollupRead:
    """The merged days of a range, oldest first, and the table requests it took."""

    days: list
    requests: int = 0


@dataclass
class _Count:
    requests: int = 0
    items: list = field(default_factory=list)


class Rollups:
    """Per-day figures across all links, from the rollup items the aggregator writes."""

    def __init__(self, table, links):
        self.table = table
        self.links = links  # its click_regions() names the regions summed, as for the link counters

    def days(self, first, last):
        """Every UTC day from first to last (dates), each merged over its items: within a region the
        largest lnk#<id> of its shards (each is that link's running total as its shard saw it), then
        regions summed. Days without items are empty_day."""
        count = (last - first).days + 1
        dates = [first + timedelta(days=offset) for offset in range(max(count, 0))]
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            reads = list(pool.map(self._query_day, dates))
        regions, now = set(self.links.click_regions()), clock.utcnow()
        days = []
        for date, read in zip(dates, reads):
            by_region = {}
            for item in read.items:
                region = item["sk"].partition("#")[0]
                if region not in regions:  # a region this app does not sum, as for link counters
                    continue
                if stats_items.expired(item, now):  # TTL deletes it later; the day goes at once and whole
                    continue
                part = stats_items.part(date.isoformat(), item)
                if region in by_region:
                    stats_items.merge(by_region[region], part, links_by_max=True)
                else:
                    by_region[region] = part
            total = stats_items.empty_day(date.isoformat())
            for region_day in by_region.values():
                stats_items.merge(total, region_day)
            days.append(total)
        return RollupRead(days=days, requests=sum(read.requests for read in reads))

    def _query_day(self, date):
        """Every rollup item of one day, page by page."""
        read, start = _Count(), None
        while True:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            resp = self.table.call(
                "query",
                TableName=self.table.name,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues=_marshal({":pk": f"{ROLLUP_PK_PREFIX}{date.isoformat()}"}),
                **kwargs,
            )
            read.requests += 1
            read.items += [_unmarshal(item) for item in resp.get("Items", [])]
            start = resp.get("LastEvaluatedKey")
            if not start:
                return read

    def titles(self, short_ids):
        """({short_id: title or None} for the links that exist, requests made): one BatchGetItem of
        at most TITLES_MAX links (plus a retry of what DynamoDB left unprocessed, rarely)."""
        ids = [short_id for short_id in dict.fromkeys(short_ids) if link_rules.is_short_id(short_id)][:TITLES_MAX]
        found, requests = {}, 0
        pending = [_key(short_id, LINK_SK) for short_id in ids]
        for _ in range(3):
            if not pending:
                break
            resp = self.table.call(
                "batch_get_item",
                RequestItems={self.table.name: {"Keys": pending, "ProjectionExpression": "pk, title"}},
            )
            requests += 1
            for item in resp.get("Responses", {}).get(self.table.name, []):
                plain = _unmarshal(item)
                found[plain["pk"]] = plain.get("title")
            pending = resp.get("UnprocessedKeys", {}).get(self.table.name, {}).get("Keys", [])
        # Titles are a nicety: a link left unprocessed three times is shown by its id.
        return found, requests
