"""What each reliability scenario held and suffered, for the report (``python -m tests.reliability.report``).

A scenario test records one :class:`Outcome` through the ``ledger`` fixture *before* it asserts, so
the report shows a broken promise as a number rather than only as a failed test.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

LEDGER_ENV = "XWPY_RELIABILITY_LEDGER"


@dataclass
class Outcome:
    scenario: str  # what was done, e.g. "500 jobs, workers SIGKILLed"
    load: str = ""  # the load held, e.g. "500 jobs r2-3, 4 workers"
    faults: str = ""  # the faults injected, e.g. "23 worker SIGKILLs"
    bad_inputs: int = 0  # hostile or malformed inputs tried
    lost: int = 0  # accepted work that never reached a final state, or data that vanished
    duplicated: int = 0  # jobs certified twice, replicas leased to two hosts at once
    wrong: int = 0  # results certified (or data served) that are not the true ones
    server_errors: int = 0  # 500 responses and unhandled errors in the coordinator's log
    seconds: float = 0.0
    test: str = ""
    # False for a documented limit: measured and shown (marked *), but not a promise xwpy makes,
    # e.g. what a Sybil group of colluding accounts gets certified at replication 3.
    promised: bool = True


class Ledger:
    def __init__(self, test: str):
        self.test = test
        self.outcomes: list[Outcome] = []

    def record(self, scenario: str, **counts) -> Outcome:
        out = Outcome(scenario, test=self.test, **counts)
        self.outcomes.append(out)
        path = os.environ.get(LEDGER_ENV)
        if path:
            with open(path, "a") as f:
                f.write(json.dumps(dataclasses.asdict(out)) + "\n")
        return out


def read(path: str | Path) -> list[Outcome]:
    p = Path(path)
    if not p.exists():
        return []
    return [Outcome(**json.loads(line)) for line in p.read_text().splitlines() if line.strip()]


_INTERNAL = re.compile(r"internal error serving|Unhandled [Ee]rror|Traceback \(most recent call last\)")


def server_errors(*logs: str) -> int:
    """Unhandled errors in coordinator log texts (each 500 is logged as 'internal error serving')."""
    return sum(len(_INTERNAL.findall(text)) for text in logs)
