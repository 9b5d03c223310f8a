"""Unprivileged uids for jobs, one per slot, never shared by two workers on one machine.

A root worker runs each job as a uid of its own so that jobs cannot read each other's files, the
worker's token or its cache, and so that every process a job leaves behind can be found (and
killed) by its uid. Several workers may share a machine: each claims its uids with a lock file that
the kernel releases when the worker dies, however it dies.
"""

from __future__ import annotations

import fcntl
import tempfile
from pathlib import Path

FIRST_UID = 61000
LAST_UID = 65000


def lock_dir() -> Path:
    for candidate in (Path("/run/xwpy"), Path(tempfile.gettempdir()) / "xwpy-uids"):
        try:
            candidate.mkdir(mode=0o700, parents=True, exist_ok=True)
            return candidate
        except OSError:
            continue
    raise OSError("no directory for uid locks")


class UidPool:
    def __init__(self, slots: int, first: int = FIRST_UID, last: int = LAST_UID, directory: Path | None = None):
        self._files = []
        self.uids: list[int] = []
        d = directory or lock_dir()
        for uid in range(first, last):
            if len(self.uids) == slots:
                break
            f = open(d / f"uid-{uid}.lock", "a")
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.close()
                continue
            self._files.append(f)
            self.uids.append(uid)
        if len(self.uids) < slots:
            self.release()
            raise OSError(f"fewer than {slots} free job uids in {first}..{last}")

    def release(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()


__all__ = ["UidPool"]
