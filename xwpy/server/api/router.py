"""HTTP plumbing for the JSON API: routing, authentication, bounded bodies, JSON errors.

Handlers are coroutines ``async def handler(ctx, **path_params)`` returning a reply record
(:mod:`xwpy.protocol`), a JSON-able value, or ``Raw`` for bytes. Each route declares the records it
parses (body, query, headers: parsed here before its handler runs) and answers; the API's OpenAPI
document (:mod:`xwpy.server.api.openapi`) is built from those declarations. The grid's domain errors (:mod:`xwpy.server.errors`) become their HTTP status
here and only here; an :class:`ApiError` (HTTP's own: 401, 405...) its status; both with
``{"error", "message", "field"}``;
a protocol error becomes 400 naming the field; anything unexpected becomes a 500 with no details
(and a logged traceback) — never a traceback to the client.
"""

from __future__ import annotations

import hashlib
import json

import attrs
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol
from urllib.parse import parse_qs, urlsplit

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPullProducer
from twisted.logger import Logger
from twisted.web import server
from twisted.web.resource import Resource
from zope.interface import implementer

from xwpy.logs import AccessLog
from xwpy import protocol
from xwpy.protocol import API_PREFIX, ProtocolError, loads
from xwpy.server import errors
from xwpy.server.api.ranges import content_range
from xwpy.server.catalog.connector import CatalogUnavailable
from xwpy.server.catalog.rows import User
from xwpy.server.directory import Principal

log = Logger()


class ApiError(Exception):
    """An HTTP-level refusal (authentication, method, endpoint): the grid's refusals are
    :class:`xwpy.server.errors.GridError`."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[bytes, bytes] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field
        self.headers = headers or {}

    def body(self) -> dict:
        out = {"error": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


# Each domain error's HTTP status (the first class in its MRO found here).
STATUS: dict[type, int] = {
    errors.BadRequest: 400, errors.Unauthorized: 401, errors.Forbidden: 403, errors.NotFound: 404, errors.Conflict: 409, errors.Gone: 410,
    errors.TooLarge: 413, errors.DigestMismatch: 422, errors.TooMany: 429, errors.OverQuota: 403,
    errors.Unavailable: 503,
    errors.GridError: 400,
}


def status_of(e: errors.GridError) -> int:
    return next(STATUS[k] for k in type(e).__mro__ if k in STATUS)


def bad_request(message: str, field: str | None = None) -> errors.BadRequest:
    return errors.BadRequest(message, field)


def not_found(what: str) -> errors.NotFound:
    return errors.NotFound.of(what)


def forbidden(message: str) -> errors.Forbidden:
    return errors.Forbidden(message)


@dataclass
class Raw:
    body: bytes
    content_type: str = "application/octet-stream"
    status: int = 200
    headers: tuple[tuple[bytes, bytes], ...] = ()


@dataclass
class Stream:
    """Send a file with a producer (large downloads never load into memory).

    With ``sha256``, the content is hashed as it is sent and its last block is held back until the
    hash is checked: a damaged file is never delivered whole. The connection is aborted instead
    (the client sees a cut-off body) and ``on_corrupt(digest)`` is called.

    With ``start`` (a ``Range`` request resuming a download: 206), the bytes from ``start`` to the
    end are sent; ``prefix_hash`` is the sha256 state of the bytes before it, read from the file
    but not sent, so that the whole file is still checked before the last block goes out."""

    path: str
    size: int
    content_type: str = "application/octet-stream"
    sha256: str | None = None
    on_corrupt: Callable[[str], None] | None = None
    start: int | None = None  # None: the whole file (200); else a part to its end (206)
    prefix_hash: Any = None


@dataclass
class Ctx:
    request: server.Request
    principal: Principal | None
    query: dict[str, str]
    _body: Any = field(default=None)
    body: Any = None  # the route's request record, parsed (Route.body)
    args: Any = None  # its query record, parsed (Route.query)
    headers: Any = None  # its header record, parsed (Route.headers)

    @property
    def user(self) -> User:
        assert self.principal is not None
        return self.principal.user

    def json(self) -> Any:
        if self._body is None:
            raw = self.request.content.read() if self.request.content else b""
            if not raw:
                raise bad_request("a JSON body is required")
            try:
                self._body = loads(raw)
            except (UnicodeDecodeError, ValueError) as e:
                raise bad_request(f"malformed JSON: {e}") from None
        return self._body

    def qint(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.query.get(name)
        if raw is None:
            return default
        try:
            v = int(raw)
        except ValueError:
            raise bad_request(f"query parameter {name} must be an integer", name) from None
        if not lo <= v <= hi:
            raise bad_request(f"query parameter {name} must be between {lo} and {hi}", name)
        return v


Handler = Callable[..., Awaitable[Any]]

# Who may call a route: anyone, any user (not a host), a user who is not a pure worker account,
# an admin, or a host token.
ANON, USER, SCIENTIST, ADMIN, HOST, USER_OR_HOST = "anon", "user", "scientist", "admin", "host", "user|host"


# What a route takes or answers: a record (xwpy.protocol), a check (its schema: a map, any JSON),
# or a media type (raw bytes).
Shape = Any


@dataclass
class Route:
    """One endpoint, and all the API description (:mod:`xwpy.server.api.openapi`) says of it."""

    method: bytes
    pattern: re.Pattern
    handler: Handler
    who: str
    ints: frozenset[str]
    path: str = ""  # as registered, e.g. "/jobs/{job_id:int}"
    body: Shape = None  # a record the router parses into ctx.body, or a media type (the handler reads it)
    query: type | None = None  # a record the query string is parsed into (ctx.args)
    headers: type | None = None  # a record of headers (``upload_offset``: Upload-Offset) in ctx.headers
    reply: Shape = None  # what a 200 carries
    replies: dict[int, Shape] = field(default_factory=dict)  # other successes (206) and non-error bodies
    errors: tuple[int, ...] = ()  # statuses of {"error", "message"} refusals besides the router's own

    def statuses(self) -> dict[int, Shape]:
        """Every status this route may answer, with its body: the route's own and those the router
        adds (401/403 for a token, 400 for anything parsed, 413 for a body, 503 for the catalog)."""
        out: dict[int, Shape] = {200: self.reply, **self.replies}
        refusals = set(self.errors) | {503}
        if self.who != ANON:
            refusals |= {401, 403}
        if self.body is not None or self.query is not None or self.headers is not None or "{" in self.path:
            refusals.add(400)
        if self.body is not None:
            refusals.add(413)
        if "{" in self.path:
            refusals.add(404)
        for status in sorted(refusals):
            out.setdefault(status, ERROR)
        return out


ERROR = "error"  # the refusals' body: {"error": code, "message", "field"}


class Authenticator(Protocol):
    """Maps a bearer token to a principal: the coordinator's directory."""

    def principal(self, token: str) -> Principal | None: ...


class Api(Resource):
    isLeaf = True

    def __init__(self, auth: Authenticator):
        super().__init__()
        self._auth = auth
        self._routes: list[Route] = []
        self._by_head: dict[str, list[Route]] = {}  # by the path's first segment under the prefix
        self._pages: dict[str, Raw] = {}  # fixed files outside the API (the dashboard's)
        self.access_log: AccessLog | None = None  # [coordinator] access_log

    def route(self, method: str, path: str, who: str, *, reply: Shape = None, body: Shape = None, query: type | None = None,
              headers: type | None = None, replies: dict[int, Shape] | None = None,
              errors: tuple[int, ...] = ()) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``method path``; ``{name}`` segments become keyword arguments
        (``{name:int}`` for integers). ``body``, ``query`` and ``headers`` records are parsed before
        the handler runs (a 400 naming the field otherwise); ``reply`` is what it answers, ``errors``
        the refusals it may answer (see :meth:`Route.statuses`): the API description is built from
        these, so it cannot drift from what is checked. Every route declares its reply
        (tests/unit/test_openapi.py holds them to it)."""

        def regex(segment: str) -> str:
            m = re.fullmatch(r"\{(\w+)(?::(int|sha))?\}", segment)
            if not m:
                return re.escape(segment)
            kind = {"int": r"[0-9]{1,18}", "sha": r"[^/]{1,128}", None: r"[^/]{1,256}"}[m.group(2)]
            return f"(?P<{m.group(1)}>{kind})"

        pattern = re.compile("/".join(regex(s) for s in (API_PREFIX + path).split("/")))
        ints = frozenset(re.findall(r"\{(\w+):int\}", path))

        def register(handler: Handler) -> Handler:
            route = Route(method.encode(), pattern, handler, who, ints, path, body, query, headers, reply,
                          dict(replies or {}), tuple(errors))
            self._routes.append(route)
            self._by_head.setdefault(_head(API_PREFIX + path), []).append(route)
            return handler

        return register

    def page(self, path: str, page: Raw) -> None:
        """Serve ``page`` to anyone at ``path`` (GET, outside ``/api/v1``): a file of the web
        dashboard, which signs in through the API itself."""
        assert not path.startswith(API_PREFIX)
        self._pages[path] = page

    def routes(self) -> list[Route]:
        """Every registered endpoint (the hostile-input tests fuzz each of them)."""
        return list(self._routes)

    def render(self, request: server.Request):
        request.xwpy_started = time.monotonic()
        Deferred.fromCoroutine(self._serve(request))
        return server.NOT_DONE_YET

    async def _serve(self, request: server.Request) -> None:
        try:
            result = await self._dispatch(request)
        except ApiError as e:
            for name, value in e.headers.items():
                request.setHeader(name, value)
            result = Raw(_dumps(e.body()), "application/json", e.status)
        except errors.GridError as e:
            status = status_of(e)
            if status == 503:
                request.setHeader(b"retry-after", b"1")
            body = {"error": e.code, "message": e.message}
            if e.field:
                body["field"] = e.field
            result = Raw(_dumps(body), "application/json", status)
        except ProtocolError as e:
            result = Raw(_dumps({"error": "bad_request", "message": e.message, "field": e.field}), "application/json", 400)
        except CatalogUnavailable as e:
            request.setHeader(b"retry-after", b"1")
            result = Raw(_dumps({"error": "unavailable", "message": str(e)}), "application/json", 503)
        except Exception:
            log.failure("internal error serving {method} {path}", method=request.method, path=request.path)
            result = Raw(_dumps({"error": "internal", "message": "internal server error"}), "application/json", 500)
        if request._disconnected:  # the client went away (twisted.web sets it on connection loss)
            return
        _send(request, result)
        if self.access_log is not None:
            self._log_access(request)

    def _log_access(self, request: server.Request) -> None:
        """Method, path (no query string), status, milliseconds, caller by name: never a header."""
        p: Principal | None = getattr(request, "xwpy_caller", None)
        caller = "-" if p is None else p.user.login if p.host_id is None else f"{p.user.login}/host {p.host_id}"
        self.access_log.record(request.method.decode("latin-1"), request.path.decode("latin-1")[:200],
                               request.code, (time.monotonic() - request.xwpy_started) * 1000, caller)

    async def _dispatch(self, request: server.Request) -> Any:
        uri = request.uri.decode("latin-1")
        if "?" in uri or "#" in uri:
            url = urlsplit(uri)
            raw_path, raw_query = url.path, url.query
        else:  # most reads (no urlsplit: a few percent of a job read)
            raw_path, raw_query = uri, ""
        path = raw_path.rstrip("/") or "/"
        page = self._pages.get(path)
        if page is not None:
            if request.method not in (b"GET", b"HEAD"):
                raise ApiError(405, "method_not_allowed", f"use GET on {path}")
            return page
        allowed = []
        for route in self._by_head.get(_head(path), ()):
            m = route.pattern.fullmatch(path)
            if m is None:
                continue
            allowed.append(route.method.decode())
            if route.method != request.method and not (route.method == b"GET" and request.method == b"HEAD"):
                continue
            principal = self._authenticate(request, route.who)
            request.xwpy_caller = principal  # for the access log
            try:
                # Blank values kept: "?limit=" is a limit that is not a number (400), not no limit.
                query = ({k: v[-1] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
                         if raw_query else {})
            except ValueError:
                raise bad_request("malformed query string") from None
            params = {k: int(v) if k in route.ints else v for k, v in m.groupdict().items()}
            ctx = Ctx(request, principal, query)
            if route.query is not None:
                ctx.args = protocol.parse_query(route.query, query)
            if route.headers is not None:
                try:
                    ctx.headers = protocol.parse_query(route.headers, _header_values(request, route.headers))
                except ProtocolError as e:
                    name = header_name(e.field)
                    raise bad_request(f"header {name}: {e.message}", name) from None
            if isinstance(route.body, type):
                ctx.body = protocol.parse(route.body, ctx.json())
            return await route.handler(ctx, **params)
        if allowed:
            raise ApiError(405, "method_not_allowed", f"use {', '.join(sorted(set(allowed)))} on {path}")
        raise ApiError(404, "not_found", f"no such endpoint: {path[:200]}")

    def _authenticate(self, request: server.Request, who: str) -> Principal | None:
        if who == ANON:
            return None
        header = request.getHeader(b"authorization")
        if header is None:
            raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer ...)")
        scheme, _, token = header.decode("latin-1").partition(" ")
        principal = self._auth.principal(token.strip()) if scheme.lower() == "bearer" else None
        if principal is None:
            raise ApiError(401, "unauthorized", "invalid token (never issued, or replaced by a rotation)")
        if who == HOST and principal.host_id is None:
            raise forbidden("this endpoint takes a host token (from xwpy worker registration)")
        if who in (USER, SCIENTIST, ADMIN) and principal.host_id is not None:
            raise forbidden("host tokens may only pull work, report results and move data")
        if who == SCIENTIST and principal.user.role == "worker":
            raise forbidden("worker accounts may only register hosts")
        if who == ADMIN and not principal.user.admin:
            raise forbidden("admin only")
        return principal


def _head(path: str) -> str:
    """The segment after the API prefix ("jobs" in /api/v1/jobs/7): routes are looked up by it."""
    return path[len(API_PREFIX) + 1:].partition("/")[0] if path.startswith(API_PREFIX + "/") else ""


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # json.dumps with options builds one per call


def _header_values(request: server.Request, record: type) -> dict[str, str]:
    """The headers a record names (field ``upload_offset``: header ``Upload-Offset``), as text."""
    out = {}
    for f in attrs.fields(record):
        raw = request.getHeader(header_name(f.name).encode())
        if raw is not None:
            out[f.name] = raw.decode("latin-1")
    return out


def header_name(field_name: str) -> str:
    return "-".join(w.capitalize() for w in field_name.split("_"))


def _dumps(value: Any) -> bytes:
    return _ENCODER.encode(value).encode()


def json_raw(value: Any) -> Raw:
    """A JSON answer (a record, or a JSON value) encoded once (to be sent many times, as the
    dashboards' shared reads are)."""
    return Raw(_dumps(protocol.encode(value) if attrs.has(type(value)) else value), "application/json")


def _send(request: server.Request, result: Any) -> None:
    if isinstance(result, Stream):
        request.setHeader(b"content-type", result.content_type.encode())
        request.setHeader(b"accept-ranges", b"bytes")
        if result.start is not None:
            request.setResponseCode(206)
            request.setHeader(b"content-range", content_range(result.start, result.size).encode())
        request.setHeader(b"content-length", str(result.size - (result.start or 0)).encode())
        if request.method == b"HEAD":
            request.finish()
            return
        _FileSender(open(result.path, "rb"), result, request).begin()
        return
    if not isinstance(result, Raw):
        result = Raw(_dumps(protocol.encode(result) if attrs.has(type(result)) else result), "application/json")
    request.setResponseCode(result.status)
    request.setHeader(b"content-type", result.content_type.encode())
    for name, value in result.headers:
        request.setHeader(name, value)
    request.setHeader(b"content-length", str(len(result.body)).encode())
    if request.method != b"HEAD":
        request.write(result.body)
    request.finish()


@implementer(IPullProducer)
class _FileSender:
    """Sends a :class:`Stream`; checks its sha256 (when given) before the last block goes out."""

    CHUNK = 1 << 16

    def __init__(self, f, stream: Stream, request: server.Request):
        self.file, self.stream, self.request = f, stream, request
        self.sent = stream.start or 0  # bytes of the file behind us (read, hashed), sent or not
        if self.sent:
            f.seek(self.sent)
        self.hash = None
        if stream.sha256:
            self.hash = stream.prefix_hash.copy() if stream.prefix_hash is not None else hashlib.sha256()

    def begin(self) -> None:
        self.request.registerProducer(self, False)

    def resumeProducing(self) -> None:
        if self.file is None:
            return
        chunk = self.file.read(self.CHUNK)
        self.sent += len(chunk)
        last = not chunk or self.sent >= self.stream.size
        if self.hash is not None:
            self.hash.update(chunk)
            if last and (self.sent != self.stream.size or self.hash.hexdigest() != self.stream.sha256):
                self._close()
                if self.stream.on_corrupt is not None:
                    self.stream.on_corrupt(self.hash.hexdigest())
                self.request.channel.transport.abortConnection()  # never the whole of a damaged blob
                return
        if chunk:
            self.request.write(chunk)
        if last:
            self._close()
            if not self.request.finished and not self.request._disconnected:
                self.request.finish()

    def stopProducing(self) -> None:  # the client went away
        if self.file is not None:
            self.file.close()
            self.file = None

    def _close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
            self.request.unregisterProducer()


# -- bounded request bodies ------------------------------------------------------------------------


class BoundedRequest(server.Request):
    """Refuses a body larger than its endpoint allows as soon as that is known, before it is read:
    ``Content-Length`` is checked against the limit, chunked bodies are counted as they come."""

    limit_for: Callable[[bytes], int] = staticmethod(lambda path: 1 << 20)  # set by the site

    def gotLength(self, length):
        path = getattr(self.channel, "_path", b"")
        self._limit = self.limit_for(path)
        self._received = 0
        if length is not None and length > self._limit:
            self._refuse()
            return
        super().gotLength(length)

    def handleContentChunk(self, data):
        if self.content is None:
            return
        self._received += len(data)
        if self._received > self._limit:
            self._refuse()
            return
        super().handleContentChunk(data)

    def requestReceived(self, command, path, version):
        if getattr(self, "_refused", False):
            return
        super().requestReceived(command, path, version)

    def _refuse(self):
        self._refused = True
        self.content = None
        message = f"request body exceeds {self._limit} bytes"
        refuse = getattr(self.channel, "refuse", None)  # the guard's channel lingers before it closes
        if refuse is not None:
            refuse(b"413 Content Too Large", "too_large", message)
            return
        body = _dumps({"error": "too_large", "message": message})
        self.channel.transport.write(
            b"HTTP/1.1 413 Content Too Large\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        self.channel.transport.loseConnection()


__all__ = [
    "ADMIN", "ANON", "HOST", "SCIENTIST", "USER", "USER_OR_HOST", "Api", "ApiError", "Authenticator",
    "BoundedRequest", "Ctx", "Principal", "Raw", "Stream", "bad_request", "forbidden", "json_raw", "not_found",
]
