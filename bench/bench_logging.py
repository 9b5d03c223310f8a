"""Access-log cost per API request: xwpy's AccessLog against the same line through twisted.logger
(the reference), in one process, text and JSON, written to a file.

    python -m bench.bench_logging
"""

from __future__ import annotations

import argparse
import tempfile
import time

from twisted.logger import FilteringLogObserver, LogLevel, LogLevelFilterPredicate, Logger, LogPublisher
from twisted.logger import jsonFileLogObserver, textFileLogObserver

from xwpy.logs import AccessLog

N = 50_000


def per_call(fn) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(N):
        fn()
    return (time.perf_counter() - t) / N * 1e6


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    print(f"{'format':6} {'twisted.logger us':>18} {'AccessLog us':>13} {'ratio':>7}")
    for fmt in ("text", "json"):
        with tempfile.TemporaryFile("w") as f:
            sink = jsonFileLogObserver(f, recordSeparator="") if fmt == "json" else textFileLogObserver(f)
            publisher = LogPublisher(FilteringLogObserver(sink, [LogLevelFilterPredicate(LogLevel.info)]))
            reference = Logger(namespace="xwpy.access", observer=publisher)
            ref = per_call(lambda: reference.info("{method} {path} {status} {ms:.1f} ms {caller}", method="POST",
                                                  path="/api/v1/work/request", status=200, ms=1.234, caller="vol/host 1"))
            access = AccessLog(f, fmt)
            ours = per_call(lambda: access.record("POST", "/api/v1/work/request", 200, 1.234, "vol/host 1"))
        print(f"{fmt:6} {ref:18.1f} {ours:13.1f} {ref / ours:6.1f}x")


if __name__ == "__main__":
    main()
