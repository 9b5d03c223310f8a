"""The local search's worker processes: closing them at any moment never hangs, a worker that dies
fails only its own unit and is replaced, cancelled units never start."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.harness import wait_for
from xwpy.apps.vanitygen.local import LocalBackend
from xwpy.apps.vanitygen.search import SearchSpec, plan_search

PLAN = plan_search(SearchSpec("1"), keys_per_second=1e6, min_unit_seconds=0.01, max_unit_seconds=0.01)
NEVER = plan_search(SearchSpec("1" * 21), keys_per_second=1e6, min_unit_seconds=0.5, max_unit_seconds=0.5)


def test_closing_while_workers_send_results_never_hangs():
    """Pool.terminate hung for ever when it killed a worker in the middle of sending a result
    (the shared queue's lock stayed held). Many searches closed while results flow, in a child
    process with a deadline: a hang fails the test instead of stalling the suite."""
    code = textwrap.dedent("""
        from xwpy.apps.vanitygen.local import LocalBackend
        from xwpy.apps.vanitygen.search import SearchSpec, plan_search
        if __name__ == "__main__":
            plan = plan_search(SearchSpec("1"), keys_per_second=1e6, min_unit_seconds=0.01, max_unit_seconds=0.01)
            got = 0
            for i in range(40):
                with LocalBackend(2, "native" if i % 2 else "python") as b:
                    b.submit([(k, plan.unit_args(k)) for k in range(50)])
                    got += len(b.poll(5.0))
            print(got)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) >= 40  # each search saw results before it was closed


def test_a_dead_worker_fails_its_unit_and_is_replaced():
    with LocalBackend(2, "python") as b:
        b.submit([(0, NEVER.unit_args(0))])
        running = wait_for(lambda: [p for c, p in b._procs.items() if c in b._busy], 30, "the unit to start")
        running[0].kill()
        out = wait_for(lambda: b.poll(0.2), 30, "the dead worker's unit to come back")
        assert out == [(0, None)]
        assert len(b._procs) == 2 and all(p.is_alive() for p in b._procs.values())
        b.submit([(1, PLAN.unit_args(1))])  # the pool still works
        [(index, data)] = wait_for(lambda: b.poll(0.2), 60, "a unit on the new worker")
        assert index == 1 and json.loads(data)["status"] == "match"
    assert not b._procs  # closed: every worker gone


def test_cancelled_units_never_start():
    with LocalBackend(1, "python") as b:
        b.submit([(0, NEVER.unit_args(0)), (1, PLAN.unit_args(1)), (2, PLAN.unit_args(2))])
        b.cancel([1])
        seen = []
        while len(seen) < 2:
            seen += [i for i, _ in b.poll(1.0)]
        assert sorted(seen) == [0, 2]
