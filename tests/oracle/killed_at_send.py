"""``python -m tests.oracle.killed_at_send coordinator --site DIR``: a coordinator that dies
(SIGKILL, as a machine lost) at its oracle's first broadcast of a commit — after the signed commit
was stored in the catalog (status COMMITTING, its hash and bytes), before any byte of it reached the
node. The failover test (tests/oracle/test_failover.py) makes the standby take over exactly there."""

from __future__ import annotations

import os
import signal

from xwpy.oracle.committer import Committer


def install() -> None:
    async def die(self, raw: bytes):
        os.kill(os.getpid(), signal.SIGKILL)

    Committer._broadcast = die


if __name__ == "__main__":
    install()
    from xwpy.client.cli import main

    main()
