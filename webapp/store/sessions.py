"""Server-side sign-in sessions, kept under their user's partition so one Query finds them all."""
import hashlib
import secrets
from datetime import timedelta

from webapp import links
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


class SessionsMixin:
    """Start, check, touch and end sessions; end all of a user's sessions without a Scan."""

    def create_session(self, username, lifetime_seconds):
        """Start a session and return its id (for the signed cookie); it ends after lifetime_seconds at most."""
        session_id = secrets.token_urlsafe(32)
        now = links.utcnow()
        expires = now + timedelta(seconds=lifetime_seconds)
        item = {
            **_plain_key(session_key(username, session_id)),
            "username": username,
            "created_at": links.format_timestamp(now),
            "last_seen_at": links.format_timestamp(now),
            "expires_at": links.format_timestamp(expires),
            # TTL removes the item some time after it can no longer be used.
            "purge_at": int(expires.timestamp()),
        }
        self._call("put_item", TableName=self.table_name, Item=_marshal(item))
        return session_id

    def load_session(self, username, session_id, idle_seconds):
        """The signed-in user for a live session, or None (ended, expired, idle too long, user disabled or gone).

        The session and the user come back in one BatchGetItem, so a role change or a disable applies
        on the very next request.
        """
        if not username or not session_id:
            return None
        key = session_key(username, session_id)
        items = {item["sk"]: item for item in self._batch_get([key, user_key(username)])}
        session, user_item = items.get(key["sk"]["S"]), items.get("user")
        if session is None or user_item is None:
            return None
        now = links.utcnow()
        last_seen = links.parse_timestamp(session["last_seen_at"])
        if now >= links.parse_timestamp(session["expires_at"]) or now - last_seen >= timedelta(seconds=idle_seconds):
            self.end_session(username, session_id)
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
            self._call(
                "update_item",
                TableName=self.table_name,
                Key=key,
                UpdateExpression="SET last_seen_at = :now",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues=_marshal({":now": links.format_timestamp(now)}),
            )
        except _ConditionFailed:
            pass  # ended by sign-out or revocation between the read and this write: nothing to touch

    def end_session(self, username, session_id):
        """End one session (sign-out): its cookie stops working everywhere."""
        self._call("delete_item", TableName=self.table_name, Key=session_key(username, session_id))

    def end_all_sessions(self, username):
        """End every session of a user; return how many there were."""
        keys = self._query_keys(f"{USER_PK_PREFIX}{username}", SESSION_SK_PREFIX, MAX_SESSIONS_PER_USER)
        self._batch_delete(keys)
        return len(keys)

    def count_sessions(self, username):
        """How many sessions the user has (live or waiting for TTL)."""
        return len(self._query_keys(f"{USER_PK_PREFIX}{username}", SESSION_SK_PREFIX, MAX_SESSIONS_PER_USER))
