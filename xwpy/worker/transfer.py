"""Big transfers between a worker and its coordinator: streamed, resumed, capped, windowed.

* :func:`download` streams a blob to ``DEST.part`` (never whole in memory) and, after a cut,
  asks for the rest with ``Range: bytes=N-``; the sha256 is computed as the bytes arrive (after a
  restart, over what the part file already holds) and checked over the whole before the part is
  renamed into place.
* :func:`upload` sends a file through an upload session (``/uploads``, see
  :mod:`xwpy.server.uploads`): it asks the coordinator where it is, then PATCHes the rest in
  chunks; a cut costs at most the chunk in flight, never the bytes the coordinator already has.
* A transfer is cut off when it moves no byte for ``stall_seconds`` (a timeout on progress, not on
  duration: a slow uplink is fine, a dead one is noticed), and tried again with back-off for as
  long as attempts keep moving bytes; outside the volunteer's transfer window it waits (a transfer
  under way when the window closes stops there, and resumes when it opens again).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from io import BytesIO

from twisted.internet import error as net_error
from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.web._newclient import RequestGenerationFailed
from twisted.web.client import (
    FileBodyProducer, RequestNotSent, RequestTransmissionFailed, ResponseDone, ResponseFailed, ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from xwpy.backoff import Backoff
from xwpy.worker.throttle import TokenBucket, TransferPolicy

log = Logger()

BLOCK = 1 << 16  # bytes read and written at a time
CHUNK = 8 << 20  # bytes per PATCH of an upload at most: what a cut can cost
MIN_CHUNK = 256 << 10
CHUNK_SECONDS = 10.0  # under a cap, a PATCH carries about this many seconds' worth
GIVE_UP = 6  # attempts in a row that move no byte before a transfer fails
MAX_ANSWER = 1 << 20  # bytes of a JSON answer (or an error) at most


class Stalled(Exception):
    pass


class WindowClosed(Exception):
    """The volunteer's transfer window closed during a transfer: it resumes when it opens."""


def hash_file(path: Path):
    """(size, sha256 state) of what ``path`` holds (blocking)."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
            n += len(block)
    return n, h


class _Watchdog:
    """Calls ``fire`` when not re-armed within ``seconds``."""

    def __init__(self, reactor, seconds: float, fire: Callable[[], None]):
        self.reactor, self.seconds, self.fire = reactor, seconds, fire
        self._call = None

    def arm(self) -> None:
        if self._call is not None and self._call.active():
            self._call.reset(self.seconds)
        else:
            self._call = self.reactor.callLater(self.seconds, self.fire)

    def disarm(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None


async def _request(agent, reactor, method: bytes, url: str, headers: dict, body=None, *, stall: float):
    """The response's head, or Stalled when none comes within ``stall`` seconds of the request
    (or of the last byte of a :class:`_FileChunk` body, which re-arms the watchdog)."""
    d = agent.request(method, url.encode(), Headers(headers), body)
    stalled = []

    def stall_now() -> None:
        stalled.append(True)
        d.cancel()  # the agent aborts the connection

    dog = _Watchdog(reactor, stall, stall_now)
    if isinstance(body, _FileChunk):
        body.watchdog = dog
    dog.arm()
    try:
        return await d
    except Exception as e:
        if stalled:
            raise Stalled(f"no byte moved for {stall:g} s") from None
        for reason in getattr(e, "reasons", None) or ():  # what the body producer failed with
            if isinstance(reason.value, (WindowClosed, OSError)) and isinstance(e, RequestGenerationFailed):
                raise reason.value from None
        raise
    finally:
        dog.disarm()


# -- downloads -------------------------------------------------------------------------------------


class _ToFile(Protocol):
    """A response body written to an open file as it arrives, hashed, capped, watched for stalls."""

    def __init__(self, out, hasher, reactor, policy: TransferPolicy, bucket: TokenBucket | None):
        self.out, self.hasher, self.reactor, self.policy, self.bucket = out, hasher, reactor, policy, bucket
        self.received = 0
        self.done: Deferred = Deferred()
        self._resume_call = None
        self._dog = _Watchdog(reactor, policy.stall_seconds,
                              lambda: self._stop(Stalled(f"no byte for {policy.stall_seconds:g} s")))

    def connectionMade(self):
        self._dog.arm()

    def dataReceived(self, data: bytes) -> None:
        if self.done.called:
            return
        try:
            self.out.write(data)
        except OSError as e:  # a full disk: not the network's fault, not retried
            self._stop(e)
            return
        self.hasher.update(data)
        self.received += len(data)
        now = self.reactor.seconds()
        if not self.policy.open(now):
            self._stop(WindowClosed())
            return
        if self._resume_call is not None:  # bytes that were on their way when we paused
            self.bucket.take(len(data), now)
            return
        self._dog.arm()
        if self.bucket is not None:
            self._pause_for(self.bucket.take(len(data), now))

    def _pause_for(self, wait: float) -> None:
        if wait > 0:  # the cap: stop reading (TCP then slows the sender down), resume later
            self._dog.disarm()
            self.transport.pauseProducing()
            self._resume_call = self.reactor.callLater(wait, self._resume)

    def _resume(self) -> None:
        self._resume_call = None
        if self.done.called:
            return
        wait = self.bucket.take(0, self.reactor.seconds())  # what came in while paused is owed too
        if wait > 0:
            self._resume_call = self.reactor.callLater(wait, self._resume)
            return
        self._dog.arm()
        self.transport.resumeProducing()

    def _stop(self, error: Exception) -> None:
        if self.done.called:
            return
        self._cancel_timers()
        self.done.errback(error)
        self.transport.stopProducing()  # drops the connection

    def _cancel_timers(self) -> None:
        self._dog.disarm()
        if self._resume_call is not None and self._resume_call.active():
            self._resume_call.cancel()
        self._resume_call = None

    def connectionLost(self, reason) -> None:
        self._cancel_timers()
        if self.done.called:
            return
        if reason.check(ResponseDone):
            self.done.callback(self.received)
        else:
            self.done.errback(reason)


@dataclass
class _Part:
    """A download's part file: its length and the sha256 state of what it holds."""

    path: Path
    offset: int = 0
    hasher: Any = field(default_factory=hashlib.sha256)

    def restart(self) -> None:
        self.path.write_bytes(b"")
        self.offset, self.hasher = 0, hashlib.sha256()


def _content_range(value: bytes | None) -> tuple[int | None, int | None]:
    """(first byte, size) of ``Content-Range: bytes FIRST-LAST/SIZE`` (or ``bytes */SIZE``);
    None for what is missing or malformed."""
    try:
        unit, _, rest = value.decode("latin-1").partition(" ")
        span, _, size = rest.partition("/")
    except AttributeError:
        return None, None
    if unit != "bytes":
        return None, None
    first = span.partition("-")[0]
    return (int(first) if first.isdigit() else None), (int(size) if size.isdigit() else None)


async def download(agent, reactor, url: str | Callable[[], str], headers: dict, dest: Path, sha256: str,
                   policy: TransferPolicy, *, on_error: Callable[[int, bytes], Exception],
                   unreachable: type[Exception], thread: Callable) -> int:
    """Fetch ``url`` to ``dest`` (via ``dest.part``, resumed from what it already holds); check
    that the whole hashes to ``sha256``. Returns its size. ``url`` may be a function, asked at
    each attempt (a worker given several coordinators resumes from the one it asks now). ``on_error(status, body)`` turns an
    error answer into the exception to raise (or an ``unreachable`` one, to retry);
    ``thread(f, *args)`` runs blocking work off the reactor."""
    part = _Part(dest.with_name(dest.name + ".part"))
    if part.path.exists():
        part.offset, part.hasher = await thread(hash_file, part.path)
    bucket = policy.bucket(policy.download_rate, reactor.seconds())  # one for all attempts
    backoff = Backoff(cap=30.0)
    idle = 0  # attempts in a row that moved nothing
    while True:
        await _until_open(reactor, policy)
        before = part.offset
        try:
            if await _get_rest(agent, reactor, url() if callable(url) else url, headers, part, policy, bucket,
                               on_error):
                break
        except WindowClosed:
            log.info("transfer window closed: {name} paused at {n} bytes", name=dest.name, n=part.offset)
            continue
        except (unreachable, Stalled, *NETWORK_ERRORS) as e:
            idle = 0 if part.offset > before else idle + 1
            if idle >= GIVE_UP:
                raise unreachable(f"download of {sha256[:12]} failed {idle} times in a row: {e}") from None
            delay = backoff.next()
            log.info("download of {sha} cut at {n} bytes ({e}); resuming in {d:.1f} s",
                     sha=sha256[:12], n=part.offset, e=_why(e), d=delay)
            await task.deferLater(reactor, delay, lambda: None)
    digest = part.hasher.hexdigest()
    if digest != sha256:
        part.path.unlink(missing_ok=True)
        raise on_error(422, f'{{"error": "digest_mismatch", "message": "downloaded data hashes to {digest}, '
                            f'not {sha256}"}}'.encode())
    part.path.replace(dest)
    return part.offset


async def _get_rest(agent, reactor, url, headers, part: _Part, policy: TransferPolicy, bucket: TokenBucket | None,
                    on_error) -> bool:
    """One GET of what ``part`` lacks, appended to it; True once it holds the whole blob."""
    h = dict(headers)
    if part.offset:
        h[b"Range"] = [f"bytes={part.offset}-".encode()]
    resp = await _request(agent, reactor, b"GET", url, h, stall=policy.stall_seconds)
    if resp.code == 416:  # the part is as long as the blob (it was complete) — or longer: damaged
        await _read_small(resp)
        if _content_range(_header(resp, b"content-range")) == (None, part.offset):
            return True
        part.restart()
        return False
    if resp.code == 206:
        if _content_range(_header(resp, b"content-range"))[0] != part.offset:
            await _read_small(resp)
            part.restart()
            return False
    elif resp.code == 200:
        if part.offset:  # the range was not served: start over
            part.restart()
    else:
        raise on_error(resp.code, await _read_small(resp))
    with open(part.path, "ab") as out:
        sink = _ToFile(out, part.hasher, reactor, policy, bucket)
        resp.deliverBody(sink)
        try:
            await sink.done
        finally:
            part.offset += sink.received
    return True


class _Small(Protocol):
    """A short answer (JSON), read whole; one that goes on past ``MAX_ANSWER`` is cut off."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.size = 0
        self.done: Deferred = Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_ANSWER:
            self.transport.stopProducing()
            return
        self.parts.append(data)

    def connectionLost(self, reason) -> None:
        if self.size > MAX_ANSWER:
            self.done.errback(ResponseFailed([reason]))
        elif reason.check(ResponseDone, PotentialDataLoss):
            self.done.callback(b"".join(self.parts))
        else:
            self.done.errback(reason)


async def _read_small(resp) -> bytes:
    p = _Small()
    resp.deliverBody(p)
    return await p.done


def _header(resp, name: bytes) -> bytes | None:
    values = resp.headers.getRawHeaders(name)
    return values[0] if values else None


async def _until_open(reactor, policy: TransferPolicy) -> None:
    while wait := policy.closed_for(reactor.seconds()):
        await task.deferLater(reactor, min(wait, policy.window_poll_seconds), lambda: None)


# -- uploads ---------------------------------------------------------------------------------------


@implementer(IBodyProducer)
class _FileChunk:
    """``length`` bytes of a file from ``offset``: a PATCH body, read as the connection takes it,
    capped, stopped when the transfer window closes; every block sent re-arms ``watchdog``."""

    def __init__(self, path: Path, offset: int, length: int, reactor, policy: TransferPolicy,
                 bucket: TokenBucket | None):
        self.path, self.offset, self.length = path, offset, length
        self.reactor, self.policy, self.bucket = reactor, policy, bucket
        self.watchdog: _Watchdog | None = None
        self.sent = 0
        self._file = None
        self._consumer = None
        self._done: Deferred | None = None
        self._paused = False
        self._call = None

    def startProducing(self, consumer) -> Deferred:
        self._file = open(self.path, "rb")
        self._file.seek(self.offset)
        self._consumer = consumer
        self._done = done = Deferred()
        self._pump()  # may send it all at once (and fire ``done``)
        return done

    def _pump(self) -> None:
        self._call = None
        while not self._paused and self._done is not None and not self._done.called:
            if not self.policy.open(self.reactor.seconds()):
                self._finish(WindowClosed())
                return
            block = self._file.read(min(BLOCK, self.length - self.sent))
            if not block:
                self._finish(None if self.sent == self.length else OSError(f"{self.path} shrank while sent"))
                return
            self.sent += len(block)
            self._consumer.write(block)  # may pause us at once (the connection's buffer is full)
            if self.watchdog is not None:
                self.watchdog.arm()
            wait = self.bucket.take(len(block), self.reactor.seconds()) if self.bucket is not None else 0.0
            if self.sent == self.length:
                self._finish(None)  # the next chunk waits for what this one still owes
                return
            if wait > 0:
                if self.watchdog is not None:
                    self.watchdog.disarm()  # our own wait is not a stall
                self._call = self.reactor.callLater(wait, self._after_wait)
                return

    def _after_wait(self) -> None:
        if self.watchdog is not None:
            self.watchdog.arm()
        self._pump()

    def _finish(self, error: Exception | None) -> None:
        self._close()
        d, self._done = self._done, None
        if d is not None and not d.called:
            d.errback(error) if error is not None else d.callback(None)

    def _close(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        if self._call is None and self._done is not None:
            self._call = self.reactor.callLater(0, self._pump)

    def stopProducing(self) -> None:  # the request failed or was cancelled
        self._close()
        self._done = None


@dataclass
class UploadSession:
    """The coordinator's upload session of one file (kept by the caller across attempts)."""

    id: str | None = None
    # Told the id of each session opened: a caller that keeps it on disk resumes across its restarts.
    opened: Callable[[str], None] | None = field(default=None, compare=False, repr=False)


async def upload(agent, reactor, base: str | Callable[[], str], headers: dict, path: Path, sha256: str, policy: TransferPolicy,
                 session: UploadSession, *, create: dict | None = None,
                 on_error: Callable[[int, bytes], Exception], unreachable: type[Exception],
                 loads: Callable[[bytes], Any]) -> dict:
    """Send ``path`` (hashing to ``sha256``) through an upload session under ``base``/uploads,
    resuming where the coordinator is; its last answer (the stored data's description). ``base`` may
    be a function, asked at each attempt (as ``download``'s ``url``)."""
    size = path.stat().st_size
    bucket = policy.bucket(policy.upload_rate, reactor.seconds())  # one for the whole file
    backoff = Backoff(cap=30.0)
    idle = 0
    offset = -1
    json_headers = {**headers, b"Content-Type": [b"application/json"]}

    async def call(method: bytes, url: str, body: bytes | None = None) -> dict:
        resp = await _request(agent, reactor, method, url, json_headers,
                              FileBodyProducer(BytesIO(body)) if body is not None else None, stall=policy.stall_seconds)
        raw = await _read_small(resp)
        if resp.code >= 400:
            raise on_error(resp.code, raw)
        return loads(raw)

    where = base if callable(base) else (lambda: base)
    while True:
        await _until_open(reactor, policy)
        before = offset
        base = where()
        try:
            if session.id is None:
                info = await call(b"POST", base + "/uploads", json.dumps({"sha256": sha256, "size": size,
                                                                         **(create or {})}).encode())
                session.id = info["upload"]
                if session.opened is not None:
                    session.opened(session.id)
            else:
                try:
                    info = await call(b"GET", f"{base}/uploads/{session.id}")
                except Exception as e:
                    if getattr(e, "status", None) == 404:  # gone (stale, coordinator restarted): anew
                        session.id = None
                        continue
                    raise
            offset = int(info["offset"])
            while not info.get("complete"):
                n = min(chunk_size(size, policy.upload_rate), size - offset)
                body = _FileChunk(path, offset, n, reactor, policy, bucket)
                resp = await _request(agent, reactor, b"PATCH", f"{base}/uploads/{session.id}",
                                      {**headers, b"Content-Type": [b"application/offset+octet-stream"],
                                       b"Upload-Offset": [str(offset).encode()]}, body,
                                      stall=policy.stall_seconds)
                raw = await _read_small(resp)
                if resp.code == 404:  # the session is gone (removed as stale): a new one
                    session.id = None
                if resp.code in (404, 409):  # 409: not where the coordinator is: ask it again
                    raise unreachable(f"HTTP {resp.code} at byte {offset}")
                if resp.code >= 400:
                    raise on_error(resp.code, raw)
                info = loads(raw)
                offset = int(info["offset"])
                idle = 0
                backoff.reset()
            return info
        except WindowClosed:
            log.info("transfer window closed: upload of {name} paused", name=path.name)
            continue
        except (unreachable, Stalled, *NETWORK_ERRORS) as e:
            idle = 0 if offset > before else idle + 1
            if idle >= GIVE_UP:
                raise unreachable(f"upload of {path.name} failed {idle} times in a row: {_why(e)}") from None
            delay = backoff.next()
            log.info("upload of {name} cut ({e}); resuming in {d:.1f} s", name=path.name, e=_why(e), d=delay)
            await task.deferLater(reactor, delay, lambda: None)


async def put(agent, reactor, url: str, headers: dict, path: Path, policy: TransferPolicy, *,
              on_error: Callable[[int, bytes], Exception], unreachable: type[Exception]) -> None:
    """PUT ``path`` whole at ``url`` (an object store's presigned URL), streamed from disk, capped,
    watched for stalls; after a cut it is sent again from its start (one PUT cannot resume), with
    back-off, until GIVE_UP tries in a row fail."""
    size = path.stat().st_size
    bucket = policy.bucket(policy.upload_rate, reactor.seconds())
    backoff = Backoff(cap=30.0)
    fails = 0
    while True:
        await _until_open(reactor, policy)
        try:
            body = _FileChunk(path, 0, size, reactor, policy, bucket)
            resp = await _request(agent, reactor, b"PUT", url, {**headers, b"Content-Type": [b"application/octet-stream"]},
                                  body, stall=policy.stall_seconds)
            raw = await _read_small(resp)
            if resp.code >= 400:
                raise on_error(resp.code, raw)
            return
        except WindowClosed:
            log.info("transfer window closed: upload of {name} paused", name=path.name)
            continue
        except (unreachable, Stalled, *NETWORK_ERRORS) as e:
            fails += 1
            if fails >= GIVE_UP:
                raise unreachable(f"upload of {path.name} failed {fails} times in a row: {_why(e)}") from None
            delay = backoff.next()
            log.info("upload of {name} cut ({e}); sending it again in {d:.1f} s", name=path.name, e=_why(e), d=delay)
            await task.deferLater(reactor, delay, lambda: None)


def chunk_size(size: int, rate: float = 0.0) -> int:
    """Bytes per PATCH: what one cut costs at most — a 32nd of the file (8 MiB at most, 256 KiB
    at least), and under a cap about CHUNK_SECONDS' worth."""
    n = min(CHUNK, size // 32)
    if rate > 0:
        n = min(n, int(rate * CHUNK_SECONDS))
    return max(MIN_CHUNK, n)


def _why(e: Exception) -> str:
    reasons = getattr(e, "reasons", None)
    if reasons:
        return "; ".join(str(getattr(r, "value", r)) for r in reasons)[:200]
    return (str(e) or type(e).__name__)[:200]


NETWORK_ERRORS = (
    net_error.ConnectError, net_error.ConnectionLost, net_error.ConnectionClosed, net_error.TimeoutError,
    net_error.DNSLookupError, ResponseFailed, ResponseNeverReceived, RequestTransmissionFailed, RequestNotSent,
    RequestGenerationFailed, PotentialDataLoss, ConnectionError,
)

__all__ = ["Stalled", "TransferPolicy", "UploadSession", "WindowClosed", "download", "put", "upload"]
