"""The table layout contract: the redirect, the aggregator, the admin's store and the table in
cloudformation.yaml agree on keys, prefixes, projections and timestamp formats.

Each side keeps its own constants (the deployables share no code); this module pins them together,
by comparing the constants and by writing items with one side and reading them with another.
"""
import importlib
import json
import sys
import time
from datetime import timedelta

import boto3
import pytest

from aggregator import claims, layout
from local_stack.event_source import kinesis_event
from local_stack.log_subscription import encode_payload
from local_stack.template import table_properties
from tests.conftest import REGION, TABLE_NAME
from tests.support.aggregator import reload_aggregator
from webapp import clock, link_rules
from webapp import store as store_module
from webapp.store import settings as store_settings
from webapp.store import stats_items
from webapp.store import tokens as store_tokens
from webapp.store import users as store_users

OTHER_REGION = "eu-west-1"
STREAM = "clicks-contract"
SHARD = "shardId-000000000000"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148"
# Every attribute the aggregator may write on a counter or stats item: none may be copied into an index.
COUNTER_ATTRIBUTES = {"clicks", "bots", "last_clicked_at", "click_count", "bot_count", "last_click_at",
                      layout.REFERRER_SET, layout.COUNTRY_SET}
COUNTER_PREFIXES = (layout.REFERRER_PREFIX, layout.COUNTRY_PREFIX, layout.DEVICE_PREFIX, layout.MARK_PREFIX)


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def aggregator(aggregator, monkeypatch):
    """The fresh aggregator handler (conftest), with count(): a one-shard click stream per region."""
    module = aggregator
    kinesis = boto3.client("kinesis", region_name=REGION)
    streams = {}

    def count(lines, moment, region=REGION):
        """Put the click lines (printed at `moment`) on `region`'s stream and apply them as that region's aggregator."""
        monkeypatch.setattr(module, "REGION", region)
        name = f"{STREAM}-{region}"  # each region deploys its own stream
        if name not in streams:
            kinesis.create_stream(StreamName=name, ShardCount=1)
            streams[name] = kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]
        data = encode_payload(lines, timestamp_ms=int(moment.timestamp() * 1000))
        sequence = kinesis.put_record(StreamName=name, Data=data, PartitionKey="c")["SequenceNumber"]
        return module.lambda_handler(kinesis_event([(sequence, data, moment.timestamp())], streams[name], SHARD), None)

    module.count = count
    return module


@pytest.fixture
def store(ddb):
    """The admin's store on the moto table, summing two regions' counters."""
    return store_module.Store(TABLE_NAME, client=ddb, regions=[REGION, OTHER_REGION])


@pytest.fixture
def redirect(ddb, monkeypatch):
    """The redirect handler, imported inside moto; every GetItem it makes is recorded."""
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    module = sys.modules.get("redirect_fn.handler")
    module = importlib.reload(module) if module else importlib.import_module("redirect_fn.handler")
    module._cache.clear()
    module.requests = []
    module._client.meta.events.register(
        "provide-client-params.dynamodb.GetItem", lambda params, **_: module.requests.append(dict(params))
    )
    yield module
    module._cache.clear()


def click(short_id, ua=DESKTOP, ref=None, cc=None):
    record = {"type": "click", "id": short_id, "ua": ua}
    if ref:
        record["ref"] = ref
    if cc:
        record["cc"] = cc
    return json.dumps(record, separators=(",", ":"))


def by_list():
    [index] = [i for i in table_properties()["GlobalSecondaryIndexes"] if i["IndexName"] == store_module.LIST_INDEX]
    return index


# ------------------------------------------------------------------ the table in cloudformation.yaml


def test_the_table_is_keyed_by_pk_and_sk_as_every_side_writes():
    props = table_properties()
    assert props["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    types = {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]}
    assert types == {"pk": "S", "sk": "S", "list_pk": "S", "list_sk": "S"}
    assert set(layout.counter_key("x", REGION)) == set(layout.stats_key("x", "2026-11-27", REGION)) == {"pk", "sk"}


def test_the_list_index_is_the_one_the_store_queries():
    index = by_list()
    assert index["KeySchema"] == [{"AttributeName": "list_pk", "KeyType": "HASH"}, {"AttributeName": "list_sk", "KeyType": "RANGE"}]
    assert index["Projection"]["ProjectionType"] == "INCLUDE"


def test_the_list_index_projects_no_counter():
    projected = set(by_list()["Projection"]["NonKeyAttributes"])
    assert not projected & COUNTER_ATTRIBUTES
    assert not [name for name in projected if name.startswith(COUNTER_PREFIXES)]
    # No counter lives in any index of the table.
    for index in table_properties().get("GlobalSecondaryIndexes", []) + table_properties().get("LocalSecondaryIndexes", []):
        assert index["Projection"]["ProjectionType"] != "ALL", index["IndexName"]
        assert not set(index["Projection"].get("NonKeyAttributes", [])) & COUNTER_ATTRIBUTES


def test_the_list_index_projects_what_a_list_page_shows():
    projected = set(by_list()["Projection"]["NonKeyAttributes"]) | {"pk", "sk", "list_pk", "list_sk"}
    # Everything store._link reads from a listed link item (its counts come from the counter items).
    assert {"pk", "url", "title", "created_at", "created_by", "expires_at", "is_active"} <= projected
    # ... and what the token and user pages read.
    assert {"username", "name", "token_id", "created_at"} <= projected


# ------------------------------------------------------------------ constants on each side


def test_the_aggregator_and_the_store_name_the_counter_and_stats_items_alike():
    assert layout.COUNTER_SK_PREFIX == store_module.COUNTER_SK_PREFIX
    assert layout.STATS_PK_PREFIX == store_module.STATS_PK_PREFIX
    assert layout.DAY_SK_PREFIX == store_module.DAY_SK_PREFIX
    assert {layout.REFERRER_PREFIX, layout.COUNTRY_PREFIX, layout.DEVICE_PREFIX} <= set(stats_items.DIMENSIONS)
    assert layout.counter_key("abc", REGION) == {"pk": {"S": "abc"}, "sk": {"S": f"{store_module.COUNTER_SK_PREFIX}{REGION}"}}
    assert layout.stats_key("abc", "2026-11-27", REGION) == {
        "pk": {"S": f"{store_module.STATS_PK_PREFIX}abc"}, "sk": {"S": f"{store_module.DAY_SK_PREFIX}2026-11-27#{REGION}"}
    }


def test_no_aggregator_item_can_be_mistaken_for_a_link_user_or_token():
    counter_sk = layout.counter_key("abc", REGION)["sk"]["S"]
    stats_pk = layout.stats_key("abc", "2026-11-27", REGION)["pk"]["S"]
    claim = layout.claim_key("0" * 32, REGION)
    assert counter_sk not in (store_module.LINK_SK, store_users.USER_SK, store_tokens.TOKEN_SK)
    # A stats or claim partition can never be a link's: ids are [A-Za-z0-9_-], and "#" is not one of them.
    assert not link_rules._SLUG_RE.fullmatch(stats_pk)
    assert not link_rules._SLUG_RE.fullmatch(claim["pk"]["S"])
    assert claim["sk"]["S"] not in (store_module.LINK_SK, store_users.USER_SK, store_tokens.TOKEN_SK)


def test_the_store_never_reads_a_mark_as_a_counter():
    # The store sums every attribute of a stats item whose name starts with one of its prefixes.
    mark = layout.mark_name(layout.stream_life("arn:aws:kinesis:us-east-1:123456789012:stream/clicks", "1.000"), SHARD)
    assert mark.startswith(layout.MARK_PREFIX)
    assert not mark.startswith((*stats_items.DIMENSIONS, stats_items.HOUR_PREFIX, stats_items.BOT_HOUR_PREFIX))
    assert mark not in COUNTER_ATTRIBUTES


def test_claims_are_purged_by_the_tables_time_to_live():
    ttl = table_properties()["TimeToLiveSpecification"]
    assert ttl["Enabled"] is True
    written = []

    class Client:
        def put_item(self, **request):
            written.append(request)

    now = int(time.time())
    claims.claim(Client(), TABLE_NAME, "0" * 32, "m#x.0:1", REGION, retention_seconds=24 * 3600)
    purge_at = int(written[0]["Item"][ttl["AttributeName"]]["N"])
    # Kept while CloudWatch Logs may still put a copy (24 h) and the stream may still hold it (its retention).
    assert purge_at >= now + 48 * 3600


def test_list_shards_are_the_keys_the_store_reads_back():
    shards = {store_module.list_shard(f"id{i}") for i in range(400)}
    assert shards == {f"{store_module.LIST_PK_PREFIX}{n}" for n in range(store_module.LIST_SHARDS)}


@pytest.mark.parametrize(("aws_region", "default_region"), [(REGION, REGION), (OTHER_REGION, REGION), (None, OTHER_REGION)])
def test_the_aggregator_counts_in_the_region_the_store_reads_by_default(ddb, monkeypatch, aws_region, default_region):
    monkeypatch.setenv("TABLE_NAME", TABLE_NAME)
    for name, value in (("AWS_REGION", aws_region), ("AWS_DEFAULT_REGION", default_region)):
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    module = reload_aggregator()
    assert [module.REGION] == store_module.default_regions()


# ------------------------------------------------------------------ the redirect reads what the store writes


def test_the_redirect_reads_the_link_item_the_store_writes(store, redirect):
    created = store.links.create("https://example.com/landing?utm=1", created_by="alice", slug="contract-1")
    now = clock.utcnow().timestamp()
    assert redirect.resolve("contract-1", now) == (302, created["url"])
    [request] = redirect.requests
    assert request["Key"] == {"pk": {"S": "contract-1"}, "sk": {"S": store_module.LINK_SK}}
    projected = {request.get("ExpressionAttributeNames", {}).get(name.strip(), name.strip())
                 for name in request["ProjectionExpression"].split(",")}
    assert projected == {"url", "is_active", "expires_at", "forward_query"}  # forward_query: absent means true
    # Each projected attribute is one the store writes on a link item, under that name.
    raw = store.table.client.get_item(TableName=TABLE_NAME, Key={"pk": {"S": "contract-1"}, "sk": {"S": store_module.LINK_SK}})["Item"]
    assert {"url", "is_active"} <= set(raw)
    assert raw["is_active"] == {"BOOL": True}


def test_the_redirect_honours_a_link_disabled_by_the_store(store, redirect):
    store.links.create("https://example.com/", created_by="alice", slug="contract-2")
    store.links.set_active("contract-2", False)
    assert redirect.resolve("contract-2", clock.utcnow().timestamp()) == (410, None)


def test_the_redirect_compares_expiry_in_the_stores_timestamp_format(store, redirect):
    now = clock.utcnow()
    expires_at = clock.format_timestamp(now + timedelta(seconds=5))
    store.links.create("https://example.com/", created_by="alice", slug="contract-3", expires_at=expires_at)
    assert redirect.resolve("contract-3", now.timestamp()) == (302, "https://example.com/")
    redirect._cache.clear()
    assert redirect.resolve("contract-3", (now + timedelta(seconds=4)).timestamp())[0] == 302
    redirect._cache.clear()
    assert redirect.resolve("contract-3", (now + timedelta(seconds=5)).timestamp()) == (410, None)
    # The redirect's own format string is the store's.
    moment = now.timestamp()
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment)) == clock.format_timestamp(now)
    assert clock.TIMESTAMP_FORMAT == "%Y-%m-%dT%H:%M:%SZ"


def test_the_redirect_prints_the_click_line_the_aggregator_reads(redirect, store, capsys):
    from aggregator.clicks import parse_line

    store.links.create("https://example.com/", created_by="alice", slug="contract-4")
    event = {"version": "2.0", "rawPath": "/contract-4", "requestContext": {"http": {"method": "GET"}},
             "headers": {"user-agent": PHONE, "referer": "https://News.Example.com/a?b=c"}}
    assert redirect.lambda_handler(event, None)["statusCode"] == 302
    [printed] = [l for l in capsys.readouterr().out.splitlines() if l.startswith("{")]
    parsed = parse_line(layout.encode_sequence("1"), {"timestamp": 1_795_780_800_000, "message": printed})
    assert (parsed.short_id, parsed.device, parsed.referrer, parsed.country) == ("contract-4", "iPhone", "news.example.com", None)


# ------------------------------------------------------------------ the store reads what the aggregator writes


def test_the_store_sums_the_counters_the_aggregator_writes_in_two_regions(store, aggregator):
    store.links.create("https://example.com/", created_by="alice", slug="contract-5")
    now = clock.utcnow()
    aggregator.count([click("contract-5")] * 3 + [click("contract-5", ua="Twitterbot/1.0")], now - timedelta(minutes=5))
    aggregator.count([click("contract-5", ua=PHONE)] * 2, now - timedelta(minutes=1), region=OTHER_REGION)
    link = store.links.get("contract-5")
    assert (link["click_count"], link["bot_count"]) == (5, 1)
    assert link["last_clicked_at"] == clock.format_timestamp(now - timedelta(minutes=1))
    # The aggregator's timestamps are in the store's format.
    assert clock.parse_timestamp(link["last_clicked_at"]) == now - timedelta(minutes=1)


def test_a_list_page_shows_the_aggregators_counts(store, aggregator):
    now = clock.utcnow()
    for i in range(12):
        store.links.create(f"https://example.com/{i}", created_by="alice", slug=f"listed-{i:02d}")
    aggregator.count([click(f"listed-{i:02d}") for i in range(12) for _ in range(i)], now)
    aggregator.count([click("listed-03")] * 10, now, region=OTHER_REGION)
    page, cursor = store.links.list(limit=5)
    rest, _ = store.links.list(limit=20, cursor=cursor)
    counts = {link["id"]: link["click_count"] for link in page + rest}
    assert counts == {f"listed-{i:02d}": i + (10 if i == 3 else 0) for i in range(12)}


def test_the_list_index_holds_links_and_never_the_aggregators_items(store, aggregator, ddb):
    store.links.create("https://example.com/", created_by="alice", slug="contract-6")
    aggregator.count([click("contract-6", ref="a.example", cc="DE")], clock.utcnow())
    indexed = []
    for shard in range(store_module.LIST_SHARDS):
        indexed += ddb.query(
            TableName=TABLE_NAME, IndexName=store_module.LIST_INDEX, KeyConditionExpression="list_pk = :p",
            ExpressionAttributeValues={":p": {"S": f"{store_module.LIST_PK_PREFIX}{shard}"}},
        )["Items"]
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in indexed] == [("contract-6", store_module.LINK_SK)]
    assert not set(indexed[0]) & COUNTER_ATTRIBUTES


def test_the_store_sums_per_day_stats_across_regions(store, aggregator):
    store.links.create("https://example.com/", created_by="alice", slug="contract-7")
    today = clock.utcnow().replace(hour=12, minute=0, second=0)
    yesterday = today - timedelta(days=1)
    aggregator.count([click("contract-7", ref="a.example", cc="DE")] * 2 + [click("contract-7", ua="Googlebot/2.1")], yesterday)
    aggregator.count([click("contract-7", ref="a.example", cc="FR", ua=PHONE)], yesterday, region=OTHER_REGION)
    aggregator.count([click("contract-7", ref="b.example")], today, region=OTHER_REGION)
    fields = ("day", "clicks", "bots", "referrers", "countries", "devices")
    days = [{name: day[name] for name in fields} for day in store.links.daily_stats("contract-7")]
    assert days == [
        {"day": yesterday.date().isoformat(), "clicks": 3, "bots": 1,
         "referrers": {"a.example": 3}, "countries": {"DE": 2, "FR": 1}, "devices": {"Desktop": 2, "iPhone": 1}},
        {"day": today.date().isoformat(), "clicks": 1, "bots": 0,
         "referrers": {"b.example": 1}, "countries": {}, "devices": {"Desktop": 1}},
    ]


def test_folded_referrers_read_back_as_other(store, aggregator):
    from aggregator import writes

    store.links.create("https://example.com/", created_by="alice", slug="contract-8")
    now = clock.utcnow()
    for batch in range(5):
        aggregator.count([click("contract-8", ref=f"r{batch * 25 + i}.example") for i in range(25)], now)
    [day] = store.links.daily_stats("contract-8")
    assert len(day["referrers"]) == writes.MAX_REFERRERS + 1
    assert day["referrers"][layout.OTHER] == 125 - writes.MAX_REFERRERS
    assert sum(day["referrers"].values()) == day["clicks"] == 125


# ------------------------------------------------------------------ issue 18: hours, dimensions, visitors, rollups


def test_the_aggregator_and_the_stats_reader_name_the_new_attributes_alike():
    assert (layout.HOUR_PREFIX, layout.BOT_HOUR_PREFIX) == (stats_items.HOUR_PREFIX, stats_items.BOT_HOUR_PREFIX)
    assert (layout.VISITOR_SET, layout.VISITOR_SKETCH) == (stats_items.VISITOR_SET, stats_items.VISITOR_SKETCH)
    assert layout.LINK_PREFIX == stats_items.LINK_PREFIX
    assert {layout.REFERRER_PREFIX, layout.COUNTRY_PREFIX, layout.DEVICE_PREFIX, layout.BROWSER_PREFIX,
            layout.OS_PREFIX} == set(stats_items.DIMENSIONS)
    # The reader parts attribute names at the first "#": none of the aggregator's bookkeeping reads as a counter.
    bookkeeping = [layout.MARK_PREFIX, layout.VISITOR_VERSION, layout.LINK_SET, layout.PURGE_AT, layout.DEVICE_SET,
                   layout.BROWSER_SET, layout.OS_SET, layout.REFERRER_SET, layout.COUNTRY_SET]
    for name in bookkeeping:
        prefix = name.partition("#")[0] + "#"
        assert prefix not in stats_items.DIMENSIONS and prefix not in (
            stats_items.HOUR_PREFIX, stats_items.BOT_HOUR_PREFIX, stats_items.LINK_PREFIX), name


def test_a_sketch_item_reads_as_its_days_visitors_and_nothing_else():
    """The sketch item sits next to its stats or rollup item (sort key + "#uvh"): the link page's day Query
    takes it in, its sort key parses to the same day and region, and it adds visitors, no clicks and no link."""
    from uniques import sketch

    stats, rollup = layout.stats_key("abc", "2026-11-27", REGION), layout.rollup_key("2026-11-27", REGION, "m#life0001")
    for counted in (stats, rollup):
        sk = layout.sketch_key(counted)["sk"]["S"]
        assert sk.startswith(counted["sk"]["S"] + "#") and sk < counted["sk"]["S"] + "#~"
    day_sk = layout.sketch_key(stats)["sk"]["S"]
    assert day_sk.removeprefix(store_module.DAY_SK_PREFIX).partition("#")[0] == "2026-11-27"  # links.daily_stats
    assert layout.sketch_key(rollup)["sk"]["S"].partition("#")[0] == REGION  # rollups.days
    hashes = {n.to_bytes(8, "big") for n in range(500)}
    blob = sketch.encode(sketch.add(sketch.new_registers(), hashes))
    kept = stats_items.part("2026-11-27", {"pk": "stats#abc", "sk": day_sk, layout.VISITOR_SKETCH: blob,
                                           layout.VISITOR_VERSION: 3, layout.PURGE_AT: 1})
    counted = stats_items.part("2026-11-27", {"clicks": 7, layout.VISITOR_SET: {n.to_bytes(8, "big") for n in range(490, 510)}})
    day = stats_items.merge(stats_items.merge(stats_items.empty_day("2026-11-27"), counted), kept)
    assert day["clicks"] == 7 and day["links"] == {} and day["hours"] == {}
    assert stats_items.visitors(day) == sketch.count([({n.to_bytes(8, "big") for n in range(510)}, None)])


def test_the_aggregator_reads_the_retention_setting_the_store_writes():
    assert layout.RETENTION_SETTING_KEY == store_settings.setting_key("stats_retention_days")
    assert layout.PURGE_AT == table_properties()["TimeToLiveSpecification"]["AttributeName"]


def test_the_dashboard_reads_the_rollups_the_aggregator_writes():
    from webapp.store import rollups as store_rollups

    assert layout.ROLLUP_PK_PREFIX == store_rollups.ROLLUP_PK_PREFIX


def test_a_rollup_key_is_never_a_links_or_a_stats_items():
    key = layout.rollup_key("2026-11-27", REGION, layout.mark_name("life0", SHARD))
    assert key["pk"]["S"] == "rollup#2026-11-27" and key["sk"]["S"].startswith(f"{REGION}#{layout.MARK_PREFIX}")
    assert not link_rules._SLUG_RE.fullmatch(key["pk"]["S"])
    assert not key["pk"]["S"].startswith(layout.STATS_PK_PREFIX)


def test_the_stats_reader_reads_the_stats_and_rollups_the_aggregator_writes(aggregator, ddb):
    from boto3.dynamodb.types import TypeDeserializer

    now = clock.utcnow().replace(hour=9, minute=30)
    visitor = "0123456789abcdef"
    lines = [json.dumps({"type": "click", "id": "contract-9", "ua": PHONE, "ref": "a.example", "cc": "DE", "v": visitor})] * 2
    lines += [click("contract-10"), click("contract-10", ua="Googlebot/2.1")]
    aggregator.count(lines, now)
    aggregator.count([click("contract-10")], now, region=OTHER_REGION)
    day = now.date().isoformat()
    plain = TypeDeserializer()
    items = ddb.scan(TableName=TABLE_NAME, ConsistentRead=True)["Items"]
    parts = {(i["pk"]["S"], i["sk"]["S"]): stats_items.part(day, {k: plain.deserialize(v) for k, v in i.items()})
             for i in items if i["pk"]["S"].startswith((layout.STATS_PK_PREFIX, layout.ROLLUP_PK_PREFIX))}
    link = parts[("stats#contract-9", f"day#{day}#{REGION}")]
    assert (link["clicks"], link["hours"], link["devices"], link["oses"]) == (2, {"09": 2}, {"iPhone": 2}, {"iOS": 2})
    assert stats_items.visitors(link) == 1
    # The day across links: each region's rollup items (one per shard) merged by max of lnk#, then regions summed.
    total = stats_items.empty_day(day)
    for region in (REGION, OTHER_REGION):
        regional = stats_items.empty_day(day)
        for (pk, sk), part in parts.items():
            if pk == f"{layout.ROLLUP_PK_PREFIX}{day}" and sk.startswith(f"{region}#"):
                stats_items.merge(regional, part, links_by_max=True)
        stats_items.merge(total, regional)
    assert (total["clicks"], total["bots"], total["bot_hours"]) == (4, 1, {"09": 1})
    assert total["links"] == {"contract-9": 2, "contract-10": 2}
    assert total["devices"] == {"iPhone": 2, "Desktop": 2} and total["referrers"] == {"a.example": 2}
    assert stats_items.visitors(total) == 1
