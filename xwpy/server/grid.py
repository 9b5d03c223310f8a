"""The grid: the one typed door into the coordinator's state.

The API's handlers, the oracle and the operators' endpoints call this and nothing below it. It
holds the access rules (who may use an app, read data, see a job) and is the only place that
writes to the catalog, the directory (the in-memory cache of users, hosts and apps) and the
scheduler together, in that order: a new user, host or app is committed before anyone can find it.

It raises the domain errors of :mod:`xwpy.server.errors`, never an HTTP status; its answers are
catalog rows and protocol messages.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from sqlalchemy.exc import IntegrityError
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from xwpy import archive, platforms, protocol, tokens
from xwpy.config import SiteConfig
from xwpy.image import Image, ImageError, ImageLimits, inspect
from xwpy.lifecycle import FINAL_NAMES, JobStatus
from xwpy.server import blobstore, submission, uploads
from xwpy.server.blobstore import BlobStore, Corrupt
from xwpy.server.catalog.connector import Catalog
from xwpy.server.catalog.rows import App, AppVersion, Data, Host, Job, User
from xwpy.server.directory import Directory, Principal
from xwpy.server.errors import (
    BadRequest, Conflict, DigestMismatch, Forbidden, Gone, NotFound, OverQuota, TooLarge, TooMany, Unavailable,
)
from xwpy.server.feed import Feed
from xwpy.server.finals import Finals
from xwpy.server.fresh import Fresh
from xwpy.server.reads import Reads
from xwpy.server.samples import Sample, Samples
from xwpy.server.scheduler.dispatcher import Dispatched, Dispatcher
from xwpy.server.scheduler.engine import HostState
from xwpy.server.uploads import Session, UploadSessions
from xwpy.compare import known_comparators
from xwpy.verify import known_verifiers

log = Logger()

TAR_MARGIN = 1 << 20  # archive headers on top of a job's output limit
FINAL_STATUSES = frozenset(FINAL_NAMES)


@dataclass(frozen=True)
class StoredFile:
    """A blob on disk, to be streamed; ``on_corrupt(digest)`` when what is read does not hash to it."""

    path: Path
    size: int
    sha256: str
    on_corrupt: Callable[[str], None]

    def hash_prefix(self, n: int):
        """The sha256 state of its first ``n`` bytes (blocking: a resumed download's first part)."""
        return blobstore.hash_prefix(self.path, n)


@dataclass(frozen=True)
class HostSeen:
    """A host as its owner or an admin sees it: its catalog row and the scheduler's live state."""

    host: Host
    owner: str
    state: HostState | None
    alive: bool


class Grid:
    def __init__(self, *, config: SiteConfig, reactor, catalog: Catalog, blobs: BlobStore, directory: Directory,
                 dispatcher: Dispatcher):
        self.config = config
        self.reactor = reactor
        self.catalog = catalog
        self.blobs = blobs
        self.directory = directory
        self.dispatcher = dispatcher
        self.oracle = None  # xwpy.oracle.service.OracleService when it runs (operators' endpoints report on it)
        self.feed = Feed(reactor)  # what dashboards long-poll: bumped when jobs are submitted or end
        # the dashboards' reads, shared between the pages a change wakes (and pacing its wakes)
        self.fresh = Fresh(self.feed, on_read=self.feed.spent)
        self.samples = Samples()  # throughput over time, sampled by the coordinator (sample())
        dispatcher.on_final(self.feed.bump)
        self.finals = Finals(reactor)  # what clients' futures long-poll: any of their jobs final
        dispatcher.on_final(self.finals.ended)
        self.reads = Reads(catalog, reactor)  # jobs, counts and work done, from memory while current
        self._app_wire: dict[int, tuple[App, dict]] = {}  # each app's part of an Assignment, encoded (wire_assignment)
        dispatcher.on_commit(self.reads.changed)
        self.uploads: UploadSessions | None = None  # resumable uploads (set by the coordinator)

    def now(self) -> float:
        return self.reactor.seconds()

    # -- who is who --------------------------------------------------------------------------------

    def principal(self, token: str) -> Principal | None:
        return self.directory.principal(token)

    async def add_user(self, login: str, role: str, group: str, expires: float | None = None) -> tuple[User, str]:
        """A new account and its token (shown this once; only its hash is kept), valid until
        ``expires`` (None: no expiry)."""
        if login in self.directory.logins:
            raise Conflict(f"user {login!r} exists", "login")
        token = tokens.new_token("xwu")
        try:
            user = await self.catalog.users.add(login=login, role=role, group=group,
                                                token_hash=tokens.token_hash(token), now=self.now(), expires=expires)
        except IntegrityError:
            raise Conflict(f"user {login!r} exists", "login") from None
        self.directory.add_user(user)
        log.info("user {login} created with role {role}", login=user.login, role=user.role)
        return user, token

    def user(self, login: str) -> User | None:
        return self.directory.logins.get(login)

    def _account(self, caller: User, login: str) -> User:
        """The account ``login``, which ``caller`` may manage (their own; any, for an admin)."""
        user = self.directory.logins.get(login)
        if user is None or not (caller.admin or user.id == caller.id):
            if caller.admin or user is None:
                raise NotFound.of(f"user {login!r}")
            raise Forbidden("only an admin manages another user's account")
        return user

    async def set_disabled(self, admin: User, login: str, disabled: bool) -> User:
        """Disable (or enable) an account: its token and its hosts' tokens are refused (or
        accepted) from the next request on, and the replicas its hosts run are rescheduled on other
        hosts now."""
        user = self._account(admin, login)
        if disabled and user.id == admin.id:
            raise BadRequest("an admin cannot disable their own account", "login")
        user = await self.catalog.users.update(user.id, disabled=disabled)
        self.directory.credentials_changed(user=user)
        await self.dispatcher.set_owner_disabled(user.id, disabled)  # its hosts' replicas go elsewhere now
        log.info("user {login} {what} by {admin}", login=login, what="disabled" if disabled else "enabled",
                 admin=admin.login)
        return user

    async def rotate_token(self, caller: User, login: str, expires: float | None = None) -> tuple[User, str]:
        """A new token for ``login`` (shown this once), valid until ``expires`` (None: no
        expiry); the old one is unknown from the next request on. Hosts keep their own tokens."""
        user = self._account(caller, login)
        token = tokens.new_token("xwu")
        user = await self.catalog.users.update(user.id, token_hash=tokens.token_hash(token), token_expires=expires)
        self.directory.credentials_changed(user=user)
        log.info("token of {login} rotated by {caller}", login=login, caller=caller.login)
        return user, token

    async def revoke_host(self, caller: User, host_id: int) -> Host:
        """Revoke a host's token (its owner's or an admin's doing): its worker is refused from the
        next request on, and its replicas are rescheduled on other hosts now."""
        host = self.directory.hosts.get(host_id)
        if host is None or not (caller.admin or host.owner_id == caller.id):
            raise NotFound.of(f"host {host_id}")
        if host.revoked_at is None:
            host = await self.catalog.hosts.revoke(host_id, self.now())
            self.directory.credentials_changed(host=host)
            await self.dispatcher.revoke(host_id)
            log.info("host {id} ({name}) revoked by {caller}", id=host_id, name=host.name, caller=caller.login)
        return host

    async def set_payout_address(self, principal: Principal, host_id: int, address: str | None) -> Host:
        """Where a host's share of the pool is paid from the next epoch on (None: nowhere): the
        host's own doing (its token), its owner's or an admin's."""
        from xwpy.addresses import checked

        caller, host = principal.user, self.directory.hosts.get(host_id)
        if (host is None or (principal.host_id is not None and principal.host_id != host_id)
                or not (caller.admin or host.owner_id == caller.id)):
            raise NotFound.of(f"host {host_id}")
        if address is not None:
            try:
                address = checked(address)
            except ValueError as e:
                raise BadRequest(str(e), field="address") from None
        host = await self.catalog.hosts.set_payout_address(host_id, address)
        self.directory.add_host(host)
        log.info("host {id} ({name}): payout address {address} set by {caller}", id=host_id, name=host.name,
                 address=address or "(none)", caller=caller.login)
        return host

    def payout_addresses(self) -> dict[int, str | None]:
        """Each host's payout address (None: it gave none)."""
        return {h.id: h.payout_address for h in self.directory.hosts.values()}

    def payout_accounts(self, caller: User, host_id: int | None = None) -> set[str]:
        """The payout addresses of the caller's hosts (its own only, for a host's token; every
        host's for an admin), lower case."""
        return {h.payout_address.lower() for h in self.directory.hosts.values()
                if h.payout_address and (h.id == host_id if host_id is not None
                                         else caller.admin or h.owner_id == caller.id)}

    async def earned(self, job_ids: list[int]) -> list[tuple[int, int, str, float | None]]:
        """(job id, host id, validation, credit) of every replica of these jobs."""
        return await self.catalog.jobs.earned(job_ids) if job_ids else []

    async def register_host(self, user: User, msg: protocol.RegisterHost) -> tuple[int, str]:
        """A volunteer's new host: its id and token (shown this once)."""
        token = tokens.new_token("xwh")
        digest = tokens.token_hash(token)
        now = self.now()
        platform = msg.platform or ""
        host_id = await self.catalog.hosts.add(
            owner_id=user.id, name=msg.name, token_hash=digest, cpus=msg.cpus, memory=msg.memory, os=msg.os, now=now,
            platform=platform, images=msg.images, network=msg.network,
        )
        self.directory.add_host(Host(host_id, user.id, msg.name, digest, msg.cpus, msg.memory, msg.os, now, now, 0,
                                     user.login, user.group, platform, msg.images, msg.network))
        self.dispatcher.add_host(HostState(host_id, user.id, user.group, msg.memory, 0, now, cores=msg.cpus,
                                           platform=platform, images=msg.images, network=msg.network))
        log.info("host {id} ({name}) registered by {login}", id=host_id, name=msg.name, login=user.login)
        return host_id, token

    # -- apps --------------------------------------------------------------------------------------

    def may_use_app(self, user: User, app: App) -> bool:
        return self.directory.may_use_app(user, app)

    def apps_for(self, user: User) -> list[App]:
        return [a for a in self.directory.apps.values() if self.directory.may_use_app(user, a)]

    def app_for(self, user: User, name: str) -> App:
        """The app of that name, if the user may use it (else, to them, there is none)."""
        app = self.directory.app_names.get(name)
        if app is None or not self.directory.may_use_app(user, app):
            raise NotFound.of(f"app {name!r}")
        return app

    async def register_app(self, user: User, msg: protocol.NewApp) -> App:
        if msg.name in self.directory.app_names:
            raise Conflict(f"app {msg.name!r} exists", "name")
        if msg.validator.startswith("verifier:") and msg.validator[9:] not in known_verifiers():
            raise BadRequest(f"unknown verifier {msg.validator[9:]!r}", "validator")
        if msg.comparator is not None and msg.comparator not in known_comparators():
            raise BadRequest(f"unknown comparator {msg.comparator!r} (known: {', '.join(sorted(known_comparators()))})",
                             "comparator")
        if msg.bundle is not None and await self.readable(user, msg.bundle) is None:
            raise BadRequest(f"bundle {msg.bundle} is not data you may read (upload it first)", "bundle")
        image = None
        if msg.image is not None:
            if await self.readable(user, msg.image) is None:
                raise BadRequest(f"image {msg.image} is not data you may read (upload it first)", "image")
            image = await self._check_image(msg.image)
        return await self._add_app(
            user, name=msg.name, access=msg.access, bundle=msg.bundle, command=tuple(msg.command),
            limits=protocol.encode(msg.limits), validator=msg.validator, replication=msg.replication,
            quorum=msg.quorum, adaptive=msg.adaptive, network=msg.network, image=image,
            platform=_platform(msg.platform, image), deadline=msg.deadline, checkpoints=msg.checkpoints,
            comparator=msg.comparator, homogeneous=msg.homogeneous,
            compare={k: v for k, v in (("rtol", msg.rtol), ("atol", msg.atol)) if v is not None} or None,
        )

    async def ensure_app(self, user: User, *, name: str, command: Iterable[str], limits: dict, validator: str,
                         replication: int, quorum: int) -> App:
        """A public bundle-less app of ``user``'s (the oracle's): the existing one of that name, or a
        new one. Raises Conflict when the name belongs to someone else."""
        existing = self.directory.app_names.get(name)
        if existing is not None:
            if existing.owner_id != user.id:
                raise Conflict(f"the grid app {name!r} belongs to {existing.owner!r}, not to {user.login!r}", "name")
            return existing
        return await self._add_app(user, name=name, access="public", bundle=None, command=tuple(command),
                                   limits=limits, validator=validator, replication=replication, quorum=quorum)

    async def _add_app(self, user: User, *, name: str, access: str, bundle: str | None, command: tuple,
                       limits: dict, validator: str, replication: int, quorum: int, adaptive: bool = False,
                       network: bool = False, image: dict | None = None, platform: str = "any",
                       deadline: int = protocol.DEFAULT_DEADLINE, checkpoints: str = "keep",
                       comparator: str | None = None, compare: dict | None = None, homogeneous: bool = False) -> App:
        try:
            app_id = await self.catalog.apps.add(
                name=name, owner_id=user.id, access=access, bundle=bundle, command=list(command), limits=limits,
                validator=validator, replication=replication, quorum=quorum, now=self.now(), adaptive=adaptive,
                network=network, image=image, platform=platform, deadline=deadline, checkpoints=checkpoints,
                comparator=comparator, compare=compare, homogeneous=homogeneous,
            )
        except IntegrityError:
            raise Conflict(f"app {name!r} exists", "name") from None
        app = App(app_id, name, user.id, user.login, access, bundle, command, limits, validator, replication, quorum,
                  adaptive, network, image, platform, deadline=deadline, checkpoints=checkpoints,
                  comparator=comparator, compare=compare, homogeneous=homogeneous)
        self.directory.add_app(app)
        return app

    async def add_version(self, user: User, name: str, msg: protocol.NewVersion) -> App:
        """Another platform's build of an app: a bundle or an image, checked as at registration."""
        app = self.app_for(user, name)
        if app.owner_id != user.id and not user.admin:
            raise Forbidden(f"app {name!r} is {app.owner}'s: only its owner adds versions")
        blob = msg.bundle or msg.image
        if await self.readable(user, blob) is None:
            raise BadRequest(f"{blob} is not data you may read (upload it first)", "image" if msg.image else "bundle")
        if (app.image is None) != (msg.image is None):
            raise BadRequest(f"app {name!r} runs {'in an image' if app.image else 'a bundle'}: "
                             f"its versions must too", "image" if msg.image else "bundle")
        image = await self._check_image(msg.image) if msg.image else None
        version = AppVersion(_platform(msg.platform, image), msg.bundle, image)
        current = self.directory.app_names.get(name, app)
        conflict = Conflict(f"app {name!r} has a version for {version.platform}", "platform")
        if any(v.platform == version.platform for v in current.versions):
            raise conflict
        try:
            await self.catalog.apps.add_version(app_id=app.id, version=version, now=self.now())
        except IntegrityError:
            raise conflict from None
        current = self.directory.app_names[name]
        updated = dataclasses.replace(current, extra=(*current.extra, version))
        self.directory.add_app(updated)
        return updated

    async def _check_image(self, sha256: str) -> dict:
        """Read and verify an uploaded image archive off the reactor: its ImageSpec, or BadRequest
        naming what is wrong with it (nothing is registered then)."""
        lim = self.config.limits
        limits = ImageLimits(max_archive_bytes=lim.max_upload_bytes, max_files=lim.max_image_files,
                             max_unpacked_bytes=lim.max_image_bytes)

        def thd() -> Image:
            path = self.blobs.fetch(sha256)
            if path is None:
                raise ImageError("not in the coordinator's store (upload it again)")
            return inspect(path, limits)

        try:
            image = await deferToThread(thd)
        except ImageError as e:
            raise BadRequest(f"image {sha256[:12]}: {e}", "image") from None
        return protocol.encode(protocol.ImageSpec(
            sha256=sha256, id=image.id, platform=image.platform, env=image.env, workdir=image.workdir,
            entrypoint=image.entrypoint, cmd=image.cmd, files=image.files, unpacked_bytes=image.unpacked_bytes))

    # -- data --------------------------------------------------------------------------------------

    def may_read_row(self, user: User, row: Data) -> bool:
        return (
            user.admin
            or row.owner_id == user.id
            or row.access == "public"
            or (row.access == "group" and bool(user.group) and row.group == user.group)
        )

    async def readable(self, user: User, sha256: str) -> Data | None:
        return await self.catalog.data.readable(sha256, user.id, user.group, user.admin)

    async def host_may_read(self, host_id: int, sha256: str) -> bool:
        """A host may download the inputs and bundles of the replicas it holds, nothing else."""
        jobs = self.dispatcher.jobs_held(host_id)
        if sha256 in self.dispatcher.checkpoints_held(host_id):
            return True
        return bool(jobs) and sha256 in await self.catalog.jobs.blobs_of(jobs)

    def result_limit(self, host_id: int) -> int:
        """The largest result archive a host may upload: by the apps of the replicas it holds (0: none)."""
        limits = [0]
        for app_id in self.dispatcher.apps_held(host_id):
            app = self.directory.apps.get(app_id)
            if app is not None:
                limits.append(app.limits["output_bytes"] + TAR_MARGIN)
        return max(limits)

    async def store(self, principal: Principal, content, sha256: str, access: str, name: str) -> protocol.DataInfo:
        """Store an upload (re-hashed as it is written). A user's becomes data they own; a host's is a
        result archive, bounded by what its current work may output."""
        limit = self._upload_limit(principal)
        if content is None:
            raise BadRequest("a body is required")
        if principal.host_id is None:
            await self._check_bytes_quota(principal.user, sha256, content.seek(0, 2))
        content.seek(0)
        try:
            digest, size = await deferToThread(self.blobs.put_stream, content, sha256, limit)
        except blobstore.DigestMismatch as e:
            raise DigestMismatch(str(e), "sha256") from None
        except blobstore.TooLarge as e:
            raise TooLarge(str(e)) from None
        except blobstore.StoreFull as e:
            raise Unavailable(f"the coordinator's storage is full ({e}); retry later") from None
        except blobstore.StoreUnavailable as e:
            raise Unavailable(f"the blob store does not answer ({e}); retry later") from None
        user = principal.user
        if principal.host_id is None:
            access = await self.catalog.data.add(sha256=digest, size=size, owner_id=user.id, access=access,
                                                 name=name, now=self.now())
        return protocol.DataInfo(sha256=digest, size=size, name=name, access=access, owner=user.login)

    def _upload_limit(self, principal: Principal) -> int:
        """The most a caller may upload at once: a user's max_upload_bytes, a host's result limit."""
        if principal.host_id is None:
            if principal.user.role == "worker":
                raise Forbidden("worker accounts may only register hosts")
            return self.config.limits.max_upload_bytes
        limit = self.result_limit(principal.host_id)
        if limit == 0:
            raise Forbidden("this host holds no work to upload results for")
        return limit

    # -- resumable uploads (xwpy.server.uploads) ----------------------------------------------------

    async def open_upload(self, principal: Principal, msg: protocol.NewUpload) -> Session:
        limit = self._upload_limit(principal)
        caller = (principal.user.id, principal.host_id)
        if principal.host_id is not None and await self._size(msg.sha256) == msg.size:
            # Another replica's identical result is stored: nothing to send. (A user's upload is
            # always sent: having the bytes is what makes them the data's owner.) Marked as stored
            # now: the collector of unreferenced blobs leaves it until the report refers to it.
            await self._blocking(self.blobs.touch, msg.sha256)
            return self.uploads.completed(caller, msg.sha256, msg.size, self.now(), {})
        if msg.size > limit:
            raise TooLarge(f"{msg.size} bytes is more than the {limit} allowed", "size")
        if principal.host_id is None:
            await self._check_bytes_quota(principal.user, msg.sha256, msg.size)
        try:
            s = await deferToThread(self.uploads.create, caller, msg.sha256, msg.size, self.now(), msg.access, msg.name)
        except uploads.TooMany as e:
            raise TooMany(str(e), code="too_many_uploads") from None
        except blobstore.StoreFull as e:
            raise Unavailable(f"the coordinator's storage is full ({e}); retry later") from None
        if s.size == 0:
            await self._finish_upload(principal, s)
        return s

    def upload(self, principal: Principal, sid: str) -> Session:
        s = self.uploads.get(sid, (principal.user.id, principal.host_id)) if uploads.ID_RE.fullmatch(sid) else None
        if s is None:
            raise NotFound.of(f"upload {sid[:64]}")
        return s

    async def append_upload(self, principal: Principal, sid: str, offset: int, content) -> Session:
        """Append a chunk at ``offset`` (where the session is, or Conflict ``offset_mismatch``); the
        chunk that brings it to its size completes it: checked, stored, and a user's made data."""
        s = self.upload(principal, sid)
        if content is None:
            raise BadRequest("a body is required")
        length = content.seek(0, 2)
        content.seek(0)
        async with s.lock:  # one chunk at a time: a second one waits, then learns the new offset
            if s.done is not None:
                return s
            if offset != s.offset:
                raise Conflict(str(uploads.OffsetMismatch(s.offset)), "offset", code="offset_mismatch")
            if offset + length > s.size:
                raise TooLarge(f"the chunk goes past the {s.size} bytes announced", "offset")
            try:
                await deferToThread(self.uploads.append, s, content, offset, self.now())
            except uploads.OffsetMismatch as e:
                raise Conflict(str(e), "offset", code="offset_mismatch") from None
            except blobstore.TooLarge as e:
                raise TooLarge(str(e)) from None
            except blobstore.StoreFull as e:
                raise Unavailable(f"the coordinator's storage is full ({e}); retry later") from None
            if s.offset == s.size:
                await self._finish_upload(principal, s)
        return s

    async def _finish_upload(self, principal: Principal, s: Session) -> None:
        try:
            await deferToThread(self.uploads.finish, s)
        except blobstore.DigestMismatch as e:
            raise DigestMismatch(str(e), "sha256") from None
        except blobstore.StoreUnavailable as e:  # the session stays whole: finished when asked again
            raise Unavailable(f"the blob store does not answer ({e}); retry later") from None
        if principal.host_id is None:
            access = await self.catalog.data.add(sha256=s.sha256, size=s.size, owner_id=principal.user.id,
                                                 access=s.access, name=s.name, now=self.now())
            s.done = protocol.encode(protocol.DataInfo(sha256=s.sha256, size=s.size, name=s.name, access=access,
                                                       owner=principal.user.login))
        else:
            s.done = {}

    async def cancel_upload(self, principal: Principal, sid: str) -> Session:
        s = self.upload(principal, sid)
        async with s.lock:
            await deferToThread(self.uploads.drop, s)
        return s

    async def sweep_uploads(self) -> None:
        """Remove the upload sessions untouched for ``upload_session_seconds``."""
        for s in self.uploads.stale(self.now()):
            log.info("upload {id} untouched for {t:.0f} s: removed", id=s.id, t=self.now() - s.touched)
            await deferToThread(self.uploads.drop, s)

    async def _blocking(self, f, *args):
        """``f(*args)`` of the blob store: in a thread when it talks to a server (S3)."""
        return await deferToThread(f, *args) if self.blobs.remote else f(*args)

    async def _size(self, sha256: str) -> int | None:
        return await self._blocking(self.blobs.size, sha256)

    async def blob(self, sha256: str) -> StoredFile | bytes | None:
        """A stored blob — a file to stream, or the bytes of a small one from the catalog — or None.

        A blob found damaged is refused (Gone, code ``corrupt``), set aside and logged, never served
        as if it were the data; a file is checked against its sha256 as it is sent (``on_corrupt``).
        From an object store, the coordinator serves a local copy (fetched and checked once)."""
        size = await self._size(sha256)
        path = None
        if size is not None:
            try:
                path = await self._blocking(self.blobs.fetch, sha256)
            except Corrupt as e:
                log.error("{error}: set aside", error=str(e))
        if path is not None:
            def corrupt(digest: str) -> None:
                log.error("stored blob {sha} is damaged (its content hashes to {digest}): set aside in {dir}",
                          sha=sha256, digest=digest, dir=self.blobs.root / "corrupt")
                if self.blobs.remote:  # the local copy went bad: fetched again next time
                    path.unlink(missing_ok=True)
                else:
                    self.blobs.quarantine(sha256)

            return StoredFile(path, size, sha256, corrupt)
        try:
            data = await self.catalog.blobs.get(sha256)
        except Corrupt as e:
            log.error("{error}", error=str(e))
            raise Gone(f"{sha256} is damaged in the coordinator's catalog; it cannot be served", code="corrupt") from None
        if data is None and await self._blocking(self.blobs.quarantined, sha256):
            raise Gone(f"{sha256} was found damaged in the coordinator's store and set aside; upload it again to "
                       "repair it", code="corrupt")
        return data

    async def read_blob(self, sha256: str) -> bytes | None:
        """A stored blob's bytes (read off the reactor), or None."""
        if await self._size(sha256) is not None:
            return await deferToThread(self.blobs.read, sha256)
        return await self.catalog.blobs.get(sha256)

    async def blob_url(self, host_id: int, msg: protocol.BlobUrlRequest) -> protocol.BlobUrl:
        """A presigned URL of the object store for ONE blob of ONE replica the host holds: GET one
        of its inputs (bundle, image, checkpoint started from), or PUT its result (or a checkpoint)
        of ``msg.size`` bytes hashing to ``msg.sha256`` (the store refuses any other body). Valid
        until the replica's lease expires, within [blobs] min_url_seconds..max_url_seconds; a
        worker whose URL expired asks again (its heartbeats extend the lease)."""
        if not self.blobs.remote:
            raise NotFound("this site keeps its blobs itself: use /data and /uploads", "method")
        eng = self.dispatcher.engine
        r = eng.replicas.get(msg.replica_id)
        held = eng.hosts.get(host_id)
        if r is None or held is None or r.host_id != host_id or r.id not in held.active:
            raise NotFound.of(f"replica {msg.replica_id}")
        b = self.config.blob_store
        now = self.now()
        seconds = min(max(r.lease_expires - now, b.min_url_seconds), b.max_url_seconds)
        if msg.method == "GET":
            if msg.sha256 != r.resume and msg.sha256 not in await self.catalog.jobs.blobs_of([r.job_id]):
                raise NotFound.of(f"data {msg.sha256}")
            return protocol.BlobUrl(url=self.blobs.presign_get(msg.sha256, seconds), expires=now + seconds)
        if msg.size is None:
            raise BadRequest("the size of what is to be PUT is required", "size")
        limit = self.result_limit(host_id)
        if msg.size > limit:
            raise TooLarge(f"{msg.size} bytes is more than the {limit} allowed", "size")
        if await self._size(msg.sha256) == msg.size:  # stored already (another replica's result)
            await self._blocking(self.blobs.touch, msg.sha256)
            return protocol.BlobUrl(url="", stored=True)
        url, headers = self.blobs.presign_put(msg.sha256, msg.size, seconds)
        return protocol.BlobUrl(url=url, headers=headers, expires=now + seconds)

    async def data_of(self, user: User, limit: int) -> list[Data]:
        return await self.catalog.data.list(user.id, limit=limit, after=0)

    # -- jobs --------------------------------------------------------------------------------------

    async def submit(self, user: User, msg: protocol.SubmitJobs) -> list[int]:
        """New jobs, checked (the user's rights on apps and inputs, a host alive able to run them)
        and committed; BadRequest naming the field at fault. A request key makes it once only."""
        if msg.request is None:
            ids = await self._submit(user, msg)
        else:
            ids = await self.dispatcher.once((user.id, msg.request), lambda: self._submit(user, msg))
        self.feed.bump()
        return ids

    async def _submit(self, user: User, msg: protocol.SubmitJobs) -> list[int]:
        self._check_job_quota(user, len(msg.jobs))
        shas = sorted({i.sha256 for spec in msg.jobs for i in spec.inputs})
        rows = await self.catalog.data.rows_for(shas) if shas else []
        parents = await self._parents(user, submission.parent_ids(msg))
        new = submission.new_jobs(user, msg, [r for r in rows if self.may_read_row(user, r)], self._usable_app,
                                  parents)
        certified = submission.certified_files(msg, parents)
        if certified:
            submission.check_result_files(msg, await self._result_files(certified))
        submission.check_runnable(self.dispatcher.engine, self.now(), new)
        # (No await between the parents' statuses and the engine's step: none can end unseen.)
        return await self.dispatcher.submit(new)

    async def _result_files(self, job_ids: list[int]) -> dict[int, set[str]]:
        """The names of the files in each of these certified jobs' results (the archives' headers)."""
        out = {}
        for jid, _, _, sha in await self.catalog.jobs.ends(job_ids):
            if sha is None:
                continue
            small = await self.catalog.blobs.get(sha)

            def names(sha=sha, small=small):
                where = small if small is not None else self.blobs.fetch(sha)
                return None if where is None else archive.names(where)

            try:
                found = await deferToThread(names)
            except (OSError, archive.ArchiveError):
                found = None  # (unreadable: the job's run says so, as before)
            if found is not None:
                out[jid] = found
        return out

    async def _parents(self, user: User, ids: list[int]) -> dict[int, str]:
        """The statuses of the user's jobs among ``ids`` (another's are not listed: unknown to them),
        each either active in the scheduler or final as stored: a job that ended while this was
        read is read again once its end is committed."""
        if not ids:
            return {}
        engine = self.dispatcher.engine
        for _ in range(8):
            rows = await self.catalog.jobs.ends(ids)
            mine = {jid: status for jid, owner, status, _ in rows if owner == user.id}
            moving = [jid for jid, status in mine.items() if status not in FINAL_STATUSES and jid not in engine.jobs]
            if not moving:
                return mine
            for jid in moving:
                await self.dispatcher.wait_final(jid, 10)
        raise Unavailable("the jobs to run after are changing state; retry shortly")

    def _usable_app(self, user: User, name: str) -> App | None:
        app = self.directory.app_names.get(name)
        return app if app is not None and self.directory.may_use_app(user, app) else None

    async def job_for(self, user: User, job_id: int) -> Job:
        """The job, if the user may see it: theirs, or any for an admin."""
        job = await self.reads.job(job_id)
        if job is None or (job.owner_id != user.id and not user.admin):
            raise NotFound.of(f"job {job_id}")  # another user's job does not exist, as far as you know
        return job

    def job_answer(self, job: Job, make: Callable[[Job], Any]) -> Any:
        """``make(job)`` for a final job, made once while its row is current (many pollers, one
        encoding); ``make`` must depend on the row only."""
        return self.reads.answer(job, make) if job.status in FINAL_STATUSES else make(job)

    async def jobs(self, *, owner_id: int | None, batch: str | None, status: str | None, after: int,
                   limit: int) -> list[Job]:
        return await self.catalog.jobs.list(owner_id=owner_id, batch=batch, status=status, after=after, limit=limit)

    async def job_counts(self, *, owner_id: int | None, batch: str | None) -> dict[str, int]:
        return await self.reads.counts(owner_id, batch)

    async def job_statuses(self, job_ids: list[int]) -> dict[int, str]:
        return await self.catalog.jobs.statuses(job_ids)

    async def result_of(self, user: User, job_id: int) -> StoredFile | bytes:
        job = await self.job_for(user, job_id)
        if job.status != JobStatus.COMPLETED.value:
            raise Conflict(f"job {job_id} is {job.status}: it has no certified result", code="not_certified")
        found = await self.blob(job.result_sha256)
        if found is None:
            raise Gone(f"the result of job {job_id} is no longer stored")
        return found

    async def cancel(self, user: User, msg: protocol.CancelJobs) -> list[int]:
        """Cancel jobs by id and/or batch: the user's own, any for an admin (NotFound otherwise)."""
        owner = None if user.admin else user.id
        ids = list(msg.ids)
        if ids:
            owners = await self.catalog.jobs.owners_of(ids)
            for jid in ids:
                if jid not in owners or (owner is not None and owners[jid] != owner):
                    raise NotFound.of(f"job {jid}")
        if msg.batch is not None:
            ids += await self.catalog.jobs.ids_in_batch(owner, msg.batch)
        return await self.dispatcher.cancel(ids)

    async def cancel_jobs(self, job_ids: list[int]) -> list[int]:
        """Cancel jobs whose owner the caller is known to be (the oracle's own batches)."""
        return await self.dispatcher.cancel(job_ids) if job_ids else []

    def wait_final(self, job_id: int, timeout: float) -> Deferred:
        return self.dispatcher.wait_final(job_id, timeout)

    async def wait_any_final(self, user: User, job_ids: Iterable[int], timeout: float
                             ) -> tuple[list[tuple[int, str, str | None, bytes | None]], list[int]]:
        """(id, status, result sha256, result) of the final jobs among ``job_ids``, and the ids it
        cannot show (deleted, or not the user's — the same answer for both, so no one learns which
        ids exist; an admin sees any job): at once if some are final or missing, else once one is,
        or none after ``timeout``. ``result`` is the certified archive when it is kept in the
        catalog (small) and fits within :data:`protocol.MAX_INLINE_FINALS` for the whole answer,
        else None."""
        ids = set(job_ids)
        active = self.dispatcher.engine.jobs

        def foreign(jid: int) -> bool:
            j = active.get(jid)
            return j is not None and j.owner_id != user.id and not user.admin

        missing = {jid for jid in ids if foreign(jid)}
        ended = [jid for jid in ids - missing if not self.dispatcher.active(jid)]
        if not ended and not missing and timeout > 0:
            await self.finals.wait(ids, timeout)
            missing = {jid for jid in ids if foreign(jid)}
            ended = [jid for jid in ids - missing if not self.dispatcher.active(jid)]
        if not ended:
            return [], sorted(missing)
        rows = [r for r in await self.catalog.jobs.ends(ended) if r[1] == user.id or user.admin]
        missing |= set(ended) - {jid for jid, _, _, _ in rows}
        shas = sorted({digest for _, _, status, digest in rows if digest and status == JobStatus.COMPLETED.value})
        small = await self.catalog.blobs.get_many(shas) if shas else {}
        return (with_inline([(jid, status, digest) for jid, _, status, digest in rows], small,
                            protocol.MAX_INLINE_FINALS), sorted(missing))

    # -- quotas, deletion, retention ------------------------------------------------------------------

    def room(self, user: User) -> tuple[int, int | None, int]:
        """What the grid can run for USER now: the job slots (cores) of the live hosts that are not
        suspended (a job is visible to every host), the most jobs it may have in progress (None: no
        limit; an admin has none) and how many it has."""
        slots = 0
        for h in self.alive_hosts():
            if h.suspended:
                continue
            known = self.directory.hosts.get(h.id)
            slots += h.cores or (known.cpus if known is not None else 1) or 1
        limit = self.config.limits.max_jobs_per_user
        return slots, (limit or None) if not user.admin else None, \
            self.dispatcher.engine.active_by_owner.get(user.id, 0)

    def _check_job_quota(self, user: User, more: int) -> None:
        limit = self.config.limits.max_jobs_per_user
        if not limit or user.admin:
            return
        have = self.dispatcher.engine.active_by_owner.get(user.id, 0)
        if have + more > limit:
            raise OverQuota(f"{user.login} has {have} job{'' if have == 1 else 's'} in progress and may have {limit} ([limits] "
                            f"max_jobs_per_user): {more} more refused; wait for some to end, or cancel some", "jobs")

    async def _check_bytes_quota(self, user: User, sha256: str | None, size: int) -> None:
        limit = self.config.limits.max_stored_bytes_per_user
        if not limit or user.admin or (sha256 is not None and await self.catalog.data.owns(sha256, user.id)):
            return
        have = await self.catalog.data.stored_bytes(user.id)
        if have + size > limit:
            raise OverQuota(f"{user.login} stores {have} bytes and may store {limit} ([limits] "
                            f"max_stored_bytes_per_user): {size} more refused; delete some data first "
                            f"(xwpy delete data SHA256)", "size")

    async def delete_data(self, user: User, sha256: str) -> tuple[int, int]:
        """Delete the caller's data row of this blob (an admin: every owner's); the blob itself
        goes at once when nothing else refers to it. How many rows and blobs went (NotFound if
        the caller had no row)."""
        if user.role == "worker":
            raise Forbidden("worker accounts own no data")
        gone = await self.catalog.data.delete(sha256, None if user.admin else user.id)
        if not gone:
            raise NotFound.of(f"data {sha256}")
        log.info("data {sha} deleted by {login}", sha=sha256, login=user.login)
        return gone, len(await self.collect([sha256]))

    async def delete_jobs(self, user: User, job_ids: Iterable[int] = (),
                          batch: str | None = None) -> tuple[list[int], int]:
        """Delete jobs by id and/or a batch's: the user's own, any for an admin (NotFound
        otherwise); those not final are cancelled first. A job that other jobs not final run after
        is kept (Conflict). Their blobs go at once where nothing else refers to them. The jobs
        deleted, and how many blobs went."""
        owner = None if user.admin else user.id
        ids = sorted(set(job_ids))
        if ids:
            owners = await self.catalog.jobs.owners_of(ids)
            for jid in ids:
                if jid not in owners or (owner is not None and owners[jid] != owner):
                    raise NotFound.of(f"job {jid}")
        if batch is not None:
            found = await self.catalog.jobs.batch_ids(owner, batch)
            if not found and not ids:
                raise NotFound.of(f"batch {batch!r}")
            ids = sorted({*ids, *found})
        children = await self.catalog.jobs.active_children(ids)
        if children:
            child, parent = min(children.items())
            raise Conflict(f"job {child} runs after job {parent} and is not final: delete or cancel it first",
                           code="has_children")
        await self.dispatcher.cancel([jid for jid in ids if self.dispatcher.active(jid)])
        shas = await self.catalog.jobs.delete(ids)
        self.reads.changed(None)
        self.feed.bump()
        log.info("{n} jobs deleted by {login}", n=len(ids), login=user.login)
        return ids, len(await self.collect(sorted(shas)))

    async def collect(self, shas: list[str], stored_before: float | None = None) -> list[str]:
        """Remove those of these blobs nothing refers to any more (catalog rows in the writer's
        transaction, then their files; with ``stored_before``, only files last stored before then).
        Those removed: a file, or a small result the catalog held itself, or both."""
        if not shas:
            return []
        unreferenced, held = await self.catalog.blobs.drop_unreferenced(shas)
        files = await deferToThread(self.blobs.remove, unreferenced, stored_before)
        gone = sorted({*files, *held})
        if gone:
            log.info("{n} unreferenced blobs removed", n=len(gone))
        return gone

    async def retention_round(self) -> None:
        """:meth:`collect_garbage`, its failure logged (the next round tries again)."""
        try:
            await self.collect_garbage()
        except Exception:
            log.failure("collecting unreferenced blobs failed")

    async def collect_garbage(self) -> int:
        """The retention policy's round ([retention]): every blob nothing refers to and stored over
        ``grace_seconds`` ago is removed, from disk and from the catalog. How many blobs went."""
        cutoff = self.now() - self.config.retention.grace_seconds
        stored = await deferToThread(self.blobs.listing)
        old = [sha for sha, at in stored.items() if at < cutoff]
        small = await self.catalog.blobs.all_shas()
        return len(await self.collect(sorted({*old, *small}), cutoff))

    def on_final(self, listener: Callable[[list[int]], None]) -> None:
        self.dispatcher.on_final(listener)

    # -- what the scheduler knows ------------------------------------------------------------------

    def alive_hosts(self) -> list[HostState]:
        return self.dispatcher.engine.alive_hosts(self.now())

    def why(self, job_id: int, alive: list[HostState] | None = None):
        """Why an active job waits (None when it is not active): :class:`scheduler.why.Why`."""
        return self.dispatcher.engine.why(job_id, self.now(), alive)

    def waiting_on(self, job_id: int) -> list[int]:
        """The jobs an active job runs after that are not certified yet (job graphs)."""
        job = self.dispatcher.engine.jobs.get(job_id)
        return sorted(job.waiting) if job is not None and job.waiting else []

    def progress(self, job_id: int) -> float | None:
        return self.dispatcher.engine.progress(job_id)

    def hosts_for(self, user: User) -> list[HostSeen]:
        """The user's hosts (every host for an admin), with what the scheduler knows of each."""
        engine, now = self.dispatcher.engine, self.now()
        out = []
        for h in self.directory.hosts.values():
            if not user.admin and h.owner_id != user.id:
                continue
            state = engine.hosts.get(h.id)
            alive = state.alive(now, engine.lease_seconds) if state else False
            out.append(HostSeen(h, self.directory.users[h.owner_id].login, state, alive))
        return out

    def stats(self) -> dict[str, Any]:
        """Counters for operators and benchmarks."""
        d, engine = self.dispatcher, self.dispatcher.engine
        return {
            **dataclasses.asdict(d.stats),
            "active_jobs": len(engine.jobs),
            "active_replicas": sum(len(h.active) for h in engine.hosts.values()),
            "hosts": len(engine.hosts),
            "waiting_workers": d.waiting_workers,
            "queued": sum(1 for j in engine.jobs.values() if j.wanted > 0),  # jobs waiting for a host
            "commits": self.catalog.commits,
            "writes": self.catalog.writes,
            "write_seconds": self.catalog.write_seconds,
        }

    # -- what a dashboard shows ------------------------------------------------------------------

    def sample(self) -> None:
        """Record the counters now, for the throughput plots (the coordinator calls this every
        :data:`xwpy.server.samples.SAMPLE_SECONDS`)."""
        st = self.stats()
        self.samples.add(Sample(self.now(), st["certified"], st["reported"], st["queued"], st["active_replicas"]))

    async def shared(self, key, read: Callable[[], Any], seen: int) -> Any:
        """``await read()``, or the answer of the same read (``key``) that has seen the feed's
        version ``seen`` (:mod:`xwpy.server.fresh`); ``key`` must name whose view it is."""
        return await self.fresh.get(key, read, seen)

    async def newest_jobs(self, *, owner_id: int | None, batch: str | None, status: str | None,
                          limit: int) -> list[Job]:
        """The latest jobs, newest first (as :meth:`jobs`: of one owner, or every owner's)."""
        return await self.catalog.jobs.newest(owner_id=owner_id, batch=batch, status=status, limit=limit)

    async def batches(self, *, owner_id: int | None, limit: int) -> list[tuple[str, dict[str, int]]]:
        """Job counts by status of the latest batches (of one owner, or every owner's)."""
        return await self.catalog.jobs.by_batch(owner_id=owner_id, limit=limit)

    async def work_done(self, host_ids: list[int]) -> dict[int, int]:
        """Valid results each of these hosts gave."""
        return await self.reads.work_done(host_ids)

    async def owed(self, host_ids: list[int]) -> dict[int, int]:
        """Base units of RLC payout epochs owe each of these hosts (built while it had no payout
        address; absent: nothing owed)."""
        return await self.catalog.payouts.owed_to(host_ids) if host_ids else {}

    @property
    def catalog_write_latency(self):
        """Seconds each catalog write transaction took (a Prometheus histogram)."""
        return self.catalog.write_latency

    @property
    def certification_latency(self):
        """Seconds from submission to certification (a Prometheus histogram)."""
        return self.dispatcher.certification_latency

    # -- workers -----------------------------------------------------------------------------------

    def timing(self) -> protocol.WorkerTiming:
        return protocol.WorkerTiming(heartbeat_seconds=self.config.scheduler.heartbeat_seconds,
                                     lease_seconds=self.config.lease_seconds, direct=self.blobs.remote)

    async def hello(self, host_id: int, msg: protocol.Hello) -> None:
        """A worker (re)started: what its host held is rescheduled, but for the replicas it kept and
        resumes (``msg.held``); what it offers now replaces what it offered before."""
        offer = {k: v for k, v in protocol.encode(msg).items() if v is not None and k != "held"}
        await self.dispatcher.hello(host_id, offer, msg.held)

    async def request_work(self, host_id: int, want: protocol.WorkRequest) -> list[dict]:
        """Leases for up to ``want.slots`` replicas (encoded :class:`protocol.Assignment`), waiting
        up to ``want.wait`` seconds for some; cancel (the Deferred running this) to stop waiting:
        the worker went away."""
        self.dispatcher.ran(host_id, want.finished)
        got = await self.dispatcher.request_work(host_id, want.slots, want.wait)
        return [wire_assignment(x, self._app_wire) for x in got]

    def assignment(self, x: Dispatched) -> protocol.Assignment:
        return assignment(x)

    async def alive(self, host_id: int, msg: protocol.Alive) -> list[int]:
        """Extend the host's leases; the replicas it holds that it should abort."""
        # A checkpoint counts once stored: the worker uploads it first (as it does a result).
        checkpoints = {c.replica_id: c.sha256 for c in msg.checkpoints if await self._size(c.sha256) is not None}
        self.dispatcher.ran(host_id, msg.finished)
        return await self.dispatcher.alive(host_id, msg.held, {p.replica_id: p.done for p in msg.progress},
                                           msg.suspended, checkpoints)

    def credit(self, host_id: int) -> float:
        """The host's credit so far (scheduler/credit.py)."""
        state = self.dispatcher.engine.hosts.get(host_id)
        return state.credit if state is not None else 0.0

    async def report(self, host_id: int, results: Iterable[protocol.ResultReport]) -> dict[int, str]:
        return await self.dispatcher.report(host_id, list(results))

    async def report_and_request(self, host_id: int, results: Iterable[protocol.ResultReport],
                                 want: protocol.WorkRequest) -> tuple[dict[int, str], list[dict]]:
        """Record results and lease the host's next replicas at once, without waiting: when none
        are ready, the caller asks :meth:`request_work` (which waits)."""
        self.dispatcher.ran(host_id, want.finished)
        outcome, got = await self.dispatcher.report_and_assign(host_id, list(results), want.slots)
        return outcome, [wire_assignment(x, self._app_wire) for x in got]

    async def release(self, host_id: int, replica_ids: Iterable[int]) -> None:
        await self.dispatcher.release(host_id, replica_ids)


def assignment(x: Dispatched) -> protocol.Assignment:
    """What a worker is told of a replica leased to it."""
    return protocol.Assignment(
        replica_id=x.replica.id,
        job_id=x.replica.job_id,
        command=x.app.command,
        args=tuple(x.args),
        inputs=tuple(protocol.InputRef(name=i["name"], sha256=i["sha256"], size=i.get("size"),
                                       member=i.get("member")) for i in x.inputs),
        bundle=x.app.bundle,
        limits=protocol.Limits(**x.app.limits),
        lease_expires=x.replica.lease_expires,
        image=protocol.parse(protocol.ImageSpec, x.app.image) if x.app.image else None,
        network=x.app.network,
        deadline=x.replica.deadline,
        checkpoints=x.app.checkpoints,
        checkpoint=x.replica.resume,
    )


# The encoded fields of an Assignment that are its app's (the same for every replica of the app).
_APP_FIELDS = ("command", "bundle", "limits", "image", "network", "checkpoints")


def wire_assignment(x: Dispatched, parts: dict[int, tuple[App, dict]]) -> dict:
    """``protocol.encode(assignment(x))``, with the app's part encoded once per app (``parts``, by
    app id; made again when the directory holds a new App): building and encoding an Assignment
    whole took some 6 % of the reactor thread's time under dispatch (py-spy)."""
    app = x.app
    kept = parts.get(app.id)
    if kept is None or kept[0] is not app:
        whole = protocol.encode(assignment(x))
        kept = parts[app.id] = (app, {k: whole[k] for k in _APP_FIELDS})
    p, r = kept[1], x.replica
    return {
        "replica_id": r.id, "job_id": r.job_id, "command": p["command"], "args": list(x.args),
        "inputs": protocol.encode(assignment(x).inputs) if x.inputs else [],
        "bundle": p["bundle"], "limits": p["limits"], "lease_expires": r.lease_expires, "image": p["image"],
        "network": p["network"], "deadline": r.deadline, "checkpoints": p["checkpoints"], "checkpoint": r.resume,
    }


def with_inline(ends: list[tuple[int, str, str | None]], small: dict[str, bytes],
                budget: int) -> list[tuple[int, str, str | None, bytes | None]]:
    """Each (id, status, digest) with its result's bytes when ``small`` has them and they fit in
    what is left of ``budget`` (in order; a result too big for what is left goes without, a later
    smaller one may still fit)."""
    out = []
    for jid, status, digest in ends:
        data = small.get(digest) if digest is not None else None
        if data is not None and len(data) <= budget:
            budget -= len(data)
        else:
            data = None
        out.append((jid, status, digest, data))
    return out


def _platform(declared: str, image: dict | None) -> str:
    """The platform a bundle or image is for: as declared; an image's own if declared `any`."""
    if image is None or image["platform"] == platforms.ANY:
        return declared
    if declared == platforms.ANY:
        return image["platform"]
    if declared != image["platform"]:
        raise BadRequest(f"the image is built for {image['platform']}, not {declared}", "platform")
    return declared


__all__ = ["Grid", "HostSeen", "StoredFile", "TAR_MARGIN", "with_inline"]
