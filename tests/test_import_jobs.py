"""Import jobs end to end on the moto table: every row gets one result, nothing is overwritten, a job
killed half-way is resumed without creating any link twice, and imports per user are bounded."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp import import_runner
from webapp.csv_import import ImportRefused
from webapp.store.import_jobs import JOB_PK_PREFIX, JobLost, job_key

OWNER = "alice"


def _csv(rows, header="url,slug,title,tags,expires_at"):
    return (header + "\n" + "".join(",".join(row) + "\n" for row in rows)).encode("utf-8")


def _links(ddb):
    """Every link item in the table (a test table is small: scanning it is fine here)."""
    items = ddb.scan(TableName="links-test")["Items"]
    return {item["pk"]["S"]: item for item in items if item["sk"]["S"] == "link"}


def _audit(ddb, action):
    items = ddb.scan(TableName="links-test")["Items"]
    return [item for item in items if item["pk"]["S"].startswith("audit#2") and item.get("action", {}).get("S") == action]


def _submit(app, data, **config):
    app.config.update(config)
    with app.test_request_context():
        return import_runner.submit(data, owner=OWNER, via="web")


def _results(app, job_id):
    with app.app_context():
        return app.extensions["store"].import_jobs.results(job_id)


def _age(ddb, job_id):
    """Make the job's runner look dead: its heartbeat long ago."""
    ddb.update_item(TableName="links-test", Key=job_key(job_id), UpdateExpression="SET heartbeat = :z",
                    ExpressionAttributeValues={":z": {"N": "0"}})


def test_a_small_file_runs_at_once_and_every_row_gets_a_result(app, ddb):
    rows = [("https://example.com/a", "first", "A", '"x, y"', "never"), ("https://example.com/b", "", "", "", ""),
            ("not a url", "", "", "", ""), ("https://example.com/c", "first", "", "", "")]
    job = _submit(app, _csv(rows))
    assert (job["status"], job["total"], job["created"], job["failed"]) == ("done", 4, 2, 2)
    results = _results(app, job["id"])
    assert [r["row"] for r in results] == [1, 2, 3, 4]
    assert results[0] == {"row": 1, "status": "created", "short_id": "first"}
    assert results[2]["field"] == "url" and results[3]["field"] == "slug"
    links = _links(ddb)
    assert set(links) == {"first", results[1]["short_id"]}
    assert links["first"]["tags"] == {"L": [{"S": "x"}, {"S": "y"}]}
    assert links["first"]["import_job"] == {"S": job["id"]} and links["first"]["import_row"] == {"N": "1"}
    assert "expires_at" not in links["first"]
    creates = _audit(ddb, "link.create")
    assert len(creates) == 2 and all(json.loads(a["details"]["S"])["import_job"] == job["id"] for a in creates)
    assert all(a["actor"]["S"] == OWNER and a["via"]["S"] == "web" for a in creates)
    (summary,) = _audit(ddb, "links.import")
    assert json.loads(summary["details"]["S"]) == {"rows": 4, "created": 2, "failed": 2}


def test_a_taken_slug_is_left_untouched(app, store, ddb):
    store.links.create("https://example.com/original", created_by="bob", slug="taken", title="Original")
    before = _links(ddb)["taken"]
    job = _submit(app, _csv([("https://example.com/new", "taken", "New", "", "")]))
    assert job["created"] == 0
    assert _results(app, job["id"])[0]["error"].startswith("The slug taken is already taken")
    assert _links(ddb)["taken"] == before


def test_a_bad_file_is_refused_and_stores_nothing(app, ddb):
    before = ddb.scan(TableName="links-test")["Items"]
    with pytest.raises(ImportRefused):
        _submit(app, "url\nhttps://example.com/é\n".encode("latin-1"))
    with pytest.raises(ImportRefused):
        _submit(app, _csv([("https://example.com/",)] * 3, header="url"), IMPORT_MAX_ROWS=2)
    with pytest.raises(ImportRefused):
        _submit(app, _csv([("https://example.com/",)], header="url") + b"x" * 100, IMPORT_MAX_BYTES=50)
    assert ddb.scan(TableName="links-test")["Items"] == before


@pytest.mark.parametrize("kill", ["after_chunk", "inside_chunk"])
def test_a_job_killed_half_way_is_resumed_without_creating_any_link_twice(app, ddb, monkeypatch, kill):
    rows = [(f"https://example.com/{n}", f"slug-{n}" if n % 3 == 0 else "", "", "", "") for n in range(350)]
    data = _csv(rows)
    jobs = app.extensions["store"].import_jobs
    if kill == "after_chunk":
        monkeypatch.setattr(import_runner, "start_background", lambda job_id: None)  # no runner of its own
        job = _submit(app, data, IMPORT_SYNC_ROWS=10)
        with app.app_context(), pytest.raises(RuntimeError, match="killed after chunk 1"):
            import_runner.run(job["id"], fail_after_chunk=1)
    else:
        # Killed after chunk 2's links were created, before its results were saved.
        real = jobs.save_chunk

        def dies_on_chunk_2(job, runner, chunk, results, slot, hold):
            if chunk == 2:
                raise RuntimeError("killed inside chunk 2")
            return real(job, runner, chunk, results, slot, hold)

        monkeypatch.setattr(jobs, "save_chunk", dies_on_chunk_2)
        with pytest.raises(RuntimeError, match="killed inside chunk 2"):
            _submit(app, data)
        monkeypatch.setattr(jobs, "save_chunk", real)
        job = {"id": ddb.scan(TableName="links-test", ScanFilter={"sk": {"AttributeValueList": [{"S": "job"}],
                                                                        "ComparisonOperator": "EQ"}})["Items"][0]["pk"]["S"].removeprefix(JOB_PK_PREFIX)}
    half = len(_links(ddb))
    assert 0 < half < 350
    with app.app_context():
        assert import_runner.run(job["id"]) ["status"] == "running"  # its runner looks alive: nothing happens
    assert len(_links(ddb)) == half
    _age(ddb, job["id"])
    with app.test_request_context():
        done = import_runner.run(job["id"])
    assert (done["status"], done["created"], done["failed"]) == ("done", 350, 0)
    results = _results(app, job["id"])
    assert [r["row"] for r in results] == list(range(1, 351))
    assert all(r["status"] == "created" for r in results)
    links = _links(ddb)
    assert len(links) == 350 == len({r["short_id"] for r in results})
    assert sorted(int(item["import_row"]["N"]) for item in links.values()) == list(range(1, 351))


def test_two_runners_never_both_save_a_chunk(app, ddb, monkeypatch):
    monkeypatch.setattr(import_runner, "start_background", lambda job_id: None)
    job = _submit(app, _csv([(f"https://example.com/{n}", "", "", "", "") for n in range(20)]), IMPORT_SYNC_ROWS=5)
    with app.app_context():
        jobs = app.extensions["store"].import_jobs
        assert jobs.lease(job["id"], "first", 60)["runner"] == "first"
        assert jobs.lease(job["id"], "second", 60) is None
        _age(ddb, job["id"])
        assert jobs.lease(job["id"], "second", 60)["runner"] == "second"
        with pytest.raises(JobLost):
            jobs.save_chunk(jobs.get(job["id"]), "first", 0, [], job["slot"], 60)


def test_imports_running_at_once_are_bounded_per_user(app, ddb, monkeypatch):
    monkeypatch.setattr(import_runner, "start_background", lambda job_id: None)
    data = _csv([(f"https://example.com/{n}", "", "", "", "") for n in range(3)])
    first = _submit(app, data, IMPORT_SYNC_ROWS=1, IMPORT_JOBS_PER_USER=2)
    _submit(app, data)
    before = len(ddb.scan(TableName="links-test")["Items"])
    with pytest.raises(import_runner.TooManyImports):
        _submit(app, data)
    assert len(ddb.scan(TableName="links-test")["Items"]) == before  # refused: nothing stored
    with app.test_request_context():
        assert import_runner.run(first["id"])["status"] == "done"  # a finished job frees its slot
    assert _submit(app, data)["status"] == "running"


def test_a_large_file_runs_in_a_background_thread(app, ddb):
    job = _submit(app, _csv([(f"https://example.com/{n}", "", "", "", "") for n in range(120)]), IMPORT_SYNC_ROWS=50)
    assert job["status"] == "running"
    for thread in app.extensions["import_threads"]:
        thread.join(timeout=60)
    with app.app_context():
        done = app.extensions["store"].import_jobs.get(job["id"])
    assert (done["status"], done["created"]) == ("done", 120)
    assert len(_links(ddb)) == 120


_slug = st.sampled_from(["", "", "", "aaa", "bbb", "taken", "links", "x y"])
_url = st.sampled_from(["https://example.com/1", "https://example.com/2", "ftp://x", "", "https://sho.rt/x"])
_rows = st.lists(st.tuples(_url, _slug, st.sampled_from(["", "T", "=1+1"]), st.just(""),
                           st.sampled_from(["", "never", "2000-01-01"])), min_size=1, max_size=12)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_rows)
def test_any_file_gives_every_row_one_result_and_changes_no_existing_link(app, store, ddb, rows):
    # The table lives across examples: each example compares with what was there before it.
    if "taken" not in _links(ddb):
        store.links.create("https://example.com/original", created_by="bob", slug="taken")
    existing = _links(ddb)
    app.config["IMPORT_JOBS_PER_USER"] = 1000
    data_rows = [row for row in rows if any(row)]  # an all-empty line is a blank line, not a row
    if not data_rows:
        with pytest.raises(ImportRefused):
            _submit(app, _csv(rows))
        return
    job = _submit(app, _csv(rows))
    results = _results(app, job["id"])
    assert [r["row"] for r in results] == list(range(1, len(data_rows) + 1))
    assert all(r["status"] in ("created", "error") for r in results)
    links = _links(ddb)
    made = [r["short_id"] for r in results if r["status"] == "created"]
    assert len(made) == job["created"] == len(links) - len(existing)
    assert set(made) == set(links) - set(existing)
    assert {key: links[key] for key in existing} == existing


# On DynamoDB Local: real conditional writes and transactions, the background thread of local mode.

def _poll_until_done(client, headers, location, seconds=300):
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = client.get(location, headers=headers).get_json()
        if body["status"] == "done":
            return body
        time.sleep(0.5)
    raise AssertionError(f"the import did not finish in {seconds} s: {body}")


@pytest.mark.integration
@pytest.mark.skipif(__import__("tests.support.dynamodb_local", fromlist=["NO_JAVA"]).NO_JAVA,
                    reason="DynamoDB Local needs Java 11+")
def test_a_background_job_killed_half_way_is_resumed_by_polling_on_dynamodb_local(dynamodb_local, monkeypatch, record_figure):
    import threading
    import time

    from tests.conftest import make_app, token_for
    from tests.support.dynamodb_local import app_on_fresh_table

    app = app_on_fresh_table(dynamodb_local, monkeypatch, make_app, IMPORT_SYNC_ROWS=100, IMPORT_STALE_SECONDS=1)
    store = app.extensions["store"]
    headers = {"Authorization": f"Bearer {token_for(store, 'editor')}"}
    client = app.test_client()
    real_start = import_runner.start_background

    def dies_after_chunk_2(job_id):
        flask_app = app

        def run():
            with flask_app.app_context(), pytest.raises(RuntimeError):
                import_runner.run(job_id, fail_after_chunk=2)

        thread = threading.Thread(target=run)
        app.extensions["import_threads"].append(thread)
        thread.start()

    monkeypatch.setattr(import_runner, "start_background", dies_after_chunk_2)
    body = "url,slug\n" + "".join(f"https://example.com/{n},{'s-' + str(n) if n % 5 == 0 else ''}\n" for n in range(600))
    response = client.post("/api/links/import", data=body.encode(), content_type="text/csv", headers=headers)
    assert response.status_code == 202
    location = response.headers["Location"]
    for thread in app.extensions["import_threads"]:
        thread.join(timeout=120)
    half = client.get(location, headers=headers).get_json()
    assert (half["status"], half["processed"]) == ("running", 300)
    monkeypatch.setattr(import_runner, "start_background", real_start)
    time.sleep(2.1)  # the dead runner's heartbeat goes stale
    done = _poll_until_done(client, headers, location)
    assert (done["created"], done["failed"], done["processed"]) == (600, 0, 600)
    ids = [r["short_id"] for r in done["results"]]  # 600 rows: one page
    assert len(ids) == len(set(ids)) == 600
    for short_id in ids[::50]:
        assert store.links.get(short_id)["created_by"] == "editor1"
    record_figure("links.import_resume.rows", len(ids), basis="counted")
    record_figure("links.import_resume.killed_at", half["processed"], basis="counted")
    record_figure("links.import_resume.distinct_links", len(set(ids)), basis="counted")


@pytest.mark.integration
@pytest.mark.bench
@pytest.mark.skipif(__import__("tests.support.dynamodb_local", fromlist=["NO_JAVA"]).NO_JAVA,
                    reason="DynamoDB Local needs Java 11+")
def test_the_import_benchmark_counts_every_write_of_the_create_path(dynamodb_local, monkeypatch):
    """bench/import_bench.py at a small size: every row created, transactions counted, the section renders."""
    from bench import import_bench, record

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    result = record.plain(import_bench.run_import(dynamodb_local.endpoint, 150))
    assert (result["job_status"], result["created"], result["failed"]) == ("done", 150, 0)
    assert result["requests"]["TransactWriteItems"] >= 2  # a chunk's results and progress, then the end
    kinds = result["units_by_kind"]
    assert kinds["link"] == kinds["list index key"] == 150 and kinds["audit log shard"] >= 150
    assert kinds["import job"] > 0  # the transactions' parts are counted, not only single-item writes
    assert result["write_units"] == pytest.approx(sum(kinds.values()))
    section = import_bench.section(result)
    assert all(line.endswith("met.") for line in section.targets)
    assert set(import_bench.figures(result)) >= {"import.seconds", "import.requests", "import.write_units", "import.peak_key_wcu"}


def test_on_lambda_a_large_file_is_handed_to_an_asynchronous_invocation_of_the_same_function(app, ddb, monkeypatch):
    """On Lambda the background is an async self-invocation that Zappa's handler routes by its "command" key."""
    import importlib
    import sys
    import types

    invocations = []

    class FakeLambda:
        def invoke(self, **kwargs):
            invocations.append(kwargs)
            return {"StatusCode": 202}

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "linkshortener-prod")
    monkeypatch.setattr(import_runner, "_LAMBDA_CLIENT", FakeLambda())
    job = _submit(app, _csv([(f"https://example.com/{n}", "", "", "", "") for n in range(30)]), IMPORT_SYNC_ROWS=10)
    assert job["status"] == "running" and app.extensions["import_threads"] == []
    (call,) = invocations
    assert (call["FunctionName"], call["InvocationType"]) == ("linkshortener-prod", "Event")
    event = json.loads(call["Payload"])
    assert event == {"command": import_runner.LAMBDA_COMMAND, "job_id": job["id"]}
    # What Zappa's handler does with it: import the command's function and call it with (event, context).
    module, _, name = event["command"].rpartition(".")
    handler = getattr(importlib.import_module(module), name)
    # The Lambda's app module (webapp/wsgi.py builds the app from the environment): this test's app instead.
    monkeypatch.setitem(sys.modules, "webapp.wsgi", types.SimpleNamespace(app=app))

    class Context:
        @staticmethod
        def get_remaining_time_in_millis():
            return 60_000

    handler(event, Context())
    with app.app_context():
        assert app.extensions["store"].import_jobs.get(job["id"])["created"] == 30
