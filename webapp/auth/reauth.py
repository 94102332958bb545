"""Asking a signed-in user to prove it is them again before a sensitive change (an admin, a write token)."""
from flask import current_app

from webapp.store import get_store

# What attempt() says when the secret does not confirm the user.
WRONG, LOCKED = "wrong", "locked"
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


def attempt(username, secret):
    """None when secret confirms the user (see confirm); else WRONG, or LOCKED past the account's limit.

    Each try counts like a failed sign-in for the account (a stolen session must not test guesses
    freely), and a right one clears that count, as signing in does.
    """
    config, store = current_app.config, get_store()
    subject, window = f"account#{username}", config["SIGNIN_WINDOW_SECONDS"]
    if not store.sign_ins.reserve(subject, config["SIGNIN_ACCOUNT_LIMIT"], window):
        return LOCKED
    if not confirm(username, secret):
        return WRONG
    store.sign_ins.clear(subject, window)
    return None
