"""The exception tree of the worker.

Everything raised on purpose derives from :class:`SyndicationError`. The tree
splits by whether trying again can help: :class:`PermanentError` (a bad record,
a document that does not validate, a 4xx answer) is never retried;
:class:`TransientError` (a timeout, a 5xx, a lost connection) is. Errors about
one listing on one marketplace carry both, so logs and status rows can name
them.
"""

from __future__ import annotations


class SyndicationError(Exception):
    """Root of every error the worker raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        listing_id: str | None = None,
        marketplace: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.listing_id = listing_id
        self.marketplace = marketplace


class ConfigurationError(SyndicationError):
    """The settings or the marketplaces file are wrong; fix them and restart."""


class UnknownMarketplace(SyndicationError, KeyError):
    """A marketplace name that no registry entry carries."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


class PermanentError(SyndicationError):
    """Trying again cannot help: the record, the document or the request is wrong."""


class InputError(PermanentError):
    """An input record is invalid. ``record`` names it (``listing 'OBJ1'``), ``field`` the field."""

    def __init__(
        self, message: str, *, record: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.record = record
        self.field = field

    def __str__(self) -> str:
        where = " ".join(
            part for part in (self.record, f"field '{self.field}'" if self.field else None) if part
        )
        return f"{where}: {self.message}" if where else self.message


class DocumentInvalid(PermanentError):
    """A built document does not validate against its XSD; it is never sent."""


class PreconditionsUnmet(PermanentError):
    """A listing does not meet a marketplace's conditions for publication (R12)."""

    def __init__(
        self, unmet: list[str], *, listing_id: str | None = None, marketplace: str | None = None
    ) -> None:
        super().__init__("; ".join(unmet), listing_id=listing_id, marketplace=marketplace)
        self.unmet = list(unmet)


class Rejected(PermanentError):
    """The marketplace refused the document (a 4xx other than 429)."""


class TransientError(SyndicationError):
    """Trying again may help: a timeout, a 5xx, a 429, a dropped connection."""

    def __init__(
        self,
        message: str,
        *,
        listing_id: str | None = None,
        marketplace: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, listing_id=listing_id, marketplace=marketplace)
        self.retry_after = retry_after


class AuthenticationFailed(SyndicationError):
    """Wrong user or password. The message never says which."""


class LoginThrottled(AuthenticationFailed):
    """Too many recent attempts for this user name: refused at once, the password unchecked.

    ``retry_after`` is the whole number of seconds until an attempt may pass; the
    message says it too, the same for a name that exists and one that does not.
    """

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
