"""Failed sign-in counters, per account and per client, in the table: Lambda containers share no memory."""
import hashlib
import hmac

from webapp import clock
from webapp.store.table import _ConditionFailed, _key, _marshal

ATTEMPTS_PK_PREFIX = "signin#"
WINDOW_SK_PREFIX = "window#"


def _window(window_seconds, now=None):
    """The start (epoch seconds) of the fixed window that holds now."""
    epoch = int((now or clock.utcnow()).timestamp())
    return epoch - epoch % window_seconds


def client_digest(client, secret):
    """A keyed hash of the client address: counters never store an IP (nor an unkeyed hash of one)."""
    return hmac.new(secret.encode("utf-8"), client.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


class SignIns:
    """Count sign-in attempts in fixed windows; an attempt is reserved before the password is checked.

    Reserving first (a conditional ADD) means a burst of parallel guesses cannot all slip in before
    the counter catches up: the (limit+1)th reservation in a window fails atomically.
    """

    def __init__(self, table):
        self.table = table

    def reserve(self, subject, limit, window_seconds):
        """Count one attempt for the subject ("account#<name>" or "client#<digest>"); False when it is locked out."""
        start = _window(window_seconds)
        return self._change_attempts(
            subject,
            start,
            "ADD attempts :one SET purge_at = :purge",
            "attribute_not_exists(attempts) OR attempts < :limit",
            {":one": 1, ":limit": limit, ":purge": start + 2 * window_seconds},
        )

    def release(self, subject, window_seconds):
        """Give back a reserved attempt that succeeded, so only failures count."""
        # False when the window turned over since the reservation: nothing left to give back.
        self._change_attempts(
            subject, _window(window_seconds), "ADD attempts :minus", "attempts > :zero", {":minus": -1, ":zero": 0}
        )

    def _change_attempts(self, subject, start, update, condition, values):
        """One conditional update of a window's counter; False when the condition did not hold."""
        try:
            self.table.call(
                "update_item",
                TableName=self.table.name,
                Key=_attempts_key(subject, start),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=_marshal(values),
            )
        except _ConditionFailed:
            return False
        return True

    def clear(self, subject, window_seconds):
        """Forget the subject's failures in this window (after a correct password for that account)."""
        self.table.call("delete_item", TableName=self.table.name, Key=_attempts_key(subject, _window(window_seconds)))

    def retry_after(self, window_seconds):
        """Seconds until the current window ends and a locked-out subject may try again."""
        epoch = int(clock.utcnow().timestamp())
        return _window(window_seconds) + window_seconds - epoch


def _attempts_key(subject, start):
    return _key(f"{ATTEMPTS_PK_PREFIX}{subject}", f"{WINDOW_SK_PREFIX}{start}")
