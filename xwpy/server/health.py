"""The coordinator's health: each part it needs, checked for real — a write transaction on the
catalog (a locked or read-only database fails it, where a read would pass), a blob written, read
back and removed, and the chain node's head when the oracle runs. For load balancers (HAProxy's
``option httpchk``) and operators: 200 when every check passes, else 503 naming what failed.

``verdict`` is the pure part; ``run`` performs the checks concurrently, each bounded in time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable

from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread

from xwpy.server.catalog import health as catalog_health

TIMEOUT_SECONDS = 10.0  # a check that has not answered by then has failed: say so, do not hang


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def verdict(checks: list[Check]) -> tuple[int, dict]:
    failed = [c.name for c in checks if not c.ok]
    body = {
        "status": "failing" if failed else "ok",
        "failed": failed,
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
    return (503 if failed else 200), body


async def _bounded(name: str, reactor, probe: Callable[[], Awaitable[str]]) -> Check:
    d = Deferred.fromCoroutine(probe())
    d.addTimeout(TIMEOUT_SECONDS, reactor)
    try:
        return Check(name, True, await d)
    except Exception as e:  # noqa: BLE001 - whatever failed is the answer
        # An OSError's text names paths: its strerror is enough for a caller with no token.
        text = e.strerror if isinstance(e, OSError) and e.strerror else str(e).splitlines()[0][:200] if str(e) else ""
        return Check(name, False, f"{type(e).__name__}: {text}" if text else type(e).__name__)


async def run(grid) -> list[Check]:
    async def catalog() -> str:
        if grid.catalog.failure is not None:
            raise RuntimeError(f"the scheduler's catalog writes failed: {grid.catalog.failure}")
        users = await grid.catalog.write(catalog_health.probe)
        return f"writable, {users} users"

    async def blobs() -> str:
        await deferToThread(grid.blobs.probe)
        free, least = await deferToThread(grid.blobs.free_bytes), grid.config.limits.min_free_bytes
        if free < least:
            raise RuntimeError(f"{free >> 20} MiB free, less than [limits] min_free_bytes ({least >> 20} MiB)")
        return f"writable, {free >> 20} MiB free"

    async def chain() -> str:
        head = await grid.oracle.link.head()
        return f"head at block {head.number}"

    probes = [("catalog", catalog), ("blobs", blobs)]
    if grid.oracle is not None:
        probes.append(("chain", chain))
    # Deferreds, not asyncio tasks: wait for each in turn, all of them already running.
    started = [(name, Deferred.fromCoroutine(_bounded(name, grid.reactor, p))) for name, p in probes]
    return [await d for _, d in started]


__all__ = ["Check", "TIMEOUT_SECONDS", "run", "verdict"]
