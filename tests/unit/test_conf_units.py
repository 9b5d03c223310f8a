"""The systemd units in conf/ start xwpy with options it has, and systemd accepts them."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from xwpy.client.cli import cli, main  # noqa: F401 - main registers the commands

CONF = Path(__file__).resolve().parents[2] / "conf"
UNITS = sorted(CONF.glob("*.service"))


def exec_start(unit: Path) -> list[str]:
    text = unit.read_text().replace("\\\n", " ")
    [line] = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=").split()


def test_there_are_units():
    assert {u.name for u in UNITS} >= {"xwpy-coordinator.service", "xwpy-worker.service"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_exec_start_uses_options_xwpy_has(unit):
    from xwpy.client.commands import register

    if "doctor" not in cli.commands:
        register(cli)
    argv = exec_start(unit)
    assert argv[0].endswith("/xwpy")
    command = argv[1]
    helptext = CliRunner().invoke(cli, [command, "--help"]).output
    for opt in (a for a in argv[2:] if a.startswith("--")):
        assert re.search(rf"{re.escape(opt)}\b", helptext), f"{unit.name}: xwpy {command} has no {opt}"


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_accepts_the_unit(unit, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
    # The paths of a real installation (/opt/xwpy/bin/xwpy) are absent here: only those complaints are expected.
    problems = [ln for ln in r.stderr.splitlines()
                if ln.strip() and not re.search(r"/opt/xwpy/bin/xwpy|Command .* is not executable|No such file", ln)]
    assert not problems, problems


def service_settings(unit: Path) -> dict[str, str]:
    text = unit.read_text().replace("\\\n", " ")
    section, out = "", {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k] = v
    return out


# Settings that mount over part of /proc: the kernel then refuses bwrap a /proc of its own in its
# namespaces ("Can't mount proc on /newroot/proc: Operation not permitted"), and no job runs.
HIDES_PROC = ("ProtectKernelTunables", "ProtectKernelLogs", "ProtectProc", "ProcSubset")


def test_the_worker_unit_is_hardened_as_far_as_bwrap_allows():
    s = service_settings(CONF / "xwpy-worker.service")
    for key in HIDES_PROC:
        assert s.get(key, "no") in ("no", "default", "all"), f"{key}={s[key]} breaks bwrap's /proc"
    assert s.get("PrivateDevices", "no") == "no"  # slirp4netns needs /dev/net/tun
    assert "RestrictNamespaces" not in s  # bwrap makes user, pid, net... namespaces
    for key, value in {"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "Restart": "on-failure",
                       "Nice": "19", "IOSchedulingClass": "idle", "CPUSchedulingPolicy": "idle"}.items():
        assert s.get(key) == value, key
    assert "--prefs" in s["ExecStart"].split()


def test_a_proc_mounted_over_breaks_bwrap(tmp_path):
    """Why HIDES_PROC: what ProtectKernelTunables= does (/proc/sys read-only) makes bwrap fail."""
    import os

    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("bwrap") is None:
        pytest.skip("needs root, unshare and bwrap")
    from xwpy.worker.bwrap import probe

    if probe(65534) is not None:
        pytest.skip("bwrap does not run here at all")
    script = ("mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && "
              f"{sys.executable} -c 'from xwpy.worker.bwrap import probe; print(probe(65534))'")
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(CONF.parent)})
    if r.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here: {r.stderr.strip()[-200:]}")
    assert "something is mounted over part of /proc" in r.stdout, r.stdout


def test_the_readme_prefs_example_is_conf_worker_prefs_and_valid():
    from xwpy.worker import prefs as vp

    readme = (CONF.parent / "README.md").read_text()
    [block] = re.findall(r"\*\*Preferences\.\*\*.*?```toml\n(.*?)```", readme, re.S)
    conf = (CONF / "worker-prefs.toml").read_text()
    assert block in conf  # the file adds only its header comments
    assert vp.parse(block) == vp.parse(conf)
    from xwpy.client.commands import register

    if "worker" not in cli.commands:
        register(cli)
    r = CliRunner().invoke(cli, ["worker", "prefs", "--prefs", str(CONF / "worker-prefs.toml")])
    assert r.exit_code == 0, r.output
    assert sum(" file " in ln for ln in r.output.splitlines()) == len(vp.parse(block))


def test_the_coordinator_unit_is_hardened():
    """Its own unprivileged user, a read-only system with only the site writable, a private /tmp,
    no new privileges, no capabilities."""
    s = service_settings(CONF / "xwpy-coordinator.service")
    assert s["User"] not in ("", "root") and s["Group"] not in ("", "root")
    for key, value in {"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
                       "PrivateDevices": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
                       "Restart": "on-failure"}.items():
        assert s.get(key) == value, f"{key}={s.get(key)!r}, want {value!r}"
    argv = s["ExecStart"].split()
    site = Path(argv[argv.index("--site") + 1])
    writable = [Path(p) for p in s["ReadWritePaths"].split()]
    assert any(site.is_relative_to(w) for w in writable), f"the site {site} is not writable ({writable})"
