"""Progress: what a job writes in its ``progress`` file, as the worker reads it, and as the
scheduler keeps it (the furthest running replica's)."""

import os

from xwpy.server.scheduler.engine import Engine, HostState, NewJob
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy
from xwpy.worker.daemon import read_progress


def test_the_worker_reads_a_fraction_or_a_percentage_and_nothing_else(tmp_path):
    p = tmp_path / "progress"
    assert read_progress(tmp_path) is None
    for text, want in (("0.25\n", 0.25), ("42%", 0.42), ("7", 1.0), ("-1", 0.0), ("nan", None), ("half", None), ("", None)):
        p.write_text(text)
        assert read_progress(tmp_path) == want, text
    p.unlink()
    (tmp_path / "secret").write_text("0.99")
    os.symlink(tmp_path / "secret", p)  # a job's link to a file it may not read: never followed
    assert read_progress(tmp_path) is None
    p.unlink()
    p.mkdir()
    assert read_progress(tmp_path) is None


def test_the_scheduler_keeps_the_furthest_running_replicas_progress():
    e = Engine(lease_seconds=10.0)
    for hid in (1, 2):
        e.add_host(HostState(hid, 10 + hid, "", 8 << 30, last_alive=0.0))
    e.refresh_pool(0.0)
    [jid], _ = e.add_jobs([NewJob(99, 1, Policy(2, 2, 4, 3), PUBLIC, 1 << 30, {})], 0.0)
    [r1], _ = e.assign(1, 1, 0.0)
    [r2], _ = e.assign(2, 1, 0.0)
    assert e.progress(jid) is None
    e.heartbeat(1, [r1.id], 1.0, {r1.id: 0.3})
    e.heartbeat(2, [r2.id], 1.0, {r2.id: 0.6, 12345: 0.9})  # a replica it does not hold: ignored
    assert e.progress(jid) == 0.6
    e.lose(2, None, 2.0, "worker restarted")
    assert e.progress(jid) == 0.3
