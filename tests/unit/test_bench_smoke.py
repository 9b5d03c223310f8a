"""The benchmarks still start: each one's --help, and bench_reads' bare TLS reference answers.
(bench_reads was broken for a session by a renamed TLS helper and nothing said so; the figures
themselves are measured by hand, never asserted.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import wait_for
from xwpy.localgrid import child_env, free_port
from xwpy.site import init_site

REPO = Path(__file__).resolve().parents[2]
MODULES = sorted(p.stem for p in (REPO / "bench").glob("*.py")
                 if p.stem not in ("__init__", "clients", "loadgen", "viewers"))  # helpers, not commands


@pytest.mark.parametrize("module", MODULES)
def test_each_benchmark_starts(module):
    r = subprocess.run([sys.executable, "-m", f"bench.{module}", "--help"], cwd=REPO, env=child_env(),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "usage" in r.stdout.lower()


def test_the_bare_tls_reference_of_bench_reads_answers(tmp_path):
    cfg, _ = init_site(tmp_path / "site")
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.bench_reads", "--bare", str(port), str(cfg.dir)],
                            cwd=REPO, env=child_env(), stderr=subprocess.PIPE)
    try:
        def answers():
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode()[-2000:])
            r = subprocess.run(["curl", "-sk", f"https://127.0.0.1:{port}/"], capture_output=True, text=True)
            return r.returncode == 0 and r.stdout
        assert wait_for(answers, 60, "the bare server") == '{"hello":"world"}'
    finally:
        proc.kill()
        proc.wait()
