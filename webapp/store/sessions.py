"""Server-side sign-in sessions, kept under their user's partition so one Query finds them all.

A session is live while its generation equals its user's (users.SESSION_GEN): raising the user's
generation ends every session in one write, whatever their number. The user item and the session
come back in one BatchGetItem on every request, so that check costs nothing more.
"""
import hashlib
import re
import secrets
from datetime import timedelta

from webapp import clock
from webapp.exceptions import UserNotFound
from webapp.store.table import _ConditionFailed, _key, _marshal, _plain_key, _unmarshal
from webapp.store.users import (
    _END_SESSIONS,
    USER_PK_PREFIX,
    _possible_username,
    session_generation,
    user_from_item,
    user_key,
)

SESSION_SK_PREFIX = "session#"
# last_seen_at is written at most this often, so a busy page does not write on every request; with a
# short idle setting, more often (TOUCH_FRACTION of it), so a session in use never looks idle.
TOUCH_SECONDS = 60
TOUCH_FRACTION = 10
# An idle setting below this ends sessions between a reader's clicks; start-up refuses it.
MIN_IDLE_SECONDS = 300
# Live sessions per user: signing in at the cap ends the least recently used ones.
MAX_SESSIONS_PER_USER = 20
# A sign-in reads at most this many of the user's session items to apply the cap and tidy up; sign-ins
# delete ended items, so a partition holds about MAX_SESSIONS_PER_USER of them.
MAX_SESSION_ITEMS_READ = 500
# The browser's User-Agent, kept so people can tell their sessions apart: printable characters only, bounded.
USER_AGENT_MAX = 200
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")


def session_digest(session_id):
    """The stored form of a session id: a hash, so a table read reveals no live cookie."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def session_key(username, session_id):
    """The table key of a session."""
    return _digest_key(username, session_digest(session_id))


def _digest_key(username, digest):
    return _key(f"{USER_PK_PREFIX}{username}", f"{SESSION_SK_PREFIX}{digest}")


def user_agent_label(user_agent):
    """The User-Agent as stored and shown: printable characters only, at most USER_AGENT_MAX of them."""
    text = "".join(ch for ch in (user_agent or "") if ch.isprintable())
    return text[:USER_AGENT_MAX]


def touch_seconds(idle_seconds):
    """How stale last_seen_at may get before a request writes it: never a large part of the idle limit."""
    return min(TOUCH_SECONDS, idle_seconds / TOUCH_FRACTION)


class Sessions:
    """Start, check, touch, list and end sessions; end all of a user's sessions in one write."""

    def __init__(self, table):
        self.table = table

    def create(self, username, lifetime_seconds, user_agent=None):
        """Start a session and return its id (for the signed cookie); it ends after lifetime_seconds at most.

        At MAX_SESSIONS_PER_USER live sessions, the least recently used end first.
        """
        resp = self.table.call("get_item", TableName=self.table.name, Key=user_key(username), ConsistentRead=True)
        # Read before the session is written: a revocation in between leaves this session dead, never the reverse.
        generation = session_generation(_unmarshal(resp.get("Item", {})))
        now = clock.utcnow()
        session_id = secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=lifetime_seconds)
        item = {
            **_plain_key(session_key(username, session_id)),
            "username": username,
            "gen": generation,
            "created_at": clock.format_timestamp(now),
            "last_seen_at": clock.format_timestamp(now),
            "expires_at": clock.format_timestamp(expires),
            "user_agent": user_agent_label(user_agent),
            # TTL removes the item some time after it can no longer be used.
            "purge_at": int(expires.timestamp()),
        }
        self.table.call("put_item", TableName=self.table.name, Item=_marshal(item))
        # After the write, from a strongly consistent read: of sign-ins at the same moment, the last to
        # read sees every session written before it, so together they never leave more than the cap.
        self._make_room(username, generation, now, item["sk"])
        return session_id

    def _make_room(self, username, generation, now, keep_sk):
        """Delete the user's ended session items, and the least recently used live ones beyond the cap
        (never the one of keep_sk, the session just made)."""
        items = self._items(username, consistent=True)
        live = [item for item in items if _live(item, generation, now)]
        # The key last, so that concurrent sign-ins order ties alike and agree on which sessions stay.
        live.sort(key=lambda item: (item["sk"] == keep_sk, item["last_seen_at"], item["created_at"], item["sk"]),
                  reverse=True)
        keep = {item["sk"] for item in live[:MAX_SESSIONS_PER_USER]}
        doomed = [_key(item["pk"], item["sk"]) for item in items if item["sk"] not in keep]
        if doomed:
            self.table.batch_delete(doomed)

    def _items(self, username, consistent=False):
        """The user's session items (at most MAX_SESSION_ITEMS_READ), with what the cap and the list need."""
        items, start = [], None
        while len(items) < MAX_SESSION_ITEMS_READ:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            resp = self.table.call(
                "query",
                TableName=self.table.name,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                ExpressionAttributeValues=_marshal({":pk": f"{USER_PK_PREFIX}{username}", ":prefix": SESSION_SK_PREFIX}),
                Limit=MAX_SESSION_ITEMS_READ - len(items),
                ConsistentRead=consistent,
                **kwargs,
            )
            items += [_unmarshal(item) for item in resp.get("Items", [])]
            start = resp.get("LastEvaluatedKey")
            if not start:
                break
        return items

    def load(self, username, session_id, idle_seconds):
        """The signed-in user for a live session, or None (ended, expired, idle too long, user disabled or gone).

        The session and the user come back in one BatchGetItem, so a role change, a disable or an
        end of all sessions applies on the very next request.
        """
        if not username or not session_id:
            return None
        key = session_key(username, session_id)
        # Strongly consistent: a replica that has not yet seen a revocation must not let the session through.
        items = {item["sk"]: item for item in self.table.batch_get([key, user_key(username)], consistent=True)}
        session, user_item = items.get(key["sk"]["S"]), items.get("user")
        if session is None or user_item is None:
            return None
        if session.get("gen", 0) != session_generation(user_item):
            return None  # ended with all the user's sessions; the item expires by TTL
        now = clock.utcnow()
        last_seen = clock.parse_timestamp(session["last_seen_at"])
        if now >= clock.parse_timestamp(session["expires_at"]) or now - last_seen >= timedelta(seconds=idle_seconds):
            self.end(username, session_id)
            return None
        user = user_from_item(user_item)
        if user["disabled"]:
            return None
        if now - last_seen >= timedelta(seconds=touch_seconds(idle_seconds)):
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

    def list(self, username, idle_seconds, current_session_id=None):
        """The user's live sessions, most recently used first: id (a digest, for end_one), created_at,
        last_seen_at, user_agent, and current (the session of current_session_id)."""
        resp = self.table.call("get_item", TableName=self.table.name, Key=user_key(username), ConsistentRead=True)
        generation = session_generation(_unmarshal(resp.get("Item", {})))
        now = clock.utcnow()
        current = session_digest(current_session_id) if current_session_id else None
        sessions = []
        for item in self._items(username):
            idle = now - clock.parse_timestamp(item["last_seen_at"]) >= timedelta(seconds=idle_seconds)
            if not _live(item, generation, now) or idle:
                continue
            digest = item["sk"].removeprefix(SESSION_SK_PREFIX)
            sessions.append({
                "id": digest,
                "created_at": item["created_at"],
                "last_seen_at": item["last_seen_at"],
                "user_agent": item.get("user_agent", ""),
                "current": digest == current,
            })
        return sorted(sessions, key=lambda s: s["last_seen_at"], reverse=True)

    def end(self, username, session_id):
        """End one session (sign-out): its cookie stops working everywhere."""
        self.table.call("delete_item", TableName=self.table.name, Key=session_key(username, session_id))

    def end_one(self, username, digest):
        """End one of the user's sessions by the id list() gave; False when the id is not one."""
        if not _possible_username(username) or not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
            return False
        # The key is in the user's own partition: nobody can end another user's session this way.
        self.table.call("delete_item", TableName=self.table.name, Key=_digest_key(username, digest))
        return True

    def end_all(self, username):
        """End every session of a user, however many, in one write to the user's item; UserNotFound if none."""
        if not _possible_username(username):
            raise UserNotFound(username)
        try:
            self.table.call(
                "update_item",
                TableName=self.table.name,
                Key=user_key(username),
                UpdateExpression=_END_SESSIONS.strip(),
                ConditionExpression="attribute_exists(pk)",  # never a stub user item
                ExpressionAttributeValues=_marshal({":next_gen": 1}),
            )
        except _ConditionFailed:
            raise UserNotFound(username) from None


def _live(item, generation, now):
    """True when a session item is of the user's current generation and not past its lifetime."""
    return item.get("gen", 0) == generation and now < clock.parse_timestamp(item["expires_at"])
