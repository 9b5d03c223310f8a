"""The oracle service: inside the coordinator, on its reactor, enabled by ``[oracle] enabled``.

Assembly (``start``): the chain (the embedded one, served as JSON-RPC on loopback with its state
under the site, or a node's URL), the deployment, the chain link and its thread pool, the
oracle's grid account and apps, then one loop every ``poll_seconds``: follow new requests, and
look at every active task that may have something to do.

Each task is driven by one coroutine at a time (``kick``): the runner takes it from NEW to
CERTIFIED, the committer from CERTIFIED to COMMITTED, a step at a time, each step one catalog
transaction. A job reaching a final state kicks its task at once (``Grid.on_final``);
transient failures (node down, catalog busy) retry with backoff. Nothing is held only in
memory: at start every active task is simply kicked, and carries on from its catalog row.
"""

from __future__ import annotations

from collections import Counter

from twisted.application import service
from twisted.internet import task as ttask
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from xwpy.backoff import Backoff
from xwpy.chain.node import connect, redact_url, scrub
from xwpy.config import confirmations_for
from xwpy.chain.rpc import EmbeddedChainService
from xwpy.lifecycle.chaintask import TaskStatus
from xwpy.oracle.chainlink import ChainLink, ChainMismatch
from xwpy.oracle.chainsetup import ensure_demo_deployment, load_deployment, load_key, remove_run_file, write_run_file
from xwpy.oracle.committer import Committer
from xwpy.oracle.follower import Follower
from xwpy.oracle.grid import GridLink
from xwpy.oracle.handlers import default_handlers
from xwpy.oracle.payer import Payer
from xwpy.oracle.runner import Outcome, Runner
from xwpy.server.catalog.chain import StaleTask
from xwpy.server.catalog.connector import Catalog
from xwpy.server.grid import Grid

log = Logger()

MAX_BACKOFF = 30.0
STEPS_PER_KICK = 50
RPC_TIMEOUT = 15.0


class OracleService(service.MultiService):
    name = "oracle"

    def __init__(self, grid: Grid, catalog: Catalog, handlers=None):
        super().__init__()
        self.site = grid.config
        self.catalog = catalog  # for the oracle's own tables (chain tasks); jobs go through the grid
        self.cfg = grid.config.oracle
        self.reactor = grid.reactor
        self.handlers = default_handlers() if handlers is None else handlers
        self.grid = GridLink(grid)
        self.url: str | None = None
        self.link: ChainLink | None = None
        self.follower: Follower | None = None
        self.runner: Runner | None = None
        self.committer: Committer | None = None
        self.payer: Payer | None = None  # None: the deployment has no payout distributor
        self._loop: ttask.LoopingCall | None = None
        self._epochs: ttask.LoopingCall | None = None
        self._stopping = False
        self._recovered = False
        self._trouble: str | None = None
        self._busy: set[int] = set()
        self._again: set[int] = set()
        self._timers: dict[int, object] = {}
        self._backoff: dict[int, Backoff] = {}
        self._job_task: dict[int, int] = {}
        self._inflight: set[Deferred] = set()

    # -- assembly -----------------------------------------------------------------------------

    async def start(self) -> None:
        site, cfg = self.site, self.cfg
        key = load_key(cfg, site)
        if cfg.chain == "embedded":
            chain = EmbeddedChainService(site.path(cfg.chain_dir), port=cfg.rpc_port, interface="127.0.0.1",
                                         reactor=self.reactor)
            chain.setServiceParent(self)
            port = await chain.ready
            self.url = f"http://127.0.0.1:{port}"
        else:
            self.url = cfg.chain
        w3 = connect(self.url, timeout=RPC_TIMEOUT)
        dpath = site.path(cfg.deployment)
        if cfg.chain == "embedded":
            deployment = await deferToThread(ensure_demo_deployment, w3, dpath, self.handlers)
        else:
            deployment = load_deployment(w3, dpath)
        self.link = ChainLink(w3, deployment, key, self.reactor, commit_gas=cfg.commit_gas)
        self.link.start()
        write_run_file(site, self.url, deployment, dpath)
        await self.grid.setup(self.handlers)
        self.grid.on_final(self._on_final)
        wall = self.reactor.seconds
        self.follower = Follower(self.link, self.catalog, start_block=deployment.block,
                                 confirmations=confirmations_for(cfg), block_range=cfg.block_range, wall=wall)
        self.runner = Runner(self.catalog, self.grid, self.handlers, chain_now=self.chain_now, wall=wall,
                             margin=cfg.deadline_margin_seconds, on_jobs=self._on_jobs,
                             served=self.link.served)
        self.committer = Committer(self.catalog, self.link, wall=wall, chain_now=self.chain_now,
                                   margin=cfg.commit_margin_seconds, replace_after=cfg.replace_after_blocks,
                                   max_fee=cfg.max_fee_gwei * 10**9)
        if deployment.distributor:
            self.payer = Payer(self.catalog, self.grid, self.link, self.committer._send, wall=wall,
                               replace_after=cfg.replace_after_blocks, max_fee=cfg.max_fee_gwei * 10**9)
        else:
            log.warn("the deployment has no payout distributor: volunteers are not paid (deploy one with "
                     "`xwpy chain deploy`)")
        self._loop = ttask.LoopingCall(self._tick)
        self._loop.clock = self.reactor
        self._loop.start(cfg.poll_seconds, now=True).addErrback(lambda f: log.failure("oracle loop stopped", f))
        if self.payer is not None and cfg.epoch_seconds > 0:
            self._epochs = self.payer.every(self.reactor, cfg.epoch_seconds, self._epoch)
        log.info("oracle {address} follows hub {hub} on {url} (chain {cid}, {n} confirmations), apps: {apps}",
                 address=self.link.address, hub=deployment.hub, url=redact_url(self.url), cid=deployment.chain_id,
                 n=confirmations_for(cfg), apps=", ".join(sorted(self.handlers)))

    def chain_now(self) -> float:
        return self.follower.clock.now(self.reactor.seconds())

    def stopService(self):
        self._stopping = True
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._epochs is not None and self._epochs.running:
            self._epochs.stop()
        for timer in self._timers.values():
            if timer.active():
                timer.cancel()
        self._timers.clear()

        async def finish():
            if self._inflight:
                await DeferredList(list(self._inflight))
            remove_run_file(self.site)
            if self.link is not None:
                self.link.stop()
            await maybeDeferred(service.MultiService.stopService, self)

        return Deferred.fromCoroutine(finish())

    async def tasks(self, *, after: int, limit: int) -> list:
        """The tasks of its hub in the order it saw them, from row id ``after`` (chain-task rows)."""
        return await self.catalog.chain.list(self.link.chain_id, self.link.hub_address, after=after, limit=limit)

    async def task_counts(self) -> dict[str, int]:
        """Its hub's tasks by status."""
        return await self.catalog.chain.counts(self.link.chain_id, self.link.hub_address)

    async def record(self, task_id: int) -> dict | None:
        """The oracle's record of one task of its hub — status, jobs and their statuses, commit —
        or None if it has not seen it (what ``GET /api/v1/chain/tasks/{id}`` shows)."""
        t = await self.catalog.chain.find(self.link.chain_id, self.link.hub_address, task_id)
        if t is None:
            return None
        statuses = await self.grid.statuses(t.job_ids)
        return {
            "task": t.task_id, "chain_id": t.chain_id, "hub": t.hub, "app": t.app, "status": t.status.value,
            "error": t.error, "jobs": t.job_ids, "job_statuses": dict(Counter(statuses.values())),
            "state": t.state, "digest": t.digest, "commit_tx": t.commit_tx, "commit_block": t.commit_block,
        }

    async def claims(self, account: str, epoch: int | None = None) -> dict | None:
        """ACCOUNT's leaves in the committed payout epochs (one epoch's with EPOCH), with where to
        claim them; None when the deployment has no distributor."""
        if self.payer is None:
            return None
        rows = await self.payer.claims(account, epoch)
        return {"chain_id": self.link.chain_id, "distributor": self.payer.distributor,
                "token": self.link.deployment.token, "account": account, "claims": rows}

    # -- the loop -----------------------------------------------------------------------------

    def _epoch(self):
        """Every ``epoch_seconds``: pay out the tasks committed since the last epoch."""
        d = Deferred.fromCoroutine(self._epoch_once())
        self._inflight.add(d)
        d.addBoth(lambda r: (self._inflight.discard(d), None)[1])
        return d

    async def _epoch_once(self) -> None:
        if self._stopping or not self._recovered:
            return
        try:
            await self.payer.new_epoch()
        except Exception as e:  # noqa: BLE001 - the next epoch (or the next tick) tries again
            log.warn("payout epoch: {e}; trying again later",
                     e=f"{type(e).__name__}: {scrub(str(e), self.url or '')[:300]}")

    def _tick(self):
        d = Deferred.fromCoroutine(self._tick_once())
        self._inflight.add(d)
        d.addBoth(lambda r: (self._inflight.discard(d), None)[1])
        return d

    async def _tick_once(self) -> None:
        try:
            if not self._recovered:
                hub_oracle = await self.link.check()
                if hub_oracle != self.link.address:
                    log.error("the hub's oracle is {hub}, this oracle signs as {me}: its commits will be refused",
                              hub=hub_oracle, me=self.link.address)
                if self.payer is not None:
                    dist_oracle = await self.link.distributor_oracle()
                    if dist_oracle != self.link.address:
                        log.error("the distributor's oracle is {d}, this oracle signs as {me}: its epochs will be "
                                  "refused", d=dist_oracle, me=self.link.address)
                await self._recover()
                self._recovered = True
            for pk in await self.follower.poll():
                self.kick(pk)
            await self._sweep()
            if self.payer is not None:
                await self.payer.advance(wait=False)  # an epoch whose commitEpoch is out (after a restart too)
        except Exception as e:  # noqa: BLE001 - node or catalog away: say so once, keep trying
            why = f"{type(e).__name__}: {scrub(str(e), self.url or '')[:300]}"
            if why != self._trouble:
                if isinstance(e, ChainMismatch):
                    log.error("oracle: {why}", why=why)
                else:
                    log.warn("oracle: chain or catalog unavailable, retrying every {s} s: {why}",
                             s=self.cfg.poll_seconds, why=why)
                self._trouble = why
            return
        if self._trouble is not None:
            log.info("oracle: chain reachable again")
            self._trouble = None

    async def _recover(self) -> None:
        tasks = await self.catalog.chain.active(self.link.chain_id, self.link.hub_address)
        for t in tasks:
            self._on_jobs(t.id, t.job_ids)
            self.kick(t.id)
        if tasks:
            log.info("oracle: resuming {n} active task(s)", n=len(tasks))

    async def _sweep(self) -> None:
        """Kick the tasks that may have something to do without a job event: new ones, ones
        whose deadline passed, ones waiting on the chain."""
        now = self.chain_now()
        for t in await self.catalog.chain.active(self.link.chain_id, self.link.hub_address):
            if t.id in self._busy or t.id in self._timers:
                continue
            if t.status in (TaskStatus.NEW, TaskStatus.CERTIFIED, TaskStatus.COMMITTING) or t.deadline < now:
                self.kick(t.id)

    # -- driving tasks ------------------------------------------------------------------------

    def _on_jobs(self, pk: int, job_ids: list[int]) -> None:
        for j in job_ids:
            self._job_task[j] = pk

    def _on_final(self, job_ids: list[int]) -> None:
        for pk in {self._job_task[j] for j in job_ids if j in self._job_task}:
            self.kick(pk)

    def kick(self, pk: int, delay: float = 0.0) -> None:
        """Look at task PK now (or after DELAY), one look at a time per task."""
        if self._stopping:
            return
        if delay > 0:
            timer = self._timers.get(pk)
            if timer is not None and timer.active():
                if timer.getTime() <= self.reactor.seconds() + delay:
                    return
                timer.cancel()
            self._timers[pk] = self.reactor.callLater(delay, self._fire, pk)
            return
        if pk in self._busy:
            self._again.add(pk)
            return
        self._busy.add(pk)
        d = Deferred.fromCoroutine(self._drive(pk))
        self._inflight.add(d)
        d.addBoth(self._driven, pk, d)

    def _fire(self, pk: int) -> None:
        self._timers.pop(pk, None)
        self.kick(pk)

    def _driven(self, result, pk: int, d: Deferred) -> None:
        self._inflight.discard(d)
        self._busy.discard(pk)
        if pk in self._again:
            self._again.discard(pk)
            self.kick(pk)

    def _retry(self, pk: int) -> float:
        backoff = self._backoff.setdefault(pk, Backoff(self.cfg.poll_seconds, MAX_BACKOFF))
        delay = backoff.next()
        self.kick(pk, delay)
        return delay

    async def _drive(self, pk: int) -> None:
        chain = self.catalog.chain
        for _ in range(STEPS_PER_KICK):
            if self._stopping:
                return
            try:
                t = await chain.get(pk)
                if t is None or t.status.final:
                    self._forget(pk, t)
                    return
                if t.status in (TaskStatus.NEW, TaskStatus.RUNNING):
                    outcome = await self.runner.advance(t)
                else:
                    outcome = await self.committer.advance(t)
            except StaleTask:
                continue
            except Exception as e:  # noqa: BLE001 - transient (node, catalog) or a bug: retry, say why
                delay = self._retry(pk)
                if _transient(e):
                    log.warn("task #{pk}: {e}; retrying in {d:.1f} s", pk=pk,
                             e=f"{type(e).__name__}: {scrub(str(e), self.url or '')[:200]}", d=delay)
                else:
                    log.failure("task #{pk}: unexpected error; retrying in {d:.1f} s", pk=pk, d=delay)
                return
            if outcome is Outcome.PROGRESS:
                self._backoff.pop(pk, None)
                continue
            if outcome is Outcome.RETRY:
                self._retry(pk)
            else:
                self._backoff.pop(pk, None)
            return
        self.kick(pk, self.cfg.poll_seconds)  # a long run of steps: let the others have a turn

    def _forget(self, pk: int, t) -> None:
        self._backoff.pop(pk, None)
        if t is None:
            return
        mapped = [j for j in t.job_ids if self._job_task.pop(j, None) is not None]
        if t.job_ids and not mapped:
            return  # said already: a late kick (e.g. its cancelled jobs ending)
        log.info("task {task} ({app}) is {status}{why}", task=t.task_id, app=t.app, status=t.status.value,
                 why=f": {t.error}" if t.error else "")


def _transient(e: Exception) -> bool:
    import requests
    from web3.exceptions import Web3Exception

    from xwpy.chain.tx import TxError
    from xwpy.server.catalog.connector import CatalogUnavailable

    return isinstance(e, (OSError, requests.RequestException, Web3Exception, TxError, CatalogUnavailable, TimeoutError))
