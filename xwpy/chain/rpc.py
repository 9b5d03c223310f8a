"""Serve an embedded chain as JSON-RPC over HTTP with twisted.web.

Every chain operation runs on one dedicated thread (eth-tester is not thread-safe, and a
block of py-evm work must not stall the reactor); the reactor only parses HTTP and moves
bytes. Requests are processed in arrival order, which is also what makes a client's nonces
land in order. Bodies above ``MAX_BODY`` are refused before parsing.

Loopback by default: the demo keys are public, so anyone who reaches the chain can spend
them. Serving on another interface requires a bearer token (``Authorization: Bearer T``),
compared in constant time; a request without it gets 401 before any parsing.

Loopback is not enough against a browser: any web page can POST ``text/plain`` to
127.0.0.1 without a preflight, and a page whose name resolves to 127.0.0.1 (DNS rebinding)
even reads the answers. So a request that carries an ``Origin`` (only browsers send one) is
refused, and so is one whose ``Host`` is not the address the chain listens on or a loopback
name (without a token): 403, before any parsing. No client of the chain is a web page.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from typing import Any

from twisted.application import service
from twisted.internet import defer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool
from twisted.web import resource, server

from xwpy.chain import ethrpc
from xwpy.chain.ethrpc import INTERNAL_ERROR, INVALID_REQUEST, PARSE_ERROR, RpcError

log = Logger()

MAX_BODY = 4 * 1024 * 1024
MAX_BATCH = 100


def _error(id_: Any, err: RpcError) -> dict:
    return {"jsonrpc": "2.0", "id": id_, "error": err.to_json()}


def _one(chain, req: Any) -> dict | None:
    if not isinstance(req, dict):
        return _error(None, RpcError(INVALID_REQUEST, "request: expected a JSON object"))
    id_ = req.get("id")
    is_notification = "id" not in req
    if req.get("jsonrpc", "2.0") != "2.0" or not isinstance(id_, (str, int, type(None))):
        return _error(None, RpcError(INVALID_REQUEST, "request: expected jsonrpc 2.0 with a string/number id"))
    try:
        result = ethrpc.dispatch(chain, req.get("method"), req.get("params"))
        response = {"jsonrpc": "2.0", "id": id_, "result": result}
    except RpcError as err:
        response = _error(id_, err)
    except Exception:
        log.failure("embedded chain: {method} failed", method=str(req.get("method"))[:80])
        response = _error(id_, RpcError(INTERNAL_ERROR, "internal error in the embedded chain"))
    return None if is_notification else response


def handle_body(chain, body: bytes) -> bytes | None:
    """One HTTP body in, one HTTP body out (None: only notifications, nothing to say)."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return json.dumps(_error(None, RpcError(PARSE_ERROR, f"body is not JSON: {exc}"))).encode()
    if isinstance(payload, list):
        if not payload:
            out: Any = _error(None, RpcError(INVALID_REQUEST, "empty batch"))
        elif len(payload) > MAX_BATCH:
            out = _error(None, RpcError(INVALID_REQUEST, f"batch of more than {MAX_BATCH} requests"))
        else:
            out = [r for r in (_one(chain, req) for req in payload) if r is not None]
            if not out:
                return None
    else:
        out = _one(chain, payload)
        if out is None:
            return None
    return json.dumps(out).encode()


LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def host_name(header: bytes) -> str:
    """The name in a Host header, without its port: "localhost", "::1", "10.0.0.5"..."""
    text = header.decode("latin-1").strip().lower()
    if text.startswith("["):  # [::1]:8545
        return text[1:text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def browser_refusal(origin: bytes | None, host: bytes | None, allowed_hosts: frozenset[str] | None) -> str | None:
    """Why a request must be refused as coming from a web page, or None (ALLOWED_HOSTS None:
    any Host)."""
    if origin is not None:
        return "requests from web pages (with an Origin header) are refused"
    if allowed_hosts is not None and host is not None and host_name(host) not in allowed_hosts:
        return f"Host {host.decode('latin-1')[:80]!r} is not this chain's address"
    return None


class JsonRpcResource(resource.Resource):
    isLeaf = True

    def __init__(self, chain, threadpool: ThreadPool, reactor, max_body: int = MAX_BODY, token: str | None = None,
                 hosts: frozenset[str] | None = LOOPBACK_NAMES):
        super().__init__()
        self._chain = chain
        self._pool = threadpool
        self._reactor = reactor
        self._max_body = max_body
        self._expected_auth = None if token is None else b"Bearer " + token.encode()
        self._hosts = hosts

    def render(self, request):
        why = browser_refusal(request.getHeader(b"origin"), request.getHeader(b"host"), self._hosts)
        if why is not None:
            request.setResponseCode(403)
            request.setHeader(b"content-type", b"application/json")
            return json.dumps(_error(None, RpcError(INVALID_REQUEST, why))).encode()
        if self._expected_auth is not None:
            got = request.getHeader(b"authorization") or b""
            if not hmac.compare_digest(got, self._expected_auth):
                request.setResponseCode(401)
                request.setHeader(b"content-type", b"application/json")
                request.setHeader(b"www-authenticate", b"Bearer")
                return json.dumps(
                    _error(None, RpcError(INVALID_REQUEST, "missing or wrong bearer token"))
                ).encode()
        return super().render(request)

    def _reply(self, request, status: int, body: bytes | None) -> None:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        if body:
            request.write(body)
        request.finish()

    def render_GET(self, request):
        request.setResponseCode(405)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"allow", b"POST")
        return json.dumps(
            _error(None, RpcError(INVALID_REQUEST, "POST a JSON-RPC request here"))
        ).encode()

    def render_POST(self, request):
        body = request.content.read(self._max_body + 1)
        if len(body) > self._max_body:
            request.setResponseCode(413)
            request.setHeader(b"content-type", b"application/json")
            return json.dumps(
                _error(None, RpcError(INVALID_REQUEST, f"body larger than {self._max_body} bytes"))
            ).encode()

        finished = [False]
        request.notifyFinish().addBoth(lambda _: finished.__setitem__(0, True))

        def done(out: bytes | None) -> None:
            if not finished[0]:
                self._reply(request, 200, out)

        def failed(f) -> None:
            log.failure("embedded chain: request failed", f)
            if not finished[0]:
                self._reply(request, 500, json.dumps(
                    _error(None, RpcError(INTERNAL_ERROR, "internal error in the embedded chain"))
                ).encode())

        d = deferToThreadPool(self._reactor, self._pool, handle_body, self._chain, body)
        d.addCallbacks(done, failed)
        return server.NOT_DONE_YET


class _QuietSite(server.Site):
    """No access log: a busy client polls many times a second."""

    def log(self, request):
        pass


def chain_threadpool() -> ThreadPool:
    """The single thread that owns the chain."""
    return ThreadPool(minthreads=1, maxthreads=1, name="xwpy-embedded-chain")


class RpcServer:
    """A listening JSON-RPC endpoint; stop() closes the port and the chain thread."""

    def __init__(self, listening_port, threadpool: ThreadPool, chain, reactor, shutdown_trigger):
        self.listening_port = listening_port
        self.threadpool = threadpool
        self.chain = chain
        self._reactor = reactor
        self._shutdown_trigger = shutdown_trigger

    @property
    def port(self) -> int:
        return self.listening_port.getHost().port

    @property
    def url(self) -> str:
        host = self.listening_port.getHost()
        return f"http://{host.host}:{host.port}"

    @defer.inlineCallbacks
    def stop(self):
        yield self.listening_port.stopListening()
        if self._shutdown_trigger is not None:
            self._reactor.removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
            # Joins the chain thread: a request in progress finishes first.
            self.threadpool.stop()
            self.chain.close()


def is_loopback(interface: str) -> bool:
    if interface == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


def start_server(chain, port: int = 0, interface: str = "127.0.0.1", *, reactor=None, token: str | None = None) -> RpcServer:
    """Listen on INTERFACE:PORT (0: a free port) and serve CHAIN; needs a running reactor soon.

    TOKEN, if given, is required as a bearer token; it is mandatory off loopback.
    """
    if token is None and not is_loopback(interface):
        raise ValueError(f"refusing to serve the chain on {interface} without a token: its demo keys are public")
    if token is not None and len(token) < 16:
        raise ValueError("the chain's bearer token must be at least 16 characters")
    if reactor is None:
        from twisted.internet import reactor  # noqa: F811
    pool = chain_threadpool()
    pool.start()
    # Off loopback the bearer token keeps web pages out (they cannot know it), whatever the Host.
    hosts = None if token is not None else LOOPBACK_NAMES | {interface.lower()}
    site = _QuietSite(JsonRpcResource(chain, pool, reactor, token=token, hosts=hosts))
    site.displayTracebacks = False
    try:
        listening = reactor.listenTCP(port, site, interface=interface)
    except Exception:
        pool.stop()
        raise
    trigger = reactor.addSystemEventTrigger("during", "shutdown", pool.stop)
    return RpcServer(listening, pool, chain, reactor, trigger)


def serve(chain, port: int = 0, interface: str = "127.0.0.1", *, reactor=None, token: str | None = None) -> int:
    """Serve CHAIN on INTERFACE:PORT; returns the port actually bound."""
    return start_server(chain, port, interface, reactor=reactor, token=token).port


class EmbeddedChainService(service.Service):
    """The embedded chain as a Twisted service, for the coordinator's makeService.

    The chain is built (and its journal replayed) on the chain thread, so a long replay does
    not block the reactor; ``ready`` fires with the bound port once it serves.
    """

    name = "embedded-chain"

    def __init__(self, state_dir=None, port: int = 8545, interface: str = "127.0.0.1", reactor=None, token: str | None = None):
        self.state_dir = state_dir
        self.port = port
        self.interface = interface
        self._token = token
        self._reactor = reactor
        self._server: RpcServer | None = None
        self.ready: defer.Deferred = defer.Deferred()

    def startService(self):
        super().startService()
        from xwpy.chain.embedded import EmbeddedChain

        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor  # noqa: F811
        self._reactor = reactor
        d = deferToThreadPool(reactor, reactor.getThreadPool(), EmbeddedChain.create, self.state_dir)

        def listen(chain):
            self._server = start_server(chain, self.port, self.interface, reactor=reactor, token=self._token)
            return self._server.port

        d.addCallback(listen)
        d.chainDeferred(self.ready)

    def stopService(self):
        super().stopService()
        if self._server is not None:
            return self._server.stop()
        return None
