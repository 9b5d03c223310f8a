"""``/api/v1/metrics``: the coordinator in the Prometheus text format (prometheus_client).

Gauges are read at scrape time from where each fact already lives — the scheduler's engine and
counters, the catalog's counts, the oracle's follower — so nothing on the dispatch path pays for a
metric but the certification-latency histogram, fed from :class:`SubmitTimes`."""

from __future__ import annotations

import bisect

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# From a trivial job on an idle grid (tens of ms) to a day-long one.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


def latency_histogram() -> Histogram:
    """Submission to certification, per certified job (not registered globally: one per coordinator)."""
    return Histogram("xwpy_certification_seconds", "Seconds from a job's submission to its certification",
                     buckets=LATENCY_BUCKETS, registry=None)


class SubmitTimes:
    """When the jobs submitted since this coordinator started were submitted: one entry per
    submission (its jobs have consecutive ids), not one per job — 100,000 pending jobs cost a few
    entries. Jobs loaded after a restart have no entry and are not timed."""

    def __init__(self) -> None:
        self._first: list[int] = []
        self._at: list[float] = []

    def __len__(self) -> int:
        return len(self._first)

    def add(self, first_id: int, at: float) -> None:
        self._first.append(first_id)
        self._at.append(at)

    def at(self, job_id: int) -> float | None:
        i = bisect.bisect_right(self._first, job_id) - 1
        return self._at[i] if i >= 0 else None

    def forget_before(self, job_id: int) -> None:
        """Drop the submissions all of whose jobs have ids below ``job_id`` (none active)."""
        i = bisect.bisect_right(self._first, job_id) - 1  # the submission holding job_id stays
        if i > 0:
            del self._first[:i], self._at[:i]


class _Snapshot:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


async def scrape(grid) -> bytes:
    jobs = await grid.job_counts(owner_id=None, batch=None)
    stats = grid.stats()
    fams = []

    g = GaugeMetricFamily("xwpy_jobs", "Jobs in the catalog by status", labels=["status"])
    for status, n in sorted(jobs.items()):
        g.add_metric([status], n)
    fams.append(g)
    for name, key, text in (
        ("xwpy_replicas_dispatched", "dispatched", "Replicas handed to workers"),
        ("xwpy_results_reported", "reported", "Results accepted from workers"),
        ("xwpy_jobs_certified", "certified", "Jobs certified (COMPLETED)"),
        ("xwpy_jobs_failed", "failed_jobs", "Jobs ended in ERROR"),
        ("xwpy_replicas_lost", "lost", "Replicas lost: leases expired, workers restarted or gave them back"),
        ("xwpy_scheduler_rebuilds", "rebuilds", "Times the scheduler froze on a failed catalog write and rebuilt"),
        ("xwpy_catalog_commits", "commits", "Catalog write transactions committed"),
        ("xwpy_catalog_writes", "writes", "Catalog writes (several per transaction when batched)"),
        ("xwpy_catalog_write_seconds", "write_seconds", "Seconds spent in catalog write transactions"),
    ):
        fams.append(CounterMetricFamily(name, text, value=stats[key]))
    alive = grid.alive_hosts()
    g = GaugeMetricFamily("xwpy_hosts", "Hosts known to the scheduler, those alive, and those alive whose workers "
                          "suspended their jobs (their owners are using them)", labels=["state"])
    g.add_metric(["known"], stats["hosts"])
    g.add_metric(["alive"], len(alive))
    g.add_metric(["suspended"], sum(1 for h in alive if h.suspended))
    fams.append(g)
    fams.append(GaugeMetricFamily("xwpy_queue_jobs", "Jobs waiting for a host", value=stats["queued"]))
    fams.append(GaugeMetricFamily("xwpy_replicas_running", "Replicas held by hosts now", value=stats["active_replicas"]))
    fams.append(GaugeMetricFamily("xwpy_waiting_workers", "Work requests parked in the long poll",
                                  value=stats["waiting_workers"]))
    fams.extend(grid.certification_latency.collect())
    oracle = grid.oracle
    if oracle is not None and getattr(oracle, "follower", None) is not None:
        f = oracle.follower
        if f.head is not None and f.read_to is not None:
            fams.append(GaugeMetricFamily("xwpy_oracle_lag_blocks", "Blocks between the chain's head and "
                                          "the last block whose requests the oracle has read", value=f.head - f.read_to))
        tasks = await grid.catalog.chain.counts(oracle.link.chain_id, oracle.link.hub_address)
        g = GaugeMetricFamily("xwpy_oracle_tasks", "The oracle's chain tasks by status", labels=["status"])
        for status, n in sorted(tasks.items()):
            g.add_metric([status], n)
        fams.append(g)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(fams))
    return generate_latest(registry)
