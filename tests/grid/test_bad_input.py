"""Hostile and broken requests against a live coordinator: always a 4xx with a JSON error naming
what was wrong — never a 500, a traceback or a hang."""

from __future__ import annotations

import http.client
import json
import os
import ssl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.grid.conftest import SQUARE
from tests.harness import Grid

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    g = Grid(tmp_path_factory.mktemp("bad-input"))
    try:
        g.start_coordinator()
        alice = g.client(g.user("alice"))
        bob = g.user("bob")
        vol = g.user("vol", "worker")
        alice.register_app(name="square", command=SQUARE, replication=1, quorum=1)
        [job] = alice.submit([{"app": "square", "args": ["3"]}])
        host = g.client(vol).call("POST", "/work/register", {"name": "h", "cpus": 1, "memory": 1})
        yield {"grid": g, "alice": alice.endpoint.token, "bob": bob, "vol": vol, "host": host["token"], "job": job}
    finally:
        g.close()


class Raw:
    def __init__(self, grid: Grid):
        ctx = ssl.create_default_context(cafile=str(grid.cfg.ca_cert))
        self.conn = http.client.HTTPSConnection("127.0.0.1", grid.port, context=ctx, timeout=30)

    def __call__(self, method, path, body=None, token=None, headers=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        try:
            self.conn.request(method, path, body=body, headers=h)
            resp = self.conn.getresponse()
            raw = resp.read()
        except Exception:
            self.conn.close()
            raise
        if resp.getheader("connection", "").lower() == "close":
            self.conn.close()
        return resp.status, raw


@pytest.fixture(scope="module")
def raw(live):
    return Raw(live["grid"])


def check_error(status, raw, expect=None, field=None):
    assert 400 <= status < 500, (status, raw[:300])
    if expect is not None:
        assert status == expect, (status, raw[:300])
    body = json.loads(raw)
    assert set(body) >= {"error", "message"} and body["message"]
    assert "Traceback" not in raw.decode()
    if field is not None:
        assert body.get("field") == field, body
    return body


API = "/api/v1"


def test_malformed_json(raw, live):
    check_error(*raw("POST", API + "/jobs", b"{not json", live["alice"]), 400)
    check_error(*raw("POST", API + "/jobs", b"\xff\xfe", live["alice"]), 400)
    check_error(*raw("POST", API + "/jobs", b"", live["alice"]), 400)


def test_wrong_types_name_the_field(raw, live):
    body = check_error(*raw("POST", API + "/jobs", {"jobs": [{"app": "square", "args": [1]}]}, live["alice"]), 400)
    assert body["field"] == "jobs[0].args[0]"
    check_error(*raw("POST", API + "/jobs", {"jobs": [{"app": "square", "replication": "3"}]}, live["alice"]), 400,
                "jobs[0].replication")
    check_error(*raw("POST", API + "/jobs", {"jobs": [{"app": "nope"}]}, live["alice"]), 400, "jobs[0].app")
    check_error(*raw("POST", API + "/jobs", {"jobs": [{"app": "square", "replication": 2, "quorum": 3}]}, live["alice"]), 400)
    check_error(*raw("GET", API + "/jobs?limit=zero", None, live["alice"]), 400, "limit")
    check_error(*raw("GET", API + "/jobs?status=DONE", None, live["alice"]), 400, "status")


def test_oversize_bodies_are_cut_off_before_reading(live):
    r = Raw(live["grid"])
    limit = live["grid"].cfg.limits.max_body_bytes
    # Announced too large: refused on the headers alone.
    status, body = r("POST", API + "/jobs", b"x" * 10, live["alice"], {"Content-Length": str(limit + 1)})
    check_error(status, body, 413)
    r = Raw(live["grid"])
    status, body = r("POST", API + "/jobs", b"[" * (limit + 10), live["alice"])
    check_error(status, body, 413)


def test_unknown_ids_and_paths(raw, live):
    check_error(*raw("GET", API + "/jobs/999999", None, live["alice"]), 404)
    check_error(*raw("GET", API + "/jobs/99999999999999999999999", None, live["alice"]), 404)
    check_error(*raw("GET", API + "/data/" + "0" * 64, None, live["alice"]), 404)
    check_error(*raw("GET", API + "/data/not-a-sha", None, live["alice"]), 400, "sha256")
    check_error(*raw("GET", API + "/nowhere", None, live["alice"]), 404)
    check_error(*raw("DELETE", API + "/jobs", None, live["alice"]), 405)
    check_error(*raw("POST", API + "/jobs/cancel", {"ids": [987654]}, live["alice"]), 404)
    # Chain tasks: for admins, and only where the coordinator runs an oracle (this one does not).
    check_error(*raw("GET", API + "/chain/tasks/1", None, live["alice"]), 403)
    body = check_error(*raw("GET", API + "/chain/tasks/1", None, live["grid"].admin_token), 404)
    assert body["error"] == "no_oracle"


def test_tokens(raw, live):
    check_error(*raw("GET", API + "/jobs"), 401)
    check_error(*raw("GET", API + "/jobs", None, "xwu_forged"), 401)
    check_error(*raw("GET", API + "/jobs", None, None, {"Authorization": "Basic abc"}), 401)
    check_error(*raw("GET", API + "/jobs", None, "x" * 5000), 401)
    # A host token cannot act as its owner, a worker account cannot submit, a user is not admin.
    check_error(*raw("GET", API + "/jobs", None, live["host"]), 403)
    check_error(*raw("POST", API + "/jobs", {"jobs": [{"app": "square"}]}, live["vol"]), 403)
    check_error(*raw("POST", API + "/users", {"login": "eve"}, live["alice"]), 403)
    # A user token cannot pull work.
    check_error(*raw("POST", API + "/work/request", {"slots": 1}, live["alice"]), 403)


def test_another_users_job_does_not_exist_for_you(raw, live):
    job = live["job"]
    check_error(*raw("GET", f"{API}/jobs/{job}", None, live["bob"]), 404)
    check_error(*raw("GET", f"{API}/jobs/{job}/result", None, live["bob"]), 404)
    check_error(*raw("POST", API + "/jobs/cancel", {"ids": [job]}, live["bob"]), 404)
    status, body = raw("GET", API + "/jobs", None, live["bob"])
    assert status == 200 and json.loads(body)["jobs"] == []
    status, _ = raw("GET", f"{API}/jobs/{job}", None, live["alice"])
    assert status == 200


def test_worker_reports_for_replicas_it_does_not_hold_are_ignored(raw, live):
    status, body = raw("POST", API + "/work/results", {"results": [{"replica_id": 123456, "exit_code": 0, "result_sha256": "a" * 64}]}, live["host"])
    assert status == 200 and json.loads(body)["outcome"] == {"123456": "unknown"}
    check_error(*raw("POST", API + "/work/results", {"results": []}, live["host"]), 400, "results")


def test_uploads_must_match_their_name(raw, live):
    check_error(*raw("PUT", API + "/data/" + "0" * 64, b"hello", live["alice"]), 422, "sha256")
    check_error(*raw("PUT", API + "/data/" + "0" * 64 + "?access=everyone", b"hello", live["alice"]), 400, "access")


ENDPOINTS = [
    ("POST", "/jobs", "alice"), ("POST", "/apps", "alice"), ("POST", "/users", None), ("POST", "/jobs/cancel", "alice"),
    ("POST", "/work/register", "vol"), ("POST", "/work/request", "host"), ("POST", "/work/alive", "host"),
    ("POST", "/work/results", "host"), ("POST", "/work/release", "host"),
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=15), inner, max_size=6),
    max_leaves=25,
)
known_keys = st.sampled_from(
    ["jobs", "app", "args", "inputs", "batch", "ids", "name", "command", "limits", "slots", "wait", "held",
     "results", "replica_id", "exit_code", "result_sha256", "inline", "replicas", "login", "role", "cpus", "memory"]
)


@settings(max_examples=int(os.environ.get("XWPY_FUZZ_EXAMPLES", "150")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from(ENDPOINTS), body=st.one_of(json_values, st.dictionaries(known_keys, json_values, max_size=5)))
def test_fuzzed_bodies_never_break_the_server(raw, live, endpoint, body):
    method, path, who = endpoint
    token = live[who] if who else live["grid"].admin_token
    status, reply = raw(method, API + path, body, token)
    assert status < 500, (status, reply[:300])
    if status >= 400:
        check_error(status, reply)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(alphabet="abcdefjosw0123456789/?=&%._-", max_size=40))
def test_fuzzed_paths(raw, live, path):
    status, reply = raw("GET", API + "/" + path, None, live["alice"])
    assert status < 500, (status, reply[:300])
