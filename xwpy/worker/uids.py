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
        # A free uid's processes were left by a worker that died (SIGKILL leaves its jobs running
        # in their own sessions): they are nobody's now.
        kill_processes_of(self.uids)

    def release(self) -> None:
        for f in self._files:
            f.close()
        self._files.clear()


def become_subreaper() -> bool:
    """Adopt the orphans of our descendants (Linux's PR_SET_CHILD_SUBREAPER): a job's processes
    whose parent died become the worker's children, not init's, and the worker reaps them — some
    inits take seconds to, and a zombie still counts against its uid's process limit."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def kill_processes_of(uids: list[int]) -> int:
    import signal

    import psutil

    wanted = set(uids)
    killed = 0
    for p in psutil.process_iter(["uids"]):
        try:
            if p.info["uids"] and p.info["uids"].real in wanted:
                p.send_signal(signal.SIGKILL)
                killed += 1
        except psutil.Error:
            pass
    return killed


def interpreter_usable_by(uid: int) -> bool:
    """Can a job running as ``uid`` start the worker's Python and import xwpy?"""
    import subprocess
    import sys

    from xwpy.worker.runner import CODE_ROOT

    try:
        r = subprocess.run(
            [sys.executable, "-c", "import xwpy"], user=uid, group=uid, extra_groups=[], cwd="/",
            env={"PYTHONPATH": str(CODE_ROOT), "PATH": "/usr/bin:/bin"}, capture_output=True, timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0
