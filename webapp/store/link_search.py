"""Search and filters over links: read the index entries of webapp/store/link_index.py, never a Scan.

A query (LinkQuery: words, tag, status, owner, sort) is answered from one "driver", the most
selective part of it that has entries of its own, in this order: the longest search word (2+
letters: a begins_with Query on each of link_index.SHARDS partitions of its first two letters), the
tag, status=disabled, status=expired (the expiry entries with expires_at < now), mine (the owner's
entries), status=archived (the by_list keys archived#0..7), else the default list (links#0..7, so
status=active or nothing) whose index items already hold what a check needs.

Each request reads one Query per shard of the driver (in parallel), merges them in order, and takes
candidates in that order: newest first, or for a word, the exact word first, then longer words
alphabetically, each newest first. A candidate's link item is read with one BatchGetItem per round of
candidates (the list driver reads it from the index instead) and checked against the whole query
(every word a prefix of one of its words, the tag, the owner, the status), which combines the filters
and ignores any stale entry. The page's counters come in one more BatchGetItem. At most READ_FACTOR
x limit index items are read in one request; a page cut short by that cap still has a cursor, so
reading goes on from where it stopped. The cost is therefore proportional to what the driver
matches, never to the number of links: 3 matches out of 100,000 read 3 entries.

status=active alone reads the default list and drops disabled and expired links, which is
proportional to the results as long as most unarchived links are active. Sort "clicks" orders the
page that was read by its click counts (most first): a page-wide sort, bounded by the page size, not
a sort of every match.
"""
import base64
import binascii
import json
import zlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from webapp import clock, link_rules
from webapp.exceptions import InvalidCursor, InvalidTags
from webapp.store import link_index
from webapp.store.links import ARCHIVED_PK_PREFIX, LINK_SK, LIST_PK_PREFIX, LIST_SHARDS, _link
from webapp.store.table import LIST_INDEX, _key, _marshal, _unmarshal

STATUSES = ("active", "disabled", "expired", "archived")
SORTS = ("newest", "clicks")
Q_MAX, Q_WORDS_MAX = 200, 8
READ_FACTOR = 10  # index items read per request, at most, per link of the page asked for


class InvalidQuery(ValueError):
    """A search parameter that cannot be used; field names it, message says why."""

    def __init__(self, field, message):
        super().__init__(message)
        self.field, self.message = field, message


@dataclass(frozen=True)
class LinkQuery:
    """What to find: every word a prefix of a link's word, the tag, the owner, the status; and the sort."""

    words: tuple = ()
    tag: str = None
    status: str = None
    owner: str = None
    sort: str = "newest"

    def is_default(self):
        """True when nothing narrows the default list (the plain newest-first list)."""
        return not (self.words or self.tag or self.status or self.owner)

    def fingerprint(self):
        """A short check that a cursor belongs to this query."""
        return zlib.crc32(repr((self.words, self.tag, self.status, self.owner)).encode("utf-8"))


def parse_query(args, user):
    """The LinkQuery of request arguments q, tag, status, mine and sort; raise InvalidQuery naming the field."""
    q = args.get("q", "")
    if len(q) > Q_MAX:
        raise InvalidQuery("q", f"q can be at most {Q_MAX} characters long.")
    found = tuple(dict.fromkeys(link_index.words(q)))
    if len(found) > Q_WORDS_MAX:
        raise InvalidQuery("q", f"q can have at most {Q_WORDS_MAX} words.")
    # Only blanks is no search; anything else must hold a word to search for ("!!!" is not the whole list).
    if q.strip() and not any(len(word) >= link_index.WORD_MIN for word in found):
        raise InvalidQuery("q", f"Search for a word of at least {link_index.WORD_MIN} letters or digits.")
    tag = args.get("tag", "")
    if tag:
        try:
            tags = link_rules.check_tags([tag])
        except InvalidTags as err:
            raise InvalidQuery("tag", str(err)) from None
        tag = tags[0] if tags else ""
    status = args.get("status", "")
    if status and status not in STATUSES:
        raise InvalidQuery("status", f"status must be one of {', '.join(STATUSES)}.")
    mine = args.get("mine", "")
    if mine not in ("", "0", "1"):
        raise InvalidQuery("mine", "mine must be 1 (only my links) or 0.")
    sort = args.get("sort", "") or "newest"
    if sort not in SORTS:
        raise InvalidQuery("sort", f"sort must be one of {', '.join(SORTS)}.")
    return LinkQuery(words=found, tag=tag or None, status=status or None, owner=user if mine == "1" else None, sort=sort)


def link_state(item, now):
    """'archived', 'disabled', 'expired' or 'active': one state per link, as the status filter reads it."""
    return "archived" if item.get("archived") else link_rules.link_status(item, clock.parse_timestamp(now))


def matches(query, item, now):
    """True when the stored link item meets every part of the query."""
    state = link_state(item, now)
    if state != (query.status or state) or (not query.status and state == "archived"):
        return False  # a status asks for that state; none asks for any state but archived
    if query.tag and query.tag not in item.get("tags", []):
        return False
    if query.owner and item.get("created_by") != query.owner:
        return False
    if query.words:
        own = link_index.link_words(item)
        return all(any(word.startswith(wanted) for word in own) for wanted in query.words)
    return True


@dataclass(frozen=True)
class _Driver:
    """Where candidates come from: `shards` partitions read in sort-key order."""

    name: str
    pks: tuple
    forward: bool = False  # read ascending (words) or descending (newest first)
    prefix: str = None  # begins_with(sk, prefix)
    below: str = None  # sk < below (expired)
    on_list: bool = False  # the by_list index, whose items are link projections

    def sort_key(self, item):
        return item["list_sk"] if self.on_list else item["sk"]

    def link_id(self, item):
        return item["pk"] if self.on_list else link_index.entry_id(item["sk"])


def _driver(query, now):
    """The part of the query whose entries are read (see the module docstring for the order)."""
    shards = range(link_index.SHARDS)
    indexable = [word[:link_index.WORD_MAX] for word in query.words if len(word) >= link_index.WORD_MIN]
    if indexable:
        word = max(indexable, key=len)
        return _Driver(f"word:{word}", tuple(link_index.word_pk(word, n) for n in shards), forward=True, prefix=word)
    if query.tag:
        return _Driver(f"tag:{query.tag}", tuple(f"{link_index.TAG_PK}{query.tag}#{n}" for n in shards))
    if query.status == "disabled":
        return _Driver("disabled", tuple(f"{link_index.DISABLED_PK}{n}" for n in shards))
    if query.status == "expired":
        # expires_at <= now is expired (link_rules.link_status): "$" follows the "#" after expires_at in
        # the sort key, so a link expiring this very second is read too.
        return _Driver("expired", tuple(f"{link_index.EXPIRES_PK}{n}" for n in shards), below=f"{now}$")
    if query.owner:
        return _Driver(f"owner:{query.owner}", tuple(f"{link_index.OWNER_PK}{query.owner}#{n}" for n in shards))
    prefix = ARCHIVED_PK_PREFIX if query.status == "archived" else LIST_PK_PREFIX
    return _Driver(f"list:{prefix}", tuple(f"{prefix}{n}" for n in range(LIST_SHARDS)), on_list=True)


class LinkSearch:
    """Pages of links matching a LinkQuery, read from the index entries (the read side of link_index)."""

    def __init__(self, links):
        self.links = links
        self.table = links.table

    def find(self, query, limit=20, cursor=None):
        """One page of the links that match, and the cursor of the next page (or None)."""
        if query.is_default():
            page, next_cursor = self.links.list(limit, cursor)
            return _sorted(page, query.sort), next_cursor
        now = clock.format_timestamp(clock.utcnow())
        driver = _driver(query, now)
        reader = _Reader(self.table, driver, _decode(cursor, query, driver) if cursor else {}, budget=READ_FACTOR * limit)
        found, seen = [], set()
        while len(found) < limit:
            batch = reader.take(limit - len(found))
            if not batch:
                break
            items = self._items(driver, batch)
            for entry in batch:
                item = items.get(driver.link_id(entry))
                if item is None or item["pk"] in seen or not matches(query, item, now):
                    continue
                if driver.prefix and not _first_word(item, driver.prefix, entry["sk"]):
                    continue  # listed once, under its first word with this prefix
                seen.add(item["pk"])
                found.append(item)
        counters = self.links._counters([item["pk"] for item in found]) if found else {}
        page = [_link(item, counters.get(item["pk"], [])) for item in found]
        return _sorted(page, query.sort), (None if reader.finished() else _encode(reader.positions, query))

    def _items(self, driver, batch):
        """{id: link item} of a batch of candidates: the index items themselves, or one BatchGetItem."""
        if driver.on_list:
            return {item["pk"]: item for item in batch}
        ids = list(dict.fromkeys(driver.link_id(entry) for entry in batch))
        return {item["pk"]: item for item in self.table.batch_get([_key(short_id, LINK_SK) for short_id in ids])}


def _first_word(item, prefix, sk):
    """True when the entry's word is the link's first indexed word (alphabetically) starting with prefix."""
    words = [word for word in link_index.indexed_words(item) if word.startswith(prefix)]
    return bool(words) and min(words) == sk.partition("#")[0]


def _sorted(page, sort):
    """The page in the order asked for: as read (newest first), or by clicks, most first."""
    return sorted(page, key=lambda link: -link["click_count"]) if sort == "clicks" else page


class _Reader:
    """A merge of the driver's shards in sort-key order, each read a few items at a time, within a budget."""

    def __init__(self, table, driver, positions, budget):
        self.table, self.driver, self.budget = table, driver, budget
        self.read = 0
        # Per shard: the last sort key taken, or None when the shard is done; absent: not started.
        self.positions = dict(positions)
        self.buffers = {n: deque() for n in range(len(driver.pks))}
        self.more = {n: self.positions.get(n, "") is not None for n in self.buffers}
        self.stopped = False

    def take(self, count):
        """Up to `count` entries in order; fewer when the shards run out or the budget is spent."""
        out = []
        while len(out) < count and self._fill(count - len(out)):
            live = [n for n in self.buffers if self.buffers[n]]
            if not live:
                break
            pick = min if self.driver.forward else max
            n = pick(live, key=lambda shard: self.driver.sort_key(self.buffers[shard][0]))
            entry = self.buffers[n].popleft()
            self.positions[n] = self.driver.sort_key(entry)
            if not self.buffers[n] and not self.more[n]:
                self.positions[n] = None
            out.append(entry)
        return out

    def finished(self):
        """True when every shard has been read to its end and every entry read was taken."""
        every_shard_done = all(self.positions.get(n, "") is None for n in self.buffers)
        return every_shard_done and not any(self.buffers.values())

    def _fill(self, wanted):
        """Read every shard whose buffer is empty and that has more; False when the budget forbids it."""
        empty = [n for n in self.buffers if not self.buffers[n] and self.more[n]]
        if not empty:
            return True
        room = self.budget - self.read
        if room <= 0:
            return False
        # A few items per shard: matches spread evenly over shards, so about wanted / shards each.
        per_shard = max(2, min(room // len(empty), -(-2 * wanted // len(self.buffers)) + 1))
        if len(empty) == 1:  # the usual refill once reading has started: no pool for one Query
            pages = [self._query(empty[0], per_shard)]
        else:
            with ThreadPoolExecutor(max_workers=len(empty)) as pool:
                pages = list(pool.map(lambda n: self._query(n, per_shard), empty))
        for n, (items, more) in zip(empty, pages):
            self.read += len(items)
            self.buffers[n].extend(items)
            self.more[n] = more
            if not items and not more:
                self.positions[n] = None
        return True

    def _query(self, n, limit):
        """Up to `limit` entries of shard n after its position: (items, whether it has more)."""
        driver, pk = self.driver, self.driver.pks[n]
        after = self.positions.get(n)
        if driver.on_list:
            kwargs = {"IndexName": LIST_INDEX, "KeyConditionExpression": "list_pk = :pk"}
        else:
            kwargs = {"KeyConditionExpression": "pk = :pk", "ProjectionExpression": "sk"}
        values = {":pk": pk}
        if driver.prefix:
            kwargs["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
            values[":prefix"] = driver.prefix
        if driver.below:
            kwargs["KeyConditionExpression"] += " AND sk < :below"
            values[":below"] = driver.below
        if after:
            start = ({"list_pk": pk, "list_sk": after, "pk": after.rpartition("#")[2], "sk": LINK_SK}
                     if driver.on_list else {"pk": pk, "sk": after})
            kwargs["ExclusiveStartKey"] = _marshal(start)
        resp = self.table.call(
            "query", TableName=self.table.name, ExpressionAttributeValues=_marshal(values),
            ScanIndexForward=driver.forward, Limit=limit, **kwargs,
        )
        return [_unmarshal(item) for item in resp.get("Items", [])], "LastEvaluatedKey" in resp


def _encode(positions, query):
    """An opaque, URL-safe cursor: the query's fingerprint and each shard's position."""
    raw = json.dumps({"f": query.fingerprint(), "p": {str(n): pos for n, pos in positions.items()}}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")


def _decode(cursor, query, driver):
    """The per-shard positions of a search cursor; raise InvalidCursor for one not handed out for this query."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, RecursionError):  # bad base64, UTF-8 or JSON, or absurd nesting
        raise InvalidCursor(cursor) from None
    if not isinstance(data, dict) or data.get("f") != query.fingerprint() or not isinstance(data.get("p"), dict):
        raise InvalidCursor(cursor)
    shards = {str(n) for n in range(len(driver.pks))}
    positions = data["p"]
    if not set(positions) <= shards or not all(pos is None or _position_of(driver, pos) for pos in positions.values()):
        raise InvalidCursor(cursor)
    return {int(n): pos for n, pos in positions.items()}


def _position_of(driver, pos):
    """True when pos is a sort key this driver's entries can have: it becomes a Query's ExclusiveStartKey,
    and DynamoDB refuses a malformed key (an empty id, say) or one outside the key condition (begins_with,
    sk < below) with a ValidationException, not an empty page."""
    return (isinstance(pos, str) and len(pos) <= 300 and "#" in pos
            and link_rules.is_short_id(pos.rpartition("#")[2]) and pos.startswith(driver.prefix or "")
            and (driver.below is None or pos < driver.below))
