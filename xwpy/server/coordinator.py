"""The coordinator process: catalog, blob store, scheduler and HTTPS API, assembled in one place.

``make_service(config, reactor)`` is the whole process layout; ``Coordinator`` is also the context
the API handlers work with (rights checks shared by several endpoints live here).
"""

from __future__ import annotations

import json
import os

from twisted.application import service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.web import server

from xwpy import pki, protocol
from xwpy.config import SiteConfig
from xwpy.server import api as api_module
from xwpy.server.api.guard import Guard, GuardedChannel, GuardedTLSFactory
from xwpy.server.api.router import ApiError, BoundedRequest, Raw, Stream
from xwpy.server.blobstore import BlobStore, Corrupt
from xwpy.server.catalog import apps as apps_catalog
from xwpy.server.catalog import hosts as hosts_catalog
from xwpy.server.catalog import users as users_catalog
from xwpy.server.catalog.connector import Catalog
from xwpy.server.catalog.rows import Data, User
from xwpy.server.directory import Directory
from xwpy.server.scheduler.dispatcher import Dispatched, Dispatcher

log = Logger()

TAR_MARGIN = 1 << 20  # archive headers on top of a job's output limit


class Coordinator(service.MultiService):
    def __init__(self, config: SiteConfig, reactor):
        super().__init__()
        self.config = config
        self.reactor = reactor
        self.log = log
        self.directory = Directory()
        self.catalog: Catalog | None = None
        self.blobs: BlobStore | None = None
        self.dispatcher: Dispatcher | None = None
        self.oracle = None  # xwpy.oracle.service.OracleService when [oracle] enabled
        self.port = None
        self.connections: GuardedTLSFactory | None = None
        self.url: str | None = None
        self.ready: Deferred = Deferred()

    def now(self) -> float:
        return self.reactor.seconds()

    # -- life cycle ------------------------------------------------------------------------------

    def startService(self):
        super().startService()
        d = Deferred.fromCoroutine(self._start())
        d.addCallbacks(self.ready.callback, self._fatal)

    def _fatal(self, failure):
        log.failure("coordinator failed to start", failure)
        self.ready.errback(failure)
        if self.reactor.running:
            self.reactor.stop()

    async def _start(self) -> str:
        cfg = self.config
        self.catalog = await deferToThread(
            Catalog.open, cfg.database_url, self.reactor, read_threads=cfg.catalog.read_threads,
            sqlite_synchronous=cfg.catalog.sqlite_synchronous, busy_timeout=cfg.catalog.busy_timeout_seconds,
        )
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
            max_wait_seconds=cfg.scheduler.max_wait_seconds,
            trust_threshold=cfg.scheduler.trust_threshold,
            spot_check=cfg.scheduler.spot_check,
        )
        self.dispatcher.setServiceParent(self)
        await self.dispatcher.start()
        if cfg.oracle.enabled:
            try:
                import web3  # noqa: F401 - the oracle's chain stack, an extra of its own
            except ImportError:
                raise RuntimeError("[oracle] enabled = true, but the chain part of xwpy is not installed: "
                                   "pip install 'xwpy[chain]'") from None
            from xwpy.oracle.service import OracleService

            self.oracle = OracleService(self)
            self.oracle.setServiceParent(self)
            await self.oracle.start()
        self.port = await self._listen(api_module.build(self, access_log=self.config.coordinator.access_log))
        self.url = f"https://{cfg.coordinator.public_host}:{self.port.getHost().port}"
        self._write_run_file()
        log.info("coordinator listening on {url}", url=self.url)
        return self.url

    async def _listen(self, resource):
        cfg = self.config
        limits = cfg.limits
        upload_prefix = (protocol.API_PREFIX + "/data/").encode()

        class Request(BoundedRequest):
            @staticmethod
            def limit_for(path: bytes) -> int:
                return limits.max_upload_bytes if path.startswith(upload_prefix) else limits.max_body_bytes

        # The API takes JSON, never HTML forms: do not parse every request's Content-Type with the
        # email package (a tenth of the reactor's time under load).
        site = _Site(resource, requestFactory=Request, parsePOSTFormSubmission=False, reactor=self.reactor)
        site.displayTracebacks = False
        site.timeOut = limits.idle_timeout_seconds
        site.noisy = False
        site.guard = Guard.from_limits(limits)
        ctx = pki.server_context_factory(cfg.server_cert.read_bytes(), cfg.server_key.read_bytes())
        self.connections = GuardedTLSFactory(ctx, site, site.guard)
        endpoint = TCP4ServerEndpoint(self.reactor, cfg.coordinator.port, backlog=1024, interface=cfg.coordinator.interface)
        return await endpoint.listen(self.connections)

    def _write_run_file(self) -> None:
        path = self.config.run_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"url": self.url, "pid": os.getpid()}))
        os.replace(tmp, path)

    def stopService(self):
        d = super().stopService()
        steps = []
        if self.port is not None:
            steps.append(self.port.stopListening())
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

        return Deferred.fromCoroutine(finish())

    # -- rights shared by the endpoints ----------------------------------------------------------

    def may_read_row(self, user: User, row: Data) -> bool:
        return (
            user.admin
            or row.owner_id == user.id
            or row.access == "public"
            or (row.access == "group" and bool(user.group) and row.group == user.group)
        )

    async def readable(self, user: User, sha256: str) -> Data | None:
        return await self.catalog.data.readable(sha256, user.id, user.group, user.admin)

    async def blob(self, sha256: str, content_type: str = "application/octet-stream"):
        """A response sending a blob, from the file store or the catalog's small blobs; None if absent.

        Whatever is served is checked against its sha256 on the way out: a damaged blob is refused
        (410 ``corrupt``), set aside and logged, never served as if it were the data."""
        size = self.blobs.size(sha256)
        if size is not None:
            def corrupt(digest: str) -> None:
                log.error("stored blob {sha} is damaged (its content hashes to {digest}): set aside in {dir}",
                          sha=sha256, digest=digest, dir=self.blobs.root / "corrupt")
                self.blobs.quarantine(sha256)

            return Stream(str(self.blobs.path(sha256)), size, content_type, sha256=sha256, on_corrupt=corrupt)
        try:
            data = await self.catalog.blobs.get(sha256)
        except Corrupt as e:
            log.error("{error}", error=str(e))
            raise ApiError(410, "corrupt", f"{sha256} is damaged in the coordinator's catalog; it cannot be served") from None
        if data is None and self.blobs.quarantined(sha256):
            raise ApiError(410, "corrupt", f"{sha256} was found damaged in the coordinator's store and set aside; "
                                           "upload it again to repair it")
        return None if data is None else Raw(data, content_type)

    async def host_may_read(self, host_id: int, sha256: str) -> bool:
        """A host may download the inputs and bundles of the replicas it holds, nothing else."""
        eng = self.dispatcher.engine
        state = eng.hosts.get(host_id)
        if state is None or not state.active:
            return False
        return sha256 in await self.catalog.jobs.blobs_of(sorted({eng.replicas[r].job_id for r in state.active}))

    def result_limit(self, host_id: int) -> int:
        eng = self.dispatcher.engine
        state = eng.hosts.get(host_id)
        if state is None:
            return 0
        limits = [0]
        for rid in state.active:
            job = eng.jobs.get(eng.replicas[rid].job_id)
            app = self.directory.apps.get(job.app_id) if job else None
            if app is not None:
                limits.append(app.limits["output_bytes"] + TAR_MARGIN)
        return max(limits)

    def assignment(self, x: Dispatched) -> protocol.Assignment:
        return protocol.Assignment(
            replica_id=x.replica.id,
            job_id=x.replica.job_id,
            command=x.app.command,
            args=tuple(x.args),
            inputs=tuple(protocol.InputRef(name=i["name"], sha256=i["sha256"]) for i in x.inputs),
            bundle=x.app.bundle,
            limits=protocol.Limits(**x.app.limits),
            lease_expires=x.replica.lease_expires,
            image=protocol.parse(protocol.ImageSpec, x.app.image) if x.app.image else None,
            network=x.app.network,
        )


class _Site(server.Site):
    protocol = GuardedChannel  # HTTP/1.1 with deadlines for slow clients

    def log(self, request):  # twisted.web's own access log costs more than serving a work request:
        pass  # the API writes its own (xwpy.logs.AccessLog, measured by bench/bench_logging.py)


def make_service(config: SiteConfig, reactor) -> Coordinator:
    return Coordinator(config, reactor)


__all__ = ["Coordinator", "make_service"]
