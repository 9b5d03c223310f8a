"""The scheduler engine driven by hypothesis through arbitrary histories — hosts joining, jobs
submitted and cancelled, results true and false, leases lost, hosts falling silent and coming back
(with extra replicas started meanwhile), deadlines passing, the coordinator restarting — with the
scheduler's invariants checked after every step.

The test keeps its own copy of "the catalog": every Changes record the engine returns is applied
to it, as the dispatcher does. A restart rebuilds the engine from that copy only.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from xwpy.lifecycle import JobStatus, ReplicaStatus, Validation
from xwpy.server.scheduler.engine import Engine, HostState, JobState, NewJob, ReplicaState, Report
from xwpy.server.scheduler.policy import PUBLIC, Visibility
from xwpy.server.scheduler.quorum import Policy

LEASE = 10.0
DEADLINE = 6 * LEASE  # short, so that hypothesis reaches replicas lost at their deadline


class App:
    """What the engine reads of an app: any platform, one core, a deadline."""

    limits: dict = {}
    versions = (SimpleNamespace(runs_on="any", image=None),)
    network = False
    deadline = DEADLINE
TRUST = 2  # low, so that hypothesis reaches trusted hosts and solo certification
SALT = b"fixed salt for tests"


class Catalog:
    """Just enough of the catalog to rebuild the engine: rows by id."""

    def __init__(self):
        self.jobs: dict[int, dict] = {}
        self.replicas: dict[int, dict] = {}
        self.certified: Counter = Counter()

    def apply(self, ch):
        for row in ch.jobs_new:
            assert row["id"] not in self.jobs, "job id reused"
            self.jobs[row["id"]] = dict(row)
        for row in ch.replicas_new:
            assert row["id"] not in self.replicas, "replica id reused"
            self.replicas[row["id"]] = dict(row)
        for jid, fields in ch.jobs.items():
            old = self.jobs[jid]["status"]
            assert old not in ("COMPLETED", "ERROR", "CANCELLED"), f"job {jid} changed after its final state"
            self.jobs[jid].update(fields)
            if fields.get("status") == "COMPLETED":
                self.certified[jid] += 1
        for rid, fields in ch.replicas.items():
            self.replicas[rid].update(fields)


class EngineMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.engine = self.new_engine()
        self.db = Catalog()
        self.now = 1000.0
        self.truth: dict[int, str] = {}  # job id -> the honest digest
        self.host_owner: dict[int, int] = {}

    @staticmethod
    def new_engine():
        app = App()
        return Engine(lease_seconds=LEASE, trust_threshold=TRUST, spot_check=0.3, salt=SALT, apps=lambda _: app)

    def commit(self, ch):
        for jid, fields in ch.jobs.items():
            if fields.get("solo"):  # a job goes solo only on a host trusted at that moment
                [r] = [r for r in ch.replicas_new if r["job_id"] == jid]
                assert self.engine.hosts[r["host_id"]].reputation >= TRUST
                event("a trusted host took a job alone")
            if fields.get("status") == "COMPLETED":
                event("a job was certified")
        for row in ch.replicas_new:
            if row["covers"] is not None:
                event("an extra replica started beside a silent one")
            if row["origin"] is not None:
                event("a replica resumed from another's checkpoint")
        for fields in ch.replicas.values():
            if fields.get("error") == "deadline passed":
                event("a replica was lost at its deadline")
        self.db.apply(ch)

    @initialize(n=st.integers(1, 6), owners=st.integers(1, 3), veterans=st.integers(0, 3))
    def hosts(self, n, owners, veterans):
        for i in range(1, n + 1):
            self.add(i, i % owners, TRUST if i <= veterans else 0)

    def add(self, host_id, owner, reputation=0):
        self.engine.add_host(HostState(host_id, owner, "g" if owner % 2 else "", 1 << 30, reputation, last_alive=self.now))
        self.host_owner[host_id] = owner

    @rule(owner=st.integers(0, 3))
    def new_host(self, owner):
        self.add(max(self.host_owner) + 1, owner)

    @rule(owner=st.integers(0, 3), reputation=st.integers(TRUST, TRUST + 5))
    def veteran_host(self, owner, reputation):
        """A host with a history of valid results (as loaded from the catalog)."""
        self.add(max(self.host_owner) + 1, owner, reputation)

    @rule(
        owner=st.integers(0, 2),
        r=st.integers(1, 4),
        q=st.integers(1, 4),
        extra=st.integers(0, 3),
        vis=st.sampled_from(["public", "owner", "group"]),
        n=st.integers(1, 3),
        adaptive=st.booleans(),
    )
    def submit(self, owner, r, q, extra, vis, n, adaptive):
        policy = Policy(r, min(q, r), r + extra, 2, adaptive=adaptive)
        visibility = PUBLIC if vis == "public" else Visibility(vis, owner, "g")
        new = [NewJob(owner, 1, policy, visibility, 0, {"owner_id": owner}) for _ in range(n)]
        ids, ch = self.engine.add_jobs(new, self.now)
        for jid, nj in zip(ids, new):
            ch.jobs_new[ids.index(jid)].update(
                replication=policy.replication, quorum=policy.quorum, max_replicas=policy.max_replicas,
                max_errors=policy.max_errors, visibility=visibility.scope, vis_group=visibility.group, app_id=1,
                adaptive=adaptive, solo=False,
            )
            self.truth[jid] = f"good-{jid}"
        self.commit(ch)

    @rule(data=st.data(), slots=st.integers(1, 4))
    def assign(self, data, slots):
        host = data.draw(st.sampled_from(sorted(self.engine.hosts)))
        reps, ch = self.engine.assign(host, slots, self.now)
        self.commit(ch)
        for r in reps:
            job = self.engine.jobs[r.job_id]
            h = self.engine.hosts[host]
            assert job.visibility.admits(h.owner_id, h.group)

    def active(self):
        return sorted(rid for h in self.engine.hosts.values() for rid in h.active)

    @precondition(lambda self: self.active())
    @rule(data=st.data(), outcome=st.sampled_from(["good", "good", "lie", "collude", "fail"]))
    def report(self, data, outcome):
        rid = data.draw(st.sampled_from(self.active()))
        r = self.engine.replicas[rid]
        if outcome == "fail":
            rep = Report(rid, False, exit_code=1, stderr_tail="boom")
        else:
            digest = {"good": self.truth[r.job_id], "lie": f"lie-{rid}", "collude": "collude"}[outcome]
            rep = Report(rid, True, digest=digest, size=1, exit_code=0)
        accepted, ch = self.engine.report(r.host_id, [rep], self.now)
        assert accepted[rid] == "accepted"
        self.commit(ch)

    @precondition(lambda self: self.active())
    @rule(data=st.data())
    def report_twice(self, data):
        rid = data.draw(st.sampled_from(self.active()))
        host = self.engine.replicas[rid].host_id
        rep = Report(rid, True, digest=self.truth[self.engine.replicas[rid].job_id], size=1, exit_code=0)
        _, ch = self.engine.report(host, [rep], self.now)
        self.commit(ch)
        again, ch = self.engine.report(host, [rep], self.now)
        assert again[rid] != "accepted"  # a result is recorded once
        self.commit(ch)

    @rule(data=st.data())
    def heartbeat(self, data):
        host = data.draw(st.sampled_from(sorted(self.engine.hosts)))
        held = sorted(self.engine.hosts[host].active)
        claimed = data.draw(st.lists(st.sampled_from(held), unique=True)) if held else []
        bogus = data.draw(st.lists(st.integers(10_000, 10_010), max_size=2))
        # Some say they uploaded a checkpoint (apps with checkpoints = upload): a replica that
        # replaces theirs resumes from it, and the two are one vote.
        saved = data.draw(st.lists(st.sampled_from(held), unique=True)) if held else []
        abort, ch = self.engine.heartbeat(host, claimed + bogus, self.now,
                                          checkpoints={rid: f"ckpt-{rid}-{self.now}" for rid in saved})
        assert set(abort) == set(bogus)
        self.commit(ch)

    @rule(data=st.data())
    def worker_restarts(self, data):
        host = data.draw(st.sampled_from(sorted(self.engine.hosts)))
        self.commit(self.engine.lose(host, None, self.now, "worker restarted"))
        assert not self.engine.hosts[host].active

    @rule(dt=st.one_of(st.floats(0.1, LEASE), st.floats(LEASE, 4 * LEASE)))
    def time_passes(self, dt):
        """Time passes; hosts that do not heartbeat fall silent. A silent host keeps its replicas
        until their deadline; a host alive keeps only those it holds (heartbeats extend them)."""
        self.now += dt
        self.commit(self.engine.reap(self.now))
        for h in self.engine.hosts.values():
            for rid in h.active:
                r = self.engine.replicas[rid]
                assert r.deadline >= self.now
                assert r.lease_expires >= self.now or not h.alive(self.now, LEASE)

    @precondition(lambda self: self.active())
    @rule(data=st.data(), leases=st.integers(1, 8))
    def host_sleeps(self, data, leases):
        """A host holding work falls silent for a while; the others heartbeat all along, holding
        what they hold, and ask for work (a silent host's work may go to them as extras)."""
        sleeper = self.engine.replicas[data.draw(st.sampled_from(self.active()))].host_id
        for _ in range(2 * leases):
            self.now += LEASE / 2
            for h in sorted(self.engine.hosts):
                if h != sleeper:
                    self.commit(self.engine.heartbeat(h, sorted(self.engine.hosts[h].active), self.now)[1])
            self.commit(self.engine.reap(self.now))
            for h in sorted(self.engine.hosts):
                if h != sleeper:
                    self.commit(self.engine.assign(h, 1, self.now)[1])

    @rule(data=st.data())
    def host_comes_back(self, data):
        """A silent host (asleep) heartbeats again, holding all it held: it keeps every replica
        whose deadline has not passed."""
        silent = sorted(h.id for h in self.engine.hosts.values() if not h.alive(self.now, LEASE))
        if not silent:
            return
        host = data.draw(st.sampled_from(silent))
        held = sorted(self.engine.hosts[host].active)
        abort, ch = self.engine.heartbeat(host, held, self.now)
        assert abort == [] and sorted(self.engine.hosts[host].active) == held
        if held:
            event("a silent host came back with its replicas")
        self.commit(ch)

    @precondition(lambda self: self.engine.jobs)
    @rule(data=st.data())
    def cancel(self, data):
        jid = data.draw(st.sampled_from(sorted(self.engine.jobs)))
        done, ch = self.engine.cancel([jid], self.now)
        assert done == [jid]
        self.commit(ch)

    @rule()
    def coordinator_restarts(self):
        """Rebuild from the catalog copy alone: the engine must carry on exactly."""
        active = {jid for jid, row in self.db.jobs.items() if row["status"] in ("PENDING", "RUNNING")}
        assert active == set(self.engine.jobs)
        # (Extra replicas wanted are planned again by the next reap: not part of what is compared.)
        before = {jid: (j.status, j.wanted - len(j.extra_for), sorted(j.hosts_used), j.solo)
                  for jid, j in self.engine.jobs.items()}
        hosts = [HostState(h.id, h.owner_id, h.group, h.memory, h.reputation, h.last_alive) for h in self.engine.hosts.values()]
        # (A replica whose host was silent long enough has its lease extended at load: presumed.)
        jobs = [
            JobState(
                id=jid, owner_id=row["owner_id"], app_id=1,
                policy=Policy(row["replication"], row["quorum"], row["max_replicas"], row["max_errors"],
                              adaptive=row["adaptive"]),
                visibility=Visibility(row["visibility"], row["owner_id"], row["vis_group"]),
                memory=0, status=JobStatus(row["status"]), solo=row["solo"],
            )
            for jid, row in self.db.jobs.items() if jid in active
        ]
        reps = [
            ReplicaState(
                id=rid, job_id=row["job_id"], host_id=row["host_id"], status=ReplicaStatus(row["status"]),
                lease_expires=row.get("lease_expires", 0.0), digest=row.get("result_sha256"),
                size=row.get("result_size") or 0, validation=Validation(row["validation"]),
                deadline=row["deadline"], covers=row["covers"], checkpoint=row.get("checkpoint"),
                resume=row["resume"], origin=row["origin"],
            )
            for rid, row in sorted(self.db.replicas.items()) if row["job_id"] in active
        ]
        next_job = max(self.db.jobs, default=0) + 1
        next_rep = max(self.db.replicas, default=0) + 1
        self.engine = self.new_engine()
        ch = self.engine.load(hosts=hosts, jobs=jobs, replicas=reps, next_job_id=next_job, next_replica_id=next_rep, now=self.now)
        assert not ch, "a consistent catalog needs no repair at load"
        after = {jid: (j.status, j.wanted, sorted(j.hosts_used), j.solo) for jid, j in self.engine.jobs.items()}
        assert after == before

    # -- invariants --------------------------------------------------------------------------------

    @invariant()
    def one_replica_per_host_per_job(self):
        """A host never holds two replicas of one job, nor gives two results for it; only after
        its replica gave no result (lost: crash, restart, given back; or failed) may it get the
        job again."""
        counted = Counter((row["job_id"], row["host_id"]) for row in self.db.replicas.values()
                          if row["status"] not in ("LOST", "ABORTED", "FAILED"))
        assert all(n == 1 for n in counted.values()), "a host got two replicas of one job"

    @invariant()
    def leases_are_held_by_one_host(self):
        holders = Counter(rid for h in self.engine.hosts.values() for rid in h.active)
        assert all(n == 1 for n in holders.values())
        for h in self.engine.hosts.values():
            for rid in h.active:
                r = self.engine.replicas[rid]
                assert r.host_id == h.id and r.status.active
                assert self.db.replicas[rid]["status"] in ("ASSIGNED", "RUNNING")

    @invariant()
    def certified_only_with_agreement(self):
        for jid, n in self.db.certified.items():
            assert n == 1, f"job {jid} certified twice"
            job = self.db.jobs[jid]
            agree = [r for r in self.db.replicas.values()
                     if r["job_id"] == jid and r["status"] == "DONE" and r.get("result_sha256") == job["result_sha256"]]
            # Quorum agreement of independent results (one per lineage: a replica resumed from
            # another's checkpoint is one vote with it) — or a trusted host's alone (solo).
            lineages = {r["origin"] or r["id"] for r in agree}
            assert len(lineages) >= (1 if job["solo"] else job["quorum"])
            assert not job["solo"] or job["adaptive"]
            assert all(r["validation"] == "VALID" for r in agree)

    @invariant()
    def budget_respected(self):
        """At most max_replicas replicas count, besides the extras started beside silent ones:
        at most one at a time per silent replica."""
        for jid, job in self.db.jobs.items():
            counted = [r for r in self.db.replicas.values() if r["job_id"] == jid and r["status"] not in ("LOST", "ABORTED")
                       and r["covers"] is None]
            assert len(counted) <= job["max_replicas"]
        covering = Counter(r["covers"] for r in self.db.replicas.values()
                           if r["covers"] is not None and r["status"] in ("ASSIGNED", "RUNNING"))
        assert all(n == 1 for n in covering.values()), "two extras at once beside one silent replica"

    @invariant()
    def fair_share_counters_match(self):
        running = Counter()
        for h in self.engine.hosts.values():
            for rid in h.active:
                running[self.engine.jobs[self.engine.replicas[rid].job_id].owner_id] += 1
        assert dict(running) == {k: v for k, v in self.engine._running.items() if v}


TestEngine = EngineMachine.TestCase
TestEngine.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
