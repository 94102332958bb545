"""The daily salts of the redirect's visitor hash: made at most half a day ahead, deleted soon after their day.

The redirect hashes each visitor (address and user agent) with the salt of the UTC day, in memory,
and prints only the short hash (redirect_fn/handler.py). A salt is what makes a hash linkable: once
it is deleted, nobody can recompute a hash from an address, nor link one day's visitors to
another's. So this function, run on a schedule (every 15 minutes in cloudformation.yaml), keeps
exactly the salts that are needed:
- today's, and tomorrow's only in the last CREATE_AHEAD_SECONDS of today, so that the redirect finds
  it at midnight and no salt exists long before its day;
- it deletes every salt whose day ended more than GRACE_SECONDS ago (and anything else under the
  salts' key that is not such a day), so a salt lives at most half a day ahead + its day + the
  grace + one schedule interval: about 37 hours, well within 48.
The table's TTL (purge_at) is only a backstop for a schedule that stopped.

Each salt is put only where none exists (a conditional put), so rotators that race never replace a
salt the redirect may already hold. The function never reads a salt's value (its Query projects
the sort key only), and never logs or returns one: its one summary line holds days and counts.
"""
import calendar
import json
import os
import re
import secrets
import sys
import time

from botocore.exceptions import BotoCoreError, ClientError

SALT_PK = "salt#"
SALT_BYTES = 32
DAY_SECONDS = 86400
# Tomorrow's salt is made only in the last 12 hours of today.
CREATE_AHEAD_SECONDS = 12 * 3600
# A salt is deleted once its day ended more than this ago: room for the redirects' clocks and for a
# request that started just before midnight.
GRACE_SECONDS = 15 * 60
ERROR_CODE_MAX = 64
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_FAILURES = (ClientError, BotoCoreError)

# Made on the first call, not at import: tests import this module to call rotate() with their own client.
_client = None


class RotationError(Exception):
    """A step of the rotation failed; the message holds error codes only, never a salt."""


def day_of(epoch_seconds):
    """The UTC date of a time, YYYY-MM-DD: the salts' sort key."""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch_seconds))


def day_start(day):
    """Epoch seconds of 00:00 UTC of a YYYY-MM-DD day; ValueError for anything else."""
    if not isinstance(day, str) or not _DAY.fullmatch(day):
        raise ValueError("not a day")
    return calendar.timegm(time.strptime(day, "%Y-%m-%d"))


def wanted_days(now):
    """The days whose salt should exist at `now`: today, and tomorrow in the last hours of today."""
    today = day_of(now)
    start = day_start(today)
    days = [today]
    if now >= start + DAY_SECONDS - CREATE_AHEAD_SECONDS:
        days.append(day_of(start + DAY_SECONDS))
    return days


def is_kept(day, now):
    """Whether a stored salt of this day may still exist at `now`."""
    try:
        start = day_start(day)
    except ValueError:
        return False  # not a salt this function made: nothing under "salt#" should outlive a check
    return start - CREATE_AHEAD_SECONDS <= now < start + DAY_SECONDS + GRACE_SECONDS


def rotate(client, table_name, now, out=None):
    """Delete the salts past their day, then make sure today's (and, late in the day, tomorrow's) exist.

    Returns {"day", "created", "deleted", "kept"}: days only, also printed as one JSON line to `out`
    (default stdout). Deleting comes first: a failure to create must never keep an old salt alive.
    Raises RotationError (codes only) after both steps were tried when either failed.
    """
    failures = []
    deleted, kept = [], []
    try:
        for day in _stored_days(client, table_name):
            if is_kept(day, now):
                kept.append(day)
            else:
                client.delete_item(TableName=table_name, Key=_key(day))
                deleted.append(day)
    except _FAILURES as error:  # reported by its code, and raised once the create step was tried too
        failures.append(_code(error))
    created = []
    for day in wanted_days(now):
        try:
            if _create(client, table_name, day):
                created.append(day)
        except _FAILURES as error:
            failures.append(_code(error))
    summary = {"day": day_of(now), "created": created, "deleted": deleted, "kept": kept}
    line = {"type": "salts", **summary}
    if failures:
        line["errors"] = failures
    (out or sys.stdout).write(json.dumps(line, separators=(",", ":")) + "\n")
    if failures:
        # from None: the original exception's message is never chained into the log.
        raise RotationError(f"salt rotation failed: {', '.join(failures)}") from None
    return summary


def _key(day):
    return {"pk": {"S": SALT_PK}, "sk": {"S": day}}


def _stored_days(client, table_name):
    """The sort keys under the salts' partition key; never their values."""
    days, start = [], None
    while True:
        kwargs = {"ExclusiveStartKey": start} if start else {}
        page = client.query(
            TableName=table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": SALT_PK}},
            ProjectionExpression="sk",
            ConsistentRead=True,
            **kwargs,
        )
        days += [item["sk"]["S"] for item in page.get("Items", [])]
        start = page.get("LastEvaluatedKey")
        if not start:
            return days


def _create(client, table_name, day):
    """Put a new random salt for the day unless one exists; True when this call made it."""
    item = {
        **_key(day),
        "salt": {"B": secrets.token_bytes(SALT_BYTES)},
        # The backstop: when the day ended plus the grace, as rotate() would delete it.
        "purge_at": {"N": str(day_start(day) + DAY_SECONDS + GRACE_SECONDS)},
    }
    try:
        client.put_item(TableName=table_name, Item=item, ConditionExpression="attribute_not_exists(pk)")
    except ClientError as error:
        if _code(error) == "ConditionalCheckFailedException":
            return False  # another run made it first: never replace a salt a redirect may hold
        raise
    return True


def _code(error):
    """An error's code (DynamoDB's, else the exception's class): what may be logged of it."""
    response = getattr(error, "response", None)
    code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
    return str(code or type(error).__name__)[:ERROR_CODE_MAX]


def lambda_handler(event, context):
    """Run one rotation (the schedule's event carries nothing this needs)."""
    global _client
    if _client is None:
        import boto3

        _client = boto3.client("dynamodb")
    # The salts' own table (cloudformation.yaml SaltsTable), never the links table: no point-in-time
    # history keeps a deleted salt there, and the admin app's role cannot read it.
    return rotate(_client, os.environ["SALT_TABLE_NAME"], time.time())
