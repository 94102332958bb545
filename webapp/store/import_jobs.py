"""CSV import jobs in the one table: the uploaded file, the progress, each chunk's results, and the
per-user slots that bound how many imports run at once.

Layout:
- pk "import#<job id>": sk "job" (owner, status, counts, next_chunk, the runner's lease: runner and
  heartbeat) and sk "result#<nnnnn>" (one chunk's row results, JSON), written once per chunk, so the
  job's key takes a few small writes a second.
- pk "import#<job id>#input#<nnn>", sk "input": the file's text in parts of at most INPUT_PART_CHARS,
  so a background run can read it back (an asynchronous Lambda invocation takes only 256 KB). Each part
  has its own key: a 2 MB file is some 2,000 write units in a second, twice one key's limit.
- pk "importslot#<user>", sk "slot#<i>" for i < the per-user limit: which job holds the slot, until
  when (epoch seconds). A job holds one while it runs and refreshes it with each chunk, so a dead job's
  slot frees itself once it is stale.
Every item carries purge_at (the table's TTL attribute): jobs are kept JOB_DAYS days.
"""
import json
import secrets
from datetime import timedelta

from webapp import clock
from webapp.exceptions import StoreError, StoreUnavailable
from webapp.store.table import _ConditionFailed, _key, _marshal, _TransactionCanceled, _unmarshal

JOB_PK_PREFIX, JOB_SK = "import#", "job"
INPUT_SK_PREFIX, RESULT_SK_PREFIX = "input#", "result#"
SLOT_PK_PREFIX, SLOT_SK_PREFIX = "importslot#", "slot#"
INPUT_PART_CHARS = 100_000  # at most 400 KB in UTF-8: within DynamoDB's item limit
JOB_DAYS = 30
RUNNING, DONE = "running", "done"


class JobLost(StoreError):
    """Another runner holds the job (this one was too slow and was resumed elsewhere); stop."""


def job_key(job_id):
    """The table key of a job's item."""
    return _key(f"{JOB_PK_PREFIX}{job_id}", JOB_SK)


class ImportJobs:
    """Create import jobs, lease them to one runner at a time, save their progress per chunk, read results."""

    def __init__(self, table):
        self.table = table

    def create(self, job_id, *, owner, via, text, total, chunks, chunk_rows, slot, id_length):
        """Store the file's text and the job (after its input, so a job item means a complete input).

        slot: the owner's slot the submitting request claimed for it (claim_slot)."""
        now = clock.utcnow()
        purge = int((now + timedelta(days=JOB_DAYS)).timestamp())
        pk = f"{JOB_PK_PREFIX}{job_id}"
        parts = [text[start:start + INPUT_PART_CHARS] for start in range(0, len(text), INPUT_PART_CHARS)] or [""]
        for number, part in enumerate(parts):
            item = {**_plain(_input_key(job_id, number)), "text": part, "purge_at": purge}
            self.table.put_new(item, StoreError(f"import job {job_id} exists"))
        job = {
            "pk": pk, "sk": JOB_SK, "owner": owner, "via": via, "status": RUNNING, "total": total,
            "chunks": chunks, "chunk_rows": chunk_rows, "next_chunk": 0, "created": 0, "failed": 0,
            "input_parts": len(parts), "slot": slot,
            # The key of the ids derived for rows without a slug: the job's own, so a resume after a restart
            # (local mode makes a new SECRET_KEY each start) derives the same ids.
            "id_key": secrets.token_hex(16), "id_length": id_length,
            # Submitted counts as alive: a poll must not start a second runner before the first one began.
            "heartbeat": int(now.timestamp()), "created_at": clock.format_timestamp(now), "purge_at": purge,
        }
        self.table.put_new(job, StoreError(f"import job {job_id} exists"))
        return _public(job)

    def get(self, job_id):
        """The job, or None; read consistently (a poll must see the last chunk saved)."""
        resp = self.table.call("get_item", TableName=self.table.name, Key=job_key(job_id), ConsistentRead=True)
        return _public(_unmarshal(resp["Item"])) if "Item" in resp else None

    def input_text(self, job):
        """The file's text, from its parts."""
        keys = [_input_key(job["id"], number) for number in range(job["input_parts"])]
        parts = {}
        for start in range(0, len(keys), 100):  # BatchGetItem takes at most 100 keys
            for item in self.table.batch_get(keys[start:start + 100], consistent=True):
                parts[item["pk"]] = item["text"]
        return "".join(parts[key["pk"]["S"]] for key in keys)

    def results(self, job_id, first_chunk=0, chunks=None):
        """The row results of `chunks` chunks (all when None) from first_chunk, in row order."""
        last = f"{RESULT_SK_PREFIX}{first_chunk + chunks - 1:05d}" if chunks else f"{RESULT_SK_PREFIX}~"
        items = self._query(job_id, f"{RESULT_SK_PREFIX}{first_chunk:05d}", last)
        return [result for item in items for result in json.loads(item["rows"])]

    def _query(self, job_id, first_sk, last_sk):
        """Items of the job's partition with first_sk <= sk <= last_sk, every page."""
        items, start = [], None
        while True:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            resp = self.table.call(
                "query", TableName=self.table.name,
                KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
                ExpressionAttributeValues=_marshal({":pk": f"{JOB_PK_PREFIX}{job_id}", ":first": first_sk, ":last": last_sk}),
                ConsistentRead=True, **kwargs,
            )
            items += [_unmarshal(item) for item in resp.get("Items", [])]
            start = resp.get("LastEvaluatedKey")
            if not start:
                return items

    def lease(self, job_id, runner, stale_seconds):
        """Make runner the job's one runner if it has none alive (none yet, or one whose heartbeat is older
        than stale_seconds); return the job, or None when it is done or another runner is alive."""
        now = _epoch()
        try:
            resp = self.table.call(
                "update_item", TableName=self.table.name, Key=job_key(job_id),
                UpdateExpression="SET runner = :r, heartbeat = :now",
                ConditionExpression="attribute_exists(pk) AND #s <> :done AND (attribute_not_exists(runner) OR heartbeat < :stale)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=_marshal({":r": runner, ":now": now, ":done": DONE, ":stale": now - stale_seconds}),
                ReturnValues="ALL_NEW",
            )
        except _ConditionFailed:
            return None
        return _public(_unmarshal(resp["Attributes"]))

    def let_go(self, job_id, runner):
        """Give up the lease (no slot was free), so the job can be resumed at once later."""
        try:
            self.table.call(
                "update_item", TableName=self.table.name, Key=job_key(job_id),
                UpdateExpression="SET heartbeat = :zero", ConditionExpression="runner = :r",
                ExpressionAttributeValues=_marshal({":zero": 0, ":r": runner}),
            )
        except _ConditionFailed:
            pass  # someone else leased it since: theirs now

    def claim_slot(self, owner, job_id, limit, hold_seconds, preferred=None):
        """One of the owner's `limit` slots for this job (its old one first), or None when all are held."""
        now = _epoch()
        order = list(range(limit))
        if preferred is not None and preferred in order:
            order.remove(preferred)
            order.insert(0, preferred)
        for slot in order:
            try:
                self.table.call(
                    "put_item", TableName=self.table.name,
                    Item=_marshal({**_plain(self._slot_key(owner, slot)), "job_id": job_id, "held_until": now + hold_seconds}),
                    ConditionExpression="attribute_not_exists(pk) OR held_until < :now OR job_id = :job",
                    ExpressionAttributeValues=_marshal({":now": now, ":job": job_id}),
                )
            except _ConditionFailed:
                continue
            return slot
        return None

    def save_chunk(self, job, runner, chunk, results, slot, hold_seconds):
        """Save one chunk's results and the job's progress in one transaction, refreshing the lease and the
        slot; raise JobLost when another runner has taken the job (nothing is written then)."""
        now = _epoch()
        created = sum(1 for result in results if result["status"] == "created")
        pk = f"{JOB_PK_PREFIX}{job['id']}"
        parts = [
            {"Put": {"TableName": self.table.name, "ConditionExpression": "attribute_not_exists(pk)", "Item": _marshal(
                {"pk": pk, "sk": f"{RESULT_SK_PREFIX}{chunk:05d}", "rows": json.dumps(results, separators=(",", ":")),
                 "purge_at": job["purge_at"]})}},
            {"Update": {
                "TableName": self.table.name, "Key": job_key(job["id"]),
                "UpdateExpression": "SET next_chunk = :next, heartbeat = :now ADD created :c, failed :f",
                "ConditionExpression": "runner = :r AND next_chunk = :chunk",
                "ExpressionAttributeValues": _marshal({":next": chunk + 1, ":now": now, ":c": created,
                                                       ":f": len(results) - created, ":r": runner, ":chunk": chunk}),
            }},
            self._slot_refresh(job, slot, now + hold_seconds),
        ]
        self._transact(parts)

    def finish(self, job, runner, slot):
        """Mark the job done and free its slot; raise JobLost when another runner has taken it."""
        parts = [
            {"Update": {
                "TableName": self.table.name, "Key": job_key(job["id"]),
                "UpdateExpression": "SET #s = :done, finished_at = :at", "ConditionExpression": "runner = :r",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": _marshal({":done": DONE, ":at": clock.format_timestamp(clock.utcnow()), ":r": runner}),
            }},
            {"Delete": {"TableName": self.table.name, "Key": self._slot_key(job["owner"], slot),
                        "ConditionExpression": "job_id = :job", "ExpressionAttributeValues": _marshal({":job": job["id"]})}},
        ]
        self._transact(parts)

    def link_mark(self, short_id):
        """(import_job, import_row) of the link with this id, or None when it has none or does not exist."""
        resp = self.table.call(
            "get_item", TableName=self.table.name, Key=_key(short_id, "link"), ConsistentRead=True,
            ProjectionExpression="import_job, import_row",
        )
        item = _unmarshal(resp.get("Item", {}))
        return (item["import_job"], item["import_row"]) if "import_job" in item else None

    def _slot_refresh(self, job, slot, held_until):
        return {"Update": {
            "TableName": self.table.name, "Key": self._slot_key(job["owner"], slot),
            "UpdateExpression": "SET held_until = :until", "ConditionExpression": "job_id = :job",
            "ExpressionAttributeValues": _marshal({":until": held_until, ":job": job["id"]}),
        }}

    def _transact(self, parts):
        try:
            self.table.call("transact_write_items", TransactItems=parts)
        except _TransactionCanceled as err:
            if "ConditionalCheckFailed" in err.reasons:
                raise JobLost(f"import job taken over: {err.reasons}") from None
            raise StoreUnavailable(f"import job transaction cancelled: {err.reasons}") from None

    @staticmethod
    def _slot_key(owner, slot):
        return _key(f"{SLOT_PK_PREFIX}{owner}", f"{SLOT_SK_PREFIX}{slot}")


def _input_key(job_id, number):
    """The table key of one part of a job's file."""
    return _key(f"{JOB_PK_PREFIX}{job_id}#{INPUT_SK_PREFIX}{number:03d}", INPUT_SK_PREFIX.rstrip("#"))


def _plain(key):
    return {name: value["S"] for name, value in key.items()}


def _epoch():
    return int(clock.utcnow().timestamp())


def _public(item):
    """A job as the views show it."""
    job = {name: item[name] for name in item if name not in ("pk", "sk")}
    job["id"] = item["pk"].removeprefix(JOB_PK_PREFIX)
    return job
