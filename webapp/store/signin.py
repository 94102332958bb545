"""Counters in fixed windows, in the table (Lambda containers share no memory): failed sign-ins per
account and per client, and link creations per user and per API token."""
import hashlib
import hmac

from webapp import clock
from webapp.store.table import _ConditionFailed, _key, _marshal

ATTEMPTS_PK_PREFIX = "signin#"
LINK_CREATIONS_PK_PREFIX = "linklimit#"
WINDOW_SK_PREFIX = "window#"


def _window(window_seconds, now=None):
    """The start (epoch seconds) of the fixed window that holds now."""
    epoch = int((now or clock.utcnow()).timestamp())
    return epoch - epoch % window_seconds


def client_digest(client, secret):
    """A keyed hash of the client address: counters never store an IP (nor an unkeyed hash of one)."""
    return hmac.new(secret.encode("utf-8"), client.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


class RateLimits:
    """Count events per subject in fixed windows; an event is reserved before the action it limits.

    Reserving first (a conditional ADD) means a burst of parallel requests cannot all slip in before
    the counter catches up: the (limit+1)th reservation in a window fails atomically. Each kind of
    limit has its own key prefix, so sign-in and link-creation counters never meet.
    """

    def __init__(self, table, pk_prefix):
        self.table = table
        self.pk_prefix = pk_prefix

    def reserve(self, subject, limit, window_seconds, start=None):
        """Count one event for the subject (e.g. "account#<name>") in the window that holds now (or
        the one starting at start); False when its limit is reached."""
        start = _window(window_seconds) if start is None else start
        return self._change_attempts(
            subject,
            start,
            "ADD attempts :one SET purge_at = :purge",
            "attribute_not_exists(attempts) OR attempts < :limit",
            {":one": 1, ":limit": limit, ":purge": start + 2 * window_seconds},
        )

    def release(self, subject, window_seconds, start=None):
        """Give back a reserved event that should not count (a sign-in that succeeded, a create that wrote nothing).

        start: the window the event was reserved in. Given back to the window that holds now instead,
        a reservation made just before a window turned over would free a slot in the next one.
        """
        start = _window(window_seconds) if start is None else start
        self._change_attempts(
            subject, start, "ADD attempts :minus", "attempts > :zero", {":minus": -1, ":zero": 0}
        )

    def window_start(self, window_seconds):
        """The start (epoch seconds) of the window that holds now: reserve and release in the same one."""
        return _window(window_seconds)

    def _change_attempts(self, subject, start, update, condition, values):
        """One conditional update of a window's counter; False when the condition did not hold."""
        try:
            self.table.call(
                "update_item",
                TableName=self.table.name,
                Key=self._key(subject, start),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=_marshal(values),
            )
        except _ConditionFailed:
            return False
        return True

    def clear(self, subject, window_seconds):
        """Forget the subject's events in this window (after a correct password for that account)."""
        self.table.call("delete_item", TableName=self.table.name, Key=self._key(subject, _window(window_seconds)))

    def retry_after(self, window_seconds):
        """Seconds until the current window ends and a locked-out subject may try again."""
        epoch = int(clock.utcnow().timestamp())
        return _window(window_seconds) + window_seconds - epoch

    def _key(self, subject, start):
        return _key(f"{self.pk_prefix}{subject}", f"{WINDOW_SK_PREFIX}{start}")


class SignIns(RateLimits):
    """Failed sign-ins per account ("account#<name>") and per client ("client#<digest>")."""

    def __init__(self, table):
        super().__init__(table, ATTEMPTS_PK_PREFIX)


class LinkCreations(RateLimits):
    """Links created per user ("user#<name>") and per API token ("token#<id>")."""

    def __init__(self, table):
        super().__init__(table, LINK_CREATIONS_PK_PREFIX)
