"""Run in a terminal, a worker shows a live status line below its log; not in a terminal, it logs only."""

from __future__ import annotations

import os
import re
import pty
import select
import subprocess
import sys
import time

import pytest

from xwpy.localgrid import child_env
from xwpy.worker.status import CLEAR

pytestmark = pytest.mark.slow

PROGRESS = ["{python}", "-c", "open('progress', 'w').write('0.5')\nimport time\nwhile True: time.sleep(0.05)"]


def test_a_worker_in_a_terminal_shows_its_jobs_and_progress(grid):
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="halfway", command=PROGRESS, replication=1, quorum=1)
    [jid] = alice.submit([{"app": "halfway"}])
    master, slave = pty.openpty()
    worker = subprocess.Popen(
        [sys.executable, "-m", "xwpy", "worker", "--coordinator", grid.url, "--ca", str(grid.cfg.ca_cert),
         "--state", str(grid.work_root / "tty"), "--wait", "2", "--no-idle-check", "--max-cpus", "1"],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True, cwd=grid.root,
        env={**child_env(), "XWPY_TOKEN": grid.user("vol", "worker"), "TERM": "xterm", "COLUMNS": "200"},
    )
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 90
        want = b"running 1 (#"
        while time.monotonic() < deadline and not (want in seen and b"50%)" in seen.split(want)[-1][:40]):
            ready, _, _ = select.select([master], [], [], 1.0)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:  # the worker is gone
                    break
        text = seen.decode(errors="replace")
        # (the host's credit shows once the coordinator has said it: "0 done | credit 0 | running 1")
        assert re.search(r"xwpy worker: 0 done \| (credit \d+ \| )?running 1 \(#", text) and "50%)" in text, text[-2000:]
        assert CLEAR in text
        assert "connected to" in text  # the log goes on above it
        assert alice.job(jid)["status"] == "RUNNING"
    finally:
        worker.kill()
        worker.wait()
        os.close(master)


def test_a_worker_not_in_a_terminal_only_logs(grid):
    grid.start_coordinator()
    w = grid.start_worker("plain", grid.user("vol", "worker"))
    from tests.harness import wait_for

    wait_for(lambda: "connected to" in w.output(), 60, "the worker to connect")
    assert "\x1b[" not in w.output() and "xwpy worker: " not in w.output()
