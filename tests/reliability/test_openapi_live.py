"""The API description against a live coordinator (issue 14, item 5): schemathesis reads
``/api/v1/openapi.json`` from the coordinator and sends every operation requests generated from it
— valid ones and invalid ones — with real tokens (a user's, an admin's, a host's, as each route
takes). Every answer must be no 5xx, a status the document lists for it, of the media type and
schema it gives.

Bounded and deterministic: a fixed number of examples per operation and role (``XWPY_OPENAPI_EXAMPLES``,
8 by default), derandomized, no shrinking, no health checks that depend on the machine's speed;
long polls are asked not to wait.
"""

from __future__ import annotations

import base64
import hashlib
import os
from types import SimpleNamespace

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance, response_schema_conformance, status_code_conformance,
)

from tests.reliability.ledger import server_errors
from xwpy import archive
from xwpy.protocol import API_PREFIX as API
from xwpy.server import api as api_module
from xwpy.server.api.router import ADMIN, HOST

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("XWPY_OPENAPI_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
WHO = {(r.method.decode(), r.path.replace(":int", "").replace(":sha", "")): r.who
       for r in api_module.build(SimpleNamespace(directory=None)).routes()}


def no_waiting(case) -> None:
    """A long poll (``wait``) answers at once: the test checks answers, not patience."""
    for where in (case.query, case.body if isinstance(case.body, dict) else None,
                  (case.body or {}).get("next") if isinstance(case.body, dict) else None):
        if isinstance(where, dict) and isinstance(where.get("wait"), (int, float)) and where["wait"] > 0:
            where["wait"] = 0


def seed(grid, alice: str, host_token: str) -> dict:
    """Objects of every kind, so that answers carry real ones: an app, data, an upload session, a
    job certified (by the host, by hand) and one pending with a replica running."""
    client, hc = grid.client(alice), grid.client(host_token)
    client.register_app(name="sq", command=["true"], replication=1, quorum=1)
    data = client.put_bytes(b"some data", name="in.txt")["sha256"]
    [done] = client.submit([{"app": "sq", "args": ["1"], "inputs": [{"name": "in.txt", "sha256": data}]}], batch="b1")
    [a] = hc.call("POST", "/work/request", {"slots": 1, "wait": 5})["replicas"]
    tar = archive.from_files({"stdout": b"1\n"})
    report = {"replica_id": a["replica_id"], "exit_code": 0, "result_sha256": hashlib.sha256(tar).hexdigest(),
              "inline": base64.b64encode(tar).decode()}
    assert hc.call("POST", "/work/results", {"results": [report]})["outcome"] == {str(a["replica_id"]): "accepted"}
    [running] = client.submit([{"app": "sq", "args": ["2"]}], batch="b1")
    assert hc.call("POST", "/work/request", {"slots": 1, "wait": 5})["replicas"][0]["job_id"] == running
    upload = client.call("POST", "/uploads", {"sha256": hashlib.sha256(b"0123456789").hexdigest(), "size": 10})
    return {"job_id": done, "running": running, "sha256": data, "upload": upload["upload"], "name": "sq"}


def known_cases(objects: dict) -> list[tuple[str, str, str, dict]]:
    """(method, path, role, Case arguments): requests about the seeded objects."""
    job, sha, up = {"job_id": objects["job_id"]}, {"sha256": objects["sha256"]}, {"upload": objects["upload"]}
    return [
        ("GET", "/apps/{name}", "user", {"path_parameters": {"name": objects["name"]}}),
        ("POST", "/apps/{name}/versions", "user", {"path_parameters": {"name": objects["name"]},
                                                   "body": {"platform": "linux-x86_64", "bundle": objects["sha256"]}}),
        ("GET", "/data/{sha256}", "user", {"path_parameters": sha}),
        ("GET", "/data/{sha256}", "user", {"path_parameters": sha, "headers": {"Range": "bytes=3-"}}),
        ("GET", "/data/{sha256}", "user", {"path_parameters": sha, "headers": {"Range": "bytes=99-"}}),
        ("GET", "/jobs/{job_id}", "user", {"path_parameters": job}),
        ("GET", "/jobs/{job_id}", "admin", {"path_parameters": {"job_id": objects["running"]}}),
        ("GET", "/jobs/{job_id}/result", "user", {"path_parameters": job}),
        ("GET", "/jobs/{job_id}/result", "user", {"path_parameters": {"job_id": objects["running"]}}),
        ("GET", "/uploads/{upload}", "user", {"path_parameters": up}),
        ("PATCH", "/uploads/{upload}", "user", {"path_parameters": up, "headers": {"Upload-Offset": "0"},
                                                "body": b"01234", "media_type": "application/octet-stream"}),
        ("DELETE", "/uploads/{upload}", "user", {"path_parameters": up}),
        ("GET", "/jobs", "user", {"query": {"batch": "b1", "newest": "1"}}),
        ("GET", "/jobs/summary", "admin", {"query": {"all": "1"}}),
        ("GET", "/dashboard/jobs", "admin", {"query": {"all": "1"}}),
        ("POST", "/work/release", "host", {"body": {"replicas": [1, 2, 3]}}),
    ]


def test_every_operation_conforms(grid, ledger):
    grid.start_coordinator()
    alice = grid.user("alice")
    host = grid.client(alice).call("POST", "/work/register", {"name": "fuzz-host", "cpus": 1, "memory": 1 << 30})
    tokens = {"user": alice, "admin": grid.admin_token, "host": host["token"]}
    objects = seed(grid, alice, host["token"])
    ca = str(grid.cfg.ca_cert)
    schema = schemathesis.openapi.from_url(f"{grid.url}{API}/openapi.json", verify=ca)
    session = requests.Session()
    session.verify = ca
    failures: list[str] = []
    # The host's routes first: a user's generated requests may revoke its host (POST
    # /hosts/{host_id}/revoke with a small id), after which its token only gets 401s.
    operations = sorted((result.ok() for result in schema.get_all_operations()),
                        key=lambda op: WHO[(op.method.upper(), op.path)] != HOST)
    for method, path, role, args in known_cases(objects):
        case = schema[path][method].Case(**args)
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {tokens[role]}"}
        response = case.call(base_url=grid.url + API, session=session, timeout=60, verify=ca)
        assert response.status_code < 400 or path.endswith("/result") or "Range" in (args.get("headers") or {}), \
            (method, path, response.status_code, response.text[:300])
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as e:
            failures.append(f"{method} {path} (seeded): {str(e)[:1500]}")
    # Every route but the document's own (schemathesis leaves out the URL it read the schema from).
    assert {(op.method.upper(), op.path) for op in operations} == set(WHO) - {("GET", "/openapi.json")}
    for op in operations:
        who = WHO[(op.method.upper(), op.path)]
        roles = ["host"] if who == HOST else ["admin"] if who == ADMIN else ["user", "admin"]
        for role in roles:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                failures += run(op, mode, session, grid.url + API, tokens[role])
    assert not failures, "\n".join(failures[:20])
    assert not server_errors(grid.coordinator.output()), "a traceback in the coordinator's log"


def run(op, mode, session, base_url: str, token: str) -> list[str]:
    failures: list[str] = []

    @given(case=op.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    def check(case):
        no_waiting(case)
        response = case.call(base_url=base_url, session=session, headers={"Authorization": f"Bearer {token}"},
                             timeout=60, verify=session.verify)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as e:  # every failure is collected: one run reports them all
            failures.append(f"{op.method.upper()} {op.path} ({mode.value}): {str(e)[:1500]}")

    try:
        check()
    except Unsatisfiable:
        assert mode == GenerationMode.NEGATIVE, f"{op.method.upper()} {op.path}: no valid request"
        # Nothing in this operation can be made invalid (no body, no parameter): nothing to send.
    return failures
