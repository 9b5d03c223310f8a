"""The wheel as a user gets it (issue 14 item 1): built once from a clean copy of the source, its
contents checked, installed into fresh virtualenvs outside the checkout. Without the chain extra
it gives a worker that runs jobs on a site (issue 12 item 6); with it, `xwpy demo` runs to its end,
chain included, with the contracts the wheel ships compiled (no compiler installed)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from xwpy.localgrid import Proc

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CLEAN_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
# A warning setuptools prints about the project's packaging (pip's own notes, about this machine's
# package indexes or its own version, are not the project's).
PACKAGING_WARNING = re.compile(r"\w+Warning: |^\s*!!\s*$", re.M)  # setuptools' warnings, however pip relays them


def pip(py, *args: str, timeout: float = 900) -> str:
    r = subprocess.run([str(py), "-m", "pip", *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    return path / "bin" / "python"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The checkout's files without what builds or runs leave behind (a stale build/ would end up
    in the wheel)."""
    dest = tmp_path_factory.mktemp("src") / "xwpy"
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
        "node_modules", ".tools", "*.so", "demo-site"))
    return dest


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheels")
    log = pip(sys.executable, "wheel", "--no-deps", "-w", str(out), str(source))
    assert not PACKAGING_WARNING.search(log), log  # pip prints no warning about our packaging
    [whl] = out.glob("xwpy-*.whl")
    return whl


def test_the_wheel_holds_what_runs_a_site_and_only_the_xwpy_package(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        prebuilt = json.loads(z.read("xwpy/chain/contracts/artifacts.json"))
        license_text = z.read(next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))).decode()
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    tops = {n.split("/")[0] for n in names}
    assert {t for t in tops if not t.startswith("xwpy-")} == {"xwpy"}  # no generic top-level name
    # The compiled contracts, with the compiler that made them; their sources beside them.
    assert set(prebuilt) == {"Distributor", "RLC", "TaskHub", "VanityConsumer"}
    for name, art in prebuilt.items():
        assert art["bytecode"].startswith("0x") and len(art["bytecode"]) > 1000 and art["abi"], name
        assert re.fullmatch(r"0\.4\.\d+.*", art["vyper_version"]) and art["evm_version"] == "shanghai"
        assert f"xwpy/chain/contracts/{name}.vy" in names
    assert any(re.fullmatch(r"xwpy/apps/vanitygen/_native\..*\.so", n) for n in names)  # the C kernel
    assert "xwpy/apps/vanitygen/web/index.html" in names  # the shop's page
    assert "xwpy/apps/vanitygen/web/vendor/noble-secp256k1/index.js" in names  # its vendored key library
    assert "xwpy/server/catalog/migrations/env.py" in names  # the catalog's migrations
    assert any(re.fullmatch(r"xwpy/server/catalog/migrations/versions/0001_\w+\.py", n) for n in names)
    for conf in ("site.toml", "postgres.toml", "oracle.toml", "xwpy-coordinator.service"):
        assert any(n.endswith(f".data/data/share/xwpy/conf/{conf}") for n in names), conf
    # The license file says what the metadata says.
    assert license_text.startswith("MIT License") and re.search(r"^License(-Expression)?: MIT$", metadata, re.M)
    # Compatible ranges, not pins; the chain's betas only with the chain extra.
    requires = [r.split(";")[0] for r in re.findall(r"^Requires-Dist: ([^;\n]*)$", metadata, re.M)]
    assert len(requires) >= 10 and not [r for r in requires if "==" in r or "===" in r], requires
    # A plain install (no extra: no ';' marker above) takes no pre-release.
    assert not [r for r in requires if re.search(r"\d(a|b|rc)\d", r)], requires
    assert not [r for r in re.findall(r"^Requires-Dist: (.*)$", metadata, re.M) if "==" in r.split(";")[0]]


def test_an_editable_install_prints_no_packaging_warning(source, tmp_path):
    py = venv(tmp_path / "venv")
    # This pip (scripts/setup upgrades it), not the venv's older one, which hides the build's output.
    log = pip(sys.executable, "--python", str(py), "install", "--no-deps", "-e", str(source))
    assert not PACKAGING_WARNING.search(log), log


def test_a_worker_installed_from_the_wheel_without_the_chain_runs_jobs(grid, wheel, tmp_path):
    py = venv(tmp_path / "venv")
    pip(py, "install", "-q", str(wheel))
    clean = {**CLEAN_ENV, "HOME": str(tmp_path)}
    probe = subprocess.run([str(py), "-c", "import importlib.util as u, xwpy; print(xwpy.__file__); "
                            "print(u.find_spec('web3') is None, u.find_spec('vyper') is None)"],
                           capture_output=True, text=True, env=clean, cwd=tmp_path, check=True)
    where, no_web3, no_vyper = probe.stdout.split()
    assert where.startswith(str(tmp_path / "venv")) and no_web3 == no_vyper == "True"  # no chain stack
    # The web dashboard's files are package data: they ship in the wheel.
    pages = subprocess.run([str(py), "-c", "from xwpy.server import web; print(sorted(web.pages()))"],
                           capture_output=True, text=True, env=clean, cwd=tmp_path)
    from xwpy.server import web

    assert pages.returncode == 0 and pages.stdout.strip() == str(sorted(web.FILES)), pages.stderr[-2000:]

    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="where", replication=1, quorum=1, command=[
        "{python}", "-c", "import sys, xwpy; print(sys.prefix == sys.base_prefix or 'venv', xwpy.__file__)"])
    log = tmp_path / "worker.log"
    with open(log, "ab") as f:
        popen = subprocess.Popen(
            [str(py.parent / "xwpy"), "worker", "--coordinator", grid.url, "--ca", str(grid.cfg.ca_cert),
             "--state", str(tmp_path / "state"), "--no-idle-check", "--wait", "2"],
            stdout=f, stderr=subprocess.STDOUT, env={**clean, "XWPY_TOKEN": grid.user("vol", "worker")},
            cwd=tmp_path, start_new_session=True)
    grid.procs.append(Proc("wheel-worker", popen, log))
    [jid] = alice.submit([{"app": "where", "args": []}])
    job = grid.wait_final(alice, [jid], timeout=120)[jid]
    assert job["status"] == "COMPLETED", (job, log.read_text()[-2000:])
    from tests.grid.test_image_apps import stdout_of

    out = stdout_of(alice, jid, tmp_path).split()
    assert out == ["venv", where], out  # the job ran the install's interpreter and its xwpy
    assert os.path.getsize(log) and "Traceback" not in log.read_text()


def test_the_demo_runs_to_its_end_from_the_wheel_with_the_chain_extra(wheel, tmp_path):
    py = venv(tmp_path / "venv")
    pip(py, "install", "-q", f"{wheel}[chain]")
    home = tmp_path / "home"
    home.mkdir()
    clean = {**CLEAN_ENV, "HOME": str(home), "PATH": f"{py.parent}:{CLEAN_ENV['PATH']}"}
    probe = subprocess.run([str(py), "-c", "import importlib.util as u; print(u.find_spec('vyper') is None)"],
                           capture_output=True, text=True, env=clean, cwd=home, check=True)
    assert probe.stdout.split() == ["True"]  # no compiler: the contracts come compiled
    r = subprocess.run(["xwpy", "demo", "--workers", "2", "--jobs", "2"], capture_output=True, text=True,
                       env=clean, cwd=home, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "delivered to the consumer contract" in r.stdout, r.stdout[-3000:]
    assert r.stdout.count("(exactly as agreed)") == 3
    assert "Traceback" not in r.stdout + r.stderr
    assert not (home / ".cache" / "xwpy" / "contracts").exists()  # nothing was compiled
