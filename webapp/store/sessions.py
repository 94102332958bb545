"""Server-side sign-in sessions, kept under their user's partition so one Query finds them all."""
import hashlib
import secrets
from datetime import timedelta

from webapp import clock
from webapp.store.table import _ConditionFailed, _key, _marshal, _plain_key
from webapp.store.users import USER_PK_PREFIX, user_from_item, user_key

SESSION_SK_PREFIX = "session#"
# last_seen_at is written at most this often, so a busy page does not write on every request.
TOUCH_SECONDS = 60
# A user with more sessions than this has the oldest ones left to expire; revocation reads this many.
MAX_SESSIONS_PER_USER = 500


def session_key(username, session_id):
    """The table key of a session: the id is stored hashed, so a table read reveals no live cookie."""
    digest = hashlib.sha256(session_id.encode("utf-8")).hexdigest()
    return _key(f"{USER_PK_PREFIX}{username}", f"{SESSION_SK_PREFIX}{digest}")


class Sessions:
    """Start, check, touch and end sessions; end all of a user's sessions without a Scan."""

    def __init__(self, table):
        self.table = table

    def create(self, username, lifetime_seconds):
        """Start a session and return its id (for the signed cookie); it ends after lifetime_seconds at most."""
        session_id = secrets.token_urlsafe(32)
        now = clock.utcnow()
        expires = now + timedelta(seconds=lifetime_seconds)
        item = {
            **_plain_key(session_key(username, session_id)),
            "username": username,
            "created_at": clock.format_timestamp(now),
            "last_seen_at": clock.format_timestamp(now),
            "expires_at": clock.format_timestamp(expires),
            # TTL removes the item some time after it can no longer be used.
            "purge_at": int(expires.timestamp()),
        }
        self.table.call("put_item", TableName=self.table.name, Item=_marshal(item))
        return session_id

    def load(self, username, session_id, idle_seconds):
        """The signed-in user for a live session, or None (ended, expired, idle too long, user disabled or gone).

        The session and the user come back in one BatchGetItem, so a role change or a disable applies
        on the very next request.
        """
        if not username or not session_id:
            return None
        key = session_key(username, session_id)
        items = {item["sk"]: item for item in self.table.batch_get([key, user_key(username)])}
        session, user_item = items.get(key["sk"]["S"]), items.get("user")
        if session is None or user_item is None:
            return None
        now = clock.utcnow()
        last_seen = clock.parse_timestamp(session["last_seen_at"])
        if now >= clock.parse_timestamp(session["expires_at"]) or now - last_seen >= timedelta(seconds=idle_seconds):
            self.end(username, session_id)
            return None
        user = user_from_item(user_item)
        if user["disabled"]:
            return None
        if now - last_seen >= timedelta(seconds=TOUCH_SECONDS):
            self._touch(key, now)
        return user

    def _touch(self, key, now):
        """Record activity; the condition keeps a session ended a moment ago from coming back."""
        try:
            self.table.call(
                "update_item",
                TableName=self.table.name,
                Key=key,
                UpdateExpression="SET last_seen_at = :now",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=_marshal({":now": clock.format_timestamp(now)}),
            )
        except _ConditionFailed:
            pass  # ended by sign-out or revocation between the read and this write: nothing to touch

    def end(self, username, session_id):
        """End one session (sign-out): its cookie stops working everywhere."""
        self.table.call("delete_item", TableName=self.table.name, Key=session_key(username, session_id))

    def end_all(self, username):
        """End every session of a user; return how many there were."""
        keys = self.table.query_keys(f"{USER_PK_PREFIX}{username}", SESSION_SK_PREFIX, MAX_SESSIONS_PER_USER)
        self.table.batch_delete(keys)
        return len(keys)
