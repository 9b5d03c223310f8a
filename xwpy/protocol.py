"""The wire protocol: every message of the HTTPS JSON API under ``/api/v1``, defined once.

Coordinator, worker and client all build and parse messages with the classes below. ``parse``
checks every inbound field — type, size, range, enum — and rejects unknown fields, raising
:class:`ProtocolError` that names the offending field; it never raises anything else, whatever
JSON value it is given (the property tests hold it to that).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
from typing import Any, Callable, TypeVar

import attrs

from xwpy.lifecycle import JobStatus
from xwpy.platforms import PLATFORM_RE

API_PREFIX = "/api/v1"

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
FILE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
# A file of a result archive (a relative path: no '..', not hidden at any level).
MEMBER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9_][A-Za-z0-9._-]{0,127}){0,15}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
GROUP_RE = re.compile(r"|[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # empty: no group

ROLES = ("admin", "user", "worker")
JOB_STATUSES = tuple(JobStatus.__members__)
ACCESS = ("private", "group", "public")

MAX_ARGS = 256
MAX_ARG_LEN = 4096
MAX_JOBS_PER_SUBMIT = 10_000
MAX_RESULTS_PER_REPORT = 1024
MAX_SLOTS = 256
MAX_INLINE_RESULT = 64 * 1024
# Bytes of certified results one answer to POST /jobs/wait carries inline (results of at most
# MAX_INLINE_RESULT each, kept in the catalog): the rest are downloaded one by one.
MAX_INLINE_FINALS = 4 << 20
MAX_UPLOAD_CHUNK = 64 << 20  # bytes in one PATCH of an upload session
STDERR_TAIL = 4096
# A replica's deadline, from its assignment: its host may fall silent (asleep, offline) and come
# back with its result until then. Per app (xwpy app register --deadline); hours by default.
DEFAULT_DEADLINE = 24 * 3600
MAX_DEADLINE = 90 * 24 * 3600
# What becomes of a job's checkpoint/ directory: kept with its job directory on its host (a job
# resumes there after a restart), or also uploaded, so that a replica moved to another host
# resumes from it there (xwpy app register --checkpoints upload).
CHECKPOINTS = ("keep", "upload")
MAX_JSON_DEPTH = 64  # arrays and objects within one another; the protocol's messages need 5
MAX_CORES = 4096  # cores a host lends, or one replica occupies
MAX_PROCESSES = 4096  # processes one replica may run at once
MAX_MEMORY = 1 << 50  # bytes of memory a host lends
MAX_HELD = 4096  # replicas one host holds, heartbeats, aborts or releases at once
MAX_COMMAND = 64  # words of an app's command
MAX_INPUTS = 64  # inputs of one job
MAX_AFTER = 64  # jobs one job runs after (job graphs)
MAX_REPLICATION = 32  # replicas a job starts with, and its quorum
MAX_REPLICAS = 256  # replicas a job may ever have, and failures it may tolerate
MAX_PRIORITY = 1000  # a job's priority among its owner's jobs: -MAX_PRIORITY..MAX_PRIORITY, higher first
MAX_WAIT = 120.0  # seconds a work request may wait (long poll)
MAX_JOB_WAIT = 60  # seconds a client's question "is this job final?" may wait (long poll)
MAX_FEED_WAIT = 25  # seconds a dashboard's feed request may park (below proxies' and the guard's idle limits)
MAX_RUN_SECONDS = 7 * 24 * 3600  # a replica's wall-clock and CPU limits
MAX_HEARTBEAT = 3600.0  # seconds between a worker's heartbeats
MAX_LEASE = 86400.0  # seconds a lease may last
MAX_TIME = 2.0**37  # seconds since the epoch (the year 6325): a token's expiry


class ProtocolError(ValueError):
    """An inbound message is not what the protocol says. ``field`` is a dotted path to the culprit."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field or 'body'}: {message}")
        self.field = field or "body"
        self.message = message


Check = Callable[[Any, str], Any]


def _described(check: Check, schema: dict, records: tuple[type, ...] = ()) -> Check:
    """Give ``check`` its JSON Schema fragment (``check.schema``: what it accepts, for the API's
    OpenAPI document, :mod:`xwpy.server.api.openapi`) and the records it nests (``check.records``)."""
    check.schema, check.records = schema, records
    return check


def _pattern(regex: re.Pattern) -> str:
    """A Python regex matched whole (``fullmatch``), as a JSON Schema pattern (which searches)."""
    return f"^(?:{regex.pattern})$"


def loads(raw: bytes | str) -> Any:
    """Decode a JSON text from outside, raising ValueError for anything that is not JSON —
    including arrays and objects nested more than MAX_JSON_DEPTH deep (``[[[[...`` 100k levels
    would exhaust the decoder's recursion: a malformed message, not a crash). The limit is the
    same wherever it is checked, whatever the caller's stack depth."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if _too_deep(data, MAX_JSON_DEPTH):
        raise ValueError(f"JSON nested more than {MAX_JSON_DEPTH} deep")
    try:
        return json.loads(raw)
    except RecursionError:  # not reached when the check above holds; kept as the last line
        raise ValueError("JSON nested too deeply") from None


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_STEP = [0] * 256
for _c in b"[{":
    _STEP[_c] = 1
for _c in b"]}":
    _STEP[_c] = -1


def _too_deep(raw: bytes, limit: int) -> bool:
    """Does any bracket outside strings open more than ``limit`` deep? (As fast as json.loads:
    counted in C by chunks, stopping at the first chunk too deep.)"""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    outside = _JSON_STRING.sub(b"", raw) if b"\\" in raw else b"".join(raw.split(b'"')[0::2])
    brackets = outside.translate(None, _NOT_BRACKETS)
    depth = 0
    for i in range(0, len(brackets), 8192):
        steps = list(itertools.accumulate(map(_STEP.__getitem__, brackets[i:i + 8192]), initial=depth))
        if max(steps) > limit:
            return True
        depth = steps[-1]
    return False


# -- field checks ------------------------------------------------------------------------------


def _type_name(v: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(v), "number"
    )


def Int(lo: int = 0, hi: int = 2**63 - 1) -> Check:
    def check(v: Any, path: str) -> int:
        if type(v) is float and v.is_integer():  # 3.0 is an integer to JSON Schema (the API's document)
            v = int(v)
        if type(v) is not int:
            raise ProtocolError(path, f"expected an integer, got {_type_name(v)}")
        if not lo <= v <= hi:
            raise ProtocolError(path, f"must be between {lo} and {hi}, got {str(v)[:40]}")
        return v

    return _described(check, {"type": "integer", "minimum": lo, "maximum": hi})


def Float(lo: float, hi: float) -> Check:
    def check(v: Any, path: str) -> float:
        # An int is finite however large (isfinite would convert it to a float, and overflow).
        if type(v) is not int and (type(v) is not float or not math.isfinite(v)):
            raise ProtocolError(path, f"expected a number, got {_type_name(v)}")
        if not lo <= v <= hi:
            raise ProtocolError(path, f"must be between {lo} and {hi}, got {str(v)[:40]}")
        return float(v)

    return _described(check, {"type": "number", "minimum": lo, "maximum": hi})


def Bool() -> Check:
    def check(v: Any, path: str) -> bool:
        if type(v) is not bool:
            raise ProtocolError(path, f"expected true or false, got {_type_name(v)}")
        return v

    return _described(check, {"type": "boolean"})


def Str(max_len: int, *, pattern: re.Pattern | None = None, what: str = "", min_len: int = 0) -> Check:
    def check(v: Any, path: str) -> str:
        if type(v) is not str:
            raise ProtocolError(path, f"expected a string, got {_type_name(v)}")
        if not min_len <= len(v) <= max_len:
            raise ProtocolError(path, f"length must be between {min_len} and {max_len}, got {len(v)}")
        if "\x00" in v:
            raise ProtocolError(path, "must not contain NUL characters")
        if not v.isascii():
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:  # a lone surrogate ("\ud800"): JSON allows it, no database stores it
                raise ProtocolError(path, "must be valid Unicode (no lone surrogates)") from None
        if pattern is not None and not pattern.fullmatch(v):
            raise ProtocolError(path, f"not a valid {what or 'value'}: {v[:80]!r}")
        return v

    schema: dict = {"type": "string", "maxLength": max_len}
    if min_len:
        schema["minLength"] = min_len
    if pattern is not None:
        schema["pattern"] = _pattern(pattern)
    if what:
        schema["description"] = what
    return _described(check, schema)


def OneOf(*choices: str) -> Check:
    def check(v: Any, path: str) -> str:
        if type(v) is not str or v not in choices:
            raise ProtocolError(path, f"must be one of {', '.join(choices)}")
        return v

    return _described(check, {"type": "string", "enum": list(choices)})


def Optional(inner: Check) -> Check:
    def check(v: Any, path: str) -> Any:
        return None if v is None else inner(v, path)

    return _described(check, {"anyOf": [inner.schema, {"type": "null"}]}, inner.records)


def ListOf(inner: Check, max_len: int, *, min_len: int = 0) -> Check:
    def check(v: Any, path: str) -> tuple:
        if type(v) is not list:
            raise ProtocolError(path, f"expected an array, got {_type_name(v)}")
        if not min_len <= len(v) <= max_len:
            raise ProtocolError(path, f"must have between {min_len} and {max_len} items, got {len(v)}")
        return tuple(inner(x, f"{path}[{i}]") for i, x in enumerate(v))

    schema = {"type": "array", "items": inner.schema, "maxItems": max_len}
    if min_len:
        schema["minItems"] = min_len
    return _described(check, schema, inner.records)


def MapOf(inner: Check, max_len: int) -> Check:
    """An object from names (strings) to values ``inner`` accepts: counts by status, outcomes by id."""

    def check(v: Any, path: str) -> dict:
        if type(v) is not dict:
            raise ProtocolError(path, f"expected an object, got {_type_name(v)}")
        if len(v) > max_len:
            raise ProtocolError(path, f"must have at most {max_len} members, got {len(v)}")
        return {k: inner(x, f"{path}.{str(k)[:80]}") for k, x in v.items()}

    return _described(check, {"type": "object", "additionalProperties": inner.schema, "maxProperties": max_len},
                      inner.records)


def Json() -> Check:
    """Any JSON value (figures whose set is the coordinator's business: counters, health checks)."""

    def check(v: Any, path: str) -> Any:
        return v

    return _described(check, {})


def Base64(max_bytes: int) -> Check:
    def check(v: Any, path: str) -> bytes:
        if type(v) is not str:
            raise ProtocolError(path, f"expected a base64 string, got {_type_name(v)}")
        if len(v) > (max_bytes + 2) // 3 * 4:
            raise ProtocolError(path, f"more than {max_bytes} bytes")
        try:
            # (strict: only the alphabet, padding at the end; b64decode's validate=True checks the
            # same with a regular expression, at twice the cost)
            return binascii.a2b_base64(v.encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ProtocolError(path, "not valid base64") from None

    return _described(check, {"type": "string", "contentEncoding": "base64", "maxLength": (max_bytes + 2) // 3 * 4})


def Nested(cls: type) -> Check:
    def check(v: Any, path: str) -> Any:
        return parse(cls, v, path)

    return _described(check, {"$ref": f"#/components/schemas/{cls.__name__}"}, (cls,))


Name = Str(64, pattern=NAME_RE, what="name (letters, digits, '.', '_', '-'; 1-64 chars)", min_len=1)
Sha256 = Str(64, pattern=SHA256_RE, what="sha256 (64 lowercase hex digits)", min_len=64)
RequestKey = Str(64, pattern=re.compile(r"[A-Za-z0-9_-]+"), what="request key (8-64 letters, digits, '_', '-')",
                 min_len=8)
FileName = Str(128, pattern=FILE_RE, what="file name (no '/', not hidden)", min_len=1)
Member = Str(512, pattern=MEMBER_RE, what="file of a result archive (a relative path, no '..', not hidden)",
             min_len=1)
# A job another runs after: its id, or the key of a job submitted in the same request.
JobRef = Str(64, pattern=NAME_RE, what="job reference (a job id, or the key of a job in the same submission)",
             min_len=1)
Id = Int(1)
ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}")
Address = Str(42, pattern=ADDRESS_RE, what="account address (0x and 40 hexadecimal digits)", min_len=42)
MAX_PROOF = 32  # siblings in a payout proof (contracts/Distributor.vy: MAX_PROOF)
MAX_CLAIMS = 10_000  # an account's payout leaves in one answer


def field(check: Check, default: Any = attrs.NOTHING, **kw) -> Any:
    if isinstance(default, (list, dict)):
        raise TypeError("use a tuple or a factory for mutable defaults")
    return attrs.field(default=default, metadata={"check": check}, **kw)


# -- parsing and encoding ----------------------------------------------------------------------

M = TypeVar("M")


_FIELDS: dict[type, tuple[tuple, frozenset[str]]] = {}  # a record type's fields and their names


def parse(cls: type[M], obj: Any, path: str = "") -> M:
    """Build a message of type ``cls`` from a decoded JSON value, or raise ProtocolError."""
    if type(obj) is not dict:
        raise ProtocolError(path, f"expected an object, got {_type_name(obj)}")
    known = _FIELDS.get(cls)
    if known is None:
        fields = attrs.fields(cls)
        known = _FIELDS[cls] = (fields, frozenset(f.name for f in fields))
    fields, names = known
    for key in obj:
        if key not in names:
            raise ProtocolError(f"{path}.{str(key)[:80]}" if path else str(key)[:80], "unknown field")
    kwargs = {}
    for f in fields:
        where = f"{path}.{f.name}" if path else f.name
        if f.name in obj:
            kwargs[f.name] = f.metadata["check"](obj[f.name], where)
        elif f.default is attrs.NOTHING:
            raise ProtocolError(where, "missing")
    try:
        return cls(**kwargs)
    except ValueError as e:  # cross-field rules raised by a class's __attrs_post_init__
        if isinstance(e, ProtocolError):
            raise ProtocolError(f"{path}.{e.field}" if path else e.field, e.message) from None
        raise ProtocolError(path, str(e)) from None


def parse_query(cls: type[M], query: dict[str, str]) -> M:
    """Build a record of type ``cls`` from a query string's (or headers') text values: integers and
    numbers in decimal, booleans as ``1``/``true`` or ``0``/``false``. Names that are not fields
    are ignored (a page may add its own, such as a cache buster); each value is then checked as a
    JSON message's is."""
    obj = {}
    for f in attrs.fields(cls):
        raw = query.get(f.name)
        if raw is not None:
            obj[f.name] = _from_text(raw, f.metadata["check"].schema, f.name)
    return parse(cls, obj)


def _from_text(raw: str, schema: dict, name: str) -> Any:
    kind = schema.get("type") or next((s.get("type") for s in schema.get("anyOf", ()) if s.get("type") != "null"), None)
    if kind == "integer":
        if not re.fullmatch(r"-?[0-9]{1,19}", raw):
            raise ProtocolError(name, f"expected an integer, got {raw[:40]!r}")
        return int(raw)
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            raise ProtocolError(name, f"expected a number, got {raw[:40]!r}") from None
    if kind == "boolean":
        if raw.lower() in ("1", "true"):
            return True
        if raw.lower() in ("0", "false"):
            return False
        raise ProtocolError(name, f"expected 1 or 0, got {raw[:40]!r}")
    return raw


def schema_of(cls: type) -> dict:
    """A record's JSON Schema, from its fields' checks: an object with those fields and no other,
    those without a default required (what :func:`parse` accepts, bar cross-field rules)."""
    fields = attrs.fields(cls)
    out: dict = {"type": "object", "properties": {f.name: f.metadata["check"].schema for f in fields},
                 "additionalProperties": False}
    required = [f.name for f in fields if f.default is attrs.NOTHING]
    if required:
        out["required"] = required
    doc = cls.__dict__.get("__doc__")
    if doc:
        out["description"] = " ".join(doc.split())
    return out


def nested_records(cls: type) -> list[type]:
    """The records ``cls``'s fields nest, directly or not (``cls`` first)."""
    seen: list[type] = []
    todo = [cls]
    while todo:
        c = todo.pop()
        if c not in seen:
            seen.append(c)
            todo.extend(r for f in attrs.fields(c) for r in f.metadata["check"].records)
    return seen


_NAMES: dict[type, tuple[str, ...] | None] = {}  # a record type's field names; None: not a record


_PLAIN = frozenset((str, int, float, bool, type(None)))  # JSON values as they are


def encode(msg: Any) -> Any:
    """The JSON value of a message (bytes as base64, tuples as arrays)."""
    kind = type(msg)
    if kind in _PLAIN:
        return msg
    try:
        names = _NAMES[kind]
    except KeyError:  # once per type: attrs.has costs more than encoding a field
        names = _NAMES[kind] = tuple(f.name for f in attrs.fields(kind)) if attrs.has(kind) else None
    if names is not None:
        return {name: encode(getattr(msg, name)) for name in names}
    if isinstance(msg, (list, tuple)):
        return [encode(x) for x in msg]
    if isinstance(msg, dict):
        return {k if isinstance(k, str) else str(k): encode(v) for k, v in msg.items()}
    if isinstance(msg, bytes):
        return base64.b64encode(msg).decode("ascii")
    return msg


message = attrs.frozen(kw_only=True)


# -- users ---------------------------------------------------------------------------------------


@message
class NewUser:
    login: str = field(Name)
    role: str = field(OneOf(*ROLES), default="user")
    group: str = field(Str(64, pattern=GROUP_RE, what="group name"), default="")
    # When its token stops working (seconds since the epoch; None: never). A time in the past
    # makes an account whose token is already refused.
    expires_at: float | None = field(Optional(Float(0, MAX_TIME)), default=None)


@message
class NewToken:
    """A user's token rotated: the new one's expiry (None: never)."""

    expires_at: float | None = field(Optional(Float(0, MAX_TIME)), default=None)


@message
class UserInfo:
    id: int = field(Id)
    login: str = field(Name)
    role: str = field(OneOf(*ROLES))
    group: str = field(Str(64))
    token: str | None = field(Optional(Str(128)), default=None)
    disabled: bool = field(Bool(), default=False)
    expires_at: float | None = field(Optional(Float(0, MAX_TIME)), default=None)
    # GET /users/me only: what the grid can run for you now (the job slots of the live hosts that
    # are not suspended), the most jobs you may have in progress ([limits] max_jobs_per_user; None:
    # no limit) and how many you have: what a client sizes its work in flight by.
    slots: int | None = field(Optional(Int(0, 1 << 40)), default=None)
    max_jobs: int | None = field(Optional(Int(0, 1 << 40)), default=None)
    jobs_in_progress: int | None = field(Optional(Int(0, 1 << 40)), default=None)


# -- apps ------------------------------------------------------------------------------------------


@message
class Limits:
    wall_seconds: int = field(Int(1, MAX_RUN_SECONDS), default=3600)
    cpu_seconds: int = field(Int(1, MAX_RUN_SECONDS), default=3600)
    memory_bytes: int = field(Int(16 << 20, 1 << 40), default=1 << 30)
    output_bytes: int = field(Int(1, 1 << 34), default=256 << 20)
    processes: int = field(Int(1, MAX_PROCESSES), default=64)
    cores: int = field(Int(1, MAX_CORES), default=1)  # the host's cores a replica occupies (packing, pinning)


VALIDATOR_RE = re.compile(r"quorum|verifier:[A-Za-z0-9_.-]{1,64}")


@message
class ImageSpec:
    """An app's container image: the archive (data, by sha256) and what its config says to run."""

    sha256: str = field(Sha256)
    id: str = field(Str(80))  # the config's digest: the worker's cache key
    platform: str = field(Str(40), default="any")
    env: tuple[str, ...] = field(ListOf(Str(MAX_ARG_LEN), 256), default=())
    workdir: str = field(Str(1024), default="")
    entrypoint: tuple[str, ...] = field(ListOf(Str(MAX_ARG_LEN), 64), default=())
    cmd: tuple[str, ...] = field(ListOf(Str(MAX_ARG_LEN), 64), default=())
    files: int = field(Int(0), default=0)
    unpacked_bytes: int = field(Int(0), default=0)


@message
class NewApp:
    name: str = field(Name)
    command: tuple[str, ...] = field(ListOf(Str(MAX_ARG_LEN), MAX_COMMAND, min_len=1))
    bundle: str | None = field(Optional(Sha256), default=None)
    access: str = field(OneOf(*ACCESS), default="public")
    limits: Limits = field(Nested(Limits), factory=Limits)
    validator: str = field(Str(80, pattern=VALIDATOR_RE, what="validator ('quorum' or 'verifier:NAME')"), default="quorum")
    replication: int = field(Int(1, MAX_REPLICATION), default=3)
    quorum: int = field(Int(1, MAX_REPLICATION), default=2)
    adaptive: bool = field(Bool(), default=False)  # trusted hosts' results may stand alone
    image: str | None = field(Optional(Sha256), default=None)  # an image archive uploaded as data
    platform: str = field(Str(40, pattern=PLATFORM_RE, what="platform (OS-ARCH or 'any')"), default="any")
    network: bool = field(Bool(), default=False)  # its jobs need the network (workers that allow it)
    deadline: int = field(Int(1, MAX_DEADLINE), default=DEFAULT_DEADLINE)  # seconds a replica may take, see above
    checkpoints: str = field(OneOf(*CHECKPOINTS), default="keep")  # see above
    # Tolerant validation (xwpy.compare): results equivalent by this comparator agree (None:
    # identical archives only), with its tolerances; homogeneous redundancy: a job's replicas all
    # on hosts of one platform.
    comparator: str | None = field(Optional(Name), default=None)
    rtol: float | None = field(Optional(Float(0, 1)), default=None)
    atol: float | None = field(Optional(Float(0, 1e300)), default=None)
    homogeneous: bool = field(Bool(), default=False)

    def __attrs_post_init__(self) -> None:
        if (self.rtol is not None or self.atol is not None) and self.comparator is None:
            raise ProtocolError("rtol", "tolerances need a comparator (comparator: numeric)")
        if self.quorum > self.replication:
            raise ProtocolError("quorum", f"must not exceed replication ({self.replication})")
        if self.image is not None and self.bundle is not None:
            raise ProtocolError("bundle", "an image app brings its own files: put them in the image")


@message
class VersionInfo:
    platform: str = field(Str(40))
    bundle: str | None = field(Optional(Sha256), default=None)
    image: ImageSpec | None = field(Optional(Nested(ImageSpec)), default=None)


@message
class AppInfo(NewApp):
    id: int = field(Id)
    owner: str = field(Name)
    image_spec: ImageSpec | None = field(Optional(Nested(ImageSpec)), default=None)
    versions: tuple[VersionInfo, ...] = field(ListOf(Nested(VersionInfo), 64), default=())


@message
class NewVersion:
    """Another build of an app, for one platform: a bundle or an image."""

    platform: str = field(Str(40, pattern=PLATFORM_RE, what="platform (OS-ARCH or 'any')"))
    bundle: str | None = field(Optional(Sha256), default=None)
    image: str | None = field(Optional(Sha256), default=None)

    def __attrs_post_init__(self) -> None:
        if (self.bundle is None) == (self.image is None):
            raise ProtocolError("bundle", "a version has a bundle or an image (one of them)")



# -- data ------------------------------------------------------------------------------------------


@message
class DataInfo:
    sha256: str = field(Sha256)
    size: int = field(Int(0))
    name: str = field(Str(128), default="")
    access: str = field(OneOf(*ACCESS), default="private")
    owner: str = field(Str(64), default="")


@message
class NewUpload:
    """Open an upload session (``POST /uploads``): the file's sha256 and size; for a user, how the
    data will be shared and named (as ``PUT /data``'s query). Hosts upload results only."""

    sha256: str = field(Sha256)
    size: int = field(Int(0))
    access: str = field(OneOf(*ACCESS), default="private")
    name: str = field(Str(128), default="")

    def __attrs_post_init__(self) -> None:
        if self.name and not FILE_RE.fullmatch(self.name):
            raise ProtocolError("name", "not a valid file name")


@message
class UploadState:
    """Where an upload session is: ``offset`` bytes of ``size`` stored. Once ``complete`` the data
    is stored (checked against its sha256) and ``data`` describes it (for a user's upload)."""

    upload: str = field(Str(64))
    sha256: str = field(Sha256)
    size: int = field(Int(0))
    offset: int = field(Int(0))
    complete: bool = field(Bool(), default=False)
    data: DataInfo | None = field(Optional(Nested(DataInfo)), default=None)


# -- jobs ------------------------------------------------------------------------------------------


@message
class InputRef:
    name: str = field(FileName)
    sha256: str = field(Sha256)
    size: int | None = field(Optional(Int(0, 1 << 50)), default=None)  # bytes (in assignments: the worker's disk budget)
    # Stage this file of the archive ``sha256`` as ``name``, not the archive (a parent's result).
    member: str | None = field(Optional(Member), default=None)


@message
class ResultInput:
    """A file of the certified result of a job this one runs after, staged as ``name``: the job
    waits until that job is certified (job graphs). ``job``: its id, or the key of a job of the
    same submission; ``member``: which file of its result archive (its standard output by default)."""

    name: str = field(FileName)
    job: str = field(JobRef)
    member: str = field(Member, default="stdout")


@message
class JobSpec:
    app: str = field(Name)
    args: tuple[str, ...] = field(ListOf(Str(MAX_ARG_LEN), MAX_ARGS), default=())
    inputs: tuple[InputRef, ...] = field(ListOf(Nested(InputRef), MAX_INPUTS), default=())
    replication: int | None = field(Optional(Int(1, MAX_REPLICATION)), default=None)
    quorum: int | None = field(Optional(Int(1, MAX_REPLICATION)), default=None)
    max_replicas: int | None = field(Optional(Int(1, MAX_REPLICAS)), default=None)
    max_errors: int | None = field(Optional(Int(1, MAX_REPLICAS)), default=None)
    # Job graphs: this job's name within its submission (for ``after`` and ``results`` there), the
    # jobs it runs after (ids, or keys of the same submission: it starts once they are all
    # certified, and is cancelled if one is not), and files of their results as inputs (it runs
    # after those jobs too).
    key: str | None = field(Optional(Name), default=None)
    after: tuple[str, ...] = field(ListOf(JobRef, MAX_AFTER), default=())
    results: tuple[ResultInput, ...] = field(ListOf(Nested(ResultInput), MAX_INPUTS), default=())
    # Among its owner's jobs, higher first (then the oldest); None: the submission's priority.
    priority: int | None = field(Optional(Int(-MAX_PRIORITY, MAX_PRIORITY)), default=None)

    def __attrs_post_init__(self) -> None:
        names = [i.name for i in self.inputs] + [r.name for r in self.results]
        if len(set(names)) != len(names):
            raise ProtocolError("inputs", "input names must be distinct")
        if self.key is not None and self.key.isdigit():
            raise ProtocolError("key", "a job's key must not be a number (numbers name job ids)")


@message
class SubmitJobs:
    jobs: tuple[JobSpec, ...] = field(ListOf(Nested(JobSpec), MAX_JOBS_PER_SUBMIT, min_len=1))
    batch: str | None = field(Optional(Name), default=None)
    # Chosen by the client, once per submission: sent again (the answer was lost), the same
    # submission is answered with the jobs it made the first time instead of new ones.
    request: str | None = field(Optional(RequestKey), default=None)
    priority: int = field(Int(-MAX_PRIORITY, MAX_PRIORITY), default=0)  # of its jobs that do not give theirs


@message
class CancelJobs:
    ids: tuple[int, ...] = field(ListOf(Id, MAX_JOBS_PER_SUBMIT), default=())
    batch: str | None = field(Optional(Name), default=None)

    def __attrs_post_init__(self) -> None:
        if not self.ids and self.batch is None:
            raise ProtocolError("ids", "give job ids or a batch")


@message
class WaitJobs:
    """Which of these jobs are final: answered as soon as one is (a client's futures, all at once)."""

    ids: tuple[int, ...] = field(ListOf(Id, MAX_JOBS_PER_SUBMIT, min_len=1))
    wait: int = field(Int(0, MAX_JOB_WAIT), default=0)


# -- workers ---------------------------------------------------------------------------------------


@message
class RegisterHost:
    name: str = field(Str(64, min_len=1))
    cpus: int = field(Int(1, MAX_CORES))  # the cores its volunteer lends
    memory: int = field(Int(0, MAX_MEMORY))  # the memory its volunteer lends
    os: str = field(Str(64), default="")
    platform: str | None = field(Optional(Str(40, pattern=PLATFORM_RE, what="platform (OS-ARCH)")), default=None)
    images: bool = field(Bool(), default=False)  # it runs image apps (it has a sandbox for them)
    network: bool = field(Bool(), default=False)  # it gives the network to apps that need it


@message
class HostRegistered:
    host_id: int = field(Id)
    token: str = field(Str(128))
    heartbeat_seconds: float = field(Float(0.01, MAX_HEARTBEAT))
    lease_seconds: float = field(Float(0.01, MAX_LEASE))
    direct: bool = field(Bool(), default=False)  # as WorkerTiming's


@message
class Hello:
    """A (re)started worker: whatever it held before is gone, but for the replicas it kept (``held``).
    It says what it offers now (its volunteer may have changed it since it registered)."""

    cpus: int | None = field(Optional(Int(1, MAX_CORES)), default=None)
    memory: int | None = field(Optional(Int(0, MAX_MEMORY)), default=None)
    platform: str | None = field(Optional(Str(40, pattern=PLATFORM_RE, what="platform (OS-ARCH)")), default=None)
    images: bool | None = field(Optional(Bool()), default=None)
    network: bool | None = field(Optional(Bool()), default=None)  # it gives the network to apps that need it
    disk: int | None = field(Optional(Int(0, 1 << 60)), default=None)  # bytes of inputs it holds for its jobs (0: no limit)
    # The replicas whose job directories it kept and resumes, or whose finished results it still has
    # to report (xwpy.worker.outbox) (None, an earlier worker: none).
    held: tuple[int, ...] | None = field(Optional(ListOf(Id, 4096)), default=None)


@message
class WorkerTiming:
    heartbeat_seconds: float = field(Float(0.01, MAX_HEARTBEAT))
    lease_seconds: float = field(Float(0.01, MAX_LEASE))
    # The site's blobs are in an object store ([blobs] backend = "s3"): a worker moves its replicas'
    # inputs and results directly, with the URLs POST /work/blob-url gives it (BlobUrl).
    direct: bool = field(Bool(), default=False)


@message
class WorkRequest:
    slots: int = field(Int(1, MAX_SLOTS), default=1)
    wait: float = field(Float(0, MAX_WAIT), default=0.0)
    # The replicas it ran to the end whose results it still has to report (xwpy.worker.outbox):
    # they hold none of its cores or memory any more.
    finished: tuple[int, ...] = field(ListOf(Id, MAX_HELD), default=())


@message
class Assignment:
    replica_id: int = field(Id)
    job_id: int = field(Id)
    command: tuple[str, ...] = field(ListOf(Str(MAX_ARG_LEN), MAX_COMMAND, min_len=1))
    args: tuple[str, ...] = field(ListOf(Str(MAX_ARG_LEN), MAX_ARGS))
    inputs: tuple[InputRef, ...] = field(ListOf(Nested(InputRef), MAX_INPUTS))
    bundle: str | None = field(Optional(Sha256))
    limits: Limits = field(Nested(Limits))
    lease_expires: float = field(Float(0, 1e12))
    image: ImageSpec | None = field(Optional(Nested(ImageSpec)), default=None)
    network: bool = field(Bool(), default=False)  # the app needs the network
    # When the coordinator stops waiting for this replica (its clock, like lease_expires): until
    # then a worker that was silent may come back with it, and its result counts.
    deadline: float = field(Float(0, 1e12), default=0.0)
    checkpoints: str = field(OneOf(*CHECKPOINTS), default="keep")  # "upload": send its checkpoints (Alive)
    checkpoint: str | None = field(Optional(Sha256), default=None)  # resume from this checkpoint archive


@message
class WorkReply:
    replicas: tuple[Assignment, ...] = field(ListOf(Nested(Assignment), MAX_SLOTS))


@message
class Progress:
    replica_id: int = field(Id)
    done: float = field(Float(0, 1))  # the fraction of its work the job says it has done


@message
class Checkpoint:
    replica_id: int = field(Id)
    sha256: str = field(Sha256)  # its checkpoint/ directory as a canonical archive, uploaded first


@message
class Alive:
    held: tuple[int, ...] = field(ListOf(Id, MAX_HELD), default=())
    progress: tuple[Progress, ...] = field(ListOf(Nested(Progress), MAX_HELD), default=())
    checkpoints: tuple[Checkpoint, ...] = field(ListOf(Nested(Checkpoint), MAX_HELD), default=())
    suspended: str = field(Str(200), default="")  # why its jobs are suspended ("": they are not)
    finished: tuple[int, ...] = field(ListOf(Id, MAX_HELD), default=())  # (as WorkRequest.finished)


@message
class AliveReply:
    abort: tuple[int, ...] = field(ListOf(Id, MAX_HELD))
    heartbeat_seconds: float = field(Float(0.01, MAX_HEARTBEAT))
    # The host's credit so far: run seconds of the work it certified (server/scheduler/credit.py).
    credit: float = field(Float(0, 1e18), default=0.0)


@message
class ResultReport:
    replica_id: int = field(Id)
    exit_code: int | None = field(Optional(Int(-256, 255)), default=None)
    result_sha256: str | None = field(Optional(Sha256), default=None)
    inline: bytes | None = field(Optional(Base64(MAX_INLINE_RESULT)), default=None)
    stderr_tail: str = field(Str(STDERR_TAIL), default="")
    error: str = field(Str(1024), default="")

    def __attrs_post_init__(self) -> None:
        if self.inline is not None and self.result_sha256 is None:
            raise ProtocolError("result_sha256", "required with an inline result")

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.error and self.result_sha256 is not None


@message
class Results:
    results: tuple[ResultReport, ...] = field(ListOf(Nested(ResultReport), MAX_RESULTS_PER_REPORT, min_len=1))
    # Ask for more work in the same round trip: the reply then also carries "replicas".
    next: WorkRequest | None = field(Optional(Nested(WorkRequest)), default=None)


@message
class Release:
    replicas: tuple[int, ...] = field(ListOf(Id, MAX_HELD))


# -- replies ---------------------------------------------------------------------------------------
# What the coordinator answers: the API's OpenAPI document describes each route's reply with one
# of these, and the handlers build them (a field added to one is a field the document shows).

Time = Float(0, 1e12)  # seconds since the epoch
Count = Int(0)
Text = Str(1 << 20)
Status = Str(32)  # a job's, a replica's, a task's status (xwpy.lifecycle)


@message
class Ping:
    service: str = field(Str(16))
    version: str = field(Str(64))
    api: str = field(Str(8))


@message
class UserList:
    users: tuple[UserInfo, ...] = field(ListOf(Nested(UserInfo), 1 << 20))


@message
class AppList:
    apps: tuple[AppInfo, ...] = field(ListOf(Nested(AppInfo), 1 << 20))


@message
class DataList:
    data: tuple[DataInfo, ...] = field(ListOf(Nested(DataInfo), 10_000))


@message
class Submitted:
    ids: tuple[int, ...] = field(ListOf(Id, MAX_JOBS_PER_SUBMIT))
    batch: str | None = field(Optional(Name))


@message
class JobsCancelled:
    cancelled: tuple[int, ...] = field(ListOf(Id, 1 << 30))


@message
class Deleted:
    """What a DELETE removed: jobs (with their replicas), data rows, and blobs gone from the
    coordinator's store because nothing referred to them any more."""

    jobs: int = field(Count, default=0)
    data: int = field(Count, default=0)
    blobs: int = field(Count, default=0)


@message
class UploadCancelled:
    cancelled: str = field(Str(64))


@message
class ReplicaInfo:
    id: int = field(Id)
    host_id: int = field(Id)
    status: str = field(Status)
    validation: str = field(Status)
    verdict: str | None = field(Optional(Status))
    assigned_at: float = field(Time)
    started_at: float | None = field(Optional(Time))
    finished_at: float | None = field(Optional(Time))
    exit_code: int | None = field(Optional(Int(-(2**31), 2**31)))
    result_sha256: str | None = field(Optional(Sha256))
    stderr_tail: str | None = field(Optional(Text))
    error: str | None = field(Optional(Text))
    deadline: float | None = field(Optional(Time))
    covers: int | None = field(Optional(Id))  # the silent replica it was started beside
    checkpoint: str | None = field(Optional(Sha256))  # its latest checkpoint
    resume: str | None = field(Optional(Sha256))  # the checkpoint it started from
    credit: float | None = field(Optional(Float(0, 1e18)), default=None)  # earned by certifying the job


@message
class JobInfo:
    """A job. ``why``: for a job that is not final, one line on what it waits for ("" when it is
    simply running); ``stalled``: no host alive may take it now; ``progress``: the fraction done its
    furthest running replica reported; ``replicas``: only when one job is asked for."""

    id: int = field(Id)
    app: str = field(Name)
    owner: str = field(Str(64))
    batch: str | None = field(Optional(Name))
    status: str = field(Status)
    args: tuple[str, ...] = field(ListOf(Str(MAX_ARG_LEN), MAX_ARGS))
    inputs: tuple[InputRef, ...] = field(ListOf(Nested(InputRef), MAX_INPUTS))
    replication: int = field(Int(1, MAX_REPLICATION))
    quorum: int = field(Int(1, MAX_REPLICATION))
    max_replicas: int = field(Int(1, MAX_REPLICAS))
    max_errors: int = field(Int(1, MAX_REPLICAS))
    result_sha256: str | None = field(Optional(Sha256))
    result_size: int | None = field(Optional(Count))
    error: str | None = field(Optional(Text))
    submitted_at: float = field(Time)
    started_at: float | None = field(Optional(Time))
    finished_at: float | None = field(Optional(Time))
    why: str = field(Text, default="")
    stalled: bool = field(Bool(), default=False)
    progress: float | None = field(Optional(Float(0, 1)), default=None)
    replicas: tuple[ReplicaInfo, ...] | None = field(Optional(ListOf(Nested(ReplicaInfo), MAX_REPLICAS)), default=None)
    # Job graphs: the jobs it runs after, those of them not certified yet, its inputs from their results.
    after: tuple[int, ...] = field(ListOf(Id, MAX_AFTER + MAX_INPUTS), default=())
    waiting_on: tuple[int, ...] = field(ListOf(Id, MAX_AFTER + MAX_INPUTS), default=())
    results: tuple[ResultInput, ...] = field(ListOf(Nested(ResultInput), MAX_INPUTS), default=())
    priority: int = field(Int(-MAX_PRIORITY, MAX_PRIORITY), default=0)


@message
class FinalJob:
    id: int = field(Id)
    status: str = field(Status)
    result_sha256: str | None = field(Optional(Sha256))  # the certified result's, to download at once
    # The certified result archive itself, when small (kept in the catalog) and within the
    # answer's MAX_INLINE_FINALS: no download needed. Check it against result_sha256.
    result: bytes | None = field(Optional(Base64(MAX_INLINE_RESULT)), default=None)


@message
class FinalJobs:
    final: tuple[FinalJob, ...] = field(ListOf(Nested(FinalJob), MAX_JOBS_PER_SUBMIT))
    # The ids asked for that the caller cannot see: deleted, or another user's (one answer for both).
    missing: tuple[int, ...] = field(ListOf(Id, MAX_JOBS_PER_SUBMIT), default=())


@message
class JobList:
    jobs: tuple[JobInfo, ...] = field(ListOf(Nested(JobInfo), 1000))


@message
class JobCounts:
    counts: dict = field(MapOf(Count, 64))


@message
class HostInfo:
    """A host: what it lends now (its last hello), else what it said when it registered."""

    id: int = field(Id)
    name: str = field(Str(64))
    owner: str = field(Str(64))
    cpus: int = field(Count)
    memory: int = field(Count)
    os: str = field(Str(64))
    platform: str | None = field(Optional(Str(40)))
    images: bool = field(Bool())
    network: bool = field(Bool())
    disk: int | None = field(Optional(Count))  # bytes of inputs it holds for its jobs (0: no limit)
    last_alive: float | None = field(Optional(Time))
    alive: bool = field(Bool())
    running: int = field(Count)
    reputation: float = field(Float(-1e12, 1e12))
    suspended: str = field(Str(200))
    done: int = field(Count)  # valid results it gave
    revoked: bool = field(Bool(), default=False)  # its token is refused (xwpy hosts revoke)
    # Run seconds of the work it certified (server/scheduler/credit.py), and its volunteer's over all hosts.
    credit: float = field(Float(0, 1e18), default=0.0)
    owner_credit: float = field(Float(0, 1e18), default=0.0)
    payout_address: str | None = field(Optional(Address), default=None)  # where its pool share is paid
    # Base units of RLC (decimal string) payout epochs built while it had no payout address owe it:
    # paid in the first epoch after it gives one.
    owed: str = field(Str(80), default="0")


@message
class HostRevoked:
    id: int = field(Id)
    name: str = field(Str(64))
    revoked: bool = field(Bool())


@message
class HostList:
    hosts: tuple[HostInfo, ...] = field(ListOf(Nested(HostInfo), 1 << 20))


@message
class ResultsReply:
    """What became of each result (by replica id); ``replicas``: the work asked for with ``next``."""

    outcome: dict = field(MapOf(Str(32), MAX_RESULTS_PER_REPORT))
    replicas: tuple[Assignment, ...] | None = field(Optional(ListOf(Nested(Assignment), MAX_SLOTS)), default=None)


MAX_URL = 8192  # a presigned URL's length at most
BLOB_METHODS = ("GET", "PUT")


@message
class BlobUrlRequest:
    """A presigned URL for one blob of one replica the host holds: GET an input (its bundle, image,
    checkpoint), or PUT its result (``size`` bytes hashing to ``sha256``; the store refuses others)."""

    replica_id: int = field(Id)
    sha256: str = field(Sha256)
    method: str = field(OneOf(*BLOB_METHODS), default="GET")
    size: int | None = field(Optional(Int(0, 1 << 50)), default=None)


@message
class BlobUrl:
    """Where to send the request, with which headers, until when (the coordinator's clock, as a
    lease's). ``stored``: a PUT need not be sent (the store holds that blob already; url empty)."""

    url: str = field(Str(MAX_URL))
    headers: dict = field(MapOf(Str(MAX_URL), 8), default=attrs.Factory(dict))
    expires: float = field(Float(0, 1e12), default=0.0)
    stored: bool = field(Bool(), default=False)


@message
class Released:
    released: tuple[int, ...] = field(ListOf(Id, MAX_HELD))


@message
class ChainTaskRow:
    id: int = field(Id)  # the oracle's row: ?after= pages on it
    task: int = field(Count)
    app: str = field(Str(64))
    status: str = field(Status)
    requester: str = field(Str(64))
    price: str = field(Str(80))  # wei, as a decimal string (beyond JSON's exact integers)
    deadline: int = field(Int(0))
    jobs: tuple[int, ...] = field(ListOf(Id, MAX_JOBS_PER_SUBMIT))
    digest: str | None = field(Optional(Str(80)))
    commit_tx: str | None = field(Optional(Str(80)))
    commit_block: int | None = field(Optional(Count))
    error: str | None = field(Optional(Text))


@message
class PayoutAddress:
    """Where a host's share of the pool is paid from the next epoch on (null: nowhere)."""

    address: str | None = field(Optional(Address))


@message
class HostPayout:
    id: int = field(Id)
    payout_address: str | None = field(Optional(Address))


@message
class PayoutClaim:
    """One leaf of a committed epoch: what Distributor.claim takes."""

    epoch: int = field(Id)
    index: int = field(Count)
    amount: str = field(Str(80))  # base units of RLC, as a decimal string
    proof: tuple[str, ...] = field(ListOf(Str(66, pattern=re.compile(r"0x[0-9a-f]{64}"), what="32-byte hex"),
                                          MAX_PROOF))


@message
class PayoutClaims:
    """An account's leaves in the distributor's committed epochs, and where to claim them."""

    chain_id: int = field(Count)
    distributor: str = field(Address)
    token: str = field(Address)
    account: str = field(Address)
    claims: tuple[PayoutClaim, ...] = field(ListOf(Nested(PayoutClaim), MAX_CLAIMS))


@message
class ChainTasks:
    tasks: tuple[ChainTaskRow, ...] = field(ListOf(Nested(ChainTaskRow), 1000))


@message
class ChainTaskInfo:
    task: int = field(Count)
    chain_id: int = field(Count)
    hub: str = field(Str(64))
    app: str = field(Str(64))
    status: str = field(Status)
    error: str | None = field(Optional(Text))
    jobs: tuple[int, ...] = field(ListOf(Id, MAX_JOBS_PER_SUBMIT))
    job_statuses: dict = field(MapOf(Count, 64))
    state: Any = field(Json())  # the oracle's own record of where the task is
    digest: str | None = field(Optional(Str(80)))
    commit_tx: str | None = field(Optional(Str(80)))
    commit_block: int | None = field(Optional(Count))


@message
class HealthCheck:
    ok: bool = field(Bool())
    detail: str = field(Text)


@message
class Health:
    status: str = field(OneOf("ok", "failing", "standby"))  # standby: another coordinator leads
    failed: tuple[str, ...] = field(ListOf(Str(64), 64))
    checks: dict = field(MapOf(Nested(HealthCheck), 64))


@message
class DashboardSite:
    login: str = field(Name)
    role: str = field(OneOf(*ROLES))
    admin: bool = field(Bool())
    oracle: bool = field(Bool())
    sample_seconds: float = field(Float(0, 1e6))
    version: str = field(Str(64))


@message
class Feed:
    version: int = field(Int(-1))


@message
class BatchCounts:
    batch: str = field(Name)
    counts: dict = field(MapOf(Count, 64))
    total: int = field(Count)
    final: int = field(Count)


@message
class DashboardJobs:
    counts: dict = field(MapOf(Count, 64))
    batches: tuple[BatchCounts, ...] = field(ListOf(Nested(BatchCounts), 1000))
    jobs: tuple[JobInfo, ...] = field(ListOf(Nested(JobInfo), 1000))


@message
class RatePoint:
    t: float = field(Time)
    certified_per_minute: float = field(Float(0, 1e15))
    reported_per_minute: float = field(Float(0, 1e15))
    queued: int = field(Count)
    running: int = field(Count)


@message
class Throughput:
    sample_seconds: float = field(Float(0, 1e6))
    points: tuple[RatePoint, ...] = field(ListOf(Nested(RatePoint), 1 << 20))


# -- query strings and headers ---------------------------------------------------------------------
# Parsed from text by parse_query (a name a record lacks is ignored).

Seen = Int(0, 2**62)  # the feed's version a dashboard page was woken with (xwpy.server.fresh)


@message
class DataQuery:
    """How stored data is shared and named (``PUT /data``)."""

    access: str = field(OneOf(*ACCESS), default="private")
    name: str = field(Str(128, pattern=re.compile(f"|{FILE_RE.pattern}"), what="file name (no '/', not hidden)"),
                      default="")


@message
class Limit:
    limit: int = field(Int(1, 10_000), default=1000)


@message
class JobsQuery:
    """Jobs in submission order from ``after`` (a job id); ``newest``: the latest first. ``all``:
    every owner's, for an admin (and every owner's jobs of a ``batch``)."""

    status: str | None = field(Optional(OneOf(*JOB_STATUSES)), default=None)
    batch: str | None = field(Optional(Name), default=None)
    all: bool = field(Bool(), default=False)
    newest: bool = field(Bool(), default=False)
    after: int = field(Int(0, 2**62), default=0)
    limit: int = field(Int(1, 1000), default=100)


@message
class SummaryQuery:
    batch: str | None = field(Optional(Name), default=None)
    all: bool = field(Bool(), default=False)


@message
class JobWait:
    """``wait``: answer when the job is final, or after this many seconds."""

    wait: int = field(Int(0, MAX_JOB_WAIT), default=0)


@message
class ChainQuery:
    after: int = field(Int(0, 2**62), default=0)
    limit: int = field(Int(1, 1000), default=100)


@message
class FeedQuery:
    """Answer with the jobs' change counter once it is not ``after``, or after ``wait`` seconds."""

    after: int = field(Int(-1, 2**62), default=-1)
    wait: int = field(Int(0, MAX_FEED_WAIT), default=0)


@message
class SeenQuery:
    all: bool = field(Bool(), default=False)
    seen: int = field(Seen, default=0)


@message
class UploadOffset:
    """The ``Upload-Offset`` header of a chunk: where in the file its bytes go."""

    upload_offset: int = field(Int(0, 2**62))
