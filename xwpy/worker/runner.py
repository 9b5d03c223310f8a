"""Run one replica, confined, and turn what it leaves behind into a canonical result archive.

The replica runs in an empty directory of its own holding only its staged inputs (read-only) and
its app bundle, through :mod:`xwpy.worker.sandbox` (limits, own session, own user when the worker
is root), with a scrubbed environment. A wall-clock timer kills it; its process group can be
suspended and resumed as one. Its result is every file it created or changed in its directory
(but its ``checkpoint/``: see :mod:`xwpy.checkpoint`), plus its standard output as ``stdout``; its standard error is kept as a tail for diagnosis only
(not part of the result: it often holds noise that differs between honest replicas).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from twisted.internet import protocol, task
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from xwpy import archive
from xwpy.checkpoint import DIRECTORY as CHECKPOINT_DIR
from xwpy.protocol import STDERR_TAIL, Limits

log = Logger()

STDOUT_NAME = "stdout"
# After a confined job ends, how long to wait for every process of its uid to be gone (killed and
# reaped) before its slot runs the next job anyway.
DRAIN_SECONDS = 10.0
CODE_ROOT = str(Path(__file__).resolve().parents[2])  # where the xwpy package (and its apps) lives
# Every replica sees the same clock for its files and the same date for reproducible tools: staged
# files get this mtime, and SOURCE_DATE_EPOCH says it (1980-01-01, the earliest a zip can hold).
SOURCE_DATE_EPOCH = 315532800


@dataclass
class Outcome:
    exit_code: int | None
    stderr_tail: str
    error: str = ""  # why the worker considers the run failed, beyond the exit code
    archive: Path | None = None
    digest: str | None = None
    size: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.error and self.digest is not None


@dataclass
class Confinement:
    uid: int | None = None  # run as this user (the worker must be root)
    gid: int | None = None
    # In a bubblewrap sandbox: the worker's settings (exe, layout, ro_binds, hide, slirp4netns) and
    # the job's network (bool); None: as the uid, in the host's file system.
    sandbox: dict | None = None
    cpus: tuple[int, ...] = ()  # the cores it is pinned to (none: any)


def job_environment(workdir: Path, sandboxed: bool = False) -> dict[str, str]:
    """All a job sees of the worker's environment: nothing but these — the same in every replica."""
    from xwpy.worker.bwrap import JOB_DIR, TMP_DIR

    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": JOB_DIR if sandboxed else str(workdir),
        "TMPDIR": TMP_DIR if sandboxed else str(workdir / ".tmp"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
        "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
        "PYTHONPATH": CODE_ROOT,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
    }


def expand_command(command: tuple[str, ...], args: tuple[str, ...]) -> list[str]:
    """``{python}`` is the worker's interpreter; an ``{args}`` item expands to the job's arguments
    (appended when the template has none)."""
    out: list[str] = []
    placed = False
    for part in command:
        if part == "{args}":
            out.extend(args)
            placed = True
        else:
            out.append(part.replace("{python}", sys.executable))
    if not placed:
        out.extend(args)
    return out


class _Proto(protocol.ProcessProtocol):
    def __init__(self, stdout_path: Path, max_stdout: int, on_overflow=lambda: None, on_exit=lambda: None,
                 append: bool = False):
        self.done: Deferred = Deferred()
        self._out = open(stdout_path, "ab" if append else "wb")
        self._out_left = max_stdout - self._out.tell()
        self.stdout_overflow = False
        self._err = bytearray()
        self._on_overflow = on_overflow
        self._on_exit = on_exit

    def outReceived(self, data: bytes) -> None:
        if len(data) > self._out_left:
            if not self.stdout_overflow:
                self.stdout_overflow = True
                self._on_overflow()
            data = data[: self._out_left]
        self._out_left -= len(data)
        self._out.write(data)

    def processExited(self, reason) -> None:
        self._on_exit()

    def errReceived(self, data: bytes) -> None:
        self._err += data
        if len(self._err) > 4 * STDERR_TAIL:
            del self._err[: len(self._err) - STDERR_TAIL]

    def processEnded(self, reason) -> None:
        self._out.close()
        self.done.callback(reason.value)

    @property
    def stderr_tail(self) -> str:
        return bytes(self._err[-STDERR_TAIL:]).decode("utf-8", "replace")[-STDERR_TAIL:]


class Run:
    """One replica's process, from spawn to archive."""

    def __init__(self, reactor, workdir: Path, argv: list[str], limits: Limits, confinement: Confinement,
                 staged: dict[str, str], resumed: bool = False):
        self.reactor = reactor
        self.workdir = workdir
        self.argv = argv
        self.limits = limits
        self.confinement = confinement
        self.staged = staged  # relative name -> sha256 of what we put there
        self.resumed = resumed  # run again in its kept directory: its standard output goes on
        self._proc = None
        self._pgid: int | None = None  # the job's process group, until it has ended
        self._timed_out = False
        self._killed_for = ""
        self.suspended = False

    def start(self) -> Deferred:
        spec = {
            "argv": self.argv,
            "cwd": str(self.workdir),
            "uid": self.confinement.uid,
            "gid": self.confinement.gid,
            "cpu": self.limits.cpu_seconds,
            "memory": self.limits.memory_bytes,
            "fsize": self.limits.output_bytes,
            "nproc": self.limits.processes,
            "cpus": list(self.confinement.cpus),
        }
        sandbox = self.confinement.sandbox
        if sandbox is not None:
            spec["bwrap"] = self._bwrap(sandbox)
        (self.workdir / ".tmp").mkdir(exist_ok=True)
        if self.confinement.uid is not None:
            os.chown(self.workdir / ".tmp", self.confinement.uid, self.confinement.gid)
        stdout_path = self.workdir.parent / f"{self.workdir.name}.stdout"
        self._stdout_path = stdout_path
        env = job_environment(self.workdir, sandbox is not None)
        if sandbox is not None and sandbox.get("image_root"):
            # The image's own environment (its PATH first of all), over the fixed part of ours.
            env = {k: v for k, v in env.items() if not k.startswith("PYTHON")}
            env.update(sandbox.get("image_env") or {})
            env["HOME"] = sandbox["job_dir"]
        proto = _Proto(
            stdout_path, self.limits.output_bytes, append=self.resumed,
            on_overflow=lambda: self.kill(f"its standard output exceeded the limit of {self.limits.output_bytes} bytes"),
            # The job is over when its first process is: what it left running (holding its output
            # pipes, or not) is killed now, not when the wall-clock limit comes.
            on_exit=lambda: self.signal(signal.SIGKILL),
        )
        self._proto = proto
        self._proc = self.reactor.spawnProcess(
            proto, sys.executable, [sys.executable, "-m", "xwpy.worker.sandbox", json.dumps(spec)],
            env=env, path=str(self.workdir),
        )
        self._pgid = self._proc.pid
        timer = self.reactor.callLater(self.limits.wall_seconds, self._timeout)
        d = proto.done
        d.addBoth(self._ended, timer)
        d.addCallback(lambda outcome: Deferred.fromCoroutine(self._drain(outcome)))
        return d

    def _bwrap(self, sb: dict) -> dict:
        """The launcher's "bwrap" part of the spec: bwrap's argv, built here (see sandbox.py)."""
        from xwpy.worker import bwrap
        from xwpy.worker.sandbox import RESOLV_FD

        network = bool(sb.get("network"))
        image_root = sb.get("image_root")
        argv = bwrap.build(bwrap.Spec(
            workdir=str(self.workdir), argv=tuple(self.argv), layout=sb["layout"], inputs=tuple(sorted(self.staged)),
            ro_binds=tuple(sb["ro_binds"]), hide=tuple(sb.get("hide", ())),
            tmp_bytes=self.limits.memory_bytes,  # /tmp and /dev/shm are memory: bounded by the job's
            network=network, resolv_fd=RESOLV_FD if network else None,
            image_root=image_root, job_dir=sb.get("job_dir") or bwrap.JOB_DIR,
        ), bwrap=sb["exe"])
        reach = [str(self.workdir), image_root] if image_root else [str(self.workdir), *sb["ro_binds"]]
        return {"argv": argv, "reach": reach, "network": network,
                "slirp4netns": sb.get("slirp4netns") or "slirp4netns"}

    async def _drain(self, outcome: Outcome) -> Outcome:
        """Wait until no process of the job's uid is left, killing and reaping what remains.

        A job's processes outlive it when they leave its process group, or fork while being
        killed (a fork bomb); dead, they stay zombies until reaped. Live, they could read the next
        job of the slot (same uid); zombies, they count against its process limit — a fork bomb's
        zombies made the slot's next job fail to fork. The worker is their subreaper (see
        uids.become_subreaper): it reaps them here."""
        uid = self.confinement.uid
        if uid is None:
            return outcome
        deadline = self.reactor.seconds() + DRAIN_SECONDS
        pause = 0.002  # killed processes are usually gone within milliseconds (bwrap's as the job's)
        while (left := _kill_and_reap(uid)) and self.reactor.seconds() < deadline:
            await task.deferLater(self.reactor, pause, lambda: None)
            pause = min(2 * pause, 0.05)
        if left:
            log.warn("{n} processes of job uid {uid} still there after {s} s", n=left, uid=uid, s=DRAIN_SECONDS)
        return outcome

    def _timeout(self) -> None:
        self._timed_out = True
        self.kill("wall-clock limit")

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def signal(self, sig: int) -> None:
        if self._pgid is not None:  # (a group id is not reused while the group has members)
            try:
                os.killpg(self._pgid, sig)  # the sandbox made the job a session (and group) leader
            except (ProcessLookupError, PermissionError):
                pass
        if self.confinement.uid is not None:
            _signal_uid(self.confinement.uid, sig)  # stragglers that left the group
        elif self.confinement.sandbox is not None and self._proc is not None and self._proc.pid:
            _signal_descendants(self._proc.pid, sig)  # bwrap's command runs in a session of its own

    def suspend(self) -> None:
        if not self.suspended:
            self.signal(signal.SIGSTOP)
            self.suspended = True

    def resume(self) -> None:
        if self.suspended:
            self.signal(signal.SIGCONT)
            self.suspended = False

    def kill(self, why: str) -> None:
        self._killed_for = self._killed_for or why
        self.signal(signal.SIGKILL)
        self.signal(signal.SIGCONT)

    def _ended(self, reason, timer) -> Outcome:
        if timer.active():
            timer.cancel()
        # Whatever the job left running is killed with it (and its uid drained, below).
        self.signal(signal.SIGKILL)
        self._pgid = None
        code = getattr(reason, "exitCode", None)
        sig = getattr(reason, "signal", None)
        if self.confinement.sandbox is not None and code is not None and 128 < code < 128 + 65:
            code, sig = None, code - 128  # bwrap exits 128 + N when its command died of signal N
        tail = self._proto.stderr_tail
        if self._timed_out:
            return Outcome(code, tail, f"killed: exceeded the wall-clock limit of {self.limits.wall_seconds} s")
        if self._killed_for:
            return Outcome(code, tail, f"killed: {self._killed_for}")
        if sig is not None:
            return Outcome(None, tail, f"killed by signal {sig}{_signal_hint(sig, self.limits)}")
        if self._proto.stdout_overflow:
            return Outcome(code, tail, f"standard output exceeded {self.limits.output_bytes} bytes")
        if code == 0 and "File size limit exceeded" in tail:
            return Outcome(code, tail, "output file exceeded the size limit")
        if code:
            hint = _exit_hint(tail, self.limits)
            if hint:
                return Outcome(code, tail, f"exit code {code}: {hint}")
        return Outcome(code, tail)

    def pack(self, outcome: Outcome, dest: Path) -> Outcome:
        """Archive the job's output (blocking: run in a thread). Unchanged staged files are left out."""
        if outcome.exit_code != 0 or outcome.error:
            return outcome
        exclude = {".tmp", CHECKPOINT_DIR}  # a checkpoint is the job's state, not its result
        for name, sha in self.staged.items():
            p = self.workdir / name
            try:
                if p.is_file() and archive.sha256_file(p)[0] == sha:
                    exclude.add(name)
            except OSError:
                pass
        total = 0
        for rel, p in archive.walk(self.workdir, exclude):
            if p.is_file():
                total += p.stat().st_size
        if total > self.limits.output_bytes:
            outcome.error = f"output of {total} bytes exceeds the limit of {self.limits.output_bytes}"
            return outcome
        out_dir = dest.parent
        out_dir.mkdir(parents=True, exist_ok=True)
        stdout_target = self.workdir / STDOUT_NAME
        if stdout_target.exists():
            outcome.error = f"the job wrote a file named {STDOUT_NAME!r}, which is reserved for its standard output"
            return outcome
        shutil.move(str(self._stdout_path), stdout_target)
        with open(dest, "wb") as f:
            archive.write_dir(self.workdir, f, exclude)
        outcome.archive = dest
        outcome.digest, outcome.size = archive.sha256_file(dest)
        return outcome


def _signal_hint(sig: int, limits: Limits) -> str:
    return {
        signal.SIGXCPU: f" (its CPU time limit of {limits.cpu_seconds} s)",
        signal.SIGXFSZ: f" (its output limit of {limits.output_bytes} bytes)",
        signal.SIGKILL: "",
        signal.SIGSEGV: f" (segmentation fault; out of its memory limit of {limits.memory_bytes} bytes?)",
    }.get(sig, "")


# What a job that ran into a limit says before it exits (Python, C/C++ runtimes, shells).
_EXIT_HINTS = (
    (("MemoryError", "Cannot allocate memory", "std::bad_alloc", "out of memory"),
     "out of memory within its limit of {l.memory_bytes} bytes"),
    (("File too large", "File size limit exceeded"), "a file it wrote reached its output limit of {l.output_bytes} bytes"),
    (("Resource temporarily unavailable",), "probably no more processes allowed (its limit: {l.processes})"),
)


def _exit_hint(tail: str, limits: Limits) -> str:
    for needles, hint in _EXIT_HINTS:
        if any(n in tail for n in needles):
            return hint.format(l=limits)
    return ""


def _kill_and_reap(uid: int) -> int:
    """Kill the live processes of ``uid``, reap those that are zombie children of ours; return how
    many processes of ``uid`` are left (a zombie reaped here is not: bwrap leaves one of its own
    to the worker, its subreaper, at the end of every job)."""
    import psutil

    me = os.getpid()
    found = 0
    for p in psutil.process_iter(["uids", "status", "ppid", "name"]):
        try:
            if p.info["status"] == psutil.STATUS_ZOMBIE and p.info["ppid"] == me and p.info["name"] == "slirp4netns":
                os.waitpid(p.pid, os.WNOHANG)  # a networked job's (root) slirp4netns, ended with its job
                continue
            if not p.info["uids"] or p.info["uids"].real != uid:
                continue
            found += 1
            if p.info["status"] != psutil.STATUS_ZOMBIE:
                os.kill(p.pid, signal.SIGKILL)
            elif p.info["ppid"] == me:
                # An orphan we adopted; never one Twisted waits for.
                if os.waitpid(p.pid, os.WNOHANG)[0] == p.pid:
                    found -= 1
        except (ProcessLookupError, PermissionError, ChildProcessError, psutil.Error):
            pass
    return found


def _signal_descendants(pid: int, sig: int) -> None:
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return
    for p in children:
        try:
            p.send_signal(sig)
        except psutil.Error:
            pass


def _signal_uid(uid: int, sig: int) -> None:
    import psutil

    for p in psutil.process_iter(["uids"]):
        try:
            if p.info["uids"] and p.info["uids"].real == uid:
                os.kill(p.pid, sig)
        except (ProcessLookupError, PermissionError, psutil.Error):
            pass


__all__ = ["Confinement", "Outcome", "Run", "expand_command", "job_environment"]
