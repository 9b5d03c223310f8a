"""The systemd units in conf/ start xwpy with options it has, and systemd accepts them."""

import re
import shutil
import subprocess
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
