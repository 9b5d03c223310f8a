"""``xwpy doctor --site DIR``: an operator's check of a site, one finding per line with what to do.

The verdicts are pure functions of what was observed (``certificate``, ``disk``, ``schema``,
``clock``...), tested directly; ``examine`` observes (files, the catalog, the disk, the chain, the
running coordinator) and never changes anything — the catalog check runs its write probe in a
transaction that is rolled back."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

OK, WARN, FAIL = "ok", "warn", "fail"
SOON_DAYS = 30  # a certificate expiring within this many days is worth a warning
MAX_SKEW_SECONDS = 5.0  # leases and chain deadlines are counted in seconds


@dataclass(frozen=True)
class Finding:
    check: str
    level: str  # OK, WARN or FAIL
    text: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.level.upper():4} {self.check}: {self.text}" + (f" — {self.fix}" if self.fix else "")


# -- verdicts (pure) ---------------------------------------------------------------------------------


def certificate(what: str, not_before: dt.datetime, not_after: dt.datetime, now: dt.datetime, *,
                renew: str, names: list[str] | None = None, needed: str | None = None) -> Finding:
    days = (not_after - now).total_seconds() / 86400
    if now < not_before:
        return Finding(what, FAIL, f"not valid before {not_before:%Y-%m-%d %H:%M} UTC (is the clock right?)",
                       "check this machine's clock")
    if days < 0:
        return Finding(what, FAIL, f"expired on {not_after:%Y-%m-%d}", renew)
    if needed is not None and names is not None and needed not in names:
        return Finding(what, FAIL, f"does not name {needed!r} (it names {', '.join(names)})", renew)
    if days < SOON_DAYS:
        return Finding(what, WARN, f"expires in {days:.0f} days, on {not_after:%Y-%m-%d}", renew)
    return Finding(what, OK, f"valid until {not_after:%Y-%m-%d}")


def disk(free: int, least: int) -> Finding:
    mib = free >> 20
    if free < least:
        return Finding("blob store", FAIL, f"{mib} MiB free, less than [limits] min_free_bytes ({least >> 20} MiB)",
                       "free space on its file system, or move blobs/ to a larger one")
    return Finding("blob store", OK, f"writable, {mib} MiB free")


def schema(found: str | None, head: str, known: frozenset[str], site: str) -> Finding:
    from xwpy.server.catalog.revision import advice

    problem = advice(found, head, known, site)
    if problem:
        return Finding("catalog", FAIL, *problem)
    return Finding("catalog", OK, f"schema at revision {head}")


def clock(skew: float) -> Finding:
    if abs(skew) > MAX_SKEW_SECONDS:
        return Finding("clock", FAIL, f"{skew:+.1f} s from the coordinator's", "synchronise the clocks (NTP)")
    return Finding("clock", OK, f"{skew:+.1f} s from the coordinator's")


# -- observation -------------------------------------------------------------------------------------


def examine(site_dir: Path) -> list[Finding]:
    from xwpy import config as config_module

    try:
        cfg = config_module.load(Path(site_dir))
    except (config_module.ConfigError, OSError) as e:
        return [Finding("configuration", FAIL, str(e), "fix xwpy.toml")]
    out = [Finding("configuration", OK, str(cfg.dir / config_module.CONFIG_NAME))]
    out += _certificates(cfg)
    out.append(_catalog(cfg))
    out.append(_blobs(cfg))
    out += _running(cfg)
    if cfg.oracle.enabled:
        out.append(_chain(cfg))
    return out


def _certificates(cfg) -> list[Finding]:
    from cryptography import x509

    now = dt.datetime.now(dt.timezone.utc)
    renew = f"make a new one: xwpy cert renew --site {cfg.dir}"
    out = []
    for what, path, needed in (("CA certificate", cfg.ca_cert, None),
                               ("server certificate", cfg.server_cert, cfg.coordinator.public_host)):
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
        except (OSError, ValueError) as e:
            out.append(Finding(what, FAIL, f"cannot read {path}: {e}", "restore it from a backup"))
            continue
        names = None
        if needed is not None:
            try:
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
                names = [str(n.value) for n in san]
            except x509.ExtensionNotFound:
                names = []
        out.append(certificate(what, cert.not_valid_before_utc, cert.not_valid_after_utc, now,
                               renew=renew if needed else "a new CA means new certificates for every worker and user",
                               names=names, needed=needed))
    return out


def _catalog(cfg) -> Finding:
    from xwpy.server.catalog import health, revision
    from xwpy.server.catalog.connector import make_engine, shown_url

    try:
        engine = make_engine(cfg.database_url, busy_timeout=5.0)
    except Exception as e:  # noqa: BLE001 - a URL SQLAlchemy cannot use, a missing driver
        return Finding("catalog", FAIL, f"cannot open {shown_url(cfg.catalog.url)}: {_one_line(e)}", "check [catalog] url")
    try:
        with engine.connect() as conn:
            trans = conn.begin()
            try:
                verdict = schema(revision.current(conn), revision.head(), revision.known(), str(cfg.dir))
                if verdict.level != OK:
                    return verdict
                users = health.probe(conn)
            finally:
                trans.rollback()
        return Finding("catalog", OK, f"schema at revision {revision.head()}, writable, {users} users")
    except Exception as e:  # noqa: BLE001 - locked, read-only, unreachable, not a catalog
        return Finding("catalog", FAIL, _one_line(e), "is another program holding it locked? is its server up?")
    finally:
        engine.dispose()


def _blobs(cfg) -> Finding:
    from xwpy.server import blobstore

    if not cfg.blobs.exists():
        return Finding("blob store", WARN, f"{cfg.blobs} does not exist yet", "the coordinator creates it on start")
    try:
        blobstore.probe(cfg.blobs)  # beside the store's tmp/, which the coordinator empties on start
    except (OSError, blobstore.BlobError) as e:
        return Finding("blob store", FAIL, f"cannot write in {cfg.blobs}: {_one_line(e)}",
                       "check its permissions and file system")
    return disk(shutil.disk_usage(cfg.blobs).free, cfg.limits.min_free_bytes)


def _running(cfg) -> list[Finding]:
    """The coordinator of this site, if it runs: its health, and the clocks compared."""
    from email.utils import parsedate_to_datetime

    from xwpy.client.api import Client, ClientError, Endpoint

    import psutil

    try:
        run = json.loads(cfg.run_file.read_text())
        port = urlsplit(run["url"]).port
    except (OSError, ValueError, KeyError):
        return [Finding("coordinator", WARN, "not running (no run file): its health and clock not checked")]
    if not psutil.pid_exists(run.get("pid", 0)):
        return [Finding("coordinator", WARN, "not running (its run file is stale): health and clock not checked")]
    url = f"https://127.0.0.1:{port}"  # this machine's coordinator: its certificate names 127.0.0.1
    client = Client(Endpoint(url, "", cfg.ca_cert), timeout=15)
    try:
        before = time.time()
        resp = client._request("GET", "/health")
        after = time.time()
        body = json.loads(resp.read() or b"{}")
        date = resp.getheader("Date")
    except (ClientError, ValueError) as e:
        return [Finding("coordinator", FAIL, f"the run file names {url}, which does not answer: {_one_line(e)}",
                        "is it still running? (a stale run file after a crash is harmless)")]
    finally:
        client.close()
    out = []
    if resp.status == 200:
        out.append(Finding("coordinator", OK, f"healthy at {url}"))
    else:
        out.append(Finding("coordinator", FAIL, f"unhealthy at {url}: {', '.join(body.get('failed', [])) or resp.status}",
                           "see GET /api/v1/health and its log"))
    if date:
        theirs = parsedate_to_datetime(date).timestamp()
        # The Date header has whole seconds: compare with the middle of the exchange, allow 1 s.
        skew = (before + after) / 2 - theirs
        out.append(clock(0.0 if abs(skew) <= 1 else skew))
    return out


def _chain(cfg) -> Finding:
    from xwpy.chain.node import connect
    from xwpy.oracle.chainsetup import RUN_FILE, load_key

    if cfg.oracle.chain == "embedded":
        try:
            url = json.loads((cfg.dir / RUN_FILE).read_text())["url"]
        except (OSError, ValueError, KeyError):
            return Finding("chain", WARN, "embedded in the coordinator, which is not running: not checked")
    else:
        url = cfg.oracle.chain
    try:
        key = load_key(cfg.oracle, cfg)
        from eth_account import Account

        w3 = connect(url, timeout=10)
        head = w3.eth.block_number
        address = Account.from_key(key).address
        balance = w3.eth.get_balance(address)
    except Exception as e:  # noqa: BLE001 - a node down, a bad key file: say which
        return Finding("chain", FAIL, _one_line(e), "check [oracle] chain and key_file")
    if balance == 0:
        return Finding("chain", FAIL, f"head at block {head}; the oracle's account {address} has no ether for gas",
                       "fund it, or commits will fail")
    return Finding("chain", OK, f"head at block {head}; oracle {address} holds {balance / 1e18:.4f} ether")


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:200]
