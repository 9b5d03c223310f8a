"""The vanity shop: one web page where a person orders an address, pays on the chain and watches
it being found (``xwpy vanity web --site SITE``).

The server signs as one requester account on the chain of the site's running coordinator (its
oracle's ``run/chain.json``): on the embedded chain the public demo requester, elsewhere only the
key of ``--key-file``. The page makes the person's split key in the browser (vendored
``@noble/secp256k1``) and sends only its public key Q (or Q from ``xwpy vanity keygen``); the
secret q never reaches the server. An order deploys a ``VanityConsumer`` for Q, approves its price and requests
the search through it (the RLC sits in escrow at the hub until the oracle commits the result or
the deadline refunds it). The page then follows the order: the hub's status, the oracle's grid
jobs (read from the site's catalog), and once delivered the partial key, which the page combines
with q into the spending key.

API (JSON; a mistake is a 4xx ``{"error": ..., "code": ..., "field": ...}``):

- ``GET /api/estimate?prefix=1xy``: the prefix's odds, expected time and the price to pay
- ``POST /api/orders`` ``{"prefix", "public_key", "max_price", "order_key"}``: order and pay ->
  the task (201); the same ORDER_KEY again returns the same order (200) and never pays twice
- ``GET /api/orders/<task>``: the order as the chain and the oracle see it

Blocking web3 and catalog calls run in threads (``deferToThread``); the reactor only routes.
Orders are appended to ``orders.jsonl`` in the state directory before and after paying, so a
restarted shop follows them again and still answers a retried order key.
"""

from __future__ import annotations

import hmac
import json
import os
import re
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
from xwpy.apps.vanitygen.difficulty import estimate, format_duration
from xwpy.apps.vanitygen.prefix import PrefixError, compile_prefix
from xwpy.apps.vanitygen.secp256k1 import decode
from xwpy.lifecycle import JobStatus

log = Logger()

HERE = Path(__file__).resolve().parent
MAX_BODY = 16 * 1024
MAX_EXPECTED_TRIES = 2e9  # a demo grid finds 5 characters in minutes; refuse what it would not find
ORDER_TTL = 3600  # seconds of chain time the escrow waits for a result
KEYS_PER_SECOND = 1e6  # the grid's search rate the expected time assumes (--keys-per-second)
ORDER_KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")
ORDERS_FILE = "orders.jsonl"
FOLLOW_EVERY = 15.0  # seconds between reads of the pending orders' status by the shop itself


def unit_progress(statuses: list[str], unit_points: int) -> dict:
    """The grid's progress on one order: its units (jobs) done and still going, keys searched."""
    done = sum(1 for s in statuses if s == JobStatus.COMPLETED)
    per_unit = unit_points * PER_POINT
    return {"units": len(statuses), "units_done": done,
            "units_running": sum(1 for s in statuses if not JobStatus(s).final),
            "keys_per_unit": per_unit, "keys_searched": done * per_unit}


CODES = {400: "bad_request", 401: "sign_in", 403: "spend_cap", 404: "not_found", 405: "method",
         409: "conflict", 413: "too_large", 415: "media_type"}


class ShopError(Exception):
    """A refusal the person can act on: HTTP status, the message, the field at fault."""

    def __init__(self, status: int, message: str, field_: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field_
        self.code = code or CODES.get(status, "error")

    def body(self) -> dict:
        out = {"error": self.message, "code": self.code}
        if self.field:
            out["field"] = self.field
        return out


# -- deciding an order: pure ---------------------------------------------------------------------


def admit(known: dict | None, request: dict, price: int | None, spent: int, cap: int | None) -> str:
    """What to do with an order: "replay" (this key's order exists: answer it again), "pay", or
    raise the refusal. KNOWN: this order key's record, if any; REQUEST: prefix, public_key,
    max_price; PRICE: the app's price now (None when replaying needs no chain read); SPENT: RLC
    this shop has committed so far; CAP: the most it may spend (None: no cap)."""
    if known is not None:
        if any(known.get(k) != request[k] for k in ("prefix", "public_key", "max_price")):
            raise ShopError(409, "this order key was used for another order: reload the page", "order_key")
        if known.get("task") is not None:
            return "replay"
        raise ShopError(409, "this order was interrupted while paying (the shop restarted): it is not paid "
                             "again; ask the shop's operator", "order_key", code="interrupted")
    assert price is not None
    if price > request["max_price"]:
        from xwpy.client.chainclient import format_rlc

        raise ShopError(409, f"the price is now {format_rlc(price)}, more than the {format_rlc(request['max_price'])} "
                             "you were shown: look at the new price and order again", "max_price", code="price_changed")
    if cap is not None and spent + price > cap:
        from xwpy.client.chainclient import format_rlc

        raise ShopError(403, f"this shop's spending cap is reached ({format_rlc(spent)} of {format_rlc(cap)} spent): "
                             "no more orders are taken", code="spend_cap")
    return "pay"


class OrderLog:
    """Orders as JSON lines, appended (and fsynced) before paying and once paid."""

    def __init__(self, directory: Path | None):
        self.path = None if directory is None else Path(directory) / ORDERS_FILE
        self.by_key: dict[str, dict] = {}
        if self.path is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:  # a torn last line of a crash: the order it began is "interrupted"
                    continue
                if rec.get("event") == "failed":
                    self.by_key.pop(rec["order_key"], None)
                else:
                    self.by_key.setdefault(rec["order_key"], {}).update(rec)

    def append(self, rec: dict) -> None:
        if rec.get("event") == "failed":
            self.by_key.pop(rec["order_key"], None)
        else:
            self.by_key.setdefault(rec["order_key"], {}).update(rec)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def spent(self) -> int:
        """RLC paid or possibly paid (an interrupted order counts at its maximum)."""
        return sum(int(r.get("price", r["max_price"])) for r in self.by_key.values())


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


def check_max_price(value: object) -> int:
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not (isinstance(text, str) and text.isdigit() and len(text) <= 40):
        raise ShopError(400, "max_price must be the price shown, in RLC units (a decimal string)", "max_price")
    return int(text)


def check_order_key(value: object) -> str:
    if not (isinstance(value, str) and ORDER_KEY.fullmatch(value)):
        raise ShopError(400, "order_key must be 16 to 64 letters, digits, - or _ (the page makes one per order)",
                        "order_key")
    return value


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
    order_key: str | None = None


class Shop:
    """Orders through one requester account; every method blocks (call it from a thread)."""

    def __init__(self, target, sender, *, site: Path | None = None, state: Path | None = None, ttl: int = ORDER_TTL,
                 max_tries: float = MAX_EXPECTED_TRIES, keys_per_second: float = KEYS_PER_SECOND,
                 spend_cap: int | None = None, token: str | None = None):
        self.target, self.sender, self.site, self.ttl, self.max_tries = target, sender, site, ttl, max_tries
        self.keys_per_second, self.spend_cap, self.token = keys_per_second, spend_cap, token
        self.log = OrderLog(state)
        self.orders: dict[int, Order] = {}
        for rec in self.log.by_key.values():
            if rec.get("task") is not None:
                self.orders[rec["task"]] = Order(rec["task"], rec["consumer"], rec["prefix"], rec["public_key"],
                                                 rec["price"], rec["deadline"], rec["tx"], rec["ordered_at"],
                                                 rec["order_key"])
        # One order at a time (approve then request: one nonce sequence); the log is written under it
        # too, and a replay views its order while holding it.
        self._lock = threading.RLock()

    def signed_in(self, authorization: str | None) -> bool:
        if self.token is None:
            return True
        given = (authorization or "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), self.token.encode())

    def price(self) -> int:
        d = self.target.need_deployment()
        return self.target.hub.app(d.apps["vanitygen"]).price

    def quote(self, e) -> dict:
        """The estimate with what the order costs and how long it should take, shown before paying."""
        from xwpy.client.chainclient import format_rlc

        price = self.price()
        seconds = e.seconds(e.expected_tries, self.keys_per_second)
        return {**estimate_json(e), "price": str(price), "price_text": format_rlc(price),
                "keys_per_second": self.keys_per_second, "expected_seconds": seconds,
                "expected_time": format_duration(seconds), "time_90": format_duration(e.seconds(e.tries_90, self.keys_per_second)),
                "sign_in": self.token is not None,
                "spend_cap": None if self.spend_cap is None else str(self.spend_cap)}

    def pending(self) -> list[int]:
        """Tasks of orders not yet seen final (followed again after a restart)."""
        return sorted(t for t, o in self.orders.items() if not self.log.by_key.get(o.order_key or "", {}).get("final"))

    def follow_pending(self) -> None:
        """Read each pending order once (a final one is recorded in the log); never raises."""
        for task in self.pending():
            try:
                self.view(task)
            except Exception as e:  # noqa: BLE001 - the chain may be down: try again next round
                log.warn("cannot follow order {task}: {e}", task=task, e=e)

    def order(self, prefix: str, public_key: str, max_price: int, order_key: str) -> tuple[int, dict]:
        """(HTTP status, the order): 201 when paid now, 200 when ORDER_KEY's order already exists."""
        from xwpy.chain.deploy import deploy_consumer
        from xwpy.client.chainclient import ChainClientError, request_vanity

        request = {"prefix": prefix, "public_key": public_key, "max_price": max_price}
        with self._lock:
            known = self.log.by_key.get(order_key)
            price = None if known is not None else self.price()
            if admit(known, request, price, self.log.spent(), self.spend_cap) == "replay":
                return 200, self.view(known["task"])
            self.log.append({"event": "paying", "order_key": order_key, **request, "at": time.time()})
            try:
                consumer = deploy_consumer(self.sender, self.target.need_deployment(), public_key)
                req = request_vanity(self.target, self.sender, consumer.address, prefix, ttl=self.ttl,
                                     max_price=max_price)
            except ChainClientError as e:  # e.g. the account cannot pay: nothing was paid
                self.log.append({"event": "failed", "order_key": order_key, "error": str(e)[:300]})
                raise ShopError(409, str(e)) from None
            o = Order(req.task_id, consumer.address, prefix, public_key, req.price, req.deadline, req.tx_hash,
                      order_key=order_key)
            self.log.append({"event": "ordered", "order_key": order_key, "task": o.task, "consumer": o.consumer,
                             "price": o.price, "deadline": o.deadline, "tx": o.tx, "ordered_at": o.ordered_at})
            self.orders[o.task] = o
        log.info("order {task}: prefix {prefix!r}, consumer {consumer}, tx {tx}", task=o.task, prefix=prefix,
                 consumer=o.consumer, tx=o.tx)
        return 201, self.view(o.task)

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
        if info["status"] != TaskStatus.REQUESTED.name and o.order_key and not self.log.by_key[o.order_key].get("final"):
            with self._lock:
                self.log.append({"event": "final", "order_key": o.order_key, "final": info["status"]})
        # Delivered once the hub says so: the consumer's copy may be read a block later than the
        # status (two reads), and a result shown beside "REQUESTED" would contradict it.
        got = (info.get("consumer_result") or info.get("result")) if info["status"] == TaskStatus.COMPLETED.name else None
        if got is not None:
            try:
                result = json.loads(got)
                out["delivered"] = {
                    "address": result["address"], "partial_key": result["partial_key"],
                    "candidate": result["candidate"], "pubkey": result.get("pubkey"),
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
                return self._later(request, self.shop.quote, self._estimate(request))
            if path == ["orders"]:
                self._allow(method, "POST")
                if not self.shop.signed_in(request.getHeader("authorization")):
                    raise ShopError(401, "sign in with this shop's token to order (ask its operator)", "token")
                body = self._body(request)
                _, e = check_prefix(body.get("prefix"), self.shop.max_tries)
                public_key = check_public_key(body.get("public_key"))
                max_price = check_max_price(body.get("max_price"))
                order_key = check_order_key(body.get("order_key"))
                return self._later(request, self.shop.order, e.prefix, public_key, max_price, order_key, status=None)
            if len(path) == 2 and path[0] == "orders":
                self._allow(method, "GET")
                task = path[1]
                if not (task.isdigit() and len(task) <= 30 and int(task) in self.shop.orders):
                    raise ShopError(404, f"no order {task[:40]!r} at this shop")
                return self._later(request, self.shop.view, int(task))
            raise ShopError(404, f"no such API resource: /{'/'.join(path)[:80]}")
        except ShopError as e:
            return self._done(request, e.status, e.body())
        except Exception:  # noqa: BLE001 - a bug of ours: logged, and still a JSON answer
            log.failure("internal error serving {uri}", uri=request.uri)
            return self._done(request, 500, {"error": "internal error (see the server's log)", "code": "internal"})

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        if method != allowed:
            raise ShopError(405, f"use {allowed} here, not {method[:10]}")

    @staticmethod
    def _estimate(request):
        values = request.args.get(b"prefix")
        if not values:
            raise ShopError(400, "give ?prefix=1...", "prefix")
        text = values[0].decode("utf-8", "replace")
        try:
            return estimate(compile_prefix(text))
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
        unknown = sorted(set(body) - {"prefix", "public_key", "max_price", "order_key"})
        if unknown:
            raise ShopError(400, f"unknown field {unknown[0][:40]!r}", unknown[0][:40])
        return body

    @staticmethod
    def _done(request, status: int, value: dict) -> bytes:
        _write(request, status, value)
        return server.NOT_DONE_YET

    def _later(self, request, fn: Callable, *args, status: int | None = 200) -> object:
        """FN(*ARGS) in a thread, answered with STATUS (None: FN returns (status, value))."""
        d = threads.deferToThread(fn, *args)
        d.addCallbacks(lambda value: _write(request, *((status, value) if status is not None else value)),
                       lambda f: self._failed(request, f))
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
            _write(request, 503, {"error": "cannot reach the chain (is the site's coordinator running?)", "code": "chain"})
        elif isinstance(e, (TxError, Web3Exception, requests.RequestException)):
            log.warn("the chain refused: {e}", e=e)
            _write(request, 502, {"error": f"the chain answered with an error: {type(e).__name__}: {str(e)[:300]}",
                                  "code": "chain"})
        else:
            log.failure("internal error serving {uri}", failure, uri=request.uri)
            _write(request, 500, {"error": "internal error (see the server's log)", "code": "internal"})


# Scripts only from the shop itself (the page's own module and the vendored libraries): no inline
# script, no CDN, no eval; requests only back to the shop.
CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
       b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
STATIC = {"": ("index.html", b"text/html; charset=utf-8"), "shop.js": ("shop.js", b"text/javascript; charset=utf-8"),
          "shop.css": ("shop.css", b"text/css; charset=utf-8")}
VENDOR = HERE / "vendor"


class File(resource.Resource):
    isLeaf = True

    def __init__(self, body: bytes, ctype: bytes):
        super().__init__()
        self.body, self.ctype = body, ctype

    def render_GET(self, request):
        request.setHeader(b"content-type", self.ctype)
        request.setHeader(b"content-security-policy", CSP)
        request.setHeader(b"x-content-type-options", b"nosniff")
        return self.body


class Page(resource.Resource):
    """``/``: the page, its script and style; ``/vendor/...``: the vendored libraries; ``/api/...``:
    the API; anything else 404."""

    def __init__(self, shop: Shop):
        super().__init__()
        self.putChild(b"api", Api(shop))
        self.files = {name.encode(): File((HERE / fname).read_bytes(), ctype) for name, (fname, ctype) in STATIC.items()}
        for lib in sorted(p for p in VENDOR.iterdir() if p.is_dir()):
            for js in sorted(lib.glob("*.js")):
                self.files[f"vendor/{lib.name}/{js.name}".encode()] = File(js.read_bytes(), STATIC["shop.js"][1])

    def getChild(self, path, request):
        name = b"/".join([path, *request.postpath])
        if name in self.files:
            request.postpath = []
            return self.files[name]
        return pages.notFound("No such page", "The shop is at /.")


def site_for(shop: Shop) -> server.Site:
    site = server.Site(Page(shop))
    site.displayTracebacks = False
    return site


# -- from a site directory ----------------------------------------------------------------------


def shop_for_site(site_dir: Path, key_file: Path | None = None, **options) -> Shop:
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
    options.setdefault("state", Path(site_dir) / "shop")
    return Shop(target, TxSender(target.w3, key), site=site_dir, **options)
