"""A daemon that will not start, or had to stop, for a reason its user can fix."""

from __future__ import annotations


class CannotRun(Exception):
    """Raised by ``run_coordinator`` / ``run_worker`` with one line saying what is wrong and what
    to do; the CLI prints it like every other error (``xwpy: error: ...``, exit status 1)."""
