"""CSV import through the API: POST a text/csv body; small files answer with every row's result, large
ones with 202 and a job to poll."""
from flask import Response, current_app, g, request, url_for

from webapp import access, audit, csv_import, import_runner, link_rules, whole_numbers
from webapp.api import bp
from webapp.api.auth import requires
from webapp.api.responses import json_error
from webapp.store import get_store
from webapp.store.import_jobs import DONE

RESULT_PAGE_CHUNKS = 10  # a results page is at most this many chunks of rows (1,000 rows)
_CSV_TYPES = {"text/csv", "application/csv"}


@bp.post("/api/links/import")
@requires(access.WRITE_LINKS)
def import_links():
    """Import links from a CSV body: 201/200 with every row's result, or 202 and a Location to poll."""
    if request.mimetype not in _CSV_TYPES:
        return json_error(415, "Send the CSV file as the body with Content-Type: text/csv.")
    try:
        job = import_runner.submit(request.get_data(), owner=g.api_user, via=audit.API)
    except csv_import.ImportRefused as err:
        return json_error(422, err.message)
    except import_runner.TooManyImports:
        return _too_many()
    location = {"Location": url_for("api.import_status", job_id=job["id"])}
    if job["status"] != DONE:
        return _job_json(job), 202, location
    return _job_json(job, with_results=True), 201 if job["created"] else 200, location


@bp.get("/api/links/import/<job_id>")
@requires(access.WRITE_LINKS)
def import_status(job_id):
    """An import's status and progress, and its results page by page (?cursor=); a dead job is resumed."""
    job = import_runner.visible_job(job_id, g.api_user, g.api_role)
    if job is None:
        return json_error(404, "No such import.")
    cursor = request.args.get("cursor", "0")
    first = whole_numbers.parse(cursor, 5)
    first = -1 if first is None else first
    if not 0 <= first < max(job["chunks"], 1) or first % RESULT_PAGE_CHUNKS:
        return json_error(422, "cursor is not one this API handed out.", field="cursor")
    resumed = import_runner.resume_if_dead(job)
    body = _job_json(job, with_results=job["status"] == DONE, first_chunk=first)
    body["resumed"] = resumed
    return body


@bp.post("/api/links/import/<job_id>/resume")
@requires(access.WRITE_LINKS)
def resume_import(job_id):
    """Resume an import whose runner died: 202; 409 while it is still running or when it is done."""
    job = import_runner.visible_job(job_id, g.api_user, g.api_role)
    if job is None:
        return json_error(404, "No such import.")
    if job["status"] == DONE:
        return json_error(409, "This import is done.")
    if not import_runner.resume_if_dead(job):
        return json_error(409, "This import is still running; it can be resumed once it has stopped for "
                               f"{current_app.config['IMPORT_STALE_SECONDS']} seconds.")
    return _job_json(job), 202, {"Location": url_for("api.import_status", job_id=job["id"])}


@bp.get("/api/links/import/<job_id>/results.csv")
@requires(access.WRITE_LINKS)
def import_results_csv(job_id):
    """An import's results as CSV: each row with its status, short link or error (formula cells escaped)."""
    job = import_runner.visible_job(job_id, g.api_user, g.api_role)
    if job is None:
        return json_error(404, "No such import.")
    return _csv_download(job)


def _csv_download(job):
    headers = {"Content-Disposition": f'attachment; filename="import-{job["id"]}.csv"', "Cache-Control": "no-store"}
    return Response(import_runner.results_csv(job), content_type="text/csv; charset=utf-8", headers=headers)


def _too_many():
    limit = current_app.config["IMPORT_JOBS_PER_USER"]
    return json_error(429, f"You already have {limit} import(s) running. Try again when one has finished.",
                      {"Retry-After": str(current_app.config["IMPORT_STALE_SECONDS"])})


def _job_json(job, with_results=False, first_chunk=0):
    """A job as the API shows it, with one page of results (RESULT_PAGE_CHUNKS chunks) when asked."""
    body = {
        "id": job["id"], "status": job["status"], "total": job["total"], "processed": import_runner.progress(job),
        "created": job["created"], "failed": job["failed"], "created_at": job["created_at"],
        "results_csv": url_for("api.import_results_csv", job_id=job["id"]),
    }
    if with_results:
        base = current_app.config["SHORT_BASE_URL"]
        results = get_store().import_jobs.results(job["id"], first_chunk, RESULT_PAGE_CHUNKS)
        for result in results:
            if result.get("short_id"):
                result["short_url"] = link_rules.short_url(base, result["short_id"])
        body["results"] = results
        following = first_chunk + RESULT_PAGE_CHUNKS
        body["next_cursor"] = str(following) if following < job["chunks"] else None
    return body
