"""Run the reliability suite and print one table: load held, faults injected, bad inputs tried,
and for each scenario what was lost, duplicated, wrongly certified, or answered with a server error.

    python -m tests.reliability.report [pytest arguments]
    python -m tests.reliability.report --ledger FILE     # the table of a run that kept its ledger

Exits non-zero when a test failed or a scenario recorded a broken promise.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.reliability.ledger import LEDGER_ENV, Outcome, read

HERE = Path(__file__).resolve().parent
COLUMNS = ("#", "scenario", "bad in", "lost", "dup", "wrong", "5xx", "s")
WIDE = 80  # the scenario column; load and faults are listed under the table


def _short(text: str, mark: str) -> str:
    room = WIDE - len(mark)
    return (text if len(text) <= room else text[: room - 1] + "…") + mark


def table(outcomes: list[Outcome]) -> str:
    body = [
        (str(i), _short(o.scenario, "" if o.promised else " *"), str(o.bad_inputs), str(o.lost),
         str(o.duplicated), str(o.wrong), str(o.server_errors), f"{o.seconds:.0f}")
        for i, o in enumerate(outcomes, 1)
    ]
    promised = [o for o in outcomes if o.promised]
    total = ("", f"promised ({len(promised)} of {len(outcomes)} scenarios)",
             str(sum(o.bad_inputs for o in outcomes)), str(sum(o.lost for o in promised)),
             str(sum(o.duplicated for o in promised)), str(sum(o.wrong for o in promised)),
             str(sum(o.server_errors for o in promised)), f"{sum(o.seconds for o in outcomes):.0f}")
    widths = [max(len(r[i]) for r in [COLUMNS, *body, total]) for i in range(len(COLUMNS))]

    def line(r):
        return " | ".join(c.ljust(w) if i == 1 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))

    rule = "-+-".join("-" * w for w in widths)
    details = [f"{i:>2}. load: {o.load or '-'}" + (f"\n    faults: {o.faults}" if o.faults else "")
               for i, o in enumerate(outcomes, 1)]
    return "\n".join([line(COLUMNS), rule, *map(line, body), rule, line(total), "", *details])


def show(path: Path) -> int:
    """Print the table of a ledger written by an earlier run (``scripts/test`` keeps one)."""
    outcomes = read(path)
    print(table(outcomes))
    broken = [o for o in outcomes if o.promised and (o.lost or o.duplicated or o.wrong or o.server_errors)]
    return 1 if broken else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--ledger"] and len(argv) == 2:
        return show(Path(argv[1]))
    with tempfile.TemporaryDirectory(prefix="xwpy-reliability-") as tmp:
        path = Path(tmp) / "ledger.jsonl"
        env = dict(os.environ, **{LEDGER_ENV: str(path)})
        started = time.monotonic()
        status = subprocess.call([sys.executable, "-m", "pytest", "-q", str(HERE), *argv], env=env)
        outcomes = read(path)
    print()
    print(table(outcomes))
    print(f"\n{len(outcomes)} scenarios in {time.monotonic() - started:.0f} s; pytest exit status {status}")
    if any(not o.promised for o in outcomes):
        print("* a documented limit: measured, not promised (see README, Reliability)")
    broken = [o for o in outcomes if o.promised and (o.lost or o.duplicated or o.wrong or o.server_errors)]
    if broken:
        print("broken promises in: " + ", ".join(o.scenario for o in broken))
    return 1 if status or broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
