"""The coordinator process: catalog, blob store, scheduler, grid, HTTPS API and oracle, assembled.

``make_service(config, reactor)`` is the whole process layout. ``Coordinator`` only assembles and
starts its parts: the API and the oracle work through :class:`xwpy.server.grid.Grid`, which holds
the access rules and is the one door into the state.

It leads its catalog before it loads anything from it (:mod:`xwpy.server.catalog.lease`): while
another coordinator leads, it listens as a standby (every request answered 503 "standby") and tries
again every ``[catalog] standby_poll_seconds``; once it leads, it loads the state and serves. If
another coordinator takes the catalog over, this one's writes are refused and it exits, in one line.
"""

from __future__ import annotations

import json
import os
import signal
import threading

from sqlalchemy.exc import DBAPIError
from twisted.application import service
from twisted.application.internet import TimerService
from twisted.internet.defer import Deferred
from twisted.internet import task
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.web import server

from xwpy import logs, pki, protocol
from xwpy.backoff import Backoff
from xwpy.config import SiteConfig
from xwpy.server import api as api_module
from xwpy.server.api.guard import Guard, GuardedChannel, GuardedTLSFactory
from xwpy.server.api.router import BoundedRequest
from xwpy.server.api.standby import Standby
from xwpy.server import blobstore_s3
from xwpy.server.blobstore import BlobStore
from xwpy.server.catalog import apps as apps_catalog
from xwpy.server.catalog import hosts as hosts_catalog
from xwpy.server.catalog import lease as lease_module
from xwpy.server.catalog import users as users_catalog
from xwpy.server.catalog.connector import Catalog, CatalogCannotOpen, CatalogDriverMissing, CatalogFenced, shown_url
from xwpy.server.directory import Directory
from xwpy.server.grid import Grid
from xwpy.server.samples import SAMPLE_SECONDS
from xwpy.server.uploads import UploadSessions
from xwpy.server.scheduler.dispatcher import Dispatcher

log = Logger()


class Coordinator(service.MultiService):
    def __init__(self, config: SiteConfig, reactor):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.directory = Directory(reactor.seconds)
        self.catalog: Catalog | None = None
        self.blobs: BlobStore | None = None
        self.dispatcher: Dispatcher | None = None
        self.grid: Grid | None = None
        self.oracle = None  # xwpy.oracle.service.OracleService when [oracle] enabled
        self.port = None
        self.connections: GuardedTLSFactory | None = None
        self.tls: pki.ServerTLS | None = None  # the listening port's certificate (reloaded on SIGHUP)
        self.url: str | None = None
        self.ready: Deferred = Deferred()
        self.sampler: task.LoopingCall | None = None  # throughput for the dashboard
        self.lease: lease_module.PostgresLease | lease_module.FileLease | None = None
        self.epoch: int | None = None  # the catalog's lease epoch, once this coordinator leads
        self.fenced: CatalogFenced | None = None  # set when another coordinator took the catalog over
        self._renewer: task.LoopingCall | None = None
        self._site: server.Site | None = None

    def now(self) -> float:
        return self.reactor.seconds()

    # -- life cycle ------------------------------------------------------------------------------

    def startService(self):
        super().startService()
        d = Deferred.fromCoroutine(self._start())
        d.addCallbacks(self.ready.callback, self._fatal)

    def _fatal(self, failure):
        if failure.check(CannotListenError, CatalogCannotOpen):  # the operator's to fix, in one line, not a traceback
            log.error("coordinator failed to start: {why}", why=failure.getErrorMessage())
        else:
            log.failure("coordinator failed to start", failure)
        self.ready.errback(failure)
        if self.reactor.running:
            self.reactor.stop()

    async def _start(self) -> str | None:
        cfg = self.config
        name = lease_module.session_name()
        try:
            self.catalog = await deferToThread(
                Catalog.open, cfg.database_url, self.reactor, read_threads=cfg.catalog.read_threads,
                sqlite_synchronous=cfg.catalog.sqlite_synchronous, busy_timeout=cfg.catalog.busy_timeout_seconds,
                session_name=name,
            )
        except (DBAPIError, CatalogDriverMissing) as e:
            why = str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__]
            raise CatalogCannotOpen(f"cannot open the catalog {shown_url(cfg.catalog.url)}: {why[0]}") from None
        self.lease = lease_module.for_engine(self.catalog.engine, name, cfg.catalog.lease_seconds)
        if not await self._lead():
            return None  # stopped while standby
        if cfg.blob_store.backend == "s3":  # an object store: workers' transfers go there directly
            self.blobs = await deferToThread(blobstore_s3.open_store, cfg)
        else:
            self.blobs = BlobStore(cfg.blobs)
        users = await self.catalog.read(users_catalog.all_users)
        hosts = await self.catalog.read(hosts_catalog.all_hosts)
        apps = await self.catalog.read(apps_catalog.all_apps)
        self.directory.load(users, hosts, apps)
        self.dispatcher = Dispatcher(
            self.catalog, self.blobs, self.reactor,
            apps=self.directory.apps.get,
            lease_seconds=cfg.lease_seconds,
            heartbeat_seconds=cfg.scheduler.heartbeat_seconds,
            reap_seconds=cfg.scheduler.reap_seconds,
            no_quorum_seconds=cfg.scheduler.no_quorum_seconds,
            silent_leases=cfg.scheduler.silent_leases,
            max_wait_seconds=cfg.scheduler.max_wait_seconds,
            trust_threshold=cfg.scheduler.trust_threshold,
            spot_check=cfg.scheduler.spot_check,
            share=lambda user_id: self.directory.share_of(user_id, cfg.shares, cfg.scheduler.default_share),
            usage_half_life=cfg.scheduler.usage_half_life_seconds,
        )
        self.dispatcher.setServiceParent(self)
        jobs_log = logs.job_log()  # one line per job state change, once committed
        if jobs_log is not None:
            self.dispatcher.on_commit(jobs_log.changes)
        await self.dispatcher.start()
        self.grid = Grid(config=cfg, reactor=self.reactor, catalog=self.catalog, blobs=self.blobs,
                         directory=self.directory, dispatcher=self.dispatcher)
        self.sampler = task.LoopingCall(self.grid.sample)
        self.sampler.clock = self.reactor
        self.sampler.start(SAMPLE_SECONDS, now=True)
        self.grid.uploads = UploadSessions(cfg.blobs / "uploads", self.blobs, max_per_caller=cfg.limits.max_upload_sessions,
                                           stale_seconds=cfg.limits.upload_session_seconds)
        await deferToThread(self.grid.uploads.load, self.now())
        sweep = TimerService(min(cfg.limits.upload_session_seconds / 4, 3600.0),
                             lambda: Deferred.fromCoroutine(self.grid.sweep_uploads()))
        sweep.clock = self.reactor
        sweep.setServiceParent(self)
        if cfg.retention.gc_seconds > 0:  # the retention policy: unreferenced blobs collected
            gc = TimerService(cfg.retention.gc_seconds, lambda: Deferred.fromCoroutine(self.grid.retention_round()))
            gc.clock = self.reactor
            gc.setServiceParent(self)
        if cfg.oracle.enabled:
            try:
                import web3  # noqa: F401 - the oracle's chain stack, an extra of its own
            except ImportError:
                raise RuntimeError("[oracle] enabled = true, but the chain part of xwpy is not installed: "
                                   "pip install 'xwpy[chain]'") from None
            from xwpy.oracle.service import OracleService

            self.oracle = self.grid.oracle = OracleService(self.grid, self.catalog)
            self.oracle.setServiceParent(self)
            await self.oracle.start()
        resource = api_module.build(self.grid, access_log=self.config.coordinator.access_log)
        if self.port is None:
            self.port = await self._listen(resource)
        else:  # it listened as a standby: the same port serves the API from now on
            self._site.resource = resource
        self.url = f"https://{cfg.coordinator.public_host}:{self.port.getHost().port}"
        self._write_run_file()
        self._on_sighup()
        log.info("coordinator listening on {url}", url=self.url)
        return self.url

    # -- the catalog's lease ---------------------------------------------------------------------

    async def _lead(self) -> bool:
        """Take the catalog's lease, as a standby for as long as another coordinator holds it.
        False if the service stopped meanwhile."""
        cfg = self.config.catalog
        backoff = Backoff(cfg.standby_poll_seconds, max(cfg.standby_poll_seconds, cfg.lease_seconds))
        said = None
        while True:
            try:
                seen = await deferToThread(self.lease.try_lead)
            except Exception as e:  # noqa: BLE001 - the database out of reach: try again
                log.warn("catalog lease not taken, trying again: {why}", why=str(e).splitlines()[0][:200] if str(e) else type(e).__name__)
                seen, delay = None, backoff.next()
            else:
                backoff.reset()
                delay = cfg.standby_poll_seconds
            if seen is not None and seen.epoch is not None:
                break
            if not self.running:
                return False
            if seen is not None and seen.evicted:
                log.warn("the catalog's leader ({holder}) let its lease run out: its sessions are ended, "
                         "taking over", holder=seen.holder)
            elif seen is not None and said != seen.holder:
                said = seen.holder
                log.info("standby: the catalog is led by {holder} (epoch {epoch}); waiting for its lease",
                         holder=seen.holder, epoch=seen.their_epoch)
                if self.port is None:
                    self.port = await self._listen(Standby())
                    self.url = f"https://{self.config.coordinator.public_host}:{self.port.getHost().port}"
                    self._write_run_file(standby=True)
                    log.info("standby listening on {url} (answering 503 until it leads)", url=self.url)
            await task.deferLater(self.reactor, delay, lambda: None)
            if not self.running:
                return False
        self.epoch = seen.epoch
        self.catalog.fence(seen.epoch)
        self.catalog.on_fenced = self._on_fenced
        log.info("leading the catalog (epoch {epoch})", epoch=seen.epoch)
        if self.lease.renews:
            self._renewer = task.LoopingCall(self._renew)
            self._renewer.clock = self.reactor
            self._renewer.start(cfg.lease_seconds / 3, now=False)
        return True

    def _renew(self) -> Deferred:
        def failed(f):
            if f.check(lease_module.Fenced):
                self._on_fenced(CatalogFenced(f.getErrorMessage()))
            else:
                log.warn("catalog lease not renewed (writes stay fenced), trying again: {why}",
                         why=f.getErrorMessage().splitlines()[0][:200] if f.getErrorMessage() else f.type.__name__)

        return deferToThread(self.lease.renew).addErrback(failed)

    def _on_fenced(self, err: CatalogFenced) -> None:
        """Another coordinator leads the catalog: nothing this one writes will be stored. Stop."""
        if self.fenced is not None:
            return
        self.fenced = err
        if self._renewer is not None and self._renewer.running:
            self._renewer.stop()
        log.critical("coordinator stopped: {why}", why=str(err))
        if self.reactor.running:
            self.reactor.stop()

    # -- the server certificate ------------------------------------------------------------------

    def _on_sighup(self) -> None:
        """SIGHUP (``xwpy cert renew``, systemd's reload) makes it serve the site's server
        certificate as it is now on disk: new connections get it, open ones are kept."""
        if threading.current_thread() is not threading.main_thread():
            return  # (a coordinator run in a test's thread: no signals there)
        signal.signal(signal.SIGHUP, lambda signum, frame: self.reactor.callFromThread(self.reload_certificate))

    def reload_certificate(self) -> Deferred:
        async def reload():
            cfg = self.config
            try:
                cert, key = await deferToThread(lambda: (cfg.server_cert.read_bytes(), cfg.server_key.read_bytes()))
                old, new = self.tls.serial, self.tls.use(cert, key)
            except Exception as e:  # noqa: BLE001 - a bad pair is the operator's to fix: keep serving the old one
                log.error("server certificate not reloaded, still serving serial {serial:x}: {why}",
                          serial=self.tls.serial, why=str(e) or type(e).__name__)
                return
            log.info("server certificate reloaded: serial {new:x} (was {old:x}) for new connections",
                     new=new, old=old)

        return Deferred.fromCoroutine(reload())

    async def _listen(self, resource):
        cfg = self.config
        limits = cfg.limits
        upload_prefix = (protocol.API_PREFIX + "/data/").encode()
        chunk_prefix = (protocol.API_PREFIX + "/uploads/").encode()

        class Request(BoundedRequest):
            @staticmethod
            def limit_for(path: bytes) -> int:
                if path.startswith(chunk_prefix):
                    return protocol.MAX_UPLOAD_CHUNK
                return limits.max_upload_bytes if path.startswith(upload_prefix) else limits.max_body_bytes

        # The API takes JSON, never HTML forms: do not parse every request's Content-Type with the
        # email package (a tenth of the reactor's time under load).
        site = _Site(resource, requestFactory=Request, parsePOSTFormSubmission=False, reactor=self.reactor)
        site.displayTracebacks = False
        site.timeOut = limits.idle_timeout_seconds
        site.noisy = False
        site.guard = Guard.from_limits(limits)
        self._site = site
        self.tls = pki.ServerTLS(cfg.server_cert.read_bytes(), cfg.server_key.read_bytes())
        self.connections = GuardedTLSFactory(self.tls, site, site.guard)
        endpoint = TCP4ServerEndpoint(self.reactor, cfg.coordinator.port, backlog=1024, interface=cfg.coordinator.interface)
        return await endpoint.listen(self.connections)

    def _write_run_file(self, standby: bool = False) -> None:
        path = self.config.run_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": self.url, "pid": os.getpid(), **({"standby": True} if standby else {})}))
        os.replace(tmp, path)

    def stopService(self):
        d = super().stopService()
        steps = []
        if self.sampler is not None and self.sampler.running:
            self.sampler.stop()
        if self._renewer is not None and self._renewer.running:
            self._renewer.stop()
        if self.port is not None:
            steps.append(self.port.stopListening())
        if self.url is not None:  # only the run file this coordinator wrote
            try:
                self.config.run_file.unlink()
            except FileNotFoundError:
                pass

        async def finish():
            for s in steps:
                await s
            if d is not None:
                await d
            if self.catalog is not None:
                await self.catalog.close()
            if self.lease is not None:  # after the last write: a standby may take over at once
                await deferToThread(self.lease.release)

        return Deferred.fromCoroutine(finish())


class _Site(server.Site):
    protocol = GuardedChannel  # HTTP/1.1 with deadlines for slow clients

    def log(self, request):  # twisted.web's own access log costs more than serving a work request:
        pass  # the API writes its own (xwpy.logs.AccessLog, measured by bench/bench_logging.py)


def make_service(config: SiteConfig, reactor) -> Coordinator:
    return Coordinator(config, reactor)


__all__ = ["Coordinator", "make_service"]
