"""The worker's side of the wire: the coordinator's API over TLS with the site CA pinned.

One persistent connection pool (treq). Every call either returns a decoded message or raises
:class:`Unreachable` (retry later: network down, coordinator restarting, 503) or
:class:`Refused` (the coordinator said no: 4xx, with its error code). Given several coordinators'
URLs, a call that cannot connect to one, or hears it is a standby, asks the next at once
(:class:`xwpy.coordinators.Rotation`); Unreachable then means none answered.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from treq.client import HTTPClient
from twisted.internet import error as net_error
from twisted.internet.threads import deferToThread
from twisted.logger import Logger
from twisted.web.client import Agent, HTTPConnectionPool, RequestNotSent, RequestTransmissionFailed, ResponseFailed

from xwpy import pki, protocol
from xwpy.coordinators import Rotation
from xwpy.protocol import API_PREFIX
from xwpy.worker import transfer
from xwpy.worker.throttle import TransferPolicy

log = Logger()


class Unreachable(Exception):
    pass


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class _Elsewhere(Unreachable):
    """Nothing was done where this was sent (no connection, or a standby): safe to send elsewhere."""


_NETWORK_ERRORS = (
    net_error.ConnectError,
    net_error.ConnectionLost,
    net_error.ConnectionClosed,
    net_error.TimeoutError,
    net_error.DNSLookupError,
    ResponseFailed,
    RequestTransmissionFailed,  # the connection dropped while the request (an upload) was being sent
    RequestNotSent,
)


# Failures before any byte of the request could reach the coordinator.
_NOT_CONNECTED = (net_error.ConnectError, net_error.DNSLookupError, RequestNotSent)


def _certificate_refused(e: Exception) -> str | None:
    """Why the coordinator's certificate was refused, if that is what ``e`` (or a failure it
    wraps) says. Other TLS errors (a handshake cut by a coordinator going down) are not this."""
    for x in [e, *(getattr(r, "value", r) for r in getattr(e, "reasons", None) or [])]:
        text = str(x)
        if "certificate verify failed" in text:
            return "certificate verify failed"
        if "certificate" in text.lower():
            return text[:200]
    return None


class Link:
    def __init__(self, reactor, url: str, ca_pem: bytes, token: str = "", *, timeout: float = 60.0,
                 transfers: TransferPolicy = TransferPolicy()):
        self.reactor = reactor
        self.transfers = transfers
        self.coordinators = Rotation(url)
        self.token = token
        self.timeout = timeout
        self._pool = HTTPConnectionPool(reactor, persistent=True)
        self._pool.maxPersistentPerHost = 4
        self._pool.retryAutomatically = False
        self._agent = Agent(reactor, contextFactory=pki.PinnedPolicy(ca_pem), pool=self._pool)
        self._http = HTTPClient(self._agent)
        # The site's object store ([blobs] backend = "s3", told by hello): its presigned URLs carry
        # their own authority, so no token goes there; an https store is checked against the
        # system's CAs, not the site's.
        self.direct = False
        self._store_pool = HTTPConnectionPool(reactor, persistent=True)
        self._store_pool.retryAutomatically = False
        self._store_agent = Agent(reactor, pool=self._store_pool)

    @property
    def url(self) -> str:
        """The coordinator asked now."""
        return self.coordinators.current

    async def close(self) -> None:
        await self._pool.closeCachedConnections()
        await self._store_pool.closeCachedConnections()

    def _headers(self, content_type: str = "application/json") -> dict:
        return {b"Authorization": [f"Bearer {self.token}".encode()], b"Content-Type": [content_type.encode()]}

    async def _call(self, method: str, path: str, payload: Any = None, timeout: float | None = None) -> Any:
        for url in self.coordinators.attempts():
            try:
                return await self._call_one(url, method, path, payload, timeout)
            except Unreachable as e:
                self.coordinators.failed(url)
                if not isinstance(e, _Elsewhere):  # it may have been acted on: the caller decides
                    raise
                last = e
        raise Unreachable(str(last) if len(self.coordinators) == 1 else f"no coordinator answered (last: {last})")

    async def _call_one(self, url: str, method: str, path: str, payload: Any, timeout: float | None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        log.debug("{method} {url}{path}", method=method, url=url, path=path)
        try:
            resp = await self._http.request(
                method, url + API_PREFIX + path, data=body, headers=self._headers(),
                timeout=timeout or self.timeout,
            )
            raw = await resp.content()
        except Exception as e:
            why = _certificate_refused(e)
            if why:  # checked first: a failed handshake also surfaces as a transmission failure
                raise Refused(0, "tls", f"{url} is not a coordinator this site's CA vouches for ({why}); "
                                        "check the CA file given (--ca)") from None
            if isinstance(e, _NOT_CONNECTED):
                raise _Elsewhere(f"{url}: {type(e).__name__}: {e}") from None
            if isinstance(e, (*_NETWORK_ERRORS, OSError)):
                raise Unreachable(f"{url}: {type(e).__name__}: {e}") from None
            raise
        log.debug("{method} {path}: HTTP {code}", method=method, path=path, code=resp.code)
        return self._decode(resp.code, raw)

    @staticmethod
    def _decode(code: int, raw: bytes) -> Any:
        try:
            value = protocol.loads(raw) if raw else None
        except ValueError:
            value = None
            if code not in (502, 503, 504):
                raise Unreachable(f"malformed reply (HTTP {code})") from None
        if code in (502, 503, 504):
            if code == 503 and isinstance(value, dict) and value.get("error") == "standby":
                raise _Elsewhere("a standby coordinator (HTTP 503)")
            raise Unreachable(f"coordinator busy (HTTP {code})")
        if code >= 400:
            err = value if isinstance(value, dict) else {}
            raise Refused(code, str(err.get("error", "error")), str(err.get("message", "")))
        return value

    # -- the protocol ------------------------------------------------------------------------------

    async def register(self, name: str, cpus: int, memory: int, os_name: str, platform: str | None = None,
                       images: bool = False, network: bool = False) -> protocol.HostRegistered:
        msg = protocol.RegisterHost(name=name, cpus=cpus, memory=memory, os=os_name, platform=platform, images=images,
                                    network=network)
        return protocol.parse(protocol.HostRegistered, await self._call("POST", "/work/register", protocol.encode(msg)))

    async def hello(self, offer: protocol.Hello | None = None) -> protocol.WorkerTiming:
        body = protocol.encode(offer) if offer is not None else {}
        return protocol.parse(protocol.WorkerTiming, await self._call("POST", "/work/hello", body))

    async def request_work(self, slots: int, wait: float,
                           finished: list[int] | tuple = ()) -> tuple[protocol.Assignment, ...]:
        msg = protocol.encode(protocol.WorkRequest(slots=slots, wait=wait, finished=tuple(finished)))
        reply = await self._call("POST", "/work/request", msg, timeout=wait + self.timeout)
        return protocol.parse(protocol.WorkReply, reply).replicas

    async def alive(self, held: list[int], progress: dict[int, float] | None = None,
                    suspended: str = "", checkpoints: dict[int, str] | None = None,
                    finished: list[int] | tuple = ()) -> protocol.AliveReply:
        body = protocol.encode(protocol.Alive(held=tuple(held), finished=tuple(finished), progress=tuple(
            protocol.Progress(replica_id=rid, done=done) for rid, done in sorted((progress or {}).items())),
            suspended=suspended[:200], checkpoints=tuple(
                protocol.Checkpoint(replica_id=rid, sha256=sha) for rid, sha in sorted((checkpoints or {}).items()))))
        reply = await self._call("POST", "/work/alive", body)
        return protocol.parse(protocol.AliveReply, reply)

    async def results(self, reports: list[protocol.ResultReport]) -> dict[int, str]:
        reply = await self._call("POST", "/work/results", {"results": [protocol.encode(r) for r in reports]})
        return {int(k): v for k, v in reply["outcome"].items()}

    async def release(self, replica_ids: list[int]) -> None:
        await self._call("POST", "/work/release", {"replicas": replica_ids}, timeout=10)

    def _error(self, code: int, raw: bytes) -> Exception:
        """The exception an error answer stands for (Unreachable: retry later; Refused: no)."""
        try:
            self._decode(code, raw)
        except (Unreachable, Refused) as e:
            return e
        return Unreachable(f"unexpected HTTP {code}")

    async def blob_url(self, replica: int, sha256: str, method: str, size: int | None = None) -> protocol.BlobUrl:
        msg = protocol.BlobUrlRequest(replica_id=replica, sha256=sha256, method=method, size=size)
        return protocol.parse(protocol.BlobUrl, await self._call("POST", "/work/blob-url", protocol.encode(msg)))

    def _store_error(self, code: int, raw: bytes) -> Exception:
        """An object store's error answer (S3's XML) as Unreachable (retry) or Refused (its code)."""
        if code in (500, 502, 503, 504):
            return Unreachable(f"object store busy (HTTP {code})")
        found = re.search(rb"<Code>([A-Za-z]{1,64})</Code>", raw)
        text = raw[:300].decode("utf-8", "replace")
        return Refused(code, found.group(1).decode() if found else "store", text)

    async def download(self, sha256: str, dest: Path, replica: int | None = None) -> int:
        """Fetch a blob to ``dest``, streamed to disk, resumed after a cut, checked against its
        sha256 (:func:`xwpy.worker.transfer.download`). One download per ``dest`` at a time: its
        part file is ``dest.part`` (the worker's slots share one download of an input). From the
        site's object store when it has one (a presigned URL for this ``replica``'s blob; one that
        expired is asked for again), else — and for a small blob the catalog keeps — from the
        coordinator."""
        if self.direct and replica is not None:
            for _ in range(3):
                url = await self.blob_url(replica, sha256, "GET")
                try:
                    return await transfer.download(
                        self._store_agent, self.reactor, url.url, {}, dest, sha256, self.transfers,
                        on_error=self._store_error, unreachable=Unreachable, thread=deferToThread,
                    )
                except OSError as e:
                    raise Unreachable(f"cannot write {dest}: {e.strerror or e}") from None
                except Refused as e:
                    if e.status == 404:
                        break  # not in the store: a small blob kept in the catalog
                    if e.status != 403:  # 403: the URL expired meanwhile: another one
                        raise
            else:
                raise Unreachable(f"the object store kept refusing the URLs for {sha256[:12]}")
        try:
            return await transfer.download(
                self._agent, self.reactor, lambda: self.url + API_PREFIX + f"/data/{sha256}", self._headers(), dest, sha256,
                self.transfers, on_error=self._error, unreachable=Unreachable, thread=deferToThread,
            )
        except OSError as e:
            raise Unreachable(f"cannot write {dest}: {e.strerror or e}") from None

    async def upload(self, path: Path, sha256: str, session: transfer.UploadSession | None = None,
                     replica: int | None = None) -> dict:
        """Send a file through an upload session: resumed from what the coordinator has after a
        cut (keep ``session`` across calls to resume across them too). To the site's object store
        when it has one: one PUT at a presigned URL for this ``replica``'s blob, which the store
        accepts only if the body hashes to ``sha256`` (sent again whole after a cut)."""
        if self.direct and replica is not None:
            size = path.stat().st_size
            for _ in range(3):
                url = await self.blob_url(replica, sha256, "PUT", size)
                if url.stored:
                    return {}
                try:
                    await transfer.put(self._store_agent, self.reactor, url.url,
                                       {k.encode(): [v.encode()] for k, v in url.headers.items()}, path, self.transfers,
                                       on_error=self._store_error, unreachable=Unreachable)
                    return {}
                except Refused as e:
                    if e.status != 403:  # 403: the URL expired before the PUT began: another one
                        raise
            raise Unreachable(f"the object store kept refusing the URLs for {sha256[:12]}")
        return await transfer.upload(
            self._agent, self.reactor, lambda: self.url + API_PREFIX, self._headers(), path, sha256, self.transfers,
            session if session is not None else transfer.UploadSession(), on_error=self._error,
            unreachable=Unreachable, loads=protocol.loads,
        )
