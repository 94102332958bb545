"""The CSV import pages: upload a file, watch its progress, see and download every row's result."""
from flask import Response, abort, current_app, flash, g, redirect, render_template, request, url_for

from webapp import access, audit, csv_import, import_runner, whole_numbers
from webapp.auth import permission_required
from webapp.link_pages import bp
from webapp.store import get_store
from webapp.store.import_jobs import DONE

RESULT_PAGE_CHUNKS = 10  # rows shown a page: this many chunks (1,000 rows); the CSV has them all
POLL_SECONDS = 2


@bp.get("/links/import")
@permission_required(access.WRITE_LINKS)
def import_form():
    """The upload form, with the file format and limits."""
    return render_template("links/import.html", job=None, error=None)


@bp.post("/links/import")
@permission_required(access.WRITE_LINKS)
def import_upload():
    """Store the uploaded CSV as an import job and show it (its results, or its progress)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template("links/import.html", job=None, error="Choose a CSV file to import."), 422
    try:
        job = import_runner.submit(upload.read(), owner=g.user, via=audit.WEB)
    except csv_import.ImportRefused as err:
        return render_template("links/import.html", job=None, error=err.message), 422
    except import_runner.TooManyImports:
        limit = current_app.config["IMPORT_JOBS_PER_USER"]
        error = f"You already have {limit} import(s) running. Try again when one has finished."
        return render_template("links/import.html", job=None, error=error), 429
    if job["status"] == DONE:
        flash(f"Imported: {job['created']:,} created, {job['failed']:,} not.", "success")
    return redirect(url_for("links.import_job", job_id=job["id"]), 303)


@bp.get("/links/import/<job_id>")
@permission_required(access.WRITE_LINKS)
def import_job(job_id):
    """An import's progress (the page reloads itself while it runs) or its results; a dead job is resumed."""
    job = _job_or_404(job_id)
    cursor = request.args.get("cursor", "0")
    first = whole_numbers.parse(cursor, 5)
    first = -1 if first is None else first
    if not 0 <= first < max(job["chunks"], 1) or first % RESULT_PAGE_CHUNKS:
        abort(400, "That page link is not valid. Start again from the first page.")
    import_runner.resume_if_dead(job)
    results, next_cursor = [], None
    if job["status"] == DONE:
        results = get_store().import_jobs.results(job["id"], first, RESULT_PAGE_CHUNKS)
        following = first + RESULT_PAGE_CHUNKS
        next_cursor = following if following < job["chunks"] else None
    page = render_template("links/import.html", job=job, error=None, results=results, next_cursor=next_cursor,
                           processed=import_runner.progress(job), poll_seconds=POLL_SECONDS,
                           stale_seconds=current_app.config["IMPORT_STALE_SECONDS"])
    # While it runs the page reloads itself (the Refresh header: no script needed).
    return page, 200, ({} if job["status"] == DONE else {"Refresh": str(POLL_SECONDS)})


@bp.post("/links/import/<job_id>/resume")
@permission_required(access.WRITE_LINKS)
def import_resume(job_id):
    """Resume an import whose runner stopped."""
    job = _job_or_404(job_id)
    if import_runner.resume_if_dead(job):
        flash("Import resumed.", "success")
    elif job["status"] != DONE:
        flash("This import is still running.", "error")
    return redirect(url_for("links.import_job", job_id=job["id"]), 303)


@bp.get("/links/import/<job_id>/results.csv")
@permission_required(access.WRITE_LINKS)
def import_results_csv(job_id):
    """Download an import's results as CSV."""
    job = _job_or_404(job_id)
    headers = {"Content-Disposition": f'attachment; filename="import-{job["id"]}.csv"', "Cache-Control": "no-store"}
    return Response(import_runner.results_csv(job), content_type="text/csv; charset=utf-8", headers=headers)


def _job_or_404(job_id):
    job = import_runner.visible_job(job_id, g.user, g.role)
    if job is None:
        abort(404)
    return job
