"""A Byzantine worker for the tests: the real worker, whose every successful result is replaced by
a lie before it is reported. Kept out of the worker itself, which has no way to lie.

    python -m tests.liar random|collude worker --coordinator ... (the arguments of ``xwpy worker``)

'random' lies differently every time; 'collude' tells the same lie as every other colluder."""

from __future__ import annotations

import os
import sys

from xwpy import archive
from xwpy.worker.runner import Outcome, Run

MODES = ("random", "collude", "noise", "beyond")
# 'noise': an honest host whose floating point differs in the last digits (each number of its
# stdout times 1 + a random amount below 1e-12); 'beyond': a liar whose numbers are off by 1e-3.
NOISE = {"noise": 1e-12, "beyond": 1e-3}


def _perturb(text: str, scale: float) -> str:
    import random
    import re

    def one(m):
        x = float(m.group())
        return repr(x * (1 + scale * random.uniform(0.5, 1.0) * random.choice((-1, 1))))

    return re.sub(r"-?\d+\.\d+(?:e[-+]?\d+)?", one, text)


def lie(outcome: Outcome, mode: str) -> Outcome:
    files = archive.read_files(outcome.archive.read_bytes())
    if mode in NOISE:
        files["stdout"] = _perturb(files["stdout"].decode(), NOISE[mode]).encode()
    else:
        files["stdout"] = (os.urandom(16).hex() if mode == "random" else "the colluders' answer\n").encode()
    outcome.archive.write_bytes(archive.from_files(files))
    outcome.digest, outcome.size = archive.sha256_file(outcome.archive)
    return outcome


def install(mode: str) -> None:
    honest = Run.pack

    def pack(self, outcome: Outcome, dest):
        outcome = honest(self, outcome, dest)
        return lie(outcome, mode) if outcome.ok else outcome

    Run.pack = pack


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in MODES:
        sys.exit(f"usage: python -m tests.liar {'|'.join(MODES)} worker ARGS...")
    install(sys.argv.pop(1))
    from xwpy.client.cli import main

    main()
