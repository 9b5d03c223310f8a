"""Hostile input to the CLI's parsers (issue 5): ``xwpy`` invoked in-process (click's CliRunner)
against a live coordinator with bad ids, counts, names, batch files, paths, URLs, tokens and CA
files. Promise: a bad value is a one-line ``xwpy: error: ...`` (or click's usage error) and the exit
status of its kind — never a traceback, i.e. never an exception other than SystemExit escaping."""

from __future__ import annotations

import json
import os
import re
import time
import traceback
from dataclasses import dataclass, field

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.grid.conftest import SQUARE
from tests.harness import Grid
from tests.reliability.ledger import server_errors
from xwpy.client.cli import cli
from xwpy.client.commands import register
from xwpy.client.exits import Exit, for_client_error

pytestmark = pytest.mark.slow

register(cli)
SCALE = float(os.environ.get("XWPY_FUZZ_EXAMPLES", "150")) / 150
NO_ENV = {k: None for k in ("XWPY_SITE", "XWPY_URL", "XWPY_TOKEN", "XWPY_CA")}
fuzz = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)


@dataclass
class Target:
    grid: Grid
    alice: str
    dir: object  # a directory of prepared files
    sha: str
    job: int
    paths: dict[str, str] = field(default_factory=dict)
    runs: int = 0
    failures: int = 0  # invocations that exited non-zero (cleanly)
    fives: int = 0

    def run(self, argv: list[str], token: str | None = None, url: str | None = None, ca: str | None = None):
        base = ["--url", url if url is not None else self.grid.url, "--token", token if token is not None else self.alice,
                "--ca", ca if ca is not None else str(self.grid.cfg.ca_cert)]
        result = CliRunner().invoke(cli, base + argv, env=NO_ENV, catch_exceptions=True)
        self.runs += 1
        check(result, argv)
        self.failures += result.exit_code != 0
        self.fives += "HTTP 5" in result.output
        return result


def check(result, argv):
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise AssertionError(f"traceback from xwpy {argv!r}:\n{tb}")
    assert "Traceback" not in result.output, (argv, result.output)
    if result.exit_code == 0:
        return
    err = result.stderr.strip()
    if result.exit_code == Exit.USAGE and "Error:" in err:  # click's usage error (CliRunner shows click's own)
        return
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("xwpy: error: "), (argv, result.exit_code, err)
    # The exit status names the kind of error the line reports (README, "Exit status").
    http = re.match(r"xwpy: error: HTTP (\d{3}) (\w+):", lines[0])
    if http is not None:  # the coordinator's answer: 4xx refused, 5xx or damaged data its fault
        assert result.exit_code == for_client_error(int(http[1]), http[2]), (argv, result.exit_code, err)
    else:
        assert result.exit_code in (Exit.FAILED, Exit.USAGE, Exit.UNREACHABLE), (argv, result.exit_code, err)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-cli")
    g = Grid(root)
    try:
        g.start_coordinator()
        alice = g.user("alice")
        c = g.client(alice)
        c.register_app(name="square", command=SQUARE, replication=1, quorum=1)
        sha = c.put_bytes(b"cli test data", access="public")["sha256"]
        [job] = c.submit([{"app": "square", "args": ["2"]}])
        files = root / "files"
        files.mkdir()
        (files / "data.txt").write_text("some data\n")
        (files / "empty").write_bytes(b"")
        (files / "binary").write_bytes(bytes(range(256)) * 4)
        (files / "not-a-cert.pem").write_text("-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n")
        (files / "bundle").mkdir()
        (files / "bundle" / "run.py").write_text("print(1)\n")
        os.symlink("/etc/passwd", files / "bundle" / "link")
        os.mkfifo(files / "fifo")
        # Every path a command may write to is under this test's directory: never "/" or
        # "/dev/null" (a `data get SHA /dev/null` once replaced the device with a file).
        paths = {
            "file": str(files / "data.txt"), "empty": str(files / "empty"), "binary": str(files / "binary"),
            "dir": str(files / "bundle"), "missing": str(files / "missing"), "missing-dir": str(files / "no" / "such"),
            "fifo": str(files / "fifo"), "blank": "", "dash": "-", "not-a-cert": str(files / "not-a-cert.pem"),
            "dir-slash": str(files / "bundle") + "/",
        }
        yield Target(g, alice, files, sha, job, paths)
    finally:
        g.close()


def record(ledger, t: Target, scenario: str, runs: int, started: float):
    ledger.record(scenario, load="the xwpy CLI in-process against a live coordinator", bad_inputs=t.runs - runs,
                  server_errors=t.fives + server_errors(t.grid.coordinator.output()), seconds=time.monotonic() - started)


# -- strategies ----------------------------------------------------------------------------------------

counts = st.sampled_from(["0", "-1", "1", "2", "3", "32", "33", "256", "257", "1e3", "abc", "", " 1", "0x10", "9" * 30,
                          "1.5", "nan", "inf", "-0", "\u0661"]) | st.integers(-(10**20), 10**20).map(str)
floats = st.sampled_from(["0", "-1", "0.5", "nan", "inf", "-inf", "1e308", "abc", ""])
ids = st.sampled_from(["1", "0", "-1", "9" * 19, "9" * 40, "abc", "", "1.0", "0x1", "--", "-5"]) | st.integers(-(10**20), 10**20).map(str)
names = st.sampled_from(["square", "nope", "", "a" * 65, "../x", "bad name!", "é", "-x", "--", "b1", "x" * 5000, ".hidden",
                         "a/b", "{python}", "$(id)"])
shas = st.sampled_from(["0" * 64, "A" * 64, "", "xyz", "0" * 63, "0" * 65, "../" * 10]) | st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
texts = st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=20)


def path_of(t: Target):
    """A prepared path (not the FIFO: reading one waits for a writer, as it should)."""
    return st.sampled_from(sorted(set(t.paths) - {"fifo"})).map(lambda k: t.paths[k])


def options(spec: dict) -> st.SearchStrategy[list[str]]:
    """Some of the options in ``spec`` (name -> value strategy, or None for a flag), in any order."""
    def one(item):
        name, values = item
        return st.just([name]) if values is None else values.map(lambda v: [name, v])

    return st.lists(st.sampled_from(sorted(spec.items(), key=lambda kv: kv[0])).flatmap(one), max_size=4).map(
        lambda parts: [a for p in parts for a in p])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=4), max_leaves=12)


def job_items(t: Target):
    spec = {
        "args": st.lists(texts | json_values, max_size=3) | json_values,
        "inputs": st.dictionaries(names, path_of(t) | shas | json_values, max_size=2) | json_values,
        "replication": counts.map(lambda v: int(v) if v.lstrip("-").isdigit() else v) | json_values,
        "quorum": st.integers(-3, 40) | json_values, "bogus": json_values,
    }
    return st.fixed_dictionaries({"app": st.just("square") | names | json_values}, optional=spec) | json_values


def batch_file(t: Target):
    return st.one_of(
        st.binary(max_size=100),
        st.lists(job_items(t), max_size=4).map(lambda items: json.dumps(items).encode()),
        st.lists(job_items(t), max_size=4).map(lambda items: "\n".join(json.dumps(i) for i in items).encode()),
        st.sampled_from([b"", b"[]", b"{}", b"\xff\xfe\x00", b"[" * 100_000 + b"]" * 100_000, b'{"app":' * 5000,
                         b"# only a comment\n", b"[1, 2]", b'"square"', "[\"\u00e9\"]".encode("latin-1"),
                         json.dumps([{"app": "square", "args": ["1"]}] * 3).encode("utf-16")]),
    )


def commands(t: Target):
    submit = st.tuples(st.just(["submit"]), options({
        "--replication": counts, "--quorum": counts, "--max-replicas": counts, "--max-errors": counts, "--batch": names,
        "-i": st.tuples(names, path_of(t) | shas).map(lambda nv: f"{nv[0]}={nv[1]}") | texts, "--json": None,
    }), st.lists(names | texts, max_size=3)).map(lambda p: p[0] + p[1] + ["--"] + p[2])
    status = st.tuples(st.just(["status"]), st.lists(ids, max_size=1),
                       options({"--batch": names, "--status": names | st.just("PENDING"), "--json": None})).map(
        lambda p: p[0] + p[1] + p[2])
    result = st.tuples(st.just(["result"]), ids | st.just(str(t.job)),
                       options({"-o": path_of(t), "-x": path_of(t)})).map(lambda p: p[0] + [p[1]] + p[2])
    cancel = st.tuples(st.just(["cancel"]), st.lists(ids, max_size=3), options({"--batch": names})).map(
        lambda p: p[0] + p[1] + p[2])
    data_get = st.tuples(shas | st.just(t.sha), path_of(t)).map(lambda p: ["data", "get", p[0], p[1]])
    data_put = st.tuples(path_of(t), options({"--name": names | texts, "--access": names | st.just("public")})).map(
        lambda p: ["data", "put", p[0]] + p[1])
    app_register = st.tuples(names, options({
        "--replication": counts, "--quorum": counts, "--wall": counts, "--cpu": counts, "--memory": counts,
        "--output": counts, "--processes": counts, "--validator": names | st.just("verifier:nope"),
        "--bundle": path_of(t), "--access": names, "--adaptive": None,
    }), st.lists(texts, max_size=3)).map(lambda p: ["app", "register", p[0]] + p[1] + ["--"] + (p[2] or ["true"]))
    users_add = st.tuples(names, options({"--role": names | st.just("worker"), "--group": names | texts})).map(
        lambda p: ["users", "add", p[0]] + p[1])
    return st.one_of(submit, status, result, cancel, data_get, data_put, app_register, users_add,
                     st.sampled_from([["whoami"], ["hosts"], ["app", "list"], ["app", "show", "nope"], ["data", "list"]]))


# -- the scenarios -------------------------------------------------------------------------------------


def test_fuzzed_commands_and_options(target, ledger, tmp_path):
    t = target
    runs, started = t.runs, time.monotonic()
    os.chdir(tmp_path)  # `xwpy result` writes beside the caller

    @settings(fuzz, max_examples=max(10, int(150 * SCALE)))
    @given(commands(t), st.booleans())
    def run(argv, as_admin):
        t.run(argv, token=t.grid.admin_token if as_admin or argv[:2] == ["users", "add"] else None)

    try:
        run()
    finally:
        record(ledger, t, "fuzzed CLI commands, ids, counts, names and paths", runs, started)


def test_fuzzed_batch_files(target, ledger, tmp_path):
    t = target
    runs, started = t.runs, time.monotonic()
    batch = tmp_path / "jobs.json"

    @settings(fuzz, max_examples=max(10, int(100 * SCALE)))
    @given(batch_file(t), options({"--replication": counts, "--quorum": counts, "--batch": names}))
    def run(content, opts):
        batch.write_bytes(content)
        t.run(["submit", "-f", str(batch), *opts])

    try:
        run()
    finally:
        record(ledger, t, "fuzzed batch files for xwpy submit -f", runs, started)


BAD = [  # each must fail: one line, exit status 1 (or a usage error), no traceback
    (["whoami"], {"url": "https://127.0.0.1:99999"}),
    (["whoami"], {"url": "https://[::1"}),
    (["whoami"], {"url": "http://127.0.0.1:1"}),
    (["whoami"], {"url": "https://"}),
    (["whoami"], {"url": "not a url"}),
    (["whoami"], {"url": "https://127.0.0.1:1"}),  # nobody listens there
    (["whoami"], {"token": "\u00e9\u20ac"}),
    (["whoami"], {"token": "a\nb"}),
    (["whoami"], {"token": ""}),
    (["whoami"], {"token": "x" * 100_000}),
    (["whoami"], {"ca": "not-a-cert"}),
    (["whoami"], {"ca": "empty"}),
    (["whoami"], {"ca": "binary"}),
    (["whoami"], {"ca": "missing"}),
    (["whoami"], {"ca": "fifo"}),  # not a regular file: refused before it is opened
    (["data", "get", "SHA", "missing-dir"], {}),
    (["data", "get", "SHA", "dir"], {}),
    (["data", "put", "dir"], {}),
    (["data", "put", "missing"], {}),
    (["submit", "-f", "binary"], {}),
    (["submit", "-f", "empty"], {}),
    (["data", "get", "SHA", "fifo"], {}),
    (["submit", "square", "-i", "x=dir"], {}),
    (["submit", "square", "-i", "=file"], {}),
    (["submit", "square", "--replication", "0"], {}),
    (["submit", "square", "--quorum", "33"], {}),
    (["result", "JOB", "-x", "file"], {}),
    (["result", "JOB", "-o", "missing-dir"], {}),
    (["result", "-1"], {}),
    (["status", "99999999999999999999999"], {}),
    (["app", "register", "b", "--bundle", "missing", "--", "true"], {}),
    (["app", "register", "b", "--memory", "1", "--", "true"], {}),
    (["app", "register", "b", "--quorum", "3", "--replication", "2", "--", "true"], {}),
]


def test_known_bad_values(target, ledger, tmp_path):
    """Bad URLs, tokens, CA files and paths each give one line and a non-zero status."""
    t = target
    runs, started = t.runs, time.monotonic()
    os.chdir(tmp_path)
    deep = tmp_path / "deep.json"
    deep.write_bytes(b"[" * 100_000 + b"]" * 100_000)
    cases = [(["submit", "-f", str(deep)], {})]
    # Fresh missing paths: the fuzz tests may have written files at the shared ones.
    paths = dict(t.paths, missing=str(tmp_path / "missing"), **{"missing-dir": str(tmp_path / "no" / "such")})
    for argv, kw in BAD:
        argv = [a if a in ("get", "put") else paths.get(a, a) for a in argv]
        argv = [t.sha if a == "SHA" else str(t.job) if a == "JOB" else a for a in argv]
        if "ca" in kw:
            kw = {"ca": paths[kw["ca"]]}
        cases.append((argv, kw))
    outcomes = []
    try:
        for argv, kw in cases:
            outcomes.append((argv, kw, t.run(argv, **kw)))
    finally:
        record(ledger, t, "known bad URLs, tokens, CA files, paths and counts", runs, started)
    passed = [(argv, kw) for argv, kw, r in outcomes if r.exit_code == 0]
    assert not passed, f"accepted: {passed}"
