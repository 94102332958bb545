"""Asking a signed-in user to prove it is them again before a sensitive change (an admin, a write token)."""
from webapp.store import get_store
from webapp.store.mfa import is_totp_code


def confirm(username, secret):
    """True when secret is the user's password, or a current code of their second factor.

    A code is used up (it cannot confirm twice); recovery codes are not accepted here, they are for
    signing in without the phone. This does not count attempts: a caller that can be driven by a
    stolen session reserves an attempt first, as the password change does.
    """
    if not isinstance(secret, str) or not secret or len(secret) > 1024:
        return False
    store = get_store()
    if is_totp_code(secret) and store.two_factor.verify_totp(username, secret):
        return True
    # Not a right code: it may still be the password (say "12-34-56", which reads like a code).
    return store.users.verify_password(username, secret)
