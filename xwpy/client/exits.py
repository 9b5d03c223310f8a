"""The ``xwpy`` command's exit statuses, one per kind of outcome, so a script can tell a mistake
in its own command line from a refusal by the coordinator and from a coordinator it cannot reach
(README, "Exit status")."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    FAILED = 1  # the command could not do what was asked here (a local file, a check that failed)
    USAGE = 2  # the command line itself was wrong
    JOB_ERROR = 3  # a job waited for (status --watch) ended in ERROR
    JOB_CANCELLED = 4  # ... or was cancelled
    REFUSED = 5  # the coordinator (or chain) answered and refused: HTTP 4xx, a bad token, no rights
    UNREACHABLE = 6  # no answer: connection refused or cut, TLS failure, wrong CA
    SERVER_FAULT = 7  # the coordinator answered but failed: HTTP 5xx, a malformed reply
    TIMED_OUT = 8  # status --watch --timeout ran out before the jobs were final


# ClientError codes that are not HTTP statuses.
_BY_CODE = {"usage": Exit.USAGE, "unreachable": Exit.UNREACHABLE, "lost": Exit.UNREACHABLE,
            "tls": Exit.UNREACHABLE, "malformed": Exit.SERVER_FAULT}
# The coordinator's own copy is damaged (410 corrupt), or what it sent does not hash to what it
# promised: nothing the caller did wrong, whatever the HTTP status says.
_DAMAGED = frozenset({"corrupt", "digest_mismatch"})


def for_client_error(status: int, code: str) -> Exit:
    """The exit status for a client error: by its HTTP status when it had one, else by its code."""
    if code in _DAMAGED:
        return Exit.SERVER_FAULT
    if 400 <= status < 500:
        return Exit.REFUSED
    if status >= 500:
        return Exit.SERVER_FAULT
    return _BY_CODE.get(code, Exit.FAILED)
