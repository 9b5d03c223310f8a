"""Site configuration: ``xwpy.toml`` in a site directory, read into frozen dataclasses.

Every key is checked: an unknown key, or a value of the wrong type, is an error that names it.
Relative paths are relative to the site directory.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_NAME = "xwpy.toml"


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class CoordinatorConfig:
    interface: str = "127.0.0.1"
    port: int = 8443  # 0 picks a free port; the chosen URL is written to run/coordinator.json
    public_host: str = "127.0.0.1"  # the name workers and clients use; must be in the certificate
    log_level: str = "info"
    log_format: str = "text"  # or "json": one JSON object per line (journald, log shippers)
    access_log: bool = True  # one event per API request: method, path, status, duration, caller


@dataclass(frozen=True)
class CatalogConfig:
    url: str = "sqlite:///catalog.sqlite"
    # SQLite durability: NORMAL survives a killed process (WAL); FULL also survives power loss.
    sqlite_synchronous: str = "NORMAL"
    read_threads: int = 4
    # How long a write waits for a SQLite catalog locked by another program (a backup, a sqlite3
    # shell) before the request is answered 503 "retry later".
    busy_timeout_seconds: float = 30.0
    # One coordinator leads a catalog (catalog/lease.py); others wait as standbys. PostgreSQL: the
    # leader renews its lease every third of lease_seconds; a standby takes over from a leader
    # that died at once, from one silent (paused, cut off) once its lease has run out.
    lease_seconds: float = 10.0
    standby_poll_seconds: float = 1.0  # how often a standby tries to take the lease


@dataclass(frozen=True)
class SchedulerConfig:
    heartbeat_seconds: float = 10.0
    lease_heartbeats: float = 3.0  # a lease lasts this many heartbeat periods
    reap_seconds: float = 2.0
    # A job that has been tried and that no host alive may run any more (its replicas disagree, or
    # it needs more distinct hosts than are alive) ends in ERROR after this long (policy.py).
    no_quorum_seconds: float = 300.0
    # Leases a host must have been silent (asleep, offline) before a job whose quorum waits on it
    # gets an extra replica elsewhere (scheduler/silence.py); its replicas count until their deadline.
    silent_leases: float = 3.0
    max_wait_seconds: float = 30.0  # upper bound of a worker's long poll
    # Adaptive replication (apps registered with --adaptive): consecutive valid results that make
    # a host trusted, and the share of a trusted host's jobs replicated all the same.
    trust_threshold: int = 10
    spot_check: float = 0.1
    # Fair share between users (scheduler/shares.py): the share of a user not named in [shares],
    # and the half-life of their recent usage (HTCondor's PRIORITY_HALFLIFE; 0: only what runs now).
    default_share: float = 1.0
    usage_half_life_seconds: float = 86400.0


@dataclass(frozen=True)
class LimitsConfig:
    max_body_bytes: int = 32 << 20  # JSON request bodies
    max_upload_bytes: int = 1 << 30  # data blobs
    max_upload_sessions: int = 8  # resumable uploads open at once per user or host
    upload_session_seconds: float = 86400.0  # an upload session untouched this long is removed
    max_connections: int = 4096  # open at once; beyond, a new connection is closed as it is accepted
    max_connections_per_peer: int = 256  # from one client address (raise it for many workers behind one NAT)
    limit_loopback: bool = False  # hold clients on this machine to max_connections_per_peer too
    idle_timeout_seconds: float = 60.0  # slow clients are cut off after this long without a byte
    header_timeout_seconds: float = 20.0  # a request's line and headers must all arrive within this
    min_body_rate: float = 500.0  # bytes/s a request body must average, once body_grace_seconds passed
    body_grace_seconds: float = 20.0
    min_free_bytes: int = 64 << 20  # the blob store's free space below which /health fails
    max_image_files: int = 200_000  # entries in an app's image, over all its layers
    max_image_bytes: int = 4 << 30  # an app's image unpacked (its archive is bounded by max_upload_bytes)
    # Quotas, per user (admins are exempt; 0: none): jobs not final yet, and bytes of data they own.
    max_jobs_per_user: int = 0
    max_stored_bytes_per_user: int = 0


@dataclass(frozen=True)
class RetentionConfig:
    # Every gc_seconds the coordinator removes the blobs nothing refers to any more (no data row,
    # app, job result, nor input or replica of a job not final) and untouched for grace_seconds
    # (an upload whose data row or report is not written yet is never taken). 0: never.
    gc_seconds: float = 3600.0
    grace_seconds: float = 3600.0


@dataclass(frozen=True)
class OracleConfig:
    enabled: bool = False
    chain: str = "embedded"  # "embedded" (in this process, state under the site) or a JSON-RPC URL
    # Follow events this many blocks behind the head; -1: URL_CONFIRMATIONS on a node (a request a
    # reorganisation removes must not be worked for), 0 on the embedded chain (it never reorganises).
    confirmations: int = -1
    poll_seconds: float = 1.0
    # Token + hub addresses: written at the first start on the embedded chain, made by
    # `xwpy chain deploy --out` for a node of your own.
    deployment: str = "chain/deployment.json"
    chain_dir: str = "chain"  # the embedded chain's journal
    rpc_port: int = 8545  # the embedded chain's JSON-RPC, on loopback (0: any free port)
    # The oracle's private key (hex, a file readable by its owner only). Empty: the public demo
    # key, accepted on the embedded chain only.
    key_file: str = ""
    commit_gas: int = 0  # gas limit of a commit; 0: enough for the hub's callback stipend, no estimate
    block_range: int = 1000  # blocks per event query (nodes cap log ranges)
    deadline_margin_seconds: float = 30.0  # no new work this close to a task's deadline
    commit_margin_seconds: float = 30.0  # no commit signed this close to a task's deadline
    replace_after_blocks: int = 3  # a commit pending this many blocks is sent again with higher fees
    max_fee_gwei: int = 1000  # the most a (replacement) commit offers per gas
    # Every this many seconds the pool's share of the tasks committed since is paid out: one Merkle
    # root committed to the distributor, claimed by each volunteer (`xwpy worker claim`). 0: never.
    epoch_seconds: float = 3600.0


@dataclass(frozen=True)
class BlobsConfig:
    """[blobs]: where the blobs live. "local": the site's blobs/ directory (the default); "s3": a
    bucket of an object store speaking the S3 API (SeaweedFS, MinIO, AWS...), which workers reach
    directly with presigned URLs (xwpy/server/blobstore_s3.py). The keys are read from
    credentials_file (TOML: access_key, secret_key; readable by its owner only) or, when it is
    empty, from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY): never a command line."""

    backend: str = "local"
    endpoint: str = ""  # the store's S3 URL as the coordinator reaches it (http(s)://host:port)
    public_endpoint: str = ""  # as workers reach it, when not the same ("": endpoint)
    bucket: str = "xwpy-blobs"
    region: str = "us-east-1"
    prefix: str = "blobs/"  # the blobs' keys: PREFIX + sha256
    credentials_file: str = ""
    # A presigned URL is valid until its replica's lease expires, this long at most (and at least
    # min_url_seconds: a worker asks again for one that expired).
    max_url_seconds: float = 3600.0
    min_url_seconds: float = 30.0
    # The local copies the coordinator keeps of blobs it reads or serves itself (a user's download,
    # a verifier's input): the least recently used go past this many bytes.
    cache_bytes: int = 1 << 30


URL_CONFIRMATIONS = 12  # the default depth on a node: a couple of minutes of Ethereum blocks


def confirmations_for(o: "OracleConfig") -> int:
    """The confirmation depth the oracle follows with: the configured one, or the chain's default."""
    if o.confirmations >= 0:
        return o.confirmations
    return 0 if o.chain == "embedded" else URL_CONFIRMATIONS


@dataclass(frozen=True)
class SiteConfig:
    dir: Path
    name: str = "xwpy"
    coordinator: CoordinatorConfig = field(default_factory=CoordinatorConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    oracle: OracleConfig = field(default_factory=OracleConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    blob_store: BlobsConfig = field(default_factory=BlobsConfig)  # [blobs]
    shares: dict[str, float] = field(default_factory=dict)  # [shares] login = share (fair share)

    def path(self, name: str) -> Path:
        p = Path(name)
        return p if p.is_absolute() else self.dir / p

    @property
    def database_url(self) -> str:
        url = self.catalog.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
            return prefix + str(self.path(url[len(prefix):]))
        return url

    @property
    def lease_seconds(self) -> float:
        return self.scheduler.heartbeat_seconds * self.scheduler.lease_heartbeats

    ca_cert = property(lambda self: self.dir / "ca.pem")
    ca_key = property(lambda self: self.dir / "ca.key")
    server_cert = property(lambda self: self.dir / "server.pem")
    server_key = property(lambda self: self.dir / "server.key")
    admin_token = property(lambda self: self.dir / "admin.token")
    blobs = property(lambda self: self.dir / "blobs")
    run_file = property(lambda self: self.dir / "run" / "coordinator.json")


_SECTIONS = {
    "coordinator": CoordinatorConfig,
    "catalog": CatalogConfig,
    "scheduler": SchedulerConfig,
    "limits": LimitsConfig,
    "oracle": OracleConfig,
    "retention": RetentionConfig,
    "blobs": BlobsConfig,
}
_FIELDS = {"blobs": "blob_store"}  # a section kept under another name (SiteConfig.blobs is the directory)


def _section(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigError(f"[{where}] must be a table")
    kinds = {f.name: f.type for f in dataclasses.fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in kinds:
            raise ConfigError(f"[{where}] unknown key {key!r} (known: {', '.join(sorted(kinds))})")
        want = {"str": str, "int": int, "float": (int, float), "bool": bool}[kinds[key]]
        if not isinstance(value, want) or (kinds[key] != "bool" and isinstance(value, bool)):
            raise ConfigError(f"[{where}] {key} must be of type {kinds[key]}, got {value!r}")
        values[key] = float(value) if kinds[key] == "float" else value
    return cls(**values)


def load(site_dir: Path) -> SiteConfig:
    site_dir = Path(site_dir).resolve()
    path = site_dir / CONFIG_NAME
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"no site at {site_dir} (missing {CONFIG_NAME}; run `xwpy init {site_dir}`)") from None
    return parse(text, site_dir, str(path))


def parse(text: str, site_dir: Path, source: str = CONFIG_NAME) -> SiteConfig:
    """The configuration in ``text`` (TOML) for the site in ``site_dir``; errors name ``source``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: {e}") from None
    kwargs: dict[str, Any] = {"dir": Path(site_dir).resolve()}
    for key, value in raw.items():
        if key == "site":
            if not isinstance(value, dict) or set(value) - {"name"}:
                raise ConfigError("[site] takes only: name")
            kwargs["name"] = str(value.get("name", "xwpy"))
        elif key in _SECTIONS:
            kwargs[_FIELDS.get(key, key)] = _section(_SECTIONS[key], value, key)
        elif key == "shares":
            kwargs["shares"] = _shares(value)
        else:
            raise ConfigError(f"unknown section [{key}] (known: site, {', '.join(_SECTIONS)}, shares)")
    cfg = SiteConfig(**kwargs)
    if cfg.coordinator.log_level not in ("debug", "info", "warn", "error"):
        raise ConfigError("[coordinator] log_level must be debug, info, warn or error")
    if cfg.coordinator.log_format not in ("text", "json"):
        raise ConfigError('[coordinator] log_format must be "text" or "json"')
    if cfg.catalog.sqlite_synchronous not in ("NORMAL", "FULL"):
        raise ConfigError("[catalog] sqlite_synchronous must be NORMAL or FULL")
    if not 0 < cfg.catalog.busy_timeout_seconds <= 3600:
        raise ConfigError("[catalog] busy_timeout_seconds must be in (0, 3600]")
    if not 0.5 <= cfg.catalog.lease_seconds <= 3600:
        raise ConfigError("[catalog] lease_seconds must be in [0.5, 3600]")
    if not 0 < cfg.catalog.standby_poll_seconds <= cfg.catalog.lease_seconds:
        raise ConfigError("[catalog] standby_poll_seconds must be > 0 and at most lease_seconds")
    if not cfg.scheduler.no_quorum_seconds > 0:
        raise ConfigError("[scheduler] no_quorum_seconds must be > 0")
    if not cfg.scheduler.silent_leases >= 1:
        raise ConfigError("[scheduler] silent_leases must be >= 1")
    if not 0.0 <= cfg.scheduler.spot_check <= 1.0:
        raise ConfigError("[scheduler] spot_check must be between 0 and 1")
    if not 0 < cfg.scheduler.default_share <= MAX_SHARE:
        raise ConfigError(f"[scheduler] default_share must be in (0, {MAX_SHARE}]")
    if not cfg.scheduler.usage_half_life_seconds >= 0:
        raise ConfigError("[scheduler] usage_half_life_seconds must be >= 0")
    _check_limits(cfg.limits)
    if cfg.retention.gc_seconds < 0 or cfg.retention.grace_seconds < 0:
        raise ConfigError("[retention] gc_seconds and grace_seconds must be >= 0")
    _check_oracle(cfg.oracle)
    _check_blobs(cfg.blob_store)
    return cfg


def _check_blobs(b: BlobsConfig) -> None:
    if b.backend not in ("local", "s3"):
        raise ConfigError(f'[blobs] backend must be "local" or "s3", got {b.backend!r}')
    if b.backend == "s3":
        for key in ("endpoint", "public_endpoint"):
            url = getattr(b, key)
            if (url or key == "endpoint") and not url.startswith(("http://", "https://")):
                raise ConfigError(f"[blobs] {key} must be an http(s):// URL, got {url!r}")
        if not 3 <= len(b.bucket) <= 63:
            raise ConfigError("[blobs] bucket must be 3 to 63 characters")
    if b.cache_bytes < 0:
        raise ConfigError(f"[blobs] cache_bytes must be 0 or more, got {b.cache_bytes}")
    if not 1 <= b.min_url_seconds <= b.max_url_seconds <= 7 * 86400:
        raise ConfigError("[blobs] need 1 <= min_url_seconds <= max_url_seconds <= 604800 (7 days: SigV4's most)")


MAX_SHARE = 1e6


def _shares(raw: Any) -> dict[str, float]:
    """[shares]: login = a positive number (a user's weight in the fair share)."""
    if not isinstance(raw, dict):
        raise ConfigError("[shares] must be a table")
    out = {}
    for login, share in raw.items():
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share <= MAX_SHARE:
            raise ConfigError(f"[shares] {login} must be a number in (0, {MAX_SHARE:g}], got {share!r}")
        out[login] = float(share)
    return out


def _check_limits(lim: LimitsConfig) -> None:
    for key in ("max_body_bytes", "max_upload_bytes", "max_upload_sessions", "max_connections", "max_connections_per_peer", "min_free_bytes",
                "max_image_files", "max_image_bytes"):
        if getattr(lim, key) < 1:
            raise ConfigError(f"[limits] {key} must be >= 1")
    for key in ("idle_timeout_seconds", "header_timeout_seconds", "min_body_rate", "body_grace_seconds",
                "upload_session_seconds"):
        if not getattr(lim, key) > 0:
            raise ConfigError(f"[limits] {key} must be > 0")
    for key in ("max_jobs_per_user", "max_stored_bytes_per_user"):
        if getattr(lim, key) < 0:
            raise ConfigError(f"[limits] {key} must be >= 0 (0: no limit)")


def _check_oracle(o: OracleConfig) -> None:
    if o.chain != "embedded" and not o.chain.startswith(("http://", "https://")):
        raise ConfigError(f'[oracle] chain must be "embedded" or an http(s):// URL, got {o.chain!r}')
    if o.confirmations < -1:
        raise ConfigError("[oracle] confirmations must be >= 0 (or -1: the default for the chain)")
    if not 0 < o.poll_seconds <= 3600:
        raise ConfigError("[oracle] poll_seconds must be in (0, 3600]")
    if not 0 <= o.rpc_port <= 65535:
        raise ConfigError("[oracle] rpc_port must be in [0, 65535]")
    if o.commit_gas < 0 or o.commit_gas > 30_000_000:
        raise ConfigError("[oracle] commit_gas must be in [0, 30000000]")
    if o.block_range < 1:
        raise ConfigError("[oracle] block_range must be >= 1")
    if o.deadline_margin_seconds < 0:
        raise ConfigError("[oracle] deadline_margin_seconds must be >= 0")
    if o.commit_margin_seconds < 0:
        raise ConfigError("[oracle] commit_margin_seconds must be >= 0")
    if o.replace_after_blocks < 1:
        raise ConfigError("[oracle] replace_after_blocks must be >= 1")
    if o.max_fee_gwei < 1:
        raise ConfigError("[oracle] max_fee_gwei must be >= 1")
    if o.enabled and o.chain != "embedded" and not o.key_file:
        raise ConfigError("[oracle] key_file is required with a chain URL (the demo key is for the embedded chain)")


def render(cfg: SiteConfig) -> str:
    """The TOML text of a configuration (used by ``xwpy init``)."""
    import tomli_w

    doc: dict[str, Any] = {"site": {"name": cfg.name}}
    for name in _SECTIONS:
        section = getattr(cfg, _FIELDS.get(name, name))
        if name == "blobs" and section == BlobsConfig():
            continue  # the local directory, as before: a new site's file says nothing of it
        doc[name] = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
    if cfg.shares:
        doc["shares"] = dict(cfg.shares)
    return "# xwpy site configuration\n\n" + tomli_w.dumps(doc)
