"""Checkpoints (issue 12 item 2), without processes: the apps' helper (xwpy.checkpoint), the
worker's kept job directories (manifests, kept_jobs, pack_checkpoint), and the scheduler's side —
a worker's hello keeps what it still holds; a replica moved to another host resumes from the
checkpoint of the one it replaces, and the two are one vote."""

from __future__ import annotations

import json
import os

from hypothesis import given
from hypothesis import strategies as st

from xwpy import archive, checkpoint, protocol
from xwpy.lifecycle import ReplicaStatus
from xwpy.server.scheduler import silence
from xwpy.server.scheduler.engine import Engine, HostState, NewJob, Report
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy, ReplicaView, decide
from xwpy.worker.daemon import has_checkpoint, kept_jobs, pack_checkpoint, write_manifest

LEASE = 10.0


# -- the apps' helper -----------------------------------------------------------------------------------


def test_load_before_any_save_is_the_default_then_the_last_state_saved(tmp_path):
    d = tmp_path / "checkpoint"
    assert checkpoint.load(default={"i": 0}, directory=d) == {"i": 0}
    checkpoint.save({"i": 10}, directory=d)
    checkpoint.save({"i": 20}, directory=d)
    assert checkpoint.load(directory=d) == {"i": 20}
    assert sorted(os.listdir(d)) == [checkpoint.STATE]  # no temporary file left behind
    checkpoint.save_bytes(b"\x00raw", "blob", d)
    assert checkpoint.load_bytes("blob", d) == b"\x00raw" and checkpoint.load_bytes("none", d) is None


def test_a_save_interrupted_before_its_rename_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    d = tmp_path / "checkpoint"
    checkpoint.save({"i": 1}, directory=d)

    def killed(*_):
        raise KeyboardInterrupt  # the process dies between writing and renaming

    monkeypatch.setattr(checkpoint.os, "replace", killed)
    try:
        checkpoint.save({"i": 2}, directory=d)
    except KeyboardInterrupt:
        pass
    assert checkpoint.load(directory=d) == {"i": 1}


# -- the worker's kept directories --------------------------------------------------------------------


def assignment(rid: int) -> protocol.Assignment:
    return protocol.Assignment(replica_id=rid, job_id=rid, command=("true",), args=(), inputs=(), bundle=None,
                               limits=protocol.Limits(), lease_expires=1.0, deadline=100.0, checkpoints="upload")


def test_kept_jobs_are_those_with_a_manifest_and_a_checkpoint_at_most_one_per_slot(tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    for rid in (3, 7, 12, 13):
        (jobs / str(rid)).mkdir()
        write_manifest(jobs / str(rid), assignment(rid), {"data.txt": "a" * 64})
        (jobs / f"{rid}.stdout").write_text("out")
        if rid != 13:
            checkpoint.save({"i": rid}, directory=jobs / str(rid) / "checkpoint")
    (jobs / "5").mkdir()  # killed while staging: no manifest
    checkpoint.save({"i": 5}, directory=jobs / "5" / "checkpoint")
    (jobs / "9.json").write_text("{broken")
    (jobs / "9").mkdir()
    (jobs / "stray").write_text("x")
    kept = kept_jobs(jobs, slots=2)
    assert sorted(kept) == [3, 7]
    assert kept[3] == (assignment(3), {"data.txt": "a" * 64})
    assert sorted(p.name for p in jobs.iterdir()) == ["3", "3.json", "3.stdout", "7", "7.json", "7.stdout"]
    assert kept_jobs(jobs, slots=0) == {} and not any(jobs.iterdir())  # a worker that may not resume


def test_pack_checkpoint_only_when_it_changed_and_within_the_limit(tmp_path):
    work = tmp_path / "job"
    work.mkdir()
    dest = tmp_path / "c.tar"
    assert not has_checkpoint(work) and pack_checkpoint(work, dest, (), 1 << 20) is None
    checkpoint.save({"i": 1}, directory=work / "checkpoint")
    seen, sha = pack_checkpoint(work, dest, (), 1 << 20)
    assert archive.read_files(dest.read_bytes()) == {checkpoint.STATE: b'{"i": 1}'}
    assert archive.sha256_file(dest)[0] == sha
    assert pack_checkpoint(work, dest, seen, 1 << 20) is None  # unchanged
    checkpoint.save({"i": 2000}, directory=work / "checkpoint")
    assert pack_checkpoint(work, dest, seen, 4) is None  # too large to send
    assert pack_checkpoint(work, dest, seen, 1 << 20)[1] != sha


def test_a_checkpoint_that_is_a_link_is_not_one(tmp_path):
    work = tmp_path / "job"
    work.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret").write_text("x")
    os.symlink(tmp_path / "elsewhere", work / "checkpoint")
    assert not has_checkpoint(work) and pack_checkpoint(work, tmp_path / "c.tar", (), 1 << 20) is None


def test_manifest_round_trip_is_json(tmp_path):
    (tmp_path / "4").mkdir()
    write_manifest(tmp_path / "4", assignment(4), {})
    assert json.loads((tmp_path / "4.json").read_text())["assignment"]["replica_id"] == 4


# -- one vote per lineage ---------------------------------------------------------------------------------


def test_a_replica_resumed_from_anothers_checkpoint_is_one_vote_with_it():
    q2 = Policy(2, 2, 4, 3)
    lie = "l" * 64
    both = [ReplicaView(1, ReplicaStatus.DONE, lie), ReplicaView(2, ReplicaStatus.DONE, lie, origin=1)]
    d = decide(q2, both)
    assert d.certified is None and d.spawn == 1  # a host's lie handed on in a checkpoint is still one vote
    d = decide(q2, both + [ReplicaView(3, ReplicaStatus.DONE, lie)])
    assert d.certified == lie and d.valid == {1, 2, 3}


@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 3)), min_size=1, max_size=8), st.integers(1, 4))
def test_certification_needs_quorum_distinct_lineages(votes, quorum):
    reps = [ReplicaView(i + 1, ReplicaStatus.DONE, digest * 64, origin=origin or None) for i, (digest, origin) in
            enumerate(votes)]
    d = decide(Policy(quorum, quorum, 16, 16), reps)
    if d.certified is not None:
        lineages = {r.lineage for r in reps if r.digest == d.certified}
        assert len(lineages) >= quorum


# -- the scheduler's side -------------------------------------------------------------------------------


def engine(*hosts):
    app = type("App", (), {"limits": {}, "network": False, "deadline": 1000.0,
                           "versions": (type("V", (), {"runs_on": "any", "image": None})(),)})()
    e = Engine(lease_seconds=LEASE, apps=lambda _: app)
    for h in hosts:
        e.add_host(HostState(h, h, "", 1 << 30, 0, last_alive=0.0))
    return e


def test_a_moved_replica_resumes_from_the_checkpoint_of_the_one_it_covers_and_is_one_vote_with_it():
    e = engine(1, 2)
    [jid], _ = e.add_jobs([NewJob(9, 1, Policy(1, 1, 2, 3), PUBLIC, 0, {})], 0.0)
    [a], _ = e.assign(1, 1, 0.0)
    _, ch = e.heartbeat(1, [a.id], 1.0, checkpoints={a.id: "c" * 64})
    assert ch.replicas[a.id]["checkpoint"] == "c" * 64
    now = 1.0
    while True:  # host 1 falls silent; host 2 gets the extra once it may
        now += 1.0
        e.heartbeat(2, [], now)
        e.reap(now)
        got, ch = e.assign(2, 1, now)
        if got:
            break
    [b] = got
    assert (b.covers, b.resume, b.origin) == (a.id, "c" * 64, a.id)
    assert ch.replicas_new[0]["resume"] == "c" * 64 and ch.replicas_new[0]["origin"] == a.id
    outcome, ch = e.report(2, [Report(b.id, True, digest="d" * 64, size=1, exit_code=0)], now)
    assert ch.jobs[jid]["status"] == "COMPLETED"  # quorum 1: the moved replica certifies alone


def test_losing_what_a_restarted_worker_no_longer_holds_keeps_the_rest_going():
    """(Dispatcher.hello does this with what the worker says it holds: tests/catalog/test_dispatcher.py.)"""
    e = engine(1)
    e.add_jobs([NewJob(9, 1, Policy(1, 1, 2, 3), PUBLIC, 0, {}) for _ in range(2)], 0.0)
    [a, b], _ = e.assign(1, 2, 0.0)
    ch = e.lose(1, [rid for rid in e.hosts[1].active if rid not in {a.id}], 5.0, "worker restarted")
    assert ch.replicas[b.id]["status"] == "LOST" and a.id not in ch.replicas
    assert e.heartbeat(1, [a.id], 6.0)[0] == []  # the kept one goes on
    assert silence.fate(now=6.0, lease_expires=e.replicas[a.id].lease_expires, deadline=e.replicas[a.id].deadline,
                        host_alive=True) is None
