"""CSV import through the API (POST /api/links/import) and the pages (/links/import): roles, answers, polling,
resume and the results download."""
import csv
import io

import pytest

from tests.conftest import sign_in_as, token_for
from webapp import import_runner
from webapp.store.import_jobs import job_key

CSV = "text/csv"


def _body(n, start=0):
    return ("url,slug,title\n" + "".join(f"https://example.com/{i},,Row {i}\n" for i in range(start, start + n))).encode()


def _post(client, token, data, content_type=CSV):
    return client.post("/api/links/import", data=data, content_type=content_type,
                       headers={"Authorization": f"Bearer {token}"})


def _get(client, token, path):
    return client.get(path, headers={"Authorization": f"Bearer {token}"})


def _join(app):
    for thread in app.extensions["import_threads"]:
        thread.join(timeout=60)


def test_a_small_file_answers_201_with_every_rows_result(client, store):
    token = token_for(store, "editor")
    response = _post(client, token, b"url,slug\nhttps://example.com/a,api-a\nftp://nope,\n")
    assert response.status_code == 201
    body = response.get_json()
    assert (body["status"], body["total"], body["created"], body["failed"]) == ("done", 2, 1, 1)
    assert body["results"][0] == {"row": 1, "status": "created", "short_id": "api-a", "short_url": "https://sho.rt/api-a"}
    assert body["results"][1]["field"] == "url" and body["next_cursor"] is None
    assert store.links.get("api-a")["created_by"] == "editor1"
    assert response.headers["Location"] == f"/api/links/import/{body['id']}"


def test_a_file_that_creates_nothing_answers_200(client, store):
    assert _post(client, token_for(store, "editor"), b"url\nftp://nope\n").status_code == 200


@pytest.mark.parametrize("role, scope", [("viewer", "read"), ("editor", "read"), ("admin", "read")])
def test_readers_get_a_json_403(client, store, role, scope):
    response = _post(client, token_for(store, role, scope), _body(1))
    assert response.status_code == 403 and "error" in response.get_json()


@pytest.mark.parametrize("data, content_type, status, says", [
    (_body(1), "application/json", 415, "text/csv"),
    ("url\nhttps://example.com/é\n".encode("latin-1"), CSV, 422, "not UTF-8"),
    ("url\nhttps://example.com/\n".encode("utf-16"), CSV, 422, "UTF-16"),
    (b"link\nhttps://example.com/\n", CSV, 422, "no url column"),
    (b"url,extra\nhttps://example.com/,1\n", CSV, 422, "Unknown column"),
    (_body(6), CSV, 422, "more than 5 rows"),
    (b"url\n" + b"https://example.com/" + b"a" * 3000 + b"\n", CSV, 422, "the limit is 2,048 bytes"),
])
def test_bad_files_are_refused_and_change_nothing(app, client, store, ddb, data, content_type, status, says):
    app.config.update(IMPORT_MAX_ROWS=5, IMPORT_MAX_BYTES=2048)
    token = token_for(store, "editor")
    before = _items(ddb)
    response = _post(client, token, data, content_type)
    assert response.status_code == status
    assert says in response.get_json()["error"]
    assert _items(ddb) == before


def _items(ddb):
    """Every item but the tokens (a call marks its token's last use)."""
    return [item for item in ddb.scan(TableName="links-test")["Items"] if not item["pk"]["S"].startswith("tokenid#")]


def test_a_body_far_over_the_limit_is_refused_before_it_is_read(app, client, store):
    app.config["IMPORT_MAX_BYTES"] = 1024
    response = _post(client, token_for(store, "editor"), b"url\n" + b"x" * (import_runner.FORM_OVERHEAD + 2048))
    assert response.status_code == 413


def test_other_routes_keep_the_apps_body_limit(client, store):
    response = client.post("/api/links", data=b"{" + b" " * 70_000 + b"}", content_type="application/json",
                           headers={"Authorization": f"Bearer {token_for(store, 'editor')}"})
    assert response.status_code == 413


def test_a_large_file_answers_202_and_the_poll_gives_progress_then_paged_results(app, client, store):
    app.config["IMPORT_SYNC_ROWS"] = 100
    token = token_for(store, "editor")
    response = _post(client, token, _body(1_050))
    assert response.status_code == 202
    location = response.headers["Location"]
    assert response.get_json()["status"] == "running"
    _join(app)
    first = _get(client, token, location).get_json()
    assert (first["status"], first["processed"], first["created"]) == ("done", 1_050, 1_050)
    assert [r["row"] for r in first["results"]] == list(range(1, 1_001)) and first["next_cursor"] == "10"
    second = _get(client, token, f"{location}?cursor=10").get_json()
    assert [r["row"] for r in second["results"]] == list(range(1_001, 1_051)) and second["next_cursor"] is None
    assert _get(client, token, f"{location}?cursor=3").status_code == 422
    rows = list(csv.DictReader(io.StringIO(_get(client, token, first["results_csv"]).get_data(as_text=True))))
    assert len(rows) == 1_050 and rows[0]["status"] == "created" and rows[0]["title"] == "Row 0"


def test_a_dead_job_is_resumed_by_its_poll_and_by_resume(app, client, store, ddb, monkeypatch):
    app.config["IMPORT_SYNC_ROWS"] = 10
    token = token_for(store, "editor")
    started = []
    monkeypatch.setattr(import_runner, "start_background", started.append)  # the first runner never starts
    location = _post(client, token, _body(20)).headers["Location"]
    job_id = location.rsplit("/", 1)[1]
    assert _get(client, token, location).get_json()["resumed"] is False  # its heartbeat is still fresh
    assert client.post(f"{location}/resume", headers={"Authorization": f"Bearer {token}"}).status_code == 409
    ddb.update_item(TableName="links-test", Key=job_key(job_id), UpdateExpression="SET heartbeat = :z",
                    ExpressionAttributeValues={":z": {"N": "0"}})
    assert _get(client, token, location).get_json()["resumed"] is True
    assert client.post(f"{location}/resume", headers={"Authorization": f"Bearer {token}"}).status_code == 202
    assert started == [job_id, job_id, job_id]
    with app.test_request_context():
        import_runner.run(job_id)
    assert _get(client, token, location).get_json()["created"] == 20
    assert client.post(f"{location}/resume", headers={"Authorization": f"Bearer {token}"}).status_code == 409


def test_a_job_is_seen_by_its_owner_and_admins_only(client, store):
    location = _post(client, token_for(store, "editor"), _body(1)).headers["Location"]
    assert _get(client, token_for(store, "admin"), location).status_code == 200
    from tests.conftest import add_user

    add_user(store, "editor2", "editor")
    other, _ = store.tokens.create("editor2", "other", scope="write")
    assert _get(client, other, location).status_code == 404
    assert _get(client, other, "/api/links/import/not-a-job").status_code == 404


def test_too_many_imports_at_once_answer_429(app, client, store, monkeypatch):
    app.config.update(IMPORT_SYNC_ROWS=1, IMPORT_JOBS_PER_USER=1)
    monkeypatch.setattr(import_runner, "start_background", lambda job_id: None)
    token = token_for(store, "editor")
    assert _post(client, token, _body(2)).status_code == 202
    response = _post(client, token, _body(2))
    assert response.status_code == 429 and "Retry-After" in response.headers


# The pages.

def test_the_page_uploads_a_file_and_shows_and_downloads_the_results(client, store):
    sign_in_as(client, store, "editor")
    assert b'type="file"' in client.get("/links/import").data
    data = {"file": (io.BytesIO(b"url,slug,title\nhttps://example.com/p,page-a,<b>x</b>\nnope,,\n"), "links.csv")}
    response = client.post("/links/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Refresh" not in page.headers
    assert "1 created" in text and "page-a" in text and "Only http and https" in text
    download = client.get(response.headers["Location"] + "/results.csv")
    assert download.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(download.get_data(as_text=True))))
    assert [(r["slug"], r["status"]) for r in rows] == [("page-a", "created"), ("", "error")]


def test_the_page_refuses_a_bad_file_with_its_message(client, store):
    sign_in_as(client, store, "editor")
    data = {"file": (io.BytesIO("url\nhttps://é\n".encode("latin-1")), "links.csv")}
    response = client.post("/links/import", data=data, content_type="multipart/form-data")
    assert response.status_code == 422 and "not UTF-8" in response.get_data(as_text=True)
    assert client.post("/links/import", data={}, content_type="multipart/form-data").status_code == 422


def test_a_running_job_page_reloads_itself_and_shows_progress(app, client, store, monkeypatch):
    app.config["IMPORT_SYNC_ROWS"] = 1
    monkeypatch.setattr(import_runner, "start_background", lambda job_id: None)
    sign_in_as(client, store, "editor")
    response = client.post("/links/import", data={"file": (io.BytesIO(_body(3)), "a.csv")}, content_type="multipart/form-data")
    page = client.get(response.headers["Location"])
    assert page.headers["Refresh"] == "2"
    assert "0 of 3 rows done" in page.get_data(as_text=True)


def test_viewers_cannot_open_the_import_page(client, store):
    sign_in_as(client, store, "viewer")
    assert client.get("/links/import").status_code == 403


def test_the_resume_button_restarts_a_dead_job_and_its_page_then_shows_the_results(app, client, store, ddb, monkeypatch):
    app.config["IMPORT_SYNC_ROWS"] = 1
    started = []
    monkeypatch.setattr(import_runner, "start_background", started.append)
    sign_in_as(client, store, "editor")
    location = client.post("/links/import", data={"file": (io.BytesIO(_body(3)), "a.csv")},
                           content_type="multipart/form-data").headers["Location"]
    job_id = location.rsplit("/", 1)[1]
    response = client.post(f"{location}/resume")
    assert response.status_code == 303 and started == [job_id]  # the submit's start only: still counted as alive
    assert "still running" in client.get(location).get_data(as_text=True)  # the flash
    ddb.update_item(TableName="links-test", Key=job_key(job_id), UpdateExpression="SET heartbeat = :z",
                    ExpressionAttributeValues={":z": {"N": "0"}})
    assert client.post(f"{location}/resume").status_code == 303
    assert started == [job_id, job_id]
    with app.test_request_context():
        import_runner.run(job_id)
    page = client.get(location).get_data(as_text=True)
    assert "3 created" in page and "Download the results" in page
