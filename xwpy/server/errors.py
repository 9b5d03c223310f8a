"""What the grid refuses, and why: domain errors raised by :mod:`xwpy.server.grid`.

They know nothing of HTTP. The router (:mod:`xwpy.server.api.router`) alone turns each into its
status, with ``{"error": code, "message", "field"}``; in-process callers (the oracle) catch them
as they are.
"""

from __future__ import annotations


class GridError(Exception):
    code = "error"  # the wire's error code (``{"error": ...}``)

    def __init__(self, message: str, field: str | None = None, *, code: str | None = None):
        super().__init__(message)
        self.message, self.field = message, field
        if code is not None:
            self.code = code


class BadRequest(GridError):
    """The caller got something wrong; ``field`` names what."""

    code = "bad_request"


class Unauthorized(GridError):
    """A token that was issued and may no longer be used: ``code`` is ``expired``, ``disabled`` or
    ``revoked``."""

    code = "unauthorized"


class NotFound(GridError):
    """No such thing — or nothing the caller may see (another user's job does not exist to them)."""

    code = "not_found"

    @classmethod
    def of(cls, what: str) -> "NotFound":
        return cls(f"{what} not found")


class Forbidden(GridError):
    code = "forbidden"


class Conflict(GridError):
    """It exists already, or is not in a state that allows this (``code`` says which)."""

    code = "conflict"


class Gone(GridError):
    """It was there and is no longer served: deleted, or damaged and set aside (code ``corrupt``)."""

    code = "gone"


class TooLarge(GridError):
    code = "too_large"


class DigestMismatch(GridError):
    code = "digest_mismatch"


class TooMany(GridError):
    """The caller holds as many of these as it may (open uploads): finish or cancel one first."""

    code = "too_many"


class OverQuota(GridError):
    """The caller is at a limit of theirs (jobs in progress, bytes stored): end or delete some first."""

    code = "over_quota"


class Unavailable(GridError):
    """Not now (storage full, scheduler rebuilding): try again later."""

    code = "unavailable"


__all__ = ["BadRequest", "Conflict", "DigestMismatch", "Forbidden", "Gone", "GridError", "NotFound", "OverQuota",
           "TooLarge", "TooMany", "Unauthorized", "Unavailable"]
