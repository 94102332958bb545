"""Asking a signed-in user to prove it is them again before a sensitive change (an admin, a write token)."""
from webapp.store import get_store


def confirm(username, secret):
    """True when secret is the user's password (or, once they have one, a current second-factor code)."""
    if not isinstance(secret, str) or not secret or len(secret) > 1024:
        return False
    return get_store().users.verify_password(username, secret)
