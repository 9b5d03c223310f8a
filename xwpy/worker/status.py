"""The worker's live status line, for a volunteer who runs it in a terminal: jobs done, the jobs
running and how far they are, suspended and why, the next change of its computing window.

:func:`line` is pure (tested directly); :class:`Terminal` draws it on the last line of a terminal
and keeps the log readable above it: each log line clears the status line, is written, and the
status line is drawn again. Not on a terminal, the worker only logs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

CLEAR = "\r\x1b[K"  # to the start of the line, and erase it


@dataclass(frozen=True)
class Snapshot:
    done: int
    running: tuple[tuple[int, float | None], ...]  # (replica id, fraction done or None)
    suspended: str = ""
    window_change: datetime | None = None  # when its computing window next opens or closes
    connected: bool = True
    to_report: int = 0  # finished results kept until the coordinator has them (xwpy.worker.outbox)
    dropped: int = 0  # results dropped since start: their deadline passed before they could be reported
    credit: float | None = None  # the host's credit as the coordinator last said (None: not heard yet)


def line(s: Snapshot, width: int = 80) -> str:
    parts = [f"xwpy worker: {s.done} done"]
    if s.credit is not None:
        parts.append(f"credit {s.credit:.0f}")
    if not s.connected:
        parts.append("connecting")
    if s.running:
        jobs = ", ".join(f"#{rid}" + (f" {p:.0%}" if p is not None else "") for rid, p in s.running)
        parts.append(f"running {len(s.running)} ({jobs})")
    elif s.connected and not s.suspended:
        parts.append("waiting for work")
    if s.to_report:
        parts.append(f"{s.to_report} to report")
    if s.dropped:
        parts.append(f"{s.dropped} dropped (deadline passed)")
    if s.suspended:
        parts.append(f"suspended: {s.suspended}")
    if s.window_change is not None and not s.suspended.startswith("outside"):
        parts.append(f"window closes at {s.window_change:%H:%M}")
    text = " | ".join(parts)
    return text if len(text) <= width else text[:max(width - 1, 0)] + "…"


class Terminal:
    """A stream for the log (write() as a file) that keeps a status line below it."""

    def __init__(self, stream: TextIO, width: int = 80):
        self._stream = stream
        self.width = width
        self._status = ""

    def write(self, text: str) -> int:
        self._stream.write(CLEAR + text + ("" if not text.endswith("\n") else self._status))
        self._stream.flush()
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def show(self, status: str) -> None:
        if status != self._status:
            self._status = status[: self.width]
            self._stream.write(CLEAR + self._status)
            self._stream.flush()

    def close(self) -> None:
        """Leave the terminal on a fresh line."""
        if self._status:
            self._stream.write(CLEAR)
            self._status = ""
            self._stream.flush()
