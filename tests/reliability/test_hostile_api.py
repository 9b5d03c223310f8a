"""Hostile input against EVERY endpoint of a live coordinator (issue 5, hostile input).

The endpoints are enumerated from the router (``Api.routes()``): a route added tomorrow is fuzzed
by these tests without a change here. Bodies are shaped like the protocol message the route parses
(found by probing: the message whose fields the route does not call unknown) with wrong types,
values and sizes; then deeply nested JSON, huge numbers, bytes that are not UTF-8, any content
type; then ids, path segments and query strings; then headers by hand (missing, forged or
duplicated Authorization, lying Content-Length, broken request lines).

Promise: never a 5xx, never a hang, never a traceback in the coordinator's log; every 4xx a JSON
body with "error" and "message"; a 400 about a well-formed JSON body, a query or a path names
the culprit ("field"). Tokens of every role are real, so the parsers behind authentication are
reached. ``XWPY_FUZZ_EXAMPLES`` (150 by default, as in tests/grid/test_bad_input.py) scales the
example counts: 1500 runs ten times as many.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import typing
import urllib.parse
from dataclasses import dataclass, field
from types import SimpleNamespace

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.grid.conftest import SQUARE
from tests.grid.test_bad_input import Raw
from tests.harness import Grid
from tests.reliability import rawhttp
from tests.reliability.ledger import server_errors
from xwpy import archive, protocol
from xwpy.server import api as api_module

pytestmark = pytest.mark.slow

API = protocol.API_PREFIX
SCALE = float(os.environ.get("XWPY_FUZZ_EXAMPLES", "150")) / 150
ROUTES = api_module.build(SimpleNamespace(directory=None)).routes()
PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
MESSAGES = [v for v in vars(protocol).values() if isinstance(v, type) and attrs.has(v)]
# 400s that are about the body as a whole, not one of its fields.
WHOLE_BODY = ("a JSON body is required", "a body is required", "malformed JSON", "malformed HTTP request")


def examples(n: int) -> int:
    return max(5, int(n * SCALE))


fuzz = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)


# -- the grid under attack ---------------------------------------------------------------------------


@dataclass
class Target:
    grid: Grid
    tokens: dict[str, str]  # role -> a real token
    job: int  # a completed job of alice's
    sha: str  # data alice uploaded
    shapes: dict[str, list[type]] = field(default_factory=dict)  # route path -> messages it parses
    sent: int = 0
    fives: list[str] = field(default_factory=list)  # 5xx seen

    def token_for(self, who: str, data) -> str | None:
        roles = {"anon": [None], "user": ["alice", "vol"], "scientist": ["alice"], "admin": ["admin"],
                 "host": ["host"], "user|host": ["alice", "host"]}[who]
        role = data.draw(st.sampled_from(roles), label="role")
        if data.draw(st.integers(0, 9), label="wrong role?") == 0:  # now and then, someone else's token
            role = data.draw(st.sampled_from([None, "alice", "bob", "vol", "host", "admin"]), label="wrong role")
        return None if role is None else self.tokens[role]

    def log_errors(self) -> int:
        return server_errors(self.grid.coordinator.output())


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    g = Grid(tmp_path_factory.mktemp("hostile-api"))
    try:
        g.start_coordinator()
        alice = g.client(g.user("alice"))
        vol = g.user("vol", "worker")
        alice.register_app(name="square", command=SQUARE, replication=1, quorum=1)
        sha = alice.put_bytes(b"hostile input test data", access="public")["sha256"]
        host = g.client(vol).call("POST", "/work/register", {"name": "h", "cpus": 1, "memory": 1 << 34})["token"]
        as_host = g.client(host)
        as_host.call("POST", "/work/hello", {})
        [done] = alice.submit([{"app": "square", "args": ["3"]}])
        [a] = as_host.call("POST", "/work/request", {"slots": 1, "wait": 10})["replicas"]
        result = archive.from_files({"stdout": b"9\n"})
        as_host.call("POST", "/work/results", {"results": [{
            "replica_id": a["replica_id"], "exit_code": 0, "result_sha256": archive_sha(result),
            "inline": base64.b64encode(result).decode()}]})
        assert alice.job(done)["status"] == "COMPLETED"
        alice.submit([{"app": "square", "args": ["4"]}])
        assert as_host.call("POST", "/work/request", {"slots": 1, "wait": 10})["replicas"]  # the host holds work: it may upload
        tokens = {"admin": g.admin_token, "alice": alice.endpoint.token, "bob": g.user("bob"), "vol": vol, "host": host}
        t = Target(g, tokens, done, sha)
        t.shapes = probe_shapes(t)
        yield t
    finally:
        g.close()


def archive_sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def takes_bytes(route) -> bool:
    """A route whose body is the data itself (PUT /data/SHA), not a JSON message: what it refuses
    cannot be held against a body's fields (PUT /hosts/ID/payout-address takes JSON)."""
    return route.method == b"PUT" and route.path.startswith("/data/")


def probe_shapes(t: Target) -> dict[str, list[type]]:
    """For each route taking a JSON body: the messages none of whose fields it calls unknown.
    (Each probe's values are all of the wrong type, so nothing is created or long-polled.)"""
    raw = Raw(t.grid)
    shapes = {}
    for r in ROUTES:
        if r.method not in (b"POST", b"PUT") or "{" in r.path:
            continue
        token = t.tokens[{"anon": "alice", "user": "alice", "scientist": "alice", "admin": "admin",
                          "host": "host", "user|host": "alice"}[r.who]]
        fits = []
        for cls in MESSAGES:
            names = [f.name for f in attrs.fields(cls)]
            if not names:
                continue
            status, reply = raw(r.method.decode(), API + r.path, {n: [[]] for n in names}, token)
            t.sent += 1
            if status < 400 or json.loads(reply).get("message") != "unknown field":
                fits.append(cls)
        shapes[r.path] = fits or MESSAGES
    return shapes


# -- strategies --------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=15,
)
nasty_ints = st.sampled_from([0, -1, 1, 2, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30, 10**400])
nasty_floats = st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e308, 3.5, 121.0])
nasty_strings = st.sampled_from([
    "", " ", "square", "nope", "a" * 65, "x" * 5000, "\x00", "../../etc/passwd", "..", "/", "é" * 70, "\ud800",
    "0" * 64, "A" * 64, "quorum", "verifier:nope", "verifier:" + "v" * 80, "admin", "private", "public", "group",
    "PENDING", "%00", "{python}", "{args}", "-rf", "$(reboot)", "🐍" * 10,
])


def value_of(hint, name: str, depth: int = 0):
    """A value for a field: usually of the declared type (often at its edges), sometimes not."""
    wrong = json_values | nasty_ints | nasty_strings | st.just([[[[[]]]]])
    if name == "wait":  # a valid long poll would hang the fuzzer: at most half a second
        right = st.floats(0, 0.5) | st.sampled_from([-1, 121, 1e9, "1", None])
    else:
        right = right_of(hint, name, depth)
    return st.one_of(right, right, right, wrong)


def right_of(hint, name: str, depth: int):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is int:
        return st.integers(-3, 40) | nasty_ints
    if hint is float:
        return st.floats(-10, 1e4, allow_nan=False) | nasty_floats
    if hint is bool:
        return st.booleans()
    if hint is str:
        return nasty_strings | st.text(max_size=30) | st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True)
    if hint is bytes:
        return st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=20)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return st.one_of(*[right_of(a, name, depth) if a is not type(None) else st.none() for a in args])
    if origin is tuple:
        inner = value_of(args[0], name, depth + 1)
        return st.lists(inner, max_size=4) | st.sampled_from([300, 1025, 4097, 10_001]).map(lambda n: [1] * n)
    if attrs.has(hint):
        return shaped(hint, depth + 1) if depth < 3 else st.just({})
    return json_values


def shaped(cls, depth: int = 0):
    """An object with some of ``cls``'s fields (and now and then one it does not have)."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: value_of(hints[f.name], f.name, depth) for f in attrs.fields(cls)}
    if not fields:
        return st.fixed_dictionaries({}, optional={"bogus": json_values})
    return st.fixed_dictionaries({}, optional={**fields, "\u00fcnknown": json_values})


def deep(n: int, opener: bytes = b"[", closer: bytes = b"]") -> bytes:
    return opener * n + closer * n


bodies_raw = st.one_of(
    st.binary(max_size=200),  # not UTF-8, not JSON
    st.sampled_from([
        b"", b"{", b"nul", b"\xff\xfe{\x00}\x00", '{"jobs": 1}'.encode("utf-16"), b"NaN", b"-Infinity", b"1e999",
        b'{"a": 1e999999}', b"9" * 5000, b'"\\ud800"', b"{}" * 1000, deep(1000), deep(100_000),
        b'{"a":' * 30_000 + b"1" + b"}" * 30_000, b"[" * 50_000, b'{"jobs": [' + deep(5000) + b"]}",
    ]),
)
content_types = st.sampled_from([
    None, "application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/json; charset=latin-1", "application/octet-stream", "\u00e9/\u00e9",
])


def segment(kind: str | None, t: Target):
    known = {"int": [str(t.job)], "sha": [t.sha], None: ["square"]}[kind]
    junk = ["0", "-1", "-0", "00001", "1e3", "0x10", "9" * 18, "9" * 19, "9" * 40, "%31", "..", "%2e%2e",
            "..%2f..%2fetc%2fpasswd", "a" * 300, "%00", "%ff%fe", "%D9%A1", "NaN", "null", "[1]", "'", "*"]
    free = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="?#/"),
                   min_size=1, max_size=30).map(lambda s: urllib.parse.quote(s, safe="%.:@!$&'()*+,;=-_~"))
    return st.sampled_from(known) | st.sampled_from(junk) | free | st.integers(-(2**70), 2**70).map(str)


query_keys = st.sampled_from(["limit", "after", "status", "batch", "all", "access", "name", "wait", "x", ""])
query_values = st.one_of(
    st.sampled_from(["", "0", "1", "-1", "61", "1001", "9" * 30, "zero", "1.5", "DONE", "PENDING", "private", "nope",
                     "../x", "a" * 200, "%00", "%ff", "1;2", "1+2", "1%202"]),
    st.text(max_size=12).map(lambda s: urllib.parse.quote(s)),
)


def query_string(draw_data) -> str:
    pairs = draw_data.draw(st.lists(st.tuples(query_keys, query_values), max_size=4), label="query")
    q = "&".join(f"{urllib.parse.quote(k)}={v}" for k, v in pairs)
    if draw_data.draw(st.integers(0, 9), label="junk query?") == 0:
        q += draw_data.draw(st.sampled_from(["&&", "=&=", "%", "a=%zz", ";", "&wait", "a=1&a=2&a=3"]), label="junk")
    return q


def fill(route, t: Target, data) -> tuple[str, dict[str, str]]:
    """The route's path with each parameter drawn; returns it and the values given."""
    given_ = {}

    def one(m):
        v = data.draw(segment(m.group(2), t), label=m.group(1))
        given_[m.group(1)] = v
        return v

    return PARAM.sub(one, route.path), given_


# -- the checks ----------------------------------------------------------------------------------------


def check(t: Target, route_path: str, status: int, reply: bytes, *, body=None, names=()):
    """Every answer: not 5xx; a 4xx is JSON with error and message; a 400 names its field."""
    if status >= 500:
        t.fives.append(f"{status} on {route_path}: {reply[:200]!r}")
    assert status < 500, (status, route_path, reply[:300])
    assert b"Traceback" not in reply
    if status < 400:
        return
    err = json.loads(reply)
    assert isinstance(err, dict) and isinstance(err.get("error"), str) and err.get("message"), err
    if status != 400:
        return
    if "field" not in err:
        assert err["message"].startswith(WHOLE_BODY), (route_path, err)
        if body is not None:  # the body itself was the problem: it really was not a JSON object one could parse
            assert not well_formed(body) or err["message"] == "a JSON body is required", (route_path, body[:200], err)
        return
    culprit, root = err["field"], _root(err["field"])
    if body is not None and well_formed(body) and isinstance(value := protocol.loads(body), dict):
        if any(culprit == str(k)[:80] for k in value):  # an unknown field is named as sent
            return
    as_field = root.lower().replace("-", "_")  # a header (Upload-Offset) is named as sent; its record's field
    assert root and (root == "body" or root in names or any(root in m.__annotations__ or as_field in m.__annotations__
                                                            for m in MESSAGES)), (route_path, err)


def _root(field_path: str) -> str:
    return re.split(r"[.\[]", field_path, maxsplit=1)[0]


def well_formed(body: bytes) -> bool:
    """JSON the protocol accepts (at most MAX_JSON_DEPTH deep)."""
    try:
        protocol.loads(body)
        return bool(body.strip())
    except ValueError:
        return False


def record(ledger, t: Target, scenario: str, sent_before: int, log_before: int, started: float, **kw):
    ledger.record(scenario, load="every route of the API, real tokens of each role",
                  bad_inputs=t.sent - sent_before,
                  server_errors=len(t.fives) + t.log_errors() - log_before, seconds=time.monotonic() - started, **kw)


# -- the scenarios ---------------------------------------------------------------------------------------


def test_every_route_is_enumerated_and_fuzzed(target):
    """The router lists its routes, and the probe found each JSON route's message."""
    paths = {r.path for r in ROUTES}
    assert {"/jobs", "/work/results", "/data/{sha256:sha}", "/jobs/{job_id:int}"} <= paths
    assert protocol.SubmitJobs in target.shapes["/jobs"] and protocol.Results in target.shapes["/work/results"]


def test_fuzzed_bodies_on_every_route(target, ledger):
    t = target
    sent, logged, started = t.sent, t.log_errors(), time.monotonic()
    t.fives.clear()  # the 5xx seen in this scenario
    raw = Raw(t.grid)

    @settings(fuzz, max_examples=examples(600))
    @given(st.data())
    def run(data):
        route = data.draw(st.sampled_from(ROUTES), label="route")
        path, params = fill(route, t, data) if "{" in route.path else (route.path, {})
        if route.path.startswith("/data/") and route.method == b"PUT":
            body = data.draw(st.binary(max_size=300) | st.just(b"hostile input test data"), label="bytes")
        elif route.method == b"GET" and data.draw(st.integers(0, 3), label="body on a GET?"):
            body = None
        else:
            shapes = t.shapes.get(route.path, MESSAGES)
            value = data.draw(st.sampled_from(shapes).flatmap(shaped) | json_values, label="body")
            body = json.dumps(value).encode()
        ctype = data.draw(content_types, label="content-type")
        token = t.token_for(route.who, data)
        status, reply = raw(route.method.decode(), API + path, body, token,
                            {"Content-Type": ctype} if ctype else None)
        t.sent += 1
        check(t, route.path, status, reply, body=None if takes_bytes(route) else body, names=params)

    try:
        run()
    finally:
        record(ledger, t, "fuzzed JSON bodies, every route", sent, logged, started)
    assert t.log_errors() == logged


def test_malformed_deep_and_huge_bodies_on_every_route(target, ledger):
    """Not JSON, not UTF-8, JSON nested 100,000 deep, numbers of 400 digits, bodies at the size
    limit — on each route, with each content type."""
    t = target
    sent, logged, started = t.sent, t.log_errors(), time.monotonic()
    t.fives.clear()  # the 5xx seen in this scenario
    raw = Raw(t.grid)
    fixed = [deep(100_000), b'{"a":' * 50_000 + b"0" + b"}" * 50_000, b'{"jobs":[{"app":"square","args":' + deep(20_000) + b"}]}",
             b'{"results":[{"replica_id":' + b"9" * 4400 + b"}]}", b'{"slots": 1e999}', b"\xc3\x28", b"{\"a\":\"\xed\xa0\x80\"}"]
    for route in ROUTES:
        path = PARAM.sub(lambda m: {"int": str(t.job), "sha": t.sha}.get(m.group(2), "square"), route.path)
        token = t.tokens[{"anon": "alice", "user": "alice", "scientist": "alice", "admin": "admin", "host": "host",
                          "user|host": "alice"}[route.who]]
        for body in fixed:
            status, reply = raw(route.method.decode(), API + path, body, token)
            t.sent += 1
            check(t, route.path, status, reply, body=None if takes_bytes(route) else body)

    @settings(fuzz, max_examples=examples(250))
    @given(st.data())
    def run(data):
        route = data.draw(st.sampled_from([r for r in ROUTES if r.method in (b"POST", b"PUT")]), label="route")
        path, params = fill(route, t, data) if "{" in route.path else (route.path, {})
        body = data.draw(bodies_raw, label="body")
        status, reply = raw(route.method.decode(), API + path, body, t.token_for(route.who, data),
                            {"Content-Type": data.draw(content_types, label="ct") or "application/json"})
        t.sent += 1
        check(t, route.path, status, reply, body=None if takes_bytes(route) else body, names=params)

    try:
        run()
    finally:
        record(ledger, t, "malformed, 100k-deep and huge bodies, every route", sent, logged, started)
    assert t.log_errors() == logged


def test_fuzzed_ids_paths_and_query_strings(target, ledger):
    t = target
    sent, logged, started = t.sent, t.log_errors(), time.monotonic()
    t.fives.clear()  # the 5xx seen in this scenario
    raw = Raw(t.grid)

    @settings(fuzz, max_examples=examples(500))
    @given(st.data())
    def run(data):
        route = data.draw(st.sampled_from(ROUTES), label="route")
        path, params = fill(route, t, data)
        if data.draw(st.integers(0, 7), label="mangle path?") == 0:
            path = data.draw(st.sampled_from([path + "/", path + "//", "/" + path, path + "/..", path.replace("/", "/./"),
                                              path + "/%2e%2e/users", path.upper()]), label="mangled")
        q = query_string(data)
        method = route.method.decode()
        body = b"hostile" if method == "PUT" else (b"{}" if method == "POST" else None)
        status, reply = raw(method, API + path + ("?" + q if q else ""), body, t.token_for(route.who, data))
        t.sent += 1
        names = set(params) | {k for k, _ in urllib.parse.parse_qsl(q, keep_blank_values=True)}
        check(t, route.path, status, reply, names=names | {"sha256"})

    try:
        run()
    finally:
        record(ledger, t, "fuzzed ids, path segments and query strings, every route", sent, logged, started)
    assert t.log_errors() == logged


def test_fuzzed_headers_and_request_lines(target, ledger):
    """Requests written by hand: missing, forged, duplicated Authorization; lying, negative,
    duplicated Content-Length; odd methods and versions. Each on its own connection. (A
    Content-Length larger than the body sent is a slow body: test_limits.py.)"""
    t = target
    sent, logged, started = t.sent, t.log_errors(), time.monotonic()
    t.fives.clear()  # the 5xx seen in this scenario

    auth_values = st.sampled_from([
        "Bearer {alice}", "Bearer {host}", "Bearer {admin}", "bearer {alice}", "Bearer  {alice}  ", "Bearer", "Bearer ",
        "Basic YWxpY2U6eA==", "{alice}", "Bearer xwu_forged", "Bearer " + "x" * 5000, "Bearer \u00e9\u00e9",
        "Bearer {alice} {alice}", "Token {alice}", "",
    ])

    @settings(fuzz, max_examples=examples(200))
    @given(st.data())
    def run(data):
        route = data.draw(st.sampled_from(ROUTES), label="route")
        path = PARAM.sub(lambda m: {"int": str(t.job), "sha": t.sha}.get(m.group(2), "square"), route.path)
        path += data.draw(st.sampled_from([""] * 6 + ["\u00e9", "\xff\xfe", "\x7f", "?q=\u00e9", "#frag", "\t"]), label="raw bytes")
        method = data.draw(st.sampled_from([route.method.decode()] * 4 + ["HEAD", "OPTIONS", "PATCH", "get", "FOO", "DELETE"]),
                           label="method")
        version = data.draw(st.sampled_from(["HTTP/1.1"] * 5 + ["HTTP/1.0", "HTTP/2.0", "HTTP/9", "FOO"]), label="version")
        body = b'{"slots": 1, "wait": 0}' if method == "POST" else b""
        headers = [("Host", "127.0.0.1")]
        for value in data.draw(st.lists(auth_values, max_size=2), label="authorization"):
            headers.append(("Authorization", value.format(**t.tokens)))
        lengths = data.draw(st.lists(st.sampled_from([str(len(body)), str(len(body))] + [
            "-1", "abc", "1e3", "+2", f" {len(body)}", "0x10", "99999999999999999999999", str(max(0, len(body) - 3)), ""]),
            max_size=2), label="content-length")
        for v in lengths:
            headers.append(("Content-Length", v))
        if not lengths:
            headers.append(("Content-Length", str(len(body))))
        if data.draw(st.booleans(), label="more headers?"):
            headers += data.draw(st.lists(st.sampled_from([
                ("Transfer-Encoding", "gzip"), ("Transfer-Encoding", "chunked"), ("Expect", "100-continue"),
                ("Connection", "close"), ("Content-Type", "application/json"), ("Content-Type", "text/html"),
                ("X-" + "a" * 100, "b" * 4000), ("Cookie", "a=" + ";" * 100), ("Host", ""), ("Range", "bytes=-1"),
            ]), max_size=3), label="extra")
        head = f"{method} {API}{path} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        request = head.encode("latin-1", "replace") + body
        reply = rawhttp.exchange(t.grid, request, head=method == "HEAD", timeout=float(os.environ.get("XWPY_HANG_SECONDS", "30")))
        t.sent += 1
        assert reply is not None, "closed without an answer"
        if method == "HEAD":
            assert reply.status < 500
            return
        check(t, route.path, reply.status, reply.body)

    try:
        run()
    finally:
        record(ledger, t, "fuzzed headers and request lines, every route", sent, logged, started)
    assert t.log_errors() == logged
