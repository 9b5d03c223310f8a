"""The vanity shop: one web page where a person orders an address, pays on the chain and watches
it being found (``xwpy vanity web --site SITE``).

The server signs as one requester account on the chain of the site's running coordinator (its
oracle's ``run/chain.json``): on the embedded chain the public demo requester, elsewhere only the
key of ``--key-file``. An order deploys a ``VanityConsumer`` for the person's public key Q
(``xwpy vanity keygen``; the secret q never reaches the server), approves its price and requests
the search through it (the RLC sits in escrow at the hub until the oracle commits the result or
the deadline refunds it). The page then follows the order: the hub's status, the oracle's grid
jobs (read from the site's catalog), and once delivered the partial key and the command that
turns it into the spending key on the person's own machine.

API (JSON; a mistake is a 4xx ``{"error": ..., "field": ...}``):

- ``GET /api/estimate?prefix=1xy``: the prefix's probability per key and expected tries
- ``POST /api/orders`` ``{"prefix": "1xy", "public_key": "02..."}``: order and pay -> the task
- ``GET /api/orders/<task>``: the order as the chain and the oracle see it

Blocking web3 and catalog calls run in threads (``deferToThread``); the reactor only routes.
Orders live in this process's memory: a restarted server knows none (they stay on the chain).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs

from twisted.internet import threads
from twisted.logger import Logger
from twisted.web import pages, resource, server

from xwpy.apps.vanitygen.candidates import PER_POINT
from xwpy.apps.vanitygen.difficulty import estimate
from xwpy.apps.vanitygen.prefix import PrefixError, compile_prefix
from xwpy.apps.vanitygen.secp256k1 import decode
from xwpy.lifecycle import JobStatus

log = Logger()

HERE = Path(__file__).resolve().parent
MAX_BODY = 16 * 1024
MAX_EXPECTED_TRIES = 2e9  # a demo grid finds 5 characters in minutes; refuse what it would not find
ORDER_TTL = 3600  # seconds of chain time the escrow waits for a result


def unit_progress(statuses: list[str], unit_points: int) -> dict:
    """The grid's progress on one order: its units (jobs) done and still going, keys searched."""
    done = sum(1 for s in statuses if s == JobStatus.COMPLETED)
    per_unit = unit_points * PER_POINT
    return {"units": len(statuses), "units_done": done,
            "units_running": sum(1 for s in statuses if not JobStatus(s).final),
            "keys_per_unit": per_unit, "keys_searched": done * per_unit}


class ShopError(Exception):
    """A refusal the person can act on: HTTP status, the message, the field at fault."""

    def __init__(self, status: int, message: str, field_: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field_

    def body(self) -> dict:
        out = {"error": self.message}
        if self.field:
            out["field"] = self.field
        return out


# -- input ------------------------------------------------------------------------------------


def check_prefix(value: object, max_tries: float = MAX_EXPECTED_TRIES):
    if not isinstance(value, str):
        raise ShopError(400, "prefix must be a string such as \"1xy\"", "prefix")
    try:
        target = compile_prefix(value)
    except PrefixError as e:
        raise ShopError(400, str(e), "prefix") from None
    e = estimate(target)
    if e.expected_tries > max_tries:
        raise ShopError(400, f"prefix {value!r} needs about {e.expected_tries:.3g} tries; this shop takes "
                             f"at most {max_tries:.3g} (a shorter prefix)", "prefix")
    return target, e


def check_public_key(value: object) -> str:
    if not isinstance(value, str):
        raise ShopError(400, "public_key must be a string: the 66 hex digits `xwpy vanity keygen` printed", "public_key")
    text = value.strip().lower()
    if len(text) != 66 or text[:2] not in ("02", "03"):
        raise ShopError(400, "public_key must be a compressed public key: 66 hex digits starting with 02 or 03 "
                             "(what `xwpy vanity keygen` printed)", "public_key")
    try:
        decode(bytes.fromhex(text))
    except ValueError as e:
        raise ShopError(400, f"public_key is not a secp256k1 public key ({e})", "public_key") from None
    return text


def estimate_json(e) -> dict:
    return {"prefix": e.prefix, "probability": e.probability, "expected_tries": e.expected_tries,
            "tries_50": e.tries_50, "tries_90": e.tries_90, "tries_99": e.tries_99}


# -- the shop: blocking, run in threads ---------------------------------------------------------


@dataclass
class Order:
    task: int
    consumer: str
    prefix: str
    public_key: str
    price: int
    deadline: int
    tx: str
    ordered_at: float = field(default_factory=time.time)


class Shop:
    """Orders through one requester account; every method blocks (call it from a thread)."""

    def __init__(self, target, sender, *, site: Path | None = None, ttl: int = ORDER_TTL,
                 max_tries: float = MAX_EXPECTED_TRIES):
        self.target, self.sender, self.site, self.ttl, self.max_tries = target, sender, site, ttl, max_tries
        self.orders: dict[int, Order] = {}
        self._lock = threading.Lock()  # one order at a time: approve then request, one nonce sequence

    def order(self, prefix: str, public_key: str) -> dict:
        from xwpy.chain.deploy import deploy_consumer
        from xwpy.client.chainclient import ChainClientError, request_vanity

        with self._lock:
            try:
                consumer = deploy_consumer(self.sender, self.target.need_deployment(), public_key)
                req = request_vanity(self.target, self.sender, consumer.address, prefix, ttl=self.ttl)
            except ChainClientError as e:  # e.g. the account cannot pay
                raise ShopError(409, str(e)) from None
            o = Order(req.task_id, consumer.address, prefix, public_key, req.price, req.deadline, req.tx_hash)
            self.orders[o.task] = o
        log.info("order {task}: prefix {prefix!r}, consumer {consumer}, tx {tx}", task=o.task, prefix=prefix,
                 consumer=o.consumer, tx=o.tx)
        return self.view(o.task)

    def view(self, task: int) -> dict:
        from xwpy.chain.contracts import TaskStatus
        from xwpy.client.chainclient import describe, format_rlc

        o = self.orders.get(task)
        if o is None:
            raise ShopError(404, f"no order {task} at this shop")
        info = describe(self.target, task, o.consumer)
        out: dict[str, Any] = {
            "task": task, "consumer": o.consumer, "prefix": o.prefix, "public_key": o.public_key,
            "price": o.price, "price_text": format_rlc(o.price), "tx": o.tx, "hub": self.target.need_deployment().hub,
            "requester": self.sender.address, "status": info["status"], "deadline": info["deadline"],
            "chain_time": info["chain_time"], "ordered_at": o.ordered_at, "commit_tx": info.get("commit_tx"),
            "block": info.get("block"), "refunded": info.get("refunded"), "delivered": None,
            "grid": self._grid(task),
        }
        # Delivered once the hub says so: the consumer's copy may be read a block later than the
        # status (two reads), and a result shown beside "REQUESTED" would contradict it.
        got = (info.get("consumer_result") or info.get("result")) if info["status"] == TaskStatus.COMPLETED.name else None
        if got is not None:
            try:
                result = json.loads(got)
                out["delivered"] = {
                    "address": result["address"], "partial_key": result["partial_key"],
                    "candidate": result["candidate"],
                    "combine": f"xwpy vanity combine --secret q.key --partial {result['partial_key']} "
                               f"--candidate {int(result['candidate'])}",
                }
            except (ValueError, KeyError, TypeError):
                out["delivered_raw"] = got
        return out

    def _grid(self, task: int) -> dict | None:
        """The oracle's record of the task and its grid jobs (asked of the site's coordinator)."""
        if self.site is None:
            return None
        from xwpy.client.api import ClientError, chain_task

        try:
            t = chain_task(self.site, task)  # a client per call: views are served from several threads
        except ClientError as e:
            if e.status == 404 and e.code == "not_found":
                return {"status": "NOT_SEEN"}
            # Progress is a courtesy: the chain's view stands alone.
            log.warn("cannot read the oracle's record of task {task}: {e}", task=task, e=e)
            return None
        statuses = [s for s, n in t["job_statuses"].items() for _ in range(n)]
        return {"status": t["status"], "error": t["error"],
                **unit_progress(statuses, int(t["state"].get("unit_points", 0)))}


# -- HTTP ---------------------------------------------------------------------------------------


def _write(request, status: int, value: dict) -> None:
    if getattr(request, "_disconnected", False) or request.finished:
        return
    body = json.dumps(value, sort_keys=True).encode()
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    request.setHeader(b"content-length", str(len(body)).encode())
    request.write(body)
    request.finish()


class Api(resource.Resource):
    isLeaf = True

    def __init__(self, shop: Shop):
        super().__init__()
        self.shop = shop

    def render(self, request):
        method = request.method.decode("ascii", "replace")
        path = [p.decode("utf-8", "replace") for p in request.postpath]
        while path and path[-1] == "":
            path.pop()
        try:
            if path == ["estimate"]:
                self._allow(method, "GET")
                return self._done(request, 200, self._estimate(request))
            if path == ["orders"]:
                self._allow(method, "POST")
                body = self._body(request)
                _, e = check_prefix(body.get("prefix"), self.shop.max_tries)
                public_key = check_public_key(body.get("public_key"))
                return self._later(request, 201, self.shop.order, e.prefix, public_key)
            if len(path) == 2 and path[0] == "orders":
                self._allow(method, "GET")
                task = path[1]
                if not (task.isdigit() and len(task) <= 30 and int(task) in self.shop.orders):
                    raise ShopError(404, f"no order {task[:40]!r} at this shop")
                return self._later(request, 200, self.shop.view, int(task))
            raise ShopError(404, f"no such API resource: /{'/'.join(path)[:80]}")
        except ShopError as e:
            return self._done(request, e.status, e.body())
        except Exception:  # noqa: BLE001 - a bug of ours: logged, and still a JSON answer
            log.failure("internal error serving {uri}", uri=request.uri)
            return self._done(request, 500, {"error": "internal error (see the server's log)"})

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        if method != allowed:
            raise ShopError(405, f"use {allowed} here, not {method[:10]}")

    @staticmethod
    def _estimate(request) -> dict:
        values = request.args.get(b"prefix")
        if not values:
            raise ShopError(400, "give ?prefix=1...", "prefix")
        text = values[0].decode("utf-8", "replace")
        try:
            return estimate_json(estimate(compile_prefix(text)))
        except PrefixError as e:
            raise ShopError(400, str(e), "prefix") from None

    @staticmethod
    def _body(request) -> dict:
        length = request.getHeader("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            raise ShopError(413, f"the body must be at most {MAX_BODY} bytes", "body")
        raw = request.content.read(MAX_BODY + 1) if request.content is not None else b""
        if len(raw) > MAX_BODY:
            raise ShopError(413, f"the body must be at most {MAX_BODY} bytes", "body")
        ctype = (request.getHeader("content-type") or "").split(";")[0].strip().lower()
        if raw and ctype not in ("application/json", ""):
            raise ShopError(415, "send the order as application/json", "body")
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            if parse_qs(raw.decode("latin-1")):  # a form post: say what to send instead
                raise ShopError(415, "send the order as JSON: {\"prefix\": ..., \"public_key\": ...}", "body") from None
            raise ShopError(400, "the body is not UTF-8 JSON", "body") from None
        if not isinstance(body, dict):
            raise ShopError(400, "the body must be a JSON object {\"prefix\": ..., \"public_key\": ...}", "body")
        unknown = sorted(set(body) - {"prefix", "public_key"})
        if unknown:
            raise ShopError(400, f"unknown field {unknown[0][:40]!r}", unknown[0][:40])
        return body

    @staticmethod
    def _done(request, status: int, value: dict) -> bytes:
        _write(request, status, value)
        return server.NOT_DONE_YET

    def _later(self, request, status: int, fn: Callable, *args) -> object:
        d = threads.deferToThread(fn, *args)
        d.addCallbacks(lambda value: _write(request, status, value), lambda f: self._failed(request, f))
        return server.NOT_DONE_YET

    @staticmethod
    def _failed(request, failure) -> None:
        import requests
        from web3.exceptions import Web3Exception

        from xwpy.chain.tx import TxError

        e = failure.value
        if isinstance(e, ShopError):
            _write(request, e.status, e.body())
        elif isinstance(e, requests.ConnectionError):
            _write(request, 503, {"error": "cannot reach the chain (is the site's coordinator running?)"})
        elif isinstance(e, (TxError, Web3Exception, requests.RequestException)):
            log.warn("the chain refused: {e}", e=e)
            _write(request, 502, {"error": f"the chain answered with an error: {type(e).__name__}: {str(e)[:300]}"})
        else:
            log.failure("internal error serving {uri}", failure, uri=request.uri)
            _write(request, 500, {"error": "internal error (see the server's log)"})


class Html(resource.Resource):
    isLeaf = True

    def __init__(self, body: bytes):
        super().__init__()
        self.body = body

    def render_GET(self, request):
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        request.setHeader(b"content-security-policy", b"default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
        return self.body


class Page(resource.Resource):
    """``/``: the page; ``/api/...``: the API; anything else 404."""

    def __init__(self, shop: Shop):
        super().__init__()
        self.putChild(b"api", Api(shop))
        self.page = Html((HERE / "index.html").read_bytes())

    def getChild(self, path, request):
        if path == b"" and not request.postpath:
            return self.page
        return pages.notFound("No such page", "The shop is at /.")


def site_for(shop: Shop) -> server.Site:
    site = server.Site(Page(shop))
    site.displayTracebacks = False
    return site


# -- from a site directory ----------------------------------------------------------------------


def shop_for_site(site_dir: Path, key_file: Path | None = None) -> Shop:
    """The shop on the chain of SITE_DIR's running coordinator; ChainClientError/ConfigError if not."""
    from xwpy import config
    from xwpy.chain.accounts import demo_account
    from xwpy.chain.tx import TxSender
    from xwpy.client.chainclient import ChainClientError, resolve
    from xwpy.oracle.chainsetup import read_key_file

    cfg = config.load(site_dir)
    if key_file is None and cfg.oracle.chain != "embedded":
        raise ChainClientError(f"the chain of site {site_dir} is not the embedded one: give --key-file FILE "
                               "(the requester's private key); the public demo key is for the embedded chain only")
    key = read_key_file(key_file) if key_file is not None else demo_account("requester").key
    target = resolve(None, None, site_dir)
    target.need_deployment()
    return Shop(target, TxSender(target.w3, key), site=site_dir)
