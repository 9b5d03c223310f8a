"""Who may do what, against a real coordinator: every endpoint of the API × every role — admin, two
users, a worker account, a host, nobody, a forged token — plus malformed Authorization headers.
What is not allowed is refused (401 without a valid token, 403 for the wrong role, 404 for another
user's object — which, as far as you know, does not exist; 400 for a submission naming another
user's private app), and no response carries another user's objects.

Three more roles hold tokens that were good and are no longer: an account whose token expired
(created with an expiry in the past), a disabled account, and a revoked host. Each gets 401 on
every route that takes a token, its JSON body saying which (``expired``, ``disabled``,
``revoked``). Disabling, enabling, rotating and revoking are routes of the matrix too.

And TLS only: plain HTTP to the HTTPS port gets no answer from the API, and a worker refuses a
coordinator its CA does not vouch for, without sending its token. (The CLI's wrong-CA error is
tests/grid/test_cli.py::test_wrong_ca_or_token.)
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import ssl
import threading
import time
import types
from dataclasses import dataclass

import pytest

from tests.harness import wait_for
from tests.reliability.ledger import server_errors
from xwpy import archive, pki
from xwpy.protocol import API_PREFIX as API
from xwpy.server import api as api_module
from xwpy.server.directory import Directory

pytestmark = pytest.mark.slow

ROLES = ("admin", "alice", "bob", "worker", "host", "anonymous", "forged", "expired", "disabled", "revoked")
SPENT = {"expired": "expired", "disabled": "disabled", "revoked": "revoked"}  # role -> the refusal's code
# Who owns what: these strings are in alice's objects (app command, job args, data name) and in the
# name of the worker account's host; no one else may ever see them.
ALICE_SECRETS = ("alice-secret-arg", "alicesecretdata.txt", "alice-private-app-cmd")
VOL_SECRETS = ("vol-secret-host",)
PAYOUT = "0x" + "ab" * 20


@dataclass
class Entry:
    method: str
    path: str  # the route, as registered
    url: str  # a request to it
    expect: dict[str, int]  # role -> status
    body: object = None  # a JSON value, or bytes
    per_role: bool = False  # the body names the role: {role} in it is replaced
    urls: dict[str, str] | None = None  # a request of its own for these roles (deletions: one object each)


def statuses(ok=(), **refused) -> dict[str, int]:
    """``ok`` roles get 200; every other role the status given (401 for nobody and forged tokens)."""
    out = {"anonymous": 401, "forged": 401, **{role: 401 for role in SPENT}}
    for role in ok:
        out[role] = 200
    for role, status in refused.items():
        out[role] = status
    return out


USERS = ("admin", "alice", "bob", "worker")


def matrix(ids) -> list[Entry]:
    f403 = {r: 403 for r in ("alice", "bob", "worker", "host")}
    host_only = statuses(ok=("host",), **{r: 403 for r in USERS})
    return [
        Entry("GET", "/ping", "/ping", {r: 200 for r in ROLES}),
        Entry("GET", "/health", "/health", {r: 200 for r in ROLES}),
        # The API's description: public, as /ping is (it says what is checked, nothing stored).
        Entry("GET", "/openapi.json", "/openapi.json", {r: 200 for r in ROLES}),
        Entry("GET", "/metrics", "/metrics", statuses(ok=("admin",), **f403)),
        Entry("GET", "/users/me", "/users/me", statuses(ok=USERS, host=403)),
        Entry("GET", "/users", "/users", statuses(ok=("admin",), **f403)),
        Entry("POST", "/users", "/users", statuses(ok=("admin",), **f403), {"login": "new-{role}"}, per_role=True),
        # carol is disabled then enabled again, and her token rotated: an admin's doing (a user
        # rotates their own token only: tests/grid/test_tokens.py).
        Entry("POST", "/users/{login}/disable", "/users/carol/disable", statuses(ok=("admin",), **f403)),
        Entry("POST", "/users/{login}/enable", "/users/carol/enable", statuses(ok=("admin",), **f403)),
        Entry("POST", "/users/{login}/token", "/users/carol/token", statuses(ok=("admin",), **f403), {}),
        Entry("POST", "/apps", "/apps", statuses(ok=("admin", "alice", "bob"), worker=403, host=403),
              {"name": "app-of-{role}", "command": ["true"]}, per_role=True),
        Entry("GET", "/apps", "/apps", statuses(ok=USERS, host=403)),
        Entry("GET", "/apps/{name}", "/apps/alice-app", statuses(ok=("admin", "alice"), bob=404, worker=404, host=403)),
        Entry("POST", "/apps/{name}/versions", "/apps/alice-app/versions",
              statuses(ok=("admin", "alice"), bob=404, worker=403, host=403),
              {"platform": "linux-{role}", "bundle": ids.alice_data}, per_role=True),
        Entry("PUT", "/data/{sha256:sha}", "/data/{sha}", statuses(ok=("admin", "alice", "bob"), worker=403, host=403),
              b"the data of {role}", per_role=True),
        Entry("GET", "/data/{sha256:sha}", f"/data/{ids.alice_data}",
              statuses(ok=("admin", "alice"), bob=404, worker=404, host=404)),
        Entry("GET", "/data", "/data", statuses(ok=("admin", "alice", "bob"), worker=403, host=403)),
        # Deleting: alice's own (each role its own target, else the first deletion would answer the
        # others); an admin any owner's; bob's attempt on alice's is a 404 (it does not exist to him).
        Entry("DELETE", "/data/{sha256:sha}", f"/data/{ids.deletable_data['alice']}",
              statuses(ok=("admin", "alice"), bob=404, worker=403, host=403),
              urls={r: f"/data/{sha}" for r, sha in ids.deletable_data.items()}),
        Entry("DELETE", "/jobs/{job_id:int}", f"/jobs/{ids.deletable_jobs['alice']}",
              statuses(ok=("admin", "alice"), bob=404, worker=403, host=403),
              urls={r: f"/jobs/{jid}" for r, jid in ids.deletable_jobs.items()}),
        Entry("DELETE", "/batches/{batch}", "/batches/del-alice",
              statuses(ok=("admin", "alice"), bob=404, worker=403, host=403),
              urls={r: f"/batches/del-{r}" for r in ("admin", "alice", "bob")}),
        # Resumable uploads: a user opens one as with PUT /data; a worker account may not, nor a host
        # that holds no work; a session is its opener's alone (another's id, or an unknown one: 404).
        Entry("POST", "/uploads", "/uploads", statuses(ok=("admin", "alice", "bob"), worker=403, host=403),
              {"sha256": "ab" * 32, "size": 16}),
        Entry("GET", "/uploads/{upload}", "/uploads/" + "A" * 22, statuses(**{r: 404 for r in USERS}, host=404)),
        Entry("PATCH", "/uploads/{upload}", "/uploads/" + "A" * 22,  # without its Upload-Offset header
              statuses(**{r: 400 for r in USERS}, host=400), b"sixteen bytes..."),
        Entry("DELETE", "/uploads/{upload}", "/uploads/" + "A" * 22, statuses(**{r: 404 for r in USERS}, host=404)),
        # Another's private input: 400 naming it (bob). A job no host alive could run (alice-app's
        # memory) is refused too, so this submits to the public app: what a host is handed must not
        # carry alice's secrets.
        Entry("POST", "/jobs", "/jobs", statuses(ok=("admin", "alice"), bob=400, worker=403, host=403),
              {"jobs": [{"app": "public-app", "args": ["x"], "inputs": [{"name": "in.txt", "sha256": ids.alice_data}]}]}),
        # all=1: everyone's jobs — for an admin; anyone else still sees their own only.
        Entry("GET", "/jobs", "/jobs?all=1", statuses(ok=USERS, host=403)),
        Entry("GET", "/jobs/summary", "/jobs/summary?all=1&batch=alice-batch", statuses(ok=USERS, host=403)),
        Entry("GET", "/jobs/{job_id:int}", f"/jobs/{ids.alice_job}", statuses(ok=("admin", "alice"), bob=404, worker=404, host=403)),
        Entry("GET", "/jobs/{job_id:int}/result", f"/jobs/{ids.certified_job}/result",
              statuses(ok=("admin", "alice"), bob=404, worker=404, host=403)),
        # Someone else's job is answered as "missing", as a deleted one is (tests/grid/test_futures.py).
        Entry("POST", "/jobs/wait", "/jobs/wait", statuses(ok=USERS, host=403),
              {"ids": [ids.alice_job]}),
        Entry("POST", "/jobs/cancel", "/jobs/cancel", statuses(ok=("admin", "alice"), bob=404, worker=403, host=403),
              {"ids": [ids.cancel_job]}),
        Entry("GET", "/hosts", "/hosts", statuses(ok=USERS, host=403)),
        # The worker account's spare host: revoked by an admin, then (again: no change) by its owner.
        Entry("POST", "/hosts/{host_id:int}/revoke", f"/hosts/{ids.spare_host}/revoke",
              statuses(ok=("admin", "worker"), alice=404, bob=404, host=403)),
        # Where a host's share of the pool is paid: the host itself, its owner, an admin.
        Entry("PUT", "/hosts/{host_id:int}/payout-address", f"/hosts/{ids.host}/payout-address",
              statuses(ok=("admin", "worker", "host"), alice=404, bob=404), {"address": PAYOUT}),
        # Payout proofs: only of the caller's hosts' addresses (alice's and bob's are not theirs); this
        # site runs no oracle, so those who may ask learn that (404 no_oracle).
        Entry("GET", "/payouts/{account}", f"/payouts/{PAYOUT}", statuses(admin=404, alice=404, bob=404,
                                                                          worker=404, host=404)),
        Entry("GET", "/payouts/{account}/{epoch:int}", f"/payouts/{PAYOUT}/1",
              statuses(admin=404, alice=404, bob=404, worker=404, host=404)),
        Entry("GET", "/stats", "/stats", statuses(ok=("admin",), **f403)),
        # This site runs no oracle: an admin learns so (404 no_oracle), the others are refused first.
        Entry("GET", "/chain/tasks/{task:int}", "/chain/tasks/1", statuses(admin=404, **f403)),
        Entry("GET", "/chain/tasks", "/chain/tasks", statuses(admin=404, **f403)),
        # The dashboard's reads: any user (each sees their own; the feed and throughput are figures).
        Entry("GET", "/dashboard/site", "/dashboard/site", statuses(ok=USERS, host=403)),
        Entry("GET", "/dashboard/feed", "/dashboard/feed?wait=0", statuses(ok=USERS, host=403)),
        Entry("GET", "/dashboard/jobs", "/dashboard/jobs?all=1", statuses(ok=USERS, host=403)),
        Entry("GET", "/dashboard/hosts", "/dashboard/hosts", statuses(ok=USERS, host=403)),
        Entry("GET", "/dashboard/throughput", "/dashboard/throughput", statuses(ok=USERS, host=403)),
        Entry("POST", "/work/register", "/work/register", statuses(ok=USERS, host=403),
              {"name": "host-of-{role}", "cpus": 1, "memory": 1}, per_role=True),
        Entry("POST", "/work/hello", "/work/hello", host_only, {}),
        Entry("POST", "/work/request", "/work/request", host_only, {"slots": 1, "wait": 0}),
        Entry("POST", "/work/alive", "/work/alive", host_only, {"held": []}),
        Entry("POST", "/work/results", "/work/results", host_only,
              {"results": [{"replica_id": 987654321, "exit_code": 1, "error": "not mine"}]}),
        Entry("POST", "/work/release", "/work/release", host_only, {"replicas": []}),
        # A presigned URL of the site's object store: a host's only; this site keeps its blobs itself (404).
        Entry("POST", "/work/blob-url", "/work/blob-url", statuses(host=404, **{r: 403 for r in USERS}),
              {"replica_id": 987654321, "sha256": "0" * 64}),
    ]


def registered_routes():
    """Every route the coordinator serves, read from the router itself."""
    api = api_module.build(types.SimpleNamespace(directory=Directory()))
    return api._routes


class Raw:
    def __init__(self, grid):
        self.ctx = ssl.create_default_context(cafile=str(grid.cfg.ca_cert))
        self.port = grid.port

    def __call__(self, method, path, body=None, headers=None):
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.ctx, timeout=30)
        try:
            conn.request(method, API + path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()


@dataclass
class Site:
    tokens: dict[str, str | None]
    alice_data: str = ""
    alice_job: int = 0
    certified_job: int = 0
    cancel_job: int = 0
    spare_host: int = 0
    host: int = 0  # the "host" role's
    deletable_jobs: dict[str, int] | None = None  # alice's, one for each of admin, alice, bob to try
    deletable_data: dict[str, str] | None = None
    deletable_batches: dict[str, list[int]] | None = None


def build_site(grid) -> Site:
    grid.start_coordinator()
    alice = grid.client(grid.user("alice"))
    bob = grid.user("bob")
    vol = grid.user("vol", "worker")
    # Any volunteer's host may run any job, and is handed its args and input names: alice's app
    # asks for more memory than any host here offers, so her jobs stay PENDING and no host sees them.
    # (They are submitted before the host registers: with hosts alive and none big enough, such a
    # submission is refused at once.)
    alice.register_app(name="alice-app", access="private", replication=1, quorum=1, limits={"memory_bytes": 1 << 40},
                       command=["{python}", "-c", "print('alice-private-app-cmd')", "{args}"])
    alice.register_app(name="public-app", command=["true"], replication=1, quorum=1)
    alice_data = alice.put_bytes(b"alice's secret bytes", name="alicesecretdata.txt")["sha256"]
    alice_jobs = alice.submit([
        {"app": "alice-app", "args": [arg], "inputs": [{"name": "alicesecretdata.txt", "sha256": alice_data}]}
        for arg in ("alice-secret-arg", "alice-secret-arg-2")
    ], batch="alice-batch")
    # What admin, alice and bob each try to delete (alice's, all): a job, a batch, data.
    deleters = ("admin", "alice", "bob")
    deletable = (dict(zip(deleters, alice.submit([{"app": "alice-app", "args": [f"del-{r}"]} for r in deleters]))),
                 {r: alice.submit([{"app": "alice-app", "args": ["b"]}], batch=f"del-{r}") for r in deleters},
                 {r: alice.put_bytes(f"alice's data for {r} to delete".encode())["sha256"] for r in deleters})
    host = grid.client(vol).call("POST", "/work/register", {"name": "vol-secret-host", "cpus": 1, "memory": 1 << 30})
    forged = "xwu_" + hashlib.sha256(os.urandom(16)).hexdigest()[:43]
    admin = grid.client()
    grid.user("carol")
    expired = admin.add_user("expired", expires_at=time.time() - 1)["token"]
    disabled = grid.user("disabled")
    admin.set_disabled("disabled", True)
    revoked = grid.client(vol).call("POST", "/work/register", {"name": "vol-revoked-host", "cpus": 1, "memory": 1 << 30})
    admin.revoke_host(revoked["host_id"])
    spare = grid.client(vol).call("POST", "/work/register", {"name": "vol-spare-host", "cpus": 1, "memory": 1 << 30})
    s = Site({"admin": grid.admin_token, "alice": alice.endpoint.token, "bob": bob, "worker": vol,
              "host": host["token"], "anonymous": None, "forged": forged, "expired": expired, "disabled": disabled,
              "revoked": revoked["token"]})
    s.spare_host = spare["host_id"]
    s.host = host["host_id"]
    s.alice_data = alice_data
    [s.alice_job, s.cancel_job] = alice_jobs
    s.deletable_jobs, s.deletable_batches, s.deletable_data = deletable
    # A certified job of alice's, by the host acting by hand: pull it, report a result inline.
    [s.certified_job] = alice.submit([{"app": "public-app", "args": ["alice-secret-arg-3"]}])
    hc = grid.client(host["token"])
    [a] = hc.call("POST", "/work/request", {"slots": 1, "wait": 5})["replicas"]
    assert a["job_id"] == s.certified_job
    tar = archive.from_files({"stdout": b"alice-secret-arg-3 result\n"})
    import base64

    report = {"replica_id": a["replica_id"], "exit_code": 0, "result_sha256": hashlib.sha256(tar).hexdigest(),
              "inline": base64.b64encode(tar).decode()}
    assert hc.call("POST", "/work/results", {"results": [report]})["outcome"] == {str(a["replica_id"]): "accepted"}
    assert alice.job(s.certified_job)["status"] == "COMPLETED"
    return s


def malformed(tokens: dict) -> list[dict]:
    alice, hosttok = tokens["alice"], tokens["host"]
    return [
        {},  # no Authorization at all
        {"Authorization": "Basic " + "YWxpY2U6cGFzc3dvcmQ="},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Token {alice}"},  # a real token, the wrong scheme
        {"Authorization": f"Bearer {alice[:-1]}{'A' if alice[-1] != 'A' else 'B'}"},  # one character off
        {"Authorization": f"Bearer {alice[:20]}"},  # truncated
        {"Authorization": f"Bearer xwu_{hosttok.split('_', 1)[1]}"},  # a host token passed off as a user's
        {"Authorization": "Bearer " + "x" * 5000},
        {"Authorization": "Bearer \u00e9\u00e8"},  # not ASCII (latin-1 on the wire)
    ]


def test_rights_matrix(grid, ledger):
    started = time.monotonic()
    site = build_site(grid)
    raw = Raw(grid)
    entries = matrix(site)
    routes = registered_routes()

    # Every route has exactly one entry, and every entry a route: a new endpoint without a line
    # here fails this test.
    for e in entries:
        assert set(e.expect) == set(ROLES), f"{e.method} {e.path}: an expectation for every role"
    covered = {}
    for r in routes:
        hits = [e for e in entries if e.method.encode() == r.method and r.pattern.fullmatch(
            API + e.url.replace("{sha}", "0" * 64).split("?")[0])]
        assert hits, f"no rights-matrix entry for {r.method.decode()} {r.pattern.pattern}"
        covered[id(r)] = hits
    assert len(routes) == len(entries), "an entry matches no route (or two)"

    refused = unexpected = leaks = 0
    failures = []
    all_tokens = [t for t in site.tokens.values() if t]
    for e in entries:
        for role in ROLES:
            token = site.tokens[role]
            body, url = e.body, (e.urls or {}).get(role, e.url)
            if e.per_role:
                body = (body.replace(b"{role}", role.encode()) if isinstance(body, bytes)
                        else json.loads(json.dumps(body).replace("{role}", role)))
            if isinstance(body, bytes):
                url = url.replace("{sha}", hashlib.sha256(body).hexdigest())
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            status, text = raw(e.method, url, body, headers)
            want = e.expect[role]
            if want >= 400:
                refused += 1
            if status != want:
                unexpected += 1
                failures.append(f"{role:9} {e.method} {e.url}: {status} (want {want}) {text[:150]!r}")
            # No data leaks: another user's objects never show, nor any token but a new one.
            shown = text.decode("utf-8", "replace")
            forbidden_strings = list(all_tokens)  # (a new user's or host's token, once, is fine)
            if role not in ("alice", "admin"):
                forbidden_strings += ALICE_SECRETS
            if role not in ("worker", "admin"):
                forbidden_strings += VOL_SECRETS
            seen = [s for s in forbidden_strings if s in shown]
            if seen:
                leaks += 1
                failures.append(f"{role:9} {e.method} {e.url}: response shows {[x[:12] for x in seen]}")
            if status >= 400:
                err = json.loads(text)
                assert set(err) >= {"error", "message"}, (role, e.url, text)
                if role in SPENT and status == 401 and err["error"] != SPENT[role]:
                    failures.append(f"{role:9} {e.method} {e.url}: refused as {err['error']!r}, not {SPENT[role]!r}")

    # Malformed and forged Authorization headers, on every route that takes a token.
    for e in entries:
        if e.expect["anonymous"] != 401:
            continue
        for headers in malformed(site.tokens):
            body = e.body
            if e.per_role:
                body = body.replace(b"{role}", b"x") if isinstance(body, bytes) else json.loads(json.dumps(body).replace("{role}", "x"))
            url = e.url.replace("{sha}", hashlib.sha256(body).hexdigest()) if isinstance(body, bytes) else e.url
            try:
                status, text = raw(e.method, url, body, headers)
            except UnicodeEncodeError:  # http.client will not even send it
                continue
            refused += 1
            if status != 401:
                unexpected += 1
                failures.append(f"malformed {headers} {e.method} {e.url}: {status} {text[:150]!r}")
            if any(s in text.decode("utf-8", "replace") for s in ALICE_SECRETS + VOL_SECRETS + tuple(all_tokens)):
                leaks += 1

    # Nothing refused took effect; nor did cancelling alice's batch by name, as bob.
    assert grid.client(site.tokens["bob"]).cancel(batch="alice-batch") == []
    admin = grid.client()
    # Deleted: gone for good, blobs too; what bob tried to delete is still there.
    for r in ("admin", "alice"):
        for jid in (site.deletable_jobs[r], *site.deletable_batches[r]):
            assert raw("GET", f"/jobs/{jid}", headers={"Authorization": f"Bearer {grid.admin_token}"})[0] == 404
        assert not (grid.cfg.blobs / site.deletable_data[r][:2] / site.deletable_data[r][2:4] / site.deletable_data[r]).exists()
    assert admin.job(site.deletable_jobs["bob"])["status"] == "PENDING"
    assert admin.job(site.deletable_batches["bob"][0])["status"] == "PENDING"
    assert (grid.cfg.blobs / site.deletable_data["bob"][:2] / site.deletable_data["bob"][2:4] / site.deletable_data["bob"]).exists()
    assert admin.job(site.alice_job)["status"] == "PENDING" and admin.job(site.cancel_job)["status"] == "CANCELLED"
    logins = {u["login"] for u in admin.users()}
    assert "new-admin" in logins and not logins & {f"new-{r}" for r in ROLES if r != "admin"}
    apps = {a["name"] for a in admin.apps()}
    assert not apps & {"app-of-worker", "app-of-host", "app-of-anonymous", "app-of-forged"}

    ledger.record(
        f"Rights matrix: {len(entries)} endpoints x {len(ROLES)} roles, plus malformed tokens",
        load=f"{len(entries)} routes (enumerated from the router)", faults="wrong roles, other users' objects, forged/malformed tokens",
        bad_inputs=refused, wrong=leaks + unexpected, server_errors=server_errors(grid.coordinator.output()),
        seconds=time.monotonic() - started,
    )
    assert not failures, "\n".join(failures)
    assert server_errors(grid.coordinator.output()) == 0


# -- TLS only ------------------------------------------------------------------------------------


def test_plain_http_gets_no_answer_and_a_worker_refuses_a_coordinator_its_ca_does_not_vouch_for(grid, ledger, tmp_path):
    started = time.monotonic()
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    # Plain HTTP to the HTTPS port: no HTTP answer, let alone a JSON one.
    replies = []
    for request in (b"GET /api/v1/ping HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"GET /api/v1/users/me HTTP/1.0\r\nAuthorization: Bearer xwu_" + b"a" * 43 + b"\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", grid.port), timeout=10) as s:
            s.sendall(request)
            got = b""
            try:
                while chunk := s.recv(4096):
                    got += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        replies.append(got)
    cleartext = [r for r in replies if r.startswith(b"HTTP/") or b"xwpy" in r or b"{" in r]
    # A worker given another CA: exits at once with a clear line, having registered nothing.
    other_ca, _ = pki.make_ca("elsewhere")
    (tmp_path / "other.pem").write_bytes(other_ca)
    w = grid.spawn("w", "worker", "--coordinator", grid.url, "--ca", str(tmp_path / "other.pem"), "--token", vol,
                   "--state", str(grid.work_root / "w"), "--name", "w", "--no-idle-check")
    rc = w.popen.wait(60)
    hosts = grid.client().hosts()
    ledger.record(
        "TLS only: plain HTTP to the HTTPS port; a worker given another CA", load="1 coordinator",
        faults="2 cleartext requests, 1 worker with the wrong CA", bad_inputs=3, wrong=len(cleartext) + len(hosts),
        server_errors=server_errors(grid.coordinator.output()), seconds=time.monotonic() - started,
    )
    assert not cleartext, replies
    assert rc == 1 and not hosts
    assert "not a coordinator this site's CA vouches for (certificate verify failed)" in w.output()
    assert vol not in w.output()


class Impostor:
    """A TLS server with a certificate of another CA, recording whatever a client sends it."""

    def __init__(self, tmp_path):
        ca, ca_key = pki.make_ca("impostor")
        cert, key = pki.make_server_cert(ca, ca_key, ["127.0.0.1", "localhost"])
        (tmp_path / "imp.pem").write_bytes(cert + ca)
        (tmp_path / "imp.key").write_bytes(key)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(tmp_path / "imp.pem", tmp_path / "imp.key")
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.received = b""
        self.connections = 0
        self.handshake_errors: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.settimeout(10)
            try:
                with self.ctx.wrap_socket(conn, server_side=True) as tls:
                    while data := tls.recv(65536):
                        self.received += data
            except (ssl.SSLError, OSError) as e:
                self.handshake_errors.append(str(e))

    def close(self):
        self.sock.close()


def test_a_worker_sends_nothing_to_an_impostor(grid, ledger, tmp_path):
    """A man in the middle with a certificate of another CA: the worker's TLS handshake fails, so
    not a byte of HTTP — its token least of all — reaches the impostor, and it stops."""
    started = time.monotonic()
    imp = Impostor(tmp_path)
    token = "xwu_CANARY" + hashlib.sha256(b"canary").hexdigest()[:33]
    try:
        w = grid.spawn("w", "worker", "--coordinator", f"https://127.0.0.1:{imp.port}", "--ca", str(grid.cfg.ca_cert),
                       "--token", token, "--state", str(grid.work_root / "w"), "--name", "w", "--no-idle-check")
        rc = w.popen.wait(60)
        wait_for(lambda: imp.connections and (imp.handshake_errors or imp.received), 10, "the impostor to see the attempt")
    finally:
        imp.close()
    ledger.record(
        "TLS only: a worker facing an impostor coordinator", load="1 worker", faults="a certificate of another CA",
        bad_inputs=1, wrong=int(bool(imp.received)), seconds=time.monotonic() - started,
    )
    assert imp.connections >= 1 and imp.received == b""
    assert rc == 1 and "certificate verify failed" in w.output()
