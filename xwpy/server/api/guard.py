"""The coordinator's defences below the API: slow clients and too many connections.

* :class:`GuardedTLSFactory` (the listening port's factory, TLS around the site) counts
  connections per client address and in all; beyond a cap a new connection is closed as it is
  accepted, before any TLS handshake is spent on it. Loopback clients (this machine: benchmarks,
  local tools) are held only to the total cap unless ``limit_loopback`` is set.
* :class:`GuardedChannel` (the HTTP/1.1 channel) gives a request ``header_timeout`` seconds for its
  request line and headers, and its body an average of at least ``min_body_rate`` bytes/s once
  ``body_grace`` seconds have passed: a slowloris that sends a byte every few seconds is cut off
  with a 408, though every byte resets the idle timeout. A malformed request gets a JSON 400.
  A refused client's connection lingers a moment, its bytes dropped, so it reads the refusal
  rather than a TCP reset.

The checks run when bytes arrive (no timer per request); a client that sends nothing at all is
cut off by the site's idle timeout.
"""

from __future__ import annotations

import ipaddress
import json
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web import http

log = Logger()

LINGER = 2.0  # seconds a refused client's bytes are read and dropped before its connection closes


@dataclass(frozen=True)
class Guard:
    max_connections: int = 4096
    max_connections_per_peer: int = 256
    limit_loopback: bool = False
    header_timeout: float = 20.0
    min_body_rate: float = 500.0  # bytes/s
    body_grace: float = 20.0

    @classmethod
    def from_limits(cls, limits) -> Guard:
        return cls(
            max_connections=limits.max_connections, max_connections_per_peer=limits.max_connections_per_peer,
            limit_loopback=limits.limit_loopback, header_timeout=limits.header_timeout_seconds,
            min_body_rate=limits.min_body_rate, body_grace=limits.body_grace_seconds,
        )


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class GuardedTLSFactory(TLSMemoryBIOFactory):
    """TLS around ``site``, refusing connections beyond the caps of ``guard``."""

    def __init__(self, context, site, guard: Guard):
        super().__init__(context, False, site)
        self.guard = guard
        self.per_peer: Counter[str] = Counter()
        self.total = 0
        self.refused = 0
        self._peer_of: dict[object, str] = {}
        self._refusing: set[str] = set()  # peers told about in the log, until they fall below the cap

    def buildProtocol(self, addr):
        host = getattr(addr, "host", "")
        g = self.guard
        capped = g.limit_loopback or not _is_loopback(host)
        if self.total >= g.max_connections or (capped and self.per_peer[host] >= g.max_connections_per_peer):
            self.refused += 1
            if host not in self._refusing:
                self._refusing.add(host)
                log.warn(
                    "refusing connections from {peer}: {mine} open from it, {total} in all "
                    "(caps: {per_peer} per client, {max} in all)",
                    peer=host, mine=self.per_peer[host], total=self.total, per_peer=g.max_connections_per_peer,
                    max=g.max_connections,
                )
            return None  # the port closes the socket at once
        p = super().buildProtocol(addr)
        self.total += 1
        self.per_peer[host] += 1
        self._peer_of[p] = host
        return p

    def unregisterProtocol(self, p):
        super().unregisterProtocol(p)
        host = self._peer_of.pop(p, None)
        if host is None:
            return
        self.total -= 1
        self.per_peer[host] -= 1
        if self.per_peer[host] <= 0:
            del self.per_peer[host]
        self._refusing.discard(host)


def _error(status: bytes, code: str, message: str) -> bytes:
    body = json.dumps({"error": code, "message": message}, separators=(",", ":")).encode()
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


class GuardedChannel(http.HTTPChannel):
    """HTTP/1.1 with deadlines for a request's headers and a minimum rate for its body."""

    _head_since: float | None = None  # when the first byte of the current request's head came
    _body_since: float | None = None
    _body_bytes = 0
    _cut = False

    def _clock(self) -> Callable[[], float]:
        return self.site.reactor.seconds

    def dataReceived(self, data):
        if self._cut or self.transport.disconnecting:  # refused (a 400, 408 or 413 is on its way)
            return
        if not self._handlingRequest:
            g: Guard = self.site.guard
            now = self._clock()()
            if self.line_mode:
                if self._head_since is None:
                    self._head_since = now
                elif now - self._head_since > g.header_timeout:
                    return self._cut_off(f"request line and headers not received within {g.header_timeout:g} s")
            elif self._body_since is not None:
                self._body_bytes += len(data)
                elapsed = now - self._body_since
                if elapsed > g.body_grace and self._body_bytes < g.min_body_rate * elapsed:
                    return self._cut_off(
                        f"request body too slow: {self._body_bytes} bytes in {elapsed:.0f} s "
                        f"(at least {g.min_body_rate:g} bytes/s required)"
                    )
        super().dataReceived(data)

    def allHeadersReceived(self):
        self._head_since = None
        self._body_since = self._clock()()
        self._body_bytes = 0
        super().allHeadersReceived()

    def refuse(self, status: bytes, code: str, message: str) -> None:
        """Answer with a JSON error and close — after reading and dropping, for LINGER seconds,
        what the client still sends: closing with its bytes unread would reset the connection,
        and a client still sending would get the reset instead of the answer."""
        self._cut = True
        self.clearLineBuffer()  # parse no further line of this read
        self.transport.write(_error(status, code, message))
        self.setTimeout(LINGER)  # then timeoutConnection closes it

    def timeoutConnection(self):
        if not self._cut:
            return super().timeoutConnection()
        # The end of a refusal's linger (logged already, if worth it): close, abort if stuck.
        self._abortingCall = self.callLater(self.abortTimeout, self.forceAbortClient)
        self.loseConnection()

    def _cut_off(self, message: str) -> None:
        log.info("cutting off {peer}: {why}", peer=str(self.transport.getPeer()), why=message)
        self.refuse(b"408 Request Timeout", "timeout", message)

    def allContentReceived(self):
        if self._cut:  # the rest of a refused body, in the same read: nothing to serve
            return
        self._head_since = self._body_since = None
        super().allContentReceived()

    def _send100Continue(self):
        if not self._cut:  # not after a 413 refusing the body on its headers
            super()._send100Continue()

    def _respondToBadRequestAndDisconnect(self):
        self.refuse(b"400 Bad Request", "bad_request", "malformed HTTP request")

    def lineLengthExceeded(self, line):
        self.refuse(b"431 Request Header Fields Too Large", "too_large",
                    f"a request line or header is longer than {self.MAX_LENGTH} bytes")


__all__ = ["Guard", "GuardedChannel", "GuardedTLSFactory"]
