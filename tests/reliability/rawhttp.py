"""HTTP/1.1 by hand over TLS, for requests no well-behaved client library would send (duplicate or
lying headers, a request line in pieces) and clients that misbehave in time (slowloris)."""

from __future__ import annotations

import json
import select
import socket
import ssl
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    interim: list[int] = field(default_factory=list)  # 1xx answers before this one

    def json(self):
        return json.loads(self.body)


def connect(grid, *, source: str = "127.0.0.1", timeout: float = 30.0) -> ssl.SSLSocket:
    """A TLS connection to the grid's coordinator from ``source`` (any 127.x.y.z is this machine)."""
    ctx = ssl.create_default_context(cafile=str(grid.cfg.ca_cert))
    raw = socket.create_connection(("127.0.0.1", grid.port), timeout=timeout, source_address=(source, 0))
    try:
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    except BaseException:
        raw.close()
        raise


def read_reply(sock: ssl.SSLSocket, *, head: bool = False, data: bytes = b"") -> Reply | None:
    """One response (interim 1xx skipped), read up to its Content-Length or the end of the
    connection; None if the server closed the connection without answering. ``head``: the answer
    to a HEAD request (no body, whatever Content-Length says); ``data``: its first bytes, read."""
    interim = []
    while True:
        while b"\r\n\r\n" not in data:
            chunk = _recv(sock)
            if not chunk:
                return parse(data) if data else None
            data += chunk
        first, _, rest = data.partition(b"\r\n\r\n")
        reply = parse(first + b"\r\n\r\n")
        if not 100 <= reply.status < 200:
            break
        interim.append(reply.status)
        data = rest
    reply.interim = interim
    body = rest
    length = None if head else reply.headers.get("content-length")
    while length is not None and len(body) < int(length):
        chunk = _recv(sock)
        if not chunk:
            break
        body += chunk
    reply.body = body
    return reply


def _recv(sock) -> bytes:
    try:
        return sock.recv(65536)
    except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return b""


def parse(data: bytes) -> Reply:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Reply(status, headers, body)


def exchange(grid, request: bytes, *, timeout: float = 30.0, head: bool = False) -> Reply | None:
    """Send one request on a fresh connection and read the answer."""
    with connect(grid, timeout=timeout) as sock:
        sock.sendall(request)
        return read_reply(sock, head=head)


def poll(sock: ssl.SSLSocket, timeout: float) -> bytes | None:
    """What the server sent within ``timeout`` seconds: its bytes, b"" once it closed, or None.
    (A readable socket may hold no data for us: a TLS 1.3 session ticket, say.)"""
    if not getattr(sock, "pending", lambda: 0)() and not select.select([sock], [], [], timeout)[0]:
        return None
    old = sock.gettimeout()
    sock.settimeout(0)
    try:
        return sock.recv(65536)
    except (ssl.SSLWantReadError, BlockingIOError):
        return None
    except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return b""
    finally:
        sock.settimeout(old)
