"""The audit log: records stored append-only with every field, bounded, listed and filtered by admins only."""
import base64
import json
from datetime import datetime, timedelta, timezone

import pytest
from flask import g

from local_stack.template import load_template
from tests.conftest import ADMIN_PASSWORD, ADMIN_USERNAME, TABLE_NAME, make_app, token_for
from tests.test_deploy_template import TABLE_ARN
from webapp import audit
from webapp.exceptions import StoreUnavailable
from webapp.store import audit as store_audit
from webapp.store.signin import client_digest

RESOURCES = load_template()["Resources"]
ADDRESS = "203.0.113.9"


def _record(app, action="user.role", user=ADMIN_USERNAME, address=ADDRESS, **kwargs):
    """record() as a view of a signed-in user calls it."""
    with app.test_request_context("/", environ_base={"REMOTE_ADDR": address}):
        g.user = user
        return audit.record(action, **kwargs)


def _items(ddb):
    items = ddb.scan(TableName=TABLE_NAME)["Items"]
    return [item for item in items if item["pk"]["S"].startswith("audit#")]


def _list(store, first=None, last=None, **kwargs):
    today = datetime.now(timezone.utc).date()
    return store.audit.list(first_day=first or today - timedelta(days=400), last_day=last or today, **kwargs)


def _signed_in_admin(client):
    response = client.post("/login", data={"username": ADMIN_USERNAME, "password": ADMIN_PASSWORD})
    assert response.status_code == 303
    return client


# ------------------------------------------------------------------ storing


def test_a_record_is_stored_with_every_field(app, store, ddb):
    _record(app, "user.role", target="bob", role="editor")
    [item] = _items(ddb)
    assert item["pk"]["S"].startswith("audit#") and item["list_pk"]["S"] == "audit#target#bob"
    assert item["list_sk"] == item["sk"]
    [record], next_cursor = _list(store)
    assert next_cursor is None
    assert record["action"] == "user.role" and record["actor"] == ADMIN_USERNAME and record["target"] == "bob"
    assert record["outcome"] == "ok" and record["via"] == "web" and record["details"] == {"role": "editor"}
    assert record["at"] == item["at"]["S"] and record["at"].endswith("Z")
    # From where: a keyed hash of the address, never the address itself.
    assert record["client"] == client_digest(ADDRESS, app.config["SECRET_KEY"])
    assert ADDRESS not in json.dumps(item)


def test_an_api_caller_is_recorded_as_such(app, store):
    with app.test_request_context("/api/x"):
        g.api_user = "scripter"
        audit.record("token.create", target="scripter")
    [record], _ = _list(store)
    assert (record["actor"], record["via"]) == ("scripter", "api")


def test_retention_sets_purge_at(ddb):
    app = make_app(AUDIT_RETENTION_DAYS=30)
    before = datetime.now(timezone.utc)
    _record(app, "user.create", target="bob")
    [item] = _items(ddb)
    purge_at = int(item["purge_at"]["N"])
    assert (before + timedelta(days=30)).timestamp() - 2 <= purge_at <= (before + timedelta(days=30)).timestamp() + 2
    assert RESOURCES["LinksTable"]["Properties"]["TimeToLiveSpecification"]["AttributeName"] == "purge_at"


def test_retention_zero_keeps_records(ddb):
    _record(make_app(AUDIT_RETENTION_DAYS=0), "user.create", target="bob")
    [item] = _items(ddb)
    assert "purge_at" not in item


@pytest.mark.parametrize("days", [-1, "a year", 1.5, True])
def test_a_bad_retention_stops_start_up(ddb, days):
    with pytest.raises(RuntimeError, match="SHORTENER_AUDIT_RETENTION_DAYS"):
        make_app(AUDIT_RETENTION_DAYS=days)


def test_a_record_is_never_overwritten(app, store, ddb, monkeypatch):
    """The same key twice (forced here): the second put is refused by its condition, the first stays."""
    monkeypatch.setattr(store_audit.secrets, "token_hex", lambda n: "00" * n)
    monkeypatch.setattr(store_audit.secrets, "randbelow", lambda n: 0)
    monkeypatch.setattr(store_audit.time, "time_ns", lambda: 0)
    store.audit.add({"action": "user.create", "target": "bob"}, 0)
    with pytest.raises(StoreUnavailable):
        store.audit.add({"action": "user.delete", "target": "bob"}, 0)
    [item] = _items(ddb)
    assert item["action"]["S"] == "user.create"


def test_records_spread_over_the_shards(app, store, ddb):
    for n in range(40):
        store.audit.add({"action": "link.create", "target": f"l{n}"}, 0)
    shards = {item["pk"]["S"].rsplit("#", 1)[1] for item in _items(ddb)}
    assert shards == {str(n) for n in range(store_audit.AUDIT_SHARDS)}


# ------------------------------------------------------------------ hostile values


def test_hostile_values_are_bounded(app, store, ddb, caplog):
    huge = "x" * 100_000
    nested = {"a": [{"b": [huge] * 50}] * 50}
    _record(app, "signin.failed\nINFO user signed in: admin", user="mallory\nINFO forged", target=huge,
            outcome=huge, note=huge, nested=nested, **{f"k{n}": huge for n in range(100)})
    [item] = _items(ddb)
    assert len(json.dumps(item)) < 6_000
    assert len(item["target"]["S"]) == audit.MAX_TARGET and item["target"]["S"].endswith(audit.CUT)
    assert len(item["outcome"]["S"]) == audit.MAX_SHORT
    details = json.loads(item["details"]["S"])
    assert len(details["note"]) == audit.MAX_DETAIL_TEXT
    assert details["details_dropped"] > 0 and len(details) <= audit.MAX_DETAILS + 1
    # Each record is one log line, whatever newlines its values hold.
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("audit ")]
    assert len(lines) == 1 and "\n" not in lines[0]


def test_values_no_table_or_log_can_take_are_replaced(app, store, ddb):
    """A lone surrogate, which a JSON body may carry, would fail the put and the log line."""
    _record(app, "signin.failed", user="\ud800mallory", target="bob\udfff", tags=["\ud83d", "ok"])
    [record], _ = _list(store)
    assert record["actor"] == "?mallory" and record["target"] == "bob?" and record["details"] == {"tags": ["?", "ok"]}


def test_changes_keep_their_shape(app, store):
    """What the per-link trail records: each changed field's old and new value."""
    changes = {"url": {"old": "https://a.example/", "new": "https://b.example/"}, "tags": {"old": [], "new": ["a", "b"]}}
    _record(app, "link.edit", target="launch", changes=changes)
    [record], _ = _list(store, target="launch")
    assert record["details"] == {"changes": changes}


def test_html_in_a_record_is_shown_as_text(app, store, client):
    _record(app, "user.create", target="<script>alert(1)</script>", user="<b>mallory</b>",
            note='"><img src=x onerror=alert(2)>')
    page = _signed_in_admin(client).get("/audit").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "&lt;b&gt;mallory&lt;/b&gt;" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(2)&gt;" in page


def test_filter_values_are_echoed_escaped(app, client):
    page = _signed_in_admin(client).get("/audit", query_string={"actor": '"><script>x</script>'}).get_data(as_text=True)
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


# ------------------------------------------------------------------ viewing: who may


def test_the_nav_links_the_log_for_admins_only(app, store, client):
    assert 'href="/audit"' in _signed_in_admin(client).get("/").get_data(as_text=True)
    other = app.test_client()
    store.users.create("ed", "an-editor-password", role="editor")
    other.post("/login", data={"username": "ed", "password": "an-editor-password"})
    assert 'href="/audit"' not in other.get("/").get_data(as_text=True)


def test_an_admins_read_token_may_read_the_log(app, store, client):
    _record(app, "user.create", target="bob")
    response = client.get("/api/audit", headers={"Authorization": f"Bearer {token_for(store, 'admin', 'read')}"})
    assert response.status_code == 200 and response.json["records"][0]["target"] == "bob"
    assert response.json["next"] is None


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_other_roles_get_403_from_the_api(store, client, role):
    response = client.get("/api/audit", headers={"Authorization": f"Bearer {token_for(store, role)}"})
    assert response.status_code == 403 and "role" in response.json["error"]


def test_the_api_needs_a_token(client):
    response = client.get("/api/audit")
    assert response.status_code == 401 and response.json["error"]


# ------------------------------------------------------------------ filters and paging


@pytest.fixture
def history(app, clock):
    """Records on three days in two months, by two actors, about two targets."""
    start = datetime(2026, 10, 30, 12, 0, tzinfo=timezone.utc)
    plan = [(start, "alice", "user.create", "bob"), (start + timedelta(seconds=1), "alice", "signin.failed", "bob"),
            (start + timedelta(days=3), "carol", "token.create", "carol"),
            (start + timedelta(days=3, seconds=1), "alice", "user.role", "bob"),
            (start + timedelta(days=9), "carol", "signin.ok", "carol")]
    for moment, actor, action, target in plan:
        clock.now = moment
        _record(app, action, user=actor, target=target)
    clock.now = start + timedelta(days=10)
    return plan


def _api(client, store, **query):
    token = token_for(store, "admin", "read")
    return client.get("/api/audit", query_string=query, headers={"Authorization": f"Bearer {token}"})


def _actions(response):
    assert response.status_code == 200, response.get_data(as_text=True)
    return [record["action"] for record in response.json["records"]]


def test_records_list_newest_first_across_months(store, client, history):
    assert _actions(_api(client, store)) == [action for _, _, action, _ in reversed(history)]


@pytest.mark.parametrize(("query", "expected"), [
    ({"actor": "carol"}, ["signin.ok", "token.create"]),
    ({"action": "signin."}, ["signin.ok", "signin.failed"]),
    ({"action": "user"}, ["user.role", "user.create"]),
    ({"target": "bob"}, ["user.role", "signin.failed", "user.create"]),
    ({"target": "bob", "actor": "alice", "action": "user."}, ["user.role", "user.create"]),
    ({"from": "2026-11-02", "to": "2026-11-02"}, ["user.role", "token.create"]),
    ({"to": "2026-10-31"}, ["signin.failed", "user.create"]),
    ({"from": "2026-11-01", "target": "bob"}, ["user.role"]),
    ({"actor": "nobody"}, []),
])
def test_filters(store, client, history, query, expected):
    assert _actions(_api(client, store, **query)) == expected


@pytest.mark.parametrize("query", [{}, {"target": "bob"}, {"action": "s"}])
def test_the_cursor_pages_through_everything_once(store, client, history, query):
    seen, cursor = [], None
    for _ in range(10):
        response = _api(client, store, limit=1, **query, **({"cursor": cursor} if cursor else {}))
        seen += _actions(response)
        cursor = response.json["next"]
        if not cursor:
            break
    assert seen == _actions(_api(client, store, **query))


def test_the_page_shows_filters_and_a_next_link(app, store, client, history):
    page = _signed_in_admin(client).get("/audit", query_string={"actor": "alice"}).get_data(as_text=True)
    assert "user.role" in page and "token.create" not in page
    for n in range(60):
        _record(app, "link.create", user="alice", target=f"l{n}")
    page = client.get("/audit", query_string={"actor": "alice"}).get_data(as_text=True)
    assert 'rel="next"' in page and "actor=alice" in page


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "yesterday"}, "from"),
    ({"to": "2026-13-01"}, "to"),
    ({"from": "1999-12-31"}, "from"),
    ({"from": "2026-11-05", "to": "2026-11-01"}, "from"),
    ({"action": "User Role"}, "action"),
    ({"actor": "a" * 500}, "actor"),
    ({"target": "t" * 500}, "target"),
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"cursor": "not-a-cursor!"}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b"audit#2026-11#0").decode()}, "cursor"),
    ({"cursor": base64.urlsafe_b64encode(b"2026-02-30~").decode()}, "cursor"),
    # A real position, but outside the days asked for.
    ({"cursor": base64.urlsafe_b64encode(b"2020-01-01~").decode(), "from": "2026-01-01"}, "cursor"),
    ({"cursor": "A" * 5000}, "cursor"),
])
def test_bad_filters_are_refused_clearly_without_reading_records(store, client, query, field):
    token = token_for(store, "admin", "read")
    queries = []
    store.table.client.meta.events.register("before-call.dynamodb.Query", lambda **kw: queries.append(kw))
    response = client.get("/api/audit", query_string=query, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 422 and response.json["field"] == field and response.json["error"]
    assert queries == []


def test_bad_filters_on_the_page(client):
    _signed_in_admin(client)
    response = client.get("/audit", query_string={"from": "soon"})
    assert response.status_code == 422 and "YYYY-MM-DD" in response.get_data(as_text=True)
    assert client.get("/audit", query_string={"cursor": "@@@"}).status_code == 400


def test_a_filter_that_matches_nothing_costs_bounded_requests(app, store, client):
    for n in range(30):
        _record(app, "link.create", target=f"l{n}")
    queries = []
    store.table.client.meta.events.register("before-call.dynamodb.Query", lambda **kw: queries.append(kw))
    response = _api(client, store, actor="nobody", limit=1, **{"from": "2000-01-01"})
    assert _actions(response) == []
    assert len(queries) <= store_audit.MAX_ROUNDS * store_audit.AUDIT_SHARDS


# ------------------------------------------------------------------ failure, metrics, IAM


def test_a_write_failure_keeps_the_action_and_logs_the_record(app, store, monkeypatch, caplog):
    def unavailable(record, retention_days):
        raise StoreUnavailable("ProvisionedThroughputExceededException")

    monkeypatch.setattr(store.audit, "add", unavailable)
    result = app.test_cli_runner().invoke(args=["create-user", "bob", "--password", "bobs-long-password"])
    assert result.exit_code == 0, result.output
    assert store.users.get("bob") is not None
    [line] = [r for r in caplog.records if r.getMessage().startswith(audit.NOT_STORED_MARKER)]
    assert line.levelname == "ERROR"
    event = json.loads(line.getMessage().removeprefix(audit.NOT_STORED_MARKER + " "))
    assert (event["action"], event["target"], event["via"]) == ("user.create", "bob", "cli")


@pytest.mark.parametrize(("action", "metric"), sorted(audit.METRIC_OF_ACTION.items()))
def test_sign_in_failures_and_lockouts_are_alarmed_metrics(app, capsys, action, metric):
    _record(app, action, user=None, target="bob")
    [line] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Shortener" and directive["Metrics"] == [{"Name": metric, "Unit": "Count"}]
    assert directive["Dimensions"] == [["FunctionName"]] and line[metric] == 1
    [alarm] = [r["Properties"] for r in RESOURCES.values()
               if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"].get("MetricName") == metric]
    assert alarm["Namespace"] == "Shortener" and alarm["Statistic"] == "Sum"
    # The admin's function is the one AdminFunctionName names (its log group too).
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "AdminFunctionName"}}]


def test_other_actions_print_no_metric(app, capsys):
    _record(app, "signin.ok", target="bob")
    assert '"_aws"' not in capsys.readouterr().out


def test_the_admin_role_may_not_change_or_delete_audit_records():
    policy = RESOURCES["AdminAuditAppendOnlyPolicy"]["Properties"]
    assert policy["Roles"] == [{"Ref": "AdminRole"}]
    [statement] = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert set(statement["Action"]) == {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}
    assert statement["Resource"] == TABLE_ARN  # the table, created or adopted (ExistingTableName)
    assert statement["Condition"] == {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": [f"{store_audit.AUDIT_PK_PREFIX}*"]}}


# ------------------------------------------------------------------ from real callers


def test_the_cli_records_what_it_changes(app, store):
    runner = app.test_cli_runner()
    assert runner.invoke(args=["create-user", "bob", "--password", "bobs-long-password", "--role", "editor"]).exit_code == 0
    assert runner.invoke(args=["create-token", "bob", "--name", "ci", "--scope", "read"]).exit_code == 0
    assert runner.invoke(args=["disable-user", "bob"]).exit_code == 0
    records, _ = _list(store, target="bob")
    assert [r["action"] for r in records] == ["user.disable", "token.create", "user.create"]
    assert {r["via"] for r in records} == {"cli"} and all(r["actor"].startswith("cli") for r in records)
    assert records[1]["details"]["scope"] == "read" and records[2]["details"] == {"role": "editor"}


def test_a_view_that_records_is_audited_with_its_request(app, store, client):
    """A tiny view standing in for the others: the signed-in admin, through the web, from a hashed address."""

    def change():
        audit.record("settings.change", target="site", name="PAGE_SIZE", value="<i>50</i>")
        return "", 204

    app.add_url_rule("/test-audit", "test_audit", change, methods=["POST"])
    _signed_in_admin(client)
    assert client.post("/test-audit", environ_base={"REMOTE_ADDR": ADDRESS}).status_code == 204
    [record], _ = _list(store, target="site")
    assert (record["actor"], record["via"]) == (ADMIN_USERNAME, "web")
    assert record["client"] == client_digest(ADDRESS, app.config["SECRET_KEY"])
    assert record["details"] == {"name": "PAGE_SIZE", "value": "<i>50</i>"}
