"""The worker's status line (pure) and the terminal stream that keeps it below the log."""

import io
from datetime import datetime

from xwpy.worker.status import CLEAR, Snapshot, Terminal, line


def test_what_the_line_says():
    assert line(Snapshot(0, ())) == "xwpy worker: 0 done | waiting for work"
    assert line(Snapshot(0, (), connected=False)) == "xwpy worker: 0 done | connecting"
    assert line(Snapshot(12, ((41, 0.42), (43, None)))) == "xwpy worker: 12 done | running 2 (#41 42%, #43)"
    assert line(Snapshot(3, ((7, 0.5),), "on battery")) == "xwpy worker: 3 done | running 1 (#7 50%) | suspended: on battery"
    outside = Snapshot(3, (), "outside its computing window (opens at 18:00)", datetime(2026, 12, 7, 18))
    assert line(outside) == "xwpy worker: 3 done | suspended: outside its computing window (opens at 18:00)"
    inside = Snapshot(3, (), "", datetime(2026, 12, 8, 8))
    assert line(inside) == "xwpy worker: 3 done | waiting for work | window closes at 08:00"
    waiting = Snapshot(3, (), to_report=2, dropped=1)
    assert line(waiting, 100) == "xwpy worker: 3 done | waiting for work | 2 to report | 1 dropped (deadline passed)"
    assert line(Snapshot(3, (), credit=1234.6)) == "xwpy worker: 3 done | credit 1235 | waiting for work"


def test_the_line_fits_the_terminal():
    long = line(Snapshot(1, tuple((i, 0.5) for i in range(100))), width=40)
    assert len(long) == 40 and long.endswith("…")


def test_log_lines_go_above_the_status_line():
    out = io.StringIO()
    t = Terminal(out, width=80)
    t.show("xwpy worker: 0 done")
    t.write("a log line\n")
    t.show("xwpy worker: 0 done")  # unchanged: not redrawn
    t.show("xwpy worker: 1 done")
    t.close()
    assert out.getvalue() == (CLEAR + "xwpy worker: 0 done" + CLEAR + "a log line\n" + "xwpy worker: 0 done"
                              + CLEAR + "xwpy worker: 1 done" + CLEAR)
