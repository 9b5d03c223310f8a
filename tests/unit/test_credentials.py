"""Who may call, decided without I/O: a token's refusal (expired, disabled, revoked) as a pure
function of the account, the host and the clock; the directory applying a change to the very next
look-up; the scheduler giving a revoked host's replicas to other hosts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xwpy import tokens
from xwpy.server.catalog.rows import Host, User
from xwpy.server.directory import Directory, refusal
from xwpy.server.errors import Unauthorized
from xwpy.server.scheduler.engine import Engine, HostState, NewJob
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy

GiB = 1 << 30
times = st.floats(0, 2e9, allow_nan=False)


def user(token="xwu_a", *, disabled=False, expires=None, uid=1, login="alice") -> User:
    return User(uid, login, "user", "", tokens.token_hash(token), disabled, expires)


def host(token="xwh_h", *, owner=1, revoked=None, hid=7) -> Host:
    return Host(hid, owner, "h", tokens.token_hash(token), 1, GiB, "", 0.0, 0.0, 0, revoked_at=revoked)


@given(disabled=st.booleans(), expires=st.none() | times, revoked=st.none() | times, now=times,
       as_host=st.booleans())
def test_refusal_follows_the_rules(disabled, expires, revoked, now, as_host):
    u, h = user(disabled=disabled, expires=expires), host(revoked=revoked) if as_host else None
    why = refusal(u, h, now)
    if as_host and revoked is not None:
        expected = "revoked"
    elif disabled:
        expected = "disabled"
    elif not as_host and expires is not None and now >= expires:  # a host token has its own life
        expected = "expired"
    else:
        expected = None
    assert (why.code if why else None) == expected


def test_expiry_is_read_from_the_injected_clock():
    now = [1000.0]
    d = Directory(clock=lambda: now[0])
    d.load([user(expires=1000.5)], [], [])
    assert d.principal("xwu_a").user.login == "alice"
    now[0] = 1000.5
    with pytest.raises(Unauthorized) as e:
        d.principal("xwu_a")
    assert e.value.code == "expired" and "expired at 1970-01-01 00:16:40 UTC" in e.value.message


def test_a_change_applies_to_the_next_lookup():
    d = Directory(clock=lambda: 0.0)
    d.load([user(), user("xwu_b", uid=2, login="bob")], [host(owner=2)], [])
    assert d.principal("xwh_h").host_id == 7
    # Disabled: the account's token and its hosts' tokens are refused; enabled, accepted again.
    d.credentials_changed(user=user("xwu_b", uid=2, login="bob", disabled=True))
    for token in ("xwu_b", "xwh_h"):
        with pytest.raises(Unauthorized) as e:
            d.principal(token)
        assert e.value.code == "disabled"
    d.credentials_changed(user=user("xwu_b", uid=2, login="bob"))
    assert d.principal("xwh_h").user.login == "bob"
    # Rotated: the old token is unknown, the new one is alice.
    d.credentials_changed(user=user("xwu_new"))
    assert d.principal("xwu_a") is None and d.principal("xwu_new").user.login == "alice"
    assert d.logins["alice"].token_hash == tokens.token_hash("xwu_new")
    # Revoked: the host's token is refused; its owner's own token is not.
    d.credentials_changed(host=host(owner=2, revoked=5.0))
    with pytest.raises(Unauthorized) as e:
        d.principal("xwh_h")
    assert e.value.code == "revoked"
    assert d.principal("xwu_b").user.login == "bob"


def test_a_revoked_hosts_replicas_go_to_other_hosts():
    e = Engine(lease_seconds=10)
    for hid, owner in ((1, 10), (2, 11)):
        e.add_host(HostState(hid, owner, "", 8 * GiB, last_alive=0.0))
    e.refresh_pool(0.0)
    [jid], _ = e.add_jobs([NewJob(99, 1, Policy(1, 1, 3, 3), PUBLIC, GiB, {})], 0.0)
    [r] = e.assign(1, 1, 0.0)[0]
    assert e.assign(2, 1, 0.0)[0] == []  # one replica wanted, and host 1 has it
    ch = e.revoke(1, 1.0)
    assert ch.replicas[r.id]["status"] == "LOST" and ch.replicas[r.id]["error"] == "host revoked"
    assert not e.hosts[1].alive(1.0, 10) and [h.id for h in e.alive_hosts(1.0)] == [2]
    assert e.assign(1, 1, 1.0)[0] == []  # (a long poll it made before: nothing)
    assert [x.job_id for x in e.assign(2, 1, 1.0)[0]] == [jid]


@given(hosts_of_disabled=st.integers(1, 3), others=st.integers(1, 3), jobs=st.integers(1, 6))
def test_a_disabled_volunteers_hosts_are_gone_at_once_until_enabled(hosts_of_disabled, others, jobs):
    e = Engine(lease_seconds=10)
    mine = list(range(1, hosts_of_disabled + 1))
    theirs = list(range(100, 100 + others))
    for hid in mine:
        e.add_host(HostState(hid, 10, "", 64 * GiB, last_alive=0.0))
    for i, hid in enumerate(theirs):
        e.add_host(HostState(hid, 20 + i, "", 64 * GiB, last_alive=0.0))
    e.refresh_pool(0.0)
    ids, _ = e.add_jobs([NewJob(99, 1, Policy(1, 1, 3, 3), PUBLIC, GiB, {}) for _ in range(jobs)], 0.0)
    running = [r for hid in mine for r in e.assign(hid, jobs, 0.0)[0]]
    assert running  # the disabled volunteer's hosts had work
    ch = e.set_owner_disabled(10, True, 1.0)
    assert {rid for rid, f in ch.replicas.items() if f.get("status") == "LOST"} == {r.id for r in running}
    assert all(ch.replicas[r.id]["error"] == "volunteer disabled" for r in running)
    assert not any(e.hosts[h].active or e.hosts[h].alive(1.0, 10) for h in mine)
    assert sorted(h.id for h in e.alive_hosts(1.0)) == theirs
    assert all(e.assign(h, jobs, 1.0)[0] == [] for h in mine)  # (a long poll made before: nothing)
    again = [r.job_id for h in theirs for r in e.assign(h, jobs, 1.0)[0]]
    assert {r.job_id for r in running} <= set(again)  # their jobs run elsewhere now
    assert not e.set_owner_disabled(10, False, 2.0)  # enabled: nothing to write, and back once seen
    assert all(e.hosts[h].alive(2.0, 10) for h in mine)  # (last sign of life within the lease)
