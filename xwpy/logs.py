"""Structured logging set-up for the long-running processes (twisted.logger, text to a stream)."""

from __future__ import annotations

import json
import sys
import time
from typing import Callable, TextIO

from zope.interface import implementer

from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    PredicateResult,
    LogLevel,
    LogLevelFilterPredicate,
    formatTime,
    globalLogBeginner,
    jsonFileLogObserver,
    textFileLogObserver,
)

LEVELS = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn, "error": LogLevel.error}


@implementer(ILogFilterPredicate)
class _QuietFactories:
    """HTTP client and server factories announce every connection at info: noise, not news."""

    def __call__(self, event):
        if event.get("log_level") == LogLevel.info and event.get("log_format", "").startswith(("Starting factory", "Stopping factory")):
            return PredicateResult.no
        return PredicateResult.maybe


_output: tuple[TextIO | None, str, str] = (None, "text", "info")  # where start_logging sends events


class LineBatch:
    """Lines written during one turn of the reactor, handed to the stream together at its end: an
    access line written alone is a system call of its own (stderr is line-buffered), and under
    dispatch load those calls were 6 % of the reactor thread's time (py-spy). ``later(fn)`` runs
    ``fn`` once the current turn is over (``reactor.callLater(0, fn)``)."""

    def __init__(self, stream: TextIO | None, later: Callable[[Callable[[], None]], object]):
        self._stream, self._later, self._lines = stream, later, []

    def write(self, line: str) -> None:
        if not self._lines:
            self._later(self.flush)
        self._lines.append(line)

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            out = self._stream or sys.stderr
            out.write("".join(lines))
            out.flush()


_batch: LineBatch | None = None  # the access and job logs' lines, when start_logging was given ``later``


def start_logging(level: str = "info", stream: TextIO | None = None, fmt: str = "text",
                  later: Callable[[Callable[[], None]], object] | None = None) -> None:
    """Log events at ``level`` and above to ``stream`` (stderr): as text, or with ``fmt="json"``
    one JSON object per line (twisted.logger's own event serialisation). With ``later`` (a
    process with a reactor), the access and job logs' lines are written once per reactor turn
    (:class:`LineBatch`); call :func:`flush` before the process ends."""
    global _output, _batch
    _output = (stream, fmt, level)
    _batch = LineBatch(stream, later) if later is not None else None
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[level])
    out = stream or sys.stderr
    sink = jsonFileLogObserver(out, recordSeparator="") if fmt == "json" else textFileLogObserver(out)
    observer = FilteringLogObserver(sink, [_QuietFactories(), predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)


class AccessLog:
    """One line per API request, in the format of the other events and to the same stream, written
    directly: an event through twisted.logger costs about 60 µs (formatting, timestamps, observers;
    measured), as much as serving a work request itself; this costs a few."""

    NAMESPACE = "xwpy.access"

    def __init__(self, stream: TextIO | None = None, fmt: str = "text", clock: Callable[[], float] = time.time):
        self._stream, self._json, self._clock = stream, fmt == "json", clock
        self._second, self._stamp = -1, ""

    def record(self, method: str, path: str, status: int, ms: float, caller: str) -> None:
        now = self._clock()
        if self._json:
            line = json.dumps({"log_namespace": self.NAMESPACE, "log_level": {"name": "info", "__class_uuid__": _LEVEL_UUID},
                               "log_time": now, "method": method, "path": path, "status": status, "ms": round(ms, 3),
                               "caller": caller, "log_format": _ACCESS_FORMAT}) + "\n"
        else:
            if int(now) != self._second:
                self._second, self._stamp = int(now), formatTime(now)
            line = f"{self._stamp} [{self.NAMESPACE}#info] {method} {path} {status} {ms:.1f} ms {caller}\n"
        (self._stream or sys.stderr).write(line)


_ACCESS_FORMAT = "{method} {path} {status} {ms} ms {caller}"
_LEVEL_UUID = "02e59486-f24d-46ad-8224-3acdf2a5732a"  # twisted.logger's JSON tag for a LogLevel


class JobLog:
    """One line per job state change once committed, written as :class:`AccessLog` writes its
    own: ``job 12 COMPLETED``; consecutive jobs that change to the same status together (a batch
    submitted, cancelled) share a line, ``jobs 100-4099 PENDING``."""

    NAMESPACE = "xwpy.jobs"

    def __init__(self, stream: TextIO | None = None, fmt: str = "text", clock: Callable[[], float] = time.time):
        self._stream, self._json, self._clock = stream, fmt == "json", clock
        self._second, self._stamp = -1, ""

    def changes(self, ch) -> None:
        """A committed scheduler change (the dispatcher's ``on_commit`` listener)."""
        for first, last, status in status_runs(ch):
            self.record(first, last, status)

    def record(self, first: int, last: int, status: str) -> None:
        now = self._clock()
        if self._json:
            line = json.dumps({"log_namespace": self.NAMESPACE, "log_level": {"name": "info", "__class_uuid__": _LEVEL_UUID},
                               "log_time": now, "first": first, "last": last, "status": status,
                               "log_format": _JOB_FORMAT}) + "\n"
        else:
            if int(now) != self._second:
                self._second, self._stamp = int(now), formatTime(now)
            jobs = f"job {first}" if first == last else f"jobs {first}-{last}"
            line = f"{self._stamp} [{self.NAMESPACE}#info] {jobs} {status}\n"
        (self._stream or sys.stderr).write(line)


_JOB_FORMAT = "jobs {first}-{last} {status}"


def status_runs(ch) -> list[tuple[int, int, str]]:
    """The job state changes in a scheduler change (new jobs, updated statuses) as runs of
    consecutive job ids going to one status: (first, last, status), by id."""
    statuses = {row["id"]: row["status"] for row in ch.jobs_new}
    statuses.update((job_id, fields["status"]) for job_id, fields in ch.jobs.items() if "status" in fields)
    runs: list[tuple[int, int, str]] = []
    for job_id in sorted(statuses):
        status = str(getattr(statuses[job_id], "value", statuses[job_id]))
        if runs and runs[-1][1] == job_id - 1 and runs[-1][2] == status:
            runs[-1] = (runs[-1][0], job_id, status)
        else:
            runs.append((job_id, job_id, status))
    return runs


def job_log() -> JobLog | None:
    """The job log to the stream and format ``start_logging`` chose; None below info level."""
    stream, fmt, level = _output
    return JobLog(_batch or stream, fmt) if LEVELS[level] <= LogLevel.info else None


def access_log() -> AccessLog | None:
    """The access log to the stream and format ``start_logging`` chose; None below info level."""
    stream, fmt, level = _output
    return AccessLog(_batch or stream, fmt) if LEVELS[level] <= LogLevel.info else None


def flush() -> None:
    """Write the lines batched so far (a process ending)."""
    if _batch is not None:
        _batch.flush()
