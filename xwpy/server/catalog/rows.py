"""Plain records handed out by the catalog components (never live database rows)."""

from __future__ import annotations

from dataclasses import dataclass, field

from xwpy.lifecycle import JobStatus, ReplicaStatus, Validation
from xwpy.protocol import DEFAULT_DEADLINE


@dataclass(frozen=True, slots=True)
class User:
    id: int
    login: str
    role: str
    group: str
    token_hash: str
    disabled: bool = False
    token_expires: float | None = None  # when its token stops working (None: never)

    @property
    def admin(self) -> bool:
        return self.role == "admin"


@dataclass(frozen=True, slots=True)
class AppVersion:
    platform: str  # platforms.ANY or OS-ARCH
    bundle: str | None = None
    image: dict | None = None  # protocol.ImageSpec, encoded

    @property
    def runs_on(self) -> str:
        """The platform it needs: an image's own (its userland is built for one), else its own."""
        return self.image.get("platform", self.platform) if self.image else self.platform


@dataclass(frozen=True, slots=True)
class App:
    id: int
    name: str
    owner_id: int
    owner: str
    access: str
    bundle: str | None
    command: tuple[str, ...]
    limits: dict
    validator: str
    replication: int
    quorum: int
    adaptive: bool = False
    network: bool = False  # its jobs need the network
    image: dict | None = None  # protocol.ImageSpec, encoded
    platform: str = "any"  # of the bundle or image above
    extra: tuple[AppVersion, ...] = ()  # versions for other platforms
    deadline: int = DEFAULT_DEADLINE  # seconds a replica may take (protocol.NewApp.deadline)
    checkpoints: str = "keep"  # keep | upload (protocol.CHECKPOINTS)
    comparator: str | None = None  # xwpy.compare: results equivalent without being identical (None: bitwise)
    compare: dict | None = None  # the comparator's parameters (rtol, atol)
    homogeneous: bool = False  # a job's replicas on hosts of one platform only

    @property
    def versions(self) -> tuple[AppVersion, ...]:
        return (AppVersion(self.platform, self.bundle, self.image), *self.extra)

    @property
    def verifier(self) -> str | None:
        return self.validator.split(":", 1)[1] if self.validator.startswith("verifier:") else None


@dataclass(frozen=True, slots=True)
class Data:
    sha256: str
    size: int
    owner_id: int
    owner: str
    access: str
    name: str
    group: str = ""


@dataclass(frozen=True, slots=True)
class Host:
    id: int
    owner_id: int
    name: str
    token_hash: str
    cpus: int
    memory: int
    os: str
    registered_at: float
    last_alive: float
    reputation: int
    owner: str = ""
    group: str = ""
    platform: str = ""
    images: bool = False
    network: bool = False
    disk: int = 0
    revoked_at: float | None = None  # its token was revoked then (None: it is not)
    credit: float = 0.0  # earned by the work it certified (scheduler/credit.py)
    payout_address: str | None = None  # where its share of the pool is paid (checksummed)


@dataclass(frozen=True, slots=True)
class Replica:
    id: int
    job_id: int
    host_id: int
    status: str
    validation: str
    verdict: str | None
    lease_expires: float
    assigned_at: float
    started_at: float | None
    finished_at: float | None
    exit_code: int | None
    result_sha256: str | None
    result_size: int | None
    stderr_tail: str | None
    error: str | None
    deadline: float | None = None  # see scheduler/silence.py
    covers: int | None = None  # the silent replica it was started beside
    checkpoint: str | None = None  # its latest checkpoint uploaded
    resume: str | None = None  # the checkpoint it started from
    credit: float | None = None  # what it earned by certifying its job (scheduler/credit.py)


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    app: str
    owner_id: int
    owner: str
    batch: str | None
    args: list
    inputs: list
    status: str
    replication: int
    quorum: int
    max_replicas: int
    max_errors: int
    result_sha256: str | None
    result_size: int | None
    error: str | None
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    replicas: list[Replica] = field(default_factory=list)
    after: list | None = None  # the jobs it runs after (job graphs)
    priority: int = 0


@dataclass(frozen=True, slots=True)
class ActiveJob:
    """A job not yet final, as the scheduler rebuilds its state from it."""

    id: int
    owner_id: int
    app_id: int
    status: JobStatus
    replication: int
    quorum: int
    max_replicas: int
    max_errors: int
    memory: int
    visibility: str
    vis_group: str
    adaptive: bool
    solo: bool
    disk: int
    after: tuple[int, ...] = ()  # the jobs it runs after (job graphs)
    priority: int = 0
    batch: str | None = None  # (the counts by batch kept in memory: xwpy.server.reads)


@dataclass(frozen=True, slots=True)
class ActiveReplica:
    """A replica of an active job, as the scheduler rebuilds its state from it."""

    id: int
    job_id: int
    host_id: int
    status: ReplicaStatus
    lease_expires: float
    digest: str | None
    size: int
    verdict: str | None
    validation: Validation
    deadline: float | None = None  # the scheduler's fields of the same names (ReplicaState)
    covers: int | None = None
    checkpoint: str | None = None
    resume: str | None = None
    origin: int | None = None
    assigned_at: float = 0.0  # with finished_at: its run seconds, the credit it may earn
    finished_at: float | None = None
    equivalent: tuple[str, ...] = ()  # earlier results of its job its app's comparator found equivalent
