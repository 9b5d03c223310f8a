"""Operators' endpoints: the coordinator's health (anyone: load balancers have no token) and its
metrics (admins: Prometheus sends the token, ``authorization: credentials_file``).

Metrics are in the Prometheus text format (prometheus_client). Gauges are read at scrape time from
where each fact already lives — the grid's counters, the catalog's counts, the oracle's follower."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from xwpy import protocol
from xwpy.server import health
from xwpy.server.api.router import ADMIN, ANON, Api, Ctx, Raw

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def install(api: Api, grid) -> None:
    @api.route("GET", "/health", ANON, reply=protocol.Health, replies={503: protocol.Health})
    async def check(ctx: Ctx):
        """200 when the catalog takes a write, the blob store a file and the chain node (if the
        oracle runs) answers; 503 naming what failed. Says nothing a stranger could use."""
        status, body = health.verdict(await health.run(grid))
        return Raw(json.dumps(body).encode(), "application/json", status)

    @api.route("GET", "/metrics", ADMIN, reply=CONTENT_TYPE)
    async def scrape(ctx: Ctx):
        return Raw(await prometheus_text(grid), CONTENT_TYPE)


class _Snapshot:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


async def prometheus_text(grid) -> bytes:
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
        ("xwpy_leases_expired", "expired", "Replicas lost because their lease (or deadline) ran out"),
        ("xwpy_scheduler_rebuilds", "rebuilds", "Times the scheduler froze on a failed catalog write and rebuilt"),
        ("xwpy_catalog_commits", "commits", "Catalog write transactions committed"),
        ("xwpy_catalog_writes", "writes", "Catalog writes (several per transaction when batched)"),
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
    fams.extend(grid.catalog_write_latency.collect())
    oracle = grid.oracle
    if oracle is not None and getattr(oracle, "follower", None) is not None:
        f = oracle.follower
        if f.head is not None and f.read_to is not None:
            fams.append(GaugeMetricFamily("xwpy_oracle_lag_blocks", "Blocks between the chain's head and "
                                          "the last block whose requests the oracle has read", value=f.head - f.read_to))
        tasks = await oracle.task_counts()
        g = GaugeMetricFamily("xwpy_oracle_tasks", "The oracle's chain tasks by status", labels=["status"])
        for status, n in sorted(tasks.items()):
            g.add_metric([status], n)
        fams.append(g)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(fams))
    return generate_latest(registry)
