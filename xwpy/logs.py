"""Structured logging set-up for the long-running processes (twisted.logger, text to a stream)."""

from __future__ import annotations

import sys
from typing import TextIO

from zope.interface import implementer

from twisted.logger import (
    FilteringLogObserver,
    ILogFilterPredicate,
    PredicateResult,
    LogLevel,
    LogLevelFilterPredicate,
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


def start_logging(level: str = "info", stream: TextIO | None = None, fmt: str = "text") -> None:
    """Log events at ``level`` and above to ``stream`` (stderr): as text, or with ``fmt="json"``
    one JSON object per line (twisted.logger's own event serialisation)."""
    predicate = LogLevelFilterPredicate(defaultLogLevel=LEVELS[level])
    out = stream or sys.stderr
    sink = jsonFileLogObserver(out, recordSeparator="") if fmt == "json" else textFileLogObserver(out)
    observer = FilteringLogObserver(sink, [_QuietFactories(), predicate])
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
