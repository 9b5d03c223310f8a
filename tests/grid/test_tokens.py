"""Tokens and accounts against a running coordinator: an expired token, a disabled account, a
rotated token and a revoked host are refused at once (401, the JSON body saying which), with no
restart; enabling an account lets it in again. Expiry is tested with expiry times in the past,
never by waiting."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from tests.grid.conftest import SLOW
from tests.harness import wait_for
from xwpy.client.api import ClientError
from xwpy.client.exits import Exit
from xwpy.localgrid import child_env

pytestmark = pytest.mark.slow


def refusal(call) -> tuple[int, str]:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.status, e.value.code


def xwpy(grid, *args, token=None, site=False):
    """The CLI, its token in the environment (never on its command line)."""
    env = {**child_env(), "XWPY_URL": grid.url, "XWPY_CA": str(grid.cfg.ca_cert)}
    if token is not None:
        env["XWPY_TOKEN"] = token
    cmd = [sys.executable, "-m", "xwpy", *(("--site", str(grid.cfg.dir)) if site else ()), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=grid.root)
    assert "Traceback" not in r.stderr, r.stderr
    return r


def test_expiry_disable_enable_and_rotation_take_effect_at_once(grid):
    grid.start_coordinator()
    admin = grid.client()

    # Expiry: a token whose time has passed is refused, saying so; one with time left works.
    late = admin.add_user("late", expires_at=time.time() - 1)
    assert refusal(grid.client(late["token"]).me) == (401, "expired")
    soon = xwpy(grid, "users", "add", "soon", "--expires", "90d", "--json", site=True)
    assert soon.returncode == 0, soon.stderr
    soon = json.loads(soon.stdout)
    assert 89 * 86400 < soon["expires_at"] - time.time() <= 90 * 86400
    assert grid.client(soon["token"]).me()["login"] == "soon"

    # Disable: refused from the next request on (the same kept-alive client), accepted after enable.
    alice_token = grid.user("alice")
    alice = grid.client(alice_token)
    assert alice.me()["login"] == "alice"
    r = xwpy(grid, "users", "disable", "alice", site=True)
    assert r.returncode == 0, r.stderr
    assert refusal(alice.me) == (401, "disabled")
    r = xwpy(grid, "whoami", token=alice_token)
    assert r.returncode == Exit.REFUSED and r.stderr.count("\n") == 1 and "401 disabled" in r.stderr, r.stderr
    listed = {u["login"]: u for u in json.loads(xwpy(grid, "users", "list", "--json", site=True).stdout)}
    assert listed["alice"]["disabled"] and not listed["soon"]["disabled"]
    assert listed["late"]["expires_at"] < time.time() and listed["alice"]["expires_at"] is None
    assert xwpy(grid, "users", "enable", "alice", site=True).returncode == 0
    assert alice.me()["login"] == "alice"

    # Rotation by oneself: the new token is printed once (stdout), the old one is unknown at once.
    r = xwpy(grid, "token", "rotate", "--expires", "2h", token=alice_token)
    assert r.returncode == 0, r.stderr
    new = r.stdout.strip()
    assert new.startswith("xwu_") and new != alice_token and new not in r.stderr
    assert refusal(alice.me) == (401, "unauthorized")
    assert grid.client(new).me()["login"] == "alice"
    assert 0 < grid.client(new).me()["expires_at"] - time.time() <= 2 * 3600
    # ...by an admin, for another user; a user may not rotate another's token.
    bob_token = grid.user("bob")
    assert refusal(lambda: grid.client(new).rotate_token("bob")) == (403, "forbidden")
    bob_new = admin.rotate_token("bob")["token"]
    assert refusal(grid.client(bob_token).me) == (401, "unauthorized")
    assert grid.client(bob_new).me()["login"] == "bob"
    # ...of the site's own admin token, with --site: admin.token is rewritten and keeps working.
    before = (grid.cfg.dir / "admin.token").read_text().strip()
    r = xwpy(grid, "token", "rotate", site=True)
    assert r.returncode == 0 and "admin.token" in r.stdout, r.stderr
    after = (grid.cfg.dir / "admin.token").read_text().strip()
    assert after != before and after not in r.stdout
    assert refusal(admin.me) == (401, "unauthorized")
    assert xwpy(grid, "whoami", site=True).stdout.strip() == "admin (admin)"

    # An admin cannot lock themselves out; an unknown user is one line.
    r = xwpy(grid, "users", "disable", "admin", site=True)
    assert r.returncode == Exit.REFUSED and "cannot disable their own account" in r.stderr
    r = xwpy(grid, "users", "disable", "nobody", site=True)
    assert r.returncode == Exit.REFUSED and "404 not_found" in r.stderr
    # No token ever reaches the coordinator's log.
    log = grid.coordinator.output()
    for token in (late["token"], soon["token"], alice_token, new, bob_token, bob_new, before, after):
        assert token not in log


def test_a_revoked_hosts_worker_is_refused_and_its_replica_runs_elsewhere(grid):
    grid.start_coordinator()
    vol = grid.user("vol", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="slow", command=SLOW, replication=1, quorum=1)
    first = grid.start_worker("w0", vol)
    wait_for(lambda: len(grid.client().hosts()) == 1, 30, "the first worker")
    [w0] = grid.client().hosts()
    # Long enough that it cannot finish before it is revoked (it never needs to: it is lost).
    [jid] = alice.submit([{"app": "slow", "args": ["20", "x"]}])
    wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["host_id"] == w0["id"]], 60, "w0 to take the job")
    second = grid.start_worker("w1", vol)
    wait_for(lambda: len(grid.client().hosts()) == 2, 30, "the second worker")

    r = xwpy(grid, "hosts", "revoke", str(w0["id"]), token=vol)  # by its own volunteer
    assert r.returncode == 0 and "revoked" in r.stdout, r.stderr
    # Its worker is refused at once and stops, in one line, without registering a new host.
    assert first.popen.wait(60) == 1
    assert "was revoked" in first.output() and "Traceback" not in first.output()
    jobs = grid.wait_final(alice, [jid], timeout=120)
    assert jobs[jid]["status"] == "COMPLETED"
    replicas = alice.job(jid)["replicas"]
    lost = [r for r in replicas if r["host_id"] == w0["id"]]
    assert [r["status"] for r in lost] == ["LOST"] and "host revoked" in (lost[0]["error"] or "")
    assert [r["status"] for r in replicas if r["host_id"] != w0["id"]] == ["DONE"]
    hosts = {h["id"]: h for h in grid.client().hosts()}
    assert len(hosts) == 2 and hosts[w0["id"]]["revoked"] and not hosts[w0["id"]]["alive"]
    assert second.alive()
    # Its token stays refused, saying why; another volunteer may not revoke w1, nor can alice.
    token = json.loads((grid.work_root / "w0" / "host.json").read_text())["token"]
    assert refusal(lambda: grid.client(token).call("POST", "/work/request", {"slots": 1, "wait": 0})) == (401, "revoked")
    w1 = next(h for h in hosts.values() if h["id"] != w0["id"])
    assert refusal(lambda: alice.revoke_host(w1["id"])) == (404, "not_found")


def test_a_disabled_volunteers_replicas_run_elsewhere_at_once(grid):
    grid.start_coordinator()
    vol, other = grid.user("vol", "worker"), grid.user("other", "worker")
    alice = grid.client(grid.user("alice"))
    alice.register_app(name="slow", command=SLOW, replication=1, quorum=1)
    grid.start_worker("w0", vol)
    wait_for(lambda: len(grid.client().hosts()) == 1, 30, "the first worker")
    [w0] = grid.client().hosts()
    [jid] = alice.submit([{"app": "slow", "args": ["20", "x"]}])
    wait_for(lambda: [r for r in alice.job(jid)["replicas"] if r["host_id"] == w0["id"]], 60, "w0 to take the job")
    grid.start_worker("w1", other)
    wait_for(lambda: len(grid.client().hosts()) == 2, 30, "the second worker")

    r = xwpy(grid, "users", "disable", "vol", site=True)
    assert r.returncode == 0, r.stderr
    # Lost at once, saying why (not at the end of its lease), and run by the other volunteer's host.
    lost = [r for r in alice.job(jid)["replicas"] if r["host_id"] == w0["id"]]
    assert [r["status"] for r in lost] == ["LOST"] and "volunteer disabled" in (lost[0]["error"] or "")
    jobs = grid.wait_final(alice, [jid], timeout=120)
    assert jobs[jid]["status"] == "COMPLETED"
    assert [r["status"] for r in alice.job(jid)["replicas"] if r["host_id"] != w0["id"]] == ["DONE"]
    assert not {h["id"]: h for h in grid.client().hosts()}[w0["id"]]["alive"]
