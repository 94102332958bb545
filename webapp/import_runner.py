"""Runs CSV import jobs: small files within the request, large ones in the background, resumable.

A job is stored first (webapp/store/import_jobs.py: the file, the owner, the progress), then run by one
runner at a time, which holds a lease (a heartbeat refreshed with every chunk of CHUNK_ROWS rows). Each
chunk's rows are created in parallel, then the chunk's results and the progress are saved in one
transaction. A runner that dies leaves its heartbeat to age: after IMPORT_STALE_SECONDS anyone may
resume the job (the Resume button, POST .../resume, or simply polling it), and the new runner starts
at the first chunk not saved. Rows of that chunk that were created already are recognised, not made
twice: every link an import makes carries import_job and import_row, a row with a slug finds its own
link under its slug, and a row without one gets ids derived from the job and the row (never random:
an HMAC under a key the job keeps, so a restart with another SECRET_KEY derives the same ones), so it
finds its own link under the same id.

Where a job runs in the background:
- on Lambda (AWS_LAMBDA_FUNCTION_NAME is set): an asynchronous invocation of this same function, which
  Zappa's handler routes to lambda_event by its "command" key (the mechanism of Zappa's @task, without
  the dependency). Each invocation stops before its time runs out and hands the rest to a new one.
- elsewhere (`make run`, tests): a daemon thread of this process.

Limits: an import is not counted against LINK_CREATE_LIMIT (the per-user limit on creating links one
by one, 600 an hour, would stop any real import); it is bounded by IMPORT_MAX_ROWS rows and
IMPORT_MAX_BYTES bytes per file and IMPORT_JOBS_PER_USER imports running at once per user. Every
destination is still checked against the blocklist and the reputation service (abuse.check_destination).
"""
import json
import os
import secrets
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from flask import current_app, request

from webapp import abuse, access, audit, clock, csv_import
from webapp.exceptions import InvalidLink, SlugTaken, StoreUnavailable
from webapp.store import get_store
from webapp.store.import_jobs import DONE, JobLost

CHUNK_ROWS = 100
WORKERS = 8  # rows created in parallel within a chunk
# A background Lambda invocation hands over when less than this is left of its time.
HANDOVER_MS = 8_000
# A request that runs a small import hands the rest to the background after this long (API Gateway
# ends the request at 30 s).
REQUEST_SECONDS = 15
# The request body's limit is the file's plus room for a multipart form's own parts.
FORM_OVERHEAD = 64 * 1024
# Lambda refuses an event over 6 MB, and API Gateway base64-encodes a binary body (4/3): 4 MB is the most.
MAX_BYTES_CEILING = 4 * 1024 * 1024
DEFAULTS = {
    "IMPORT_MAX_ROWS": 10_000,
    "IMPORT_MAX_BYTES": 2 * 1024 * 1024,
    "IMPORT_SYNC_ROWS": 500,
    "IMPORT_JOBS_PER_USER": 2,
    "IMPORT_STALE_SECONDS": 60,
}
_ENDPOINTS = {"api.import_links", "links.import_upload"}
LAMBDA_COMMAND = "webapp.import_runner.lambda_event"


class TooManyImports(Exception):
    """The user already has IMPORT_JOBS_PER_USER imports running; nothing was stored."""


def init_app(app):
    """Set the import settings' defaults, check them, and let the import routes take a file-sized body."""
    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
    for name in DEFAULTS:
        value = app.config[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise RuntimeError(f"SHORTENER_{name} must be a whole number of at least 1, not {value!r}.")
    if app.config["IMPORT_MAX_BYTES"] > MAX_BYTES_CEILING:
        raise RuntimeError(f"SHORTENER_IMPORT_MAX_BYTES can be at most {MAX_BYTES_CEILING:,} (Lambda's 6 MB event limit).")
    app.extensions["import_threads"] = []
    # Registered before CSRFProtect's hook, which reads the form (and would refuse it at MAX_CONTENT_LENGTH).
    app.before_request(_allow_file_body)


def _allow_file_body():
    """The import routes take up to IMPORT_MAX_BYTES (and a form's overhead); every other route keeps the app's limit."""
    if request.endpoint in _ENDPOINTS:
        request.max_content_length = current_app.config["IMPORT_MAX_BYTES"] + FORM_OVERHEAD


def submit(data, *, owner, via):
    """Check the file (csv_import.ImportRefused: nothing stored), store it as a job and run it: to the end
    when it is small, else in the background. Returns the job as it stands."""
    config = current_app.config
    text = csv_import.decode(data, config["IMPORT_MAX_BYTES"])
    _, rows = csv_import.parse(text, config["IMPORT_MAX_ROWS"])
    jobs = get_store().import_jobs
    job_id = secrets.token_hex(8)
    slot = jobs.claim_slot(owner, job_id, config["IMPORT_JOBS_PER_USER"], config["IMPORT_STALE_SECONDS"])
    if slot is None:
        raise TooManyImports(owner)
    chunks = -(-len(rows) // CHUNK_ROWS)
    jobs.create(job_id, owner=owner, via=via, text=text, total=len(rows), chunks=chunks, chunk_rows=CHUNK_ROWS, slot=slot,
                id_length=config["ID_LENGTH"])
    if len(rows) <= config["IMPORT_SYNC_ROWS"]:
        return run(job_id, deadline=time.monotonic() + REQUEST_SECONDS)
    start_background(job_id)
    return jobs.get(job_id)


def resume_if_dead(job):
    """Start the job again in the background if it is not done and its runner is gone; the job's
    lease makes a second runner start nothing. Returns True when a resume was started."""
    stale = current_app.config["IMPORT_STALE_SECONDS"]
    if job["status"] == DONE or job["heartbeat"] >= int(clock.utcnow().timestamp()) - stale:
        return False
    start_background(job["id"])
    return True


def start_background(job_id):
    """Run the job outside this request: an asynchronous invocation on Lambda, a thread elsewhere."""
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if function:
        _lambda().invoke(FunctionName=function, InvocationType="Event",
                         Payload=json.dumps({"command": LAMBDA_COMMAND, "job_id": job_id}).encode("utf-8"))
        return
    app = current_app._get_current_object()
    thread = threading.Thread(target=_run_in_app, args=(app, job_id), daemon=True, name=f"import-{job_id}")
    app.extensions["import_threads"].append(thread)
    thread.start()


def _lambda():
    """The Lambda client, created on first use (only a background import on AWS needs it)."""
    global _LAMBDA_CLIENT
    if _LAMBDA_CLIENT is None:
        _LAMBDA_CLIENT = boto3.client("lambda")
    return _LAMBDA_CLIENT


_LAMBDA_CLIENT = None


def _run_in_app(app, job_id, deadline=None):
    with app.app_context():
        try:
            run(job_id, deadline=deadline)
        except (JobLost, TooManyImports, StoreUnavailable) as err:
            # Nothing is lost: the job keeps its progress, and a poll or the Resume button starts it again.
            app.logger.warning("import %s stopped: %s", job_id, type(err).__name__)


def lambda_event(event, context):
    """Entry point of a background import invocation ({"command": LAMBDA_COMMAND, "job_id": ...})."""
    from webapp.wsgi import app  # the app this Lambda serves, already built on a warm container

    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - HANDOVER_MS / 1000
    _run_in_app(app, str(event["job_id"]), deadline)


def run(job_id, deadline=None, fail_after_chunk=None):
    """Lease the job and run its remaining chunks; return the job as it stands.

    deadline (time.monotonic()): past it, after a chunk, the rest is handed to the background.
    fail_after_chunk: tests only, to kill the run right after saving that chunk.
    """
    config, store = current_app.config, get_store()
    jobs = store.import_jobs
    runner = secrets.token_hex(8)
    job = jobs.lease(job_id, runner, config["IMPORT_STALE_SECONDS"])
    if job is None:
        return jobs.get(job_id)  # done, or running elsewhere
    slot = jobs.claim_slot(job["owner"], job_id, config["IMPORT_JOBS_PER_USER"], config["IMPORT_STALE_SECONDS"],
                           preferred=job.get("slot"))
    if slot is None:
        jobs.let_go(job_id, runner)
        raise TooManyImports(job["owner"])
    # The stored file passed the checks when it was submitted: no row limit applies again.
    _, rows = csv_import.parse(jobs.input_text(job), max_rows=job["total"])
    outcome = _checked(rows)
    for chunk in range(job["next_chunk"], job["chunks"]):
        part = rows[chunk * CHUNK_ROWS:(chunk + 1) * CHUNK_ROWS]
        results = _run_chunk(job, part, outcome)
        jobs.save_chunk(job, runner, chunk, results, slot, config["IMPORT_STALE_SECONDS"])
        if fail_after_chunk == chunk:
            raise RuntimeError(f"killed after chunk {chunk} (test)")
        if deadline is not None and time.monotonic() > deadline and chunk + 1 < job["chunks"]:
            jobs.let_go(job_id, runner)
            start_background(job_id)
            return jobs.get(job_id)
    jobs.finish(job, runner, slot)
    done = jobs.get(job_id)
    audit.record("links.import", target=job_id, actor=job["owner"], via=job["via"], outcome="ok",
                 rows=done["total"], created=done["created"], failed=done["failed"])
    return done


def _checked(rows):
    """{row number: Checked or (message, field)}: each row by the link rules, then duplicates within the file."""
    config = current_app.config
    now = clock.utcnow()  # one instant for every row: identical rows get identical default expiries
    outcome = {}
    for row in rows:
        try:
            outcome[row.number] = csv_import.check_row(
                row, short_base_url=config["SHORT_BASE_URL"], extra_loop_hosts=config["EXTRA_LOOP_HOSTS"],
                default_days=config["DEFAULT_EXPIRY_DAYS"], now=now)
        except InvalidLink as err:
            outcome[row.number] = (err.message, err.field)
    good = {number: value for number, value in outcome.items() if isinstance(value, csv_import.Checked)}
    for number, message in csv_import.duplicates(rows, good).items():
        outcome[number] = (message, "slug" if "slug" in message else None)
    return outcome


def _run_chunk(job, rows, outcome):
    """Every row of the chunk's result, the rows created in parallel (each in the app's context)."""
    app = current_app._get_current_object()
    rules = get_store().blocklist.list()  # once a chunk, not once a row

    def one(row):
        with app.app_context():
            value = outcome[row.number]
            if not isinstance(value, csv_import.Checked):
                return csv_import.failed(row.number, *value)
            return _create_row(job, row.number, value, rules)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(one, rows))


def _create_row(job, number, link, rules):
    """Create one row's link (never overwriting one), or say why not; a failing row never raises."""
    store = get_store()
    who = {"actor": job["owner"], "via": job["via"]}
    try:
        abuse.check_destination(link.url, rules=rules, **who)
    except abuse.DestinationRefused as err:
        return csv_import.failed(number, err.message, "url")
    mark = {"import_job": job["id"], "import_row": number}
    if link.slug:
        candidates = [link.slug]
    else:
        candidates = [csv_import.derived_id(job["id_key"], job["id"], number, attempt, job["id_length"])
                      for attempt in range(csv_import.DERIVED_ID_ATTEMPTS)]
    try:
        for short_id in filter(None, candidates):
            try:
                store.links.create(link.url, created_by=job["owner"], slug=short_id, title=link.title,
                                   expires_at=link.expires_at, tags=link.tags, extra=mark)
            except SlugTaken:
                if store.import_jobs.link_mark(short_id) == (job["id"], number):
                    # Made by this very row before the job was interrupted: created, once.
                    audit.record("link.create", target=short_id, url=link.url, import_job=job["id"], resumed=True, **who)
                    return csv_import.created(number, short_id)
                continue
            audit.record("link.create", target=short_id, url=link.url, import_job=job["id"], **who)
            return csv_import.created(number, short_id)
    except StoreUnavailable:
        return csv_import.failed(number, "The database was busy; this row was not imported. Import it again.")
    if link.slug:
        return csv_import.failed(number, f"The slug {link.slug} is already taken; the existing link was left as it is.", "slug")
    return csv_import.failed(number, "No free id was found for this row. Import it again.")


def visible_job(job_id, user, role):
    """The job if this user may see it (its owner, or an admin), else None; a malformed id is None too."""
    if not (isinstance(job_id, str) and len(job_id) == 16 and all(c in "0123456789abcdef" for c in job_id)):
        return None
    job = get_store().import_jobs.get(job_id)
    if job is None or not (job["owner"] == user or role == access.ADMIN):
        return None
    return job


def results_csv(job):
    """The job's results as CSV text: each row of the file with its outcome (csv_import.results_csv)."""
    jobs = get_store().import_jobs
    _, rows = csv_import.parse(jobs.input_text(job), max_rows=job["total"])
    return csv_import.results_csv(rows, jobs.results(job["id"]), current_app.config["SHORT_BASE_URL"])


def progress(job):
    """Rows done so far (saved chunks), for a progress bar."""
    return min(job["total"], job["next_chunk"] * job["chunk_rows"])
