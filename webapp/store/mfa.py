"""Two-factor sign-in, kept on the user item: a TOTP secret, the last time step used, recovery code hashes.

None of these attributes is in the by_list index's projection, so no list of users ever reads them.
Every change is one conditional UpdateItem of the user item, so two requests at once cannot both
use one code, and a half-finished change never shows.
"""
import base64
import hashlib
import re
import secrets
from dataclasses import dataclass

import pyotp
from pyotp.utils import strings_equal

from webapp import clock
from webapp.store.table import _ConditionFailed, _marshal, _unmarshal
from webapp.store.users import OIDC, _possible_username, user_key

# The item's attributes, in one place.
SECRET, PENDING_SECRET, LAST_STEP, RECOVERY_CODES = "totp_secret", "totp_pending_secret", "totp_last_step", "recovery_codes"
ISSUER = "Shortener"  # what authenticator apps show above the account name
# One time step either side of now: phones whose clock is up to 30 s off still work (RFC 6238, section 5.2).
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10
# 10 random bytes: 16 base32 letters, 80 bits. Guessing one from its unsalted sha256 is out of reach.
_RECOVERY_CODE_BYTES = 10
_TOTP_RE = re.compile(r"[0-9]{6}")
_RECOVERY_RE = re.compile(r"[a-z2-7]{16}")


@dataclass(frozen=True)
class TwoFactorState:
    """What a page may know of a user's second factor (never the active secret)."""

    exists: bool
    local: bool  # signs in with a password here (single sign-on users rely on their provider)
    enabled: bool
    pending_secret: str | None  # set up but not yet confirmed with a code
    recovery_codes_left: int


def normalise_code(code):
    """The code as typed, without spaces or dashes, lower case ("" for anything that is not a string)."""
    if not isinstance(code, str) or len(code) > 64:
        return ""
    return re.sub(r"[\s-]", "", code).lower()


def is_totp_code(code):
    """True for six digits (after normalise_code): shorter than any password or recovery code."""
    return bool(_TOTP_RE.fullmatch(normalise_code(code)))


def provisioning_uri(secret, username):
    """The otpauth:// URI that an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def matching_step(secret, code, now=None):
    """The time step whose code this is, within VALID_WINDOW of now, or None."""
    code = normalise_code(code)
    if not _TOTP_RE.fullmatch(code):
        return None
    totp, now = pyotp.TOTP(secret), now or clock.utcnow()
    for offset in range(-VALID_WINDOW, VALID_WINDOW + 1):
        if strings_equal(code, totp.at(now, counter_offset=offset)):
            return totp.timecode(now) + offset
    return None


def new_recovery_codes():
    """RECOVERY_CODE_COUNT fresh codes, formatted for reading: "abcd-efgh-ijkl-mnop"."""
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        letters = base64.b32encode(secrets.token_bytes(_RECOVERY_CODE_BYTES)).decode("ascii").lower()
        codes.append("-".join(letters[i:i + 4] for i in range(0, len(letters), 4)))
    return codes


def hash_recovery_code(code):
    """The stored form of a recovery code: sha256 is enough for 80 random bits (no salt, no stretching)."""
    return hashlib.sha256(normalise_code(code).encode("ascii")).hexdigest()


class TwoFactor:
    """Set up, check and turn off a user's second factor."""

    def __init__(self, table):
        self.table = table

    def state(self, username):
        """The user's TwoFactorState (exists=False when there is no such user)."""
        item = self._read(username)
        if item is None:
            return TwoFactorState(False, False, False, None, 0)
        return TwoFactorState(
            exists=True,
            local=item.get("source") != OIDC,
            enabled=SECRET in item,
            pending_secret=item.get(PENDING_SECRET),
            recovery_codes_left=len(item.get(RECOVERY_CODES, ())),
        )

    def start(self, username):
        """Give a user without a second factor a new secret to confirm; return it (None if they have one)."""
        secret = pyotp.random_base32()  # 32 letters: 160 bits, as RFC 4226 recommends
        done = self._update(
            username,
            "SET #pending = :secret",
            "attribute_exists(pk) AND attribute_not_exists(#secret) AND (attribute_not_exists(#source) OR #source <> :oidc)",
            {":secret": secret, ":oidc": OIDC},
            {"#pending": PENDING_SECRET, "#secret": SECRET, "#source": "source"},
        )
        return secret if done else None

    def enable(self, username, code):
        """Turn on the pending secret if code is its current code; return the new recovery codes, or None."""
        item = self._read(username)
        pending = item.get(PENDING_SECRET) if item else None
        step = matching_step(pending, code) if pending and SECRET not in item else None
        if step is None:
            return None
        codes = new_recovery_codes()
        done = self._update(
            username,
            # The confirming code's step counts as used: it cannot sign in a second time.
            "SET #secret = :secret, #step = :step, #codes = :codes REMOVE #pending",
            "#pending = :secret AND attribute_not_exists(#secret)",
            {":secret": pending, ":step": step},
            {"#pending": PENDING_SECRET, "#secret": SECRET, "#step": LAST_STEP, "#codes": RECOVERY_CODES},
            sets={":codes": [hash_recovery_code(c) for c in codes]},
        )
        return codes if done else None

    def verify_totp(self, username, code):
        """True when code is a current code of the user's secret, from a later step than any used before.

        Remembering the last step used refuses a replay, even one sent at the same moment: only one of
        two conditional updates to the same step can succeed.
        """
        item = self._read(username)
        secret = item.get(SECRET) if item else None
        step = matching_step(secret, code) if secret else None
        if step is None:
            return False
        return self._update(
            username,
            "SET #step = :step",
            "#secret = :secret AND (attribute_not_exists(#step) OR #step < :step)",
            {":secret": secret, ":step": step},
            {"#secret": SECRET, "#step": LAST_STEP},
        )

    def use_recovery_code(self, username, code):
        """True when code is one of the user's unused recovery codes, which is then used up."""
        if not _RECOVERY_RE.fullmatch(normalise_code(code)):
            return False
        digest = hash_recovery_code(code)
        # Removing it on the condition that it is there: of two uses at once, only one finds it.
        return self._update(
            username,
            "DELETE #codes :digests",
            "contains(#codes, :digest)",
            {":digest": digest},
            {"#codes": RECOVERY_CODES},
            sets={":digests": [digest]},
        )

    def replace_recovery_codes(self, username):
        """New recovery codes for a user with a second factor (the old ones stop working); None without one."""
        codes = new_recovery_codes()
        done = self._update(
            username,
            "SET #codes = :codes",
            "attribute_exists(#secret)",
            {},
            {"#codes": RECOVERY_CODES, "#secret": SECRET},
            sets={":codes": [hash_recovery_code(c) for c in codes]},
        )
        return codes if done else None

    def disable(self, username):
        """Turn the second factor off and forget its secret and codes; False when it was not on."""
        return self._update(
            username,
            "REMOVE #secret, #step, #codes, #pending",
            "attribute_exists(#secret)",
            {},
            {"#secret": SECRET, "#step": LAST_STEP, "#codes": RECOVERY_CODES, "#pending": PENDING_SECRET},
        )

    def _read(self, username):
        """The user item's two-factor attributes (and pk, source), or None when there is no such user."""
        if not _possible_username(username):
            return None
        resp = self.table.call(
            "get_item",
            TableName=self.table.name,
            Key=user_key(username),
            ConsistentRead=True,
            ProjectionExpression="pk, #source, #secret, #pending, #step, #codes",
            ExpressionAttributeNames={
                "#source": "source", "#secret": SECRET, "#pending": PENDING_SECRET, "#step": LAST_STEP, "#codes": RECOVERY_CODES,
            },
        )
        return _unmarshal(resp["Item"]) if "Item" in resp else None

    def _update(self, username, expression, condition, values, names, sets=None):
        """One conditional update of the user item; False when the condition did not hold."""
        if not _possible_username(username):
            return False
        attribute_values = _marshal(values)
        # String sets: the table's _marshal knows only the scalar types other items use.
        attribute_values.update({name: {"SS": members} for name, members in (sets or {}).items()})
        kwargs = {"ExpressionAttributeValues": attribute_values} if attribute_values else {}
        try:
            self.table.call(
                "update_item",
                TableName=self.table.name,
                Key=user_key(username),
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                **kwargs,
            )
        except _ConditionFailed:
            return False
        return True
