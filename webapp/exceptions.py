"""Domain errors shared by the link rules, the store and the views."""


class InvalidLink(ValueError):
    """Input that breaks one of the link rules; the message is written for people."""

    field = None

    @property
    def message(self):
        """The human-readable reason, safe to show in a page or an API error."""
        return self.args[0]


class InvalidUrl(InvalidLink):
    """The destination URL is not acceptable."""

    field = "url"


class InvalidSlug(InvalidLink):
    """The custom slug is not acceptable."""

    field = "slug"


class InvalidTitle(InvalidLink):
    """The title is not acceptable."""

    field = "title"


class InvalidExpiry(InvalidLink):
    """The expiry is not acceptable."""

    field = "expires_at"


class InvalidTags(InvalidLink):
    """The tags are not acceptable."""

    field = "tags"


class InvalidNote(InvalidLink):
    """The note is not acceptable."""

    field = "note"


class InvalidCursor(ValueError):
    """A page cursor that this app did not hand out."""


class StoreError(Exception):
    """Base class for errors raised by the store."""


class SlugTaken(StoreError):
    """A link with this id already exists; nothing was written."""


class LinkNotFound(StoreError):
    """No link has this id."""


class VersionConflict(StoreError):
    """The link changed since the version the caller edited; nothing was written. Carries the current link."""

    def __init__(self, current):
        super().__init__(current["id"])
        self.current = current


class UserExists(StoreError):
    """A user with this name already exists."""


class UserNotFound(StoreError):
    """No user has this name."""


class IdSpaceExhausted(StoreError):
    """Several random ids in a row were taken, which should never happen in practice."""


class StoreUnavailable(StoreError):
    """DynamoDB throttled or refused the request; retrying later may work."""


class AccountConflict(StoreError):
    """A single sign-on identity has the name of a local account; neither is touched."""


class TokenNotFound(StoreError):
    """No API token has this id (or it belongs to someone the caller may not manage)."""


class IdentityMismatch(StoreError):
    """A single sign-on account is bound to another issuer + subject than the one signing in; nothing changed."""


class CallerNotAdmin(StoreError):
    """The admin asking for a change is no longer an enabled admin; nothing was written."""


class ChangeConflict(StoreError):
    """Another request was changing the same users at the same moment; nothing was written, try again."""
