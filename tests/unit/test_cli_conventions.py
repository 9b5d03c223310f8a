"""The command line's conventions (issue 14, item 6), checked over every command there is, so a
command added later cannot skip them: help on every option, ``--json`` wherever data is printed,
exit statuses by kind of error, ``NO_COLOR``, a site name that stays valid TOML, shell completion."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tomllib

import click
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy import config
from xwpy.client.api import ClientError
from xwpy.client.cli import add_connection_options, cli
from xwpy.client.commands import register
from xwpy.client.exits import Exit, for_client_error
from xwpy.site import init_site

register(cli)
for _command in cli.commands.values():
    add_connection_options(_command)

# Commands that print no data of their own, or whose output is the data itself.
NO_JSON = {
    "xwpy coordinator": "a daemon",
    "xwpy worker": "a daemon",
    "xwpy demo": "a narrated run",
    "xwpy vanity web": "a daemon",
    "xwpy result": "prints the job's own output, or writes a file",
    "xwpy data get": "writes the file",
    "xwpy app show": "prints JSON already",
    "xwpy image inspect": "prints JSON already",
}


def commands(group: click.Group = cli, path: str = "xwpy"):
    for name, command in group.commands.items():
        here = f"{path} {name}"
        yield here, command
        if isinstance(command, click.Group):
            yield from commands(command, here)


def test_every_option_says_what_it_is_for():
    missing = [f"{path} {p.opts[-1]}" for path, command in commands() for p in command.params
               if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()]
    assert not missing, missing


def test_every_command_that_prints_data_takes_json():
    leaves = {path: c for path, c in commands() if not isinstance(c, click.Group) or c.invoke_without_command}
    missing = [path for path, c in leaves.items()
               if path not in NO_JSON and not any("--json" in getattr(p, "opts", ()) for p in c.params)]
    assert not missing, missing
    assert set(NO_JSON) <= set(leaves), set(NO_JSON) - set(leaves)  # no stale exemption


@pytest.mark.parametrize("status, code, expected", [
    (401, "unauthorized", Exit.REFUSED), (403, "forbidden", Exit.REFUSED), (404, "not_found", Exit.REFUSED),
    (413, "too_large", Exit.REFUSED), (429, "too_many", Exit.REFUSED),
    (500, "internal", Exit.SERVER_FAULT), (503, "unavailable", Exit.SERVER_FAULT),
    (0, "unreachable", Exit.UNREACHABLE), (0, "lost", Exit.UNREACHABLE), (0, "tls", Exit.UNREACHABLE),
    (0, "malformed", Exit.SERVER_FAULT), (0, "usage", Exit.USAGE), (0, "client", Exit.FAILED),
    (0, "digest_mismatch", Exit.SERVER_FAULT), (410, "corrupt", Exit.SERVER_FAULT), (410, "gone", Exit.REFUSED),
])
def test_exit_status_by_kind_of_error(status, code, expected):
    assert for_client_error(status, code) is expected


def test_exit_statuses_are_distinct():
    assert len({int(e) for e in Exit}) == len(Exit)


def test_a_client_error_is_one_line_with_the_status_it_deserves():
    @cli.command("raise-for-test", hidden=True)
    @click.argument("status", type=int)
    def _raise(status):
        raise ClientError("no such job", status=status, code="not_found") if status else ClientError(
            "cannot reach coordinator at https://127.0.0.1:1: refused", code="unreachable")

    try:
        refused = CliRunner().invoke(cli, ["raise-for-test", "404"])
        gone = CliRunner().invoke(cli, ["raise-for-test", "0"])
    finally:
        del cli.commands["raise-for-test"]
    assert refused.exit_code == Exit.REFUSED
    assert refused.stderr == "xwpy: error: HTTP 404 not_found: no such job\n"
    assert gone.exit_code == Exit.UNREACHABLE
    assert gone.stderr == "xwpy: error: cannot reach coordinator at https://127.0.0.1:1: refused\n"


def test_a_usage_mistake_the_parser_cannot_see_exits_2():
    r = CliRunner().invoke(cli, ["cancel"], env={"XWPY_URL": None}, prog_name="xwpy")
    assert r.exit_code == Exit.USAGE
    assert r.stderr == "xwpy: error: give job ids or --batch (see `xwpy cancel -h`)\n"


def test_no_coordinator_given_is_a_usage_error():
    env = {k: None for k in ("XWPY_SITE", "XWPY_URL", "XWPY_TOKEN", "XWPY_CA")}
    r = CliRunner().invoke(cli, ["status"], env=env)
    assert r.exit_code == Exit.USAGE and r.stderr.startswith("xwpy: error: no coordinator given"), r.stderr


def test_no_color_is_honoured(tmp_path):
    init_site(tmp_path / "site")
    argv = ["doctor", "--site", str(tmp_path / "site")]
    coloured = CliRunner().invoke(cli, argv, color=True, env={"NO_COLOR": None})
    plain = CliRunner().invoke(cli, argv, color=True, env={"NO_COLOR": "1"})
    assert "\x1b[" in coloured.stdout  # a terminal gets the verdicts in colour...
    assert "\x1b[" not in plain.stdout and "OK   configuration" in plain.stdout  # ...unless NO_COLOR
    assert click.unstyle(coloured.stdout) == plain.stdout


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(blacklist_categories=["Cs"]), max_size=60))
def test_any_site_name_is_written_as_valid_toml(name):
    cfg = config.parse("", "/nonexistent-site", "test")
    text = config.render(dataclasses.replace(cfg, name=name))
    assert tomllib.loads(text)["site"]["name"] == name
    assert config.parse(text, "/nonexistent-site", "test").name == name


def test_init_with_a_quote_and_a_newline_in_the_name(tmp_path):
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "s"), "--name", 'Lab "B"\nsecond line', "--json"])
    assert r.exit_code == 0, r.output
    assert config.load(tmp_path / "s").name == 'Lab "B"\nsecond line'


def test_shell_completion_completes_commands_and_options():
    env = {**os.environ, "_XWPY_COMPLETE": "bash_complete", "COMP_WORDS": "xwpy status --wa", "COMP_CWORD": "2"}
    r = subprocess.run([sys.executable, "-c", "from xwpy.client.cli import main; main()"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "plain,--watch" in r.stdout.splitlines(), r
    env.update(COMP_WORDS="xwpy sta", COMP_CWORD="1")
    r = subprocess.run([sys.executable, "-c", "from xwpy.client.cli import main; main()"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert "plain,status" in r.stdout.splitlines(), r


def test_every_command_is_routed_to_the_module_that_defines_it():
    """``xwpy COMMAND`` imports only COMMAND's module (:data:`xwpy.client.commands.MODULES`): the
    table must name each module's commands exactly, or a command would vanish or load the wrong
    code."""
    import importlib

    from xwpy.client.commands import MODULES, _qualified

    for module in set(MODULES.values()):
        group = click.Group()
        importlib.import_module(_qualified(module)).register(group)
        assert set(group.commands) == {name for name, m in MODULES.items() if m == module}, module


def test_a_vanity_search_does_not_load_the_coordinator():
    """The local search starts in a fraction of a second because `xwpy vanity ...` imports neither
    the other commands nor twisted, cryptography or SQLAlchemy (issue 19, item 5)."""
    code = ("import sys; from xwpy.client.cli import cli; cli.main(['vanity', 'estimate', '1A', '--rate', '1000'], "
            "standalone_mode=False); heavy = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'twisted', 'cryptography', 'sqlalchemy', 'web3', 'OpenSSL'}); "
            "mods = sorted(m for m in sys.modules if m.startswith('xwpy.client.commands.')); print(heavy, mods)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[] []"


def test_a_listing_cuts_its_last_column_only_to_fit_a_terminal():
    from xwpy.client.context import table

    why = "no host alive may run it (2 hosts have run it, 1 host offers too little memory)"
    rows = [[1, "COMPLETED", ""], [12, "PENDING", why]]
    piped = table(rows, ["ID", "STATUS", "WHY"]).splitlines()
    assert piped[2].endswith(why)  # a pipe or a file gets every word
    shown = table(rows, ["ID", "STATUS", "WHY"], width=60).splitlines()
    assert all(len(line) <= 60 for line in shown)
    assert shown[2].endswith("…") and why.startswith(shown[2].split("  ")[-1].rstrip("…"))
    assert table(rows[:1], ["ID", "STATUS", "WHY"], width=60) == table(rows[:1], ["ID", "STATUS", "WHY"])
