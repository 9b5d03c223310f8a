"""A seeded discrete-event simulation of the scheduler under Byzantine hosts.

The real engine — quorum, placement policy, reputation, adaptive replication, spot checks — is
driven in process by simulated hosts that ask for work, "run" it for a while and report a digest:
the true one, or a lie. Nothing else is simulated: every decision is the engine's. Used by the
reliability suite (``tests/reliability/test_byzantine.py``) and by operators weighing replication,
quorum and trust settings against a share of dishonest hosts::

    python -m xwpy.server.scheduler.simulate [--liars 0.3] [--flavour sybil] [--adaptive] ...

Liars come in three flavours:

- ``independent``: each liar reports a wrong digest of its own (liars never agree);
- ``colluding``: one volunteer account runs all the liars' hosts, which report the same wrong digest;
- ``sybil``: the same colluding group, but every host under an account of its own.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

from xwpy.config import SchedulerConfig
from xwpy.lifecycle import JobStatus
from xwpy.server.scheduler.engine import Engine, HostState, NewJob, Report
from xwpy.server.scheduler.policy import PUBLIC
from xwpy.server.scheduler.quorum import Policy

FLAVOURS = ("independent", "colluding", "sybil")
GiB = 1 << 30


def default_policy(adaptive: bool = False) -> Policy:
    """The policy a job of an app registered with the protocol's defaults gets (r3, q2)."""
    from xwpy import protocol
    from xwpy.server.catalog.rows import App
    from xwpy.server.scheduler.quorum import default_policy as policy_of

    d = protocol.NewApp(name="x", command=("x",))
    app = App(1, "x", 1, "x", "public", None, ("x",), {}, "quorum", d.replication, d.quorum, adaptive)
    return policy_of(protocol.JobSpec(app="x"), app)


@dataclass
class Scenario:
    hosts: int = 60
    jobs: int = 3000
    liars: float = 0.3  # share of the hosts that lie
    flavour: str = "independent"
    lie_rate: float = 1.0  # share of its results a liar gets wrong (the others are true)
    adaptive: bool = False
    policy: Policy | None = None  # default_policy(adaptive) when None
    trust_threshold: int = SchedulerConfig.trust_threshold
    spot_check: float = SchedulerConfig.spot_check
    hosts_per_volunteer: int = 1  # honest volunteers' hosts
    seed: int = 1
    windows: int = 5  # the run cut in this many equal spans of certified jobs, for trends
    lease_seconds: float = 30.0
    reap_seconds: float = 2.0
    join_seconds: float = 10.0  # hosts register at random times within this span...
    liars_first: bool = False  # ...the liars within its first second, eager to take the first jobs
    site_birth: bool = False  # jobs queued before the first host joins (else once all have joined)

    def __post_init__(self) -> None:
        if self.flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}")
        if self.policy is None:
            self.policy = default_policy(self.adaptive)


@dataclass
class Window:
    certified: int = 0
    wrong: int = 0
    honest_jobs: int = 0  # jobs whose first replica went to an honest host...
    honest_replicas: int = 0  # ...and the replicas they took in all
    liar_jobs: int = 0  # jobs whose first replica went to a liar...
    liar_replicas: int = 0

    @property
    def honest_overhead(self) -> float:
        return self.honest_replicas / self.honest_jobs if self.honest_jobs else 0.0

    @property
    def liar_overhead(self) -> float:
        return self.liar_replicas / self.liar_jobs if self.liar_jobs else 0.0


@dataclass
class Result:
    scenario: Scenario
    certified: int = 0
    wrong: int = 0  # certified with a digest that is not the true one
    errors: int = 0  # ended in ERROR (no quorum within max_replicas)
    replicas: int = 0  # replicas dispatched, all jobs
    lies: int = 0  # wrong digests reported
    liar_replicas: int = 0  # replicas dispatched to liars
    liar_solo: int = 0  # liars' replicas that were to certify alone (adaptive replication)
    same_volunteer: int = 0  # replicas given to a volunteer that already had one of the job
    windows: list[Window] = field(default_factory=list)
    seconds: float = 0.0  # simulated time

    @property
    def wrong_fraction(self) -> float:
        return self.wrong / self.certified if self.certified else 0.0

    @property
    def liar_share(self) -> float:
        """The share of the replicas that went to liars."""
        return self.liar_replicas / self.replicas if self.replicas else 0.0

    @property
    def overhead(self) -> float:
        """Replicas run per certified job."""
        return self.replicas / self.certified if self.certified else 0.0

    def describe(self) -> str:
        s = self.scenario
        lines = [
            f"{s.flavour} liars: {s.liars:.0%} of {s.hosts} hosts, lie rate {s.lie_rate:g}, "
            f"r{s.policy.replication}/q{s.policy.quorum}/max{s.policy.max_replicas}"
            + (f", adaptive (trust {s.trust_threshold}, spot check {s.spot_check:g})" if s.policy.adaptive else ""),
            f"  {s.jobs} jobs: {self.certified} certified, {self.wrong} wrong ({self.wrong_fraction:.2%}), "
            f"{self.errors} in error; {self.overhead:.2f} replicas per certified job",
        ]
        for i, w in enumerate(self.windows):
            lines.append(
                f"  window {i + 1}: {w.certified} certified, {w.wrong} wrong; replicas per job "
                f"{w.honest_overhead:.2f} when first sent to an honest host, {w.liar_overhead:.2f} to a liar"
            )
        return "\n".join(lines)


@dataclass
class _Host:
    id: int
    owner: int
    liar: bool
    speed: float
    held: set = field(default_factory=set)


def run(s: Scenario) -> Result:
    rng = random.Random(s.seed)
    engine = Engine(lease_seconds=s.lease_seconds, trust_threshold=s.trust_threshold, spot_check=s.spot_check,
                    salt=rng.randbytes(16))
    n_liars = round(s.hosts * s.liars)
    liar_ids = set(rng.sample(range(1, s.hosts + 1), n_liars))
    hosts: dict[int, _Host] = {}
    honest_owner, liar_owner = 1000, 100_000
    honest_count = 0
    for hid in range(1, s.hosts + 1):
        liar = hid in liar_ids
        if liar and s.flavour == "colluding":
            owner = liar_owner
        elif liar:
            owner = liar_owner + hid
        else:
            owner = honest_owner + honest_count // s.hosts_per_volunteer
            honest_count += 1
        hosts[hid] = _Host(hid, owner, liar, rng.uniform(0.5, 2.0))

    submitters = (1, 2)
    new = [NewJob(submitters[i % 2], 1, s.policy, PUBLIC, GiB, {}) for i in range(s.jobs)]
    truth: dict[int, str] = {}
    first_host: dict[int, int] = {}
    dispatched: dict[int, int] = {}
    volunteers: dict[int, set[int]] = {}
    solo_jobs: set[int] = set()
    out = Result(s)
    finished: list[tuple[int, bool, bool]] = []  # job id, certified, wrong — in order

    events: list[tuple[float, int, str, int, int]] = []
    seq = 0

    def at(t: float, kind: str, host: int, rid: int = 0) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, host, rid))

    def settle(ch) -> None:
        for jid in ch.finished:
            status = ch.jobs[jid]["status"]
            if status == JobStatus.COMPLETED:
                wrong = ch.jobs[jid]["result_sha256"] != truth[jid]
                finished.append((jid, True, wrong))
            else:
                finished.append((jid, False, False))

    # The coordinator starts with no host; hosts register (as /work/register does) over the first
    # seconds and ask for work at once; the jobs come once they are all there (or at once).
    engine.refresh_pool(0.0)
    at(0.0 if s.site_birth else s.join_seconds, "submit", 0)
    for h in hosts.values():
        at(rng.uniform(0, 1.0 if h.liar and s.liars_first else s.join_seconds), "join", h.id)
    at(s.reap_seconds, "reap", 0)
    now = 0.0
    while events and len(finished) < s.jobs:
        now, _, kind, hid, rid = heapq.heappop(events)
        if kind == "submit":
            ids, _ = engine.add_jobs(new, now)
            truth.update((jid, f"true-{jid}") for jid in ids)
            continue
        if kind == "reap":
            for h in hosts.values():
                if h.id in engine.hosts:
                    engine.heartbeat(h.id, sorted(h.held), now)
            settle(engine.reap(now))
            at(now + s.reap_seconds, "reap", 0)
            continue
        h = hosts[hid]
        if kind == "join":
            engine.add_host(HostState(hid, h.owner, "", 8 * GiB, 0, last_alive=now))
            kind = "ask"
        if kind == "ask":
            reps, ch = engine.assign(hid, 1, now)
            for jid, fields in ch.jobs.items():
                if fields.get("solo"):
                    solo_jobs.add(jid)
            if not reps:
                at(now + 1.0, "ask", hid)
                continue
            for r in reps:
                first_host.setdefault(r.job_id, hid)
                dispatched[r.job_id] = dispatched.get(r.job_id, 0) + 1
                seen = volunteers.setdefault(r.job_id, set())
                out.same_volunteer += h.owner in seen
                seen.add(h.owner)
                out.liar_replicas += h.liar
                if h.liar and r.job_id in solo_jobs:
                    out.liar_solo += 1
                h.held.add(r.id)
                at(now + rng.uniform(2.0, 6.0) * h.speed, "done", hid, r.id)
        elif kind == "done":
            h.held.discard(rid)
            replica = engine.replicas.get(rid)
            if replica is not None and replica.status.active:
                jid = replica.job_id
                digest = truth[jid]
                if h.liar and rng.random() < s.lie_rate:
                    out.lies += 1
                    digest = f"collusion-{jid}" if s.flavour != "independent" else f"lie-{hid}-{rng.getrandbits(64)}"
                _, ch = engine.report(hid, [Report(rid, True, digest=digest, size=1, exit_code=0)], now)
                settle(ch)
            at(now, "ask", hid)
    out.seconds = now

    per_window = max(1, -(-len(finished) // s.windows))
    out.windows = [Window() for _ in range(s.windows)]
    for i, (jid, certified, wrong) in enumerate(finished):
        out.replicas += dispatched.get(jid, 0)  # the cost of jobs in error is borne by the others
        if not certified:
            out.errors += 1
            continue
        w = out.windows[min(i // per_window, s.windows - 1)]
        out.certified += 1
        out.wrong += wrong
        w.certified += 1
        w.wrong += wrong
        if hosts[first_host[jid]].liar:
            w.liar_jobs += 1
            w.liar_replicas += dispatched[jid]
        else:
            w.honest_jobs += 1
            w.honest_replicas += dispatched[jid]
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hosts", type=int, default=60)
    p.add_argument("--jobs", type=int, default=3000)
    p.add_argument("--liars", type=float, default=0.3)
    p.add_argument("--flavour", choices=FLAVOURS, default="independent")
    p.add_argument("--lie-rate", type=float, default=1.0)
    p.add_argument("--replication", type=int)
    p.add_argument("--quorum", type=int)
    p.add_argument("--adaptive", action="store_true")
    p.add_argument("--trust-threshold", type=int, default=SchedulerConfig.trust_threshold)
    p.add_argument("--spot-check", type=float, default=SchedulerConfig.spot_check)
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    policy = default_policy(a.adaptive)
    if a.replication or a.quorum:
        r = a.replication or policy.replication
        q = a.quorum or min(policy.quorum, r)
        policy = Policy(r, q, max(2 * r, r + 2), policy.max_errors, adaptive=a.adaptive)
    s = Scenario(hosts=a.hosts, jobs=a.jobs, liars=a.liars, flavour=a.flavour, lie_rate=a.lie_rate,
                 adaptive=a.adaptive, policy=policy, trust_threshold=a.trust_threshold,
                 spot_check=a.spot_check, seed=a.seed)
    print(run(s).describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
