"""The catalog of the first xwpy (8bfe718, "Grid core, first slice"), kept as it was made: its schema
copied verbatim from that commit, and how it created a catalog (``create_all`` and a ``meta`` row,
no migrations). Then the oracle's tables, verbatim from b560c23, as the next xwpy added them to
such a catalog when it opened it. tests/grid/test_upgrade.py fills one and upgrades it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

SCHEMA_VERSION = 1

# -- 8bfe718:xwpy/server/catalog/schema.py ------------------------------------------------------------
metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("login", String(64), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(8), nullable=False),  # admin | user | worker
    Column("group_name", String(64), nullable=False, default=""),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
)

apps = Table(
    "apps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("access", String(8), nullable=False),  # private | group | public
    Column("bundle_sha256", String(64)),
    Column("command", JSON, nullable=False),  # argv template: {python}, {args}
    Column("limits", JSON, nullable=False),
    Column("validator", String(80), nullable=False),  # quorum | verifier:NAME
    Column("replication", Integer, nullable=False),
    Column("quorum", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)

data = Table(
    "data",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("access", String(8), nullable=False),
    Column("name", String(128), nullable=False, default=""),
    Column("job_id", Integer),  # set for a certified job result
    Column("created_at", Float, nullable=False),
    UniqueConstraint("sha256", "owner_id", name="uq_data_sha256_owner"),
    Index("ix_data_owner", "owner_id", "id"),
)

hosts = Table(
    "hosts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("cpus", Integer, nullable=False),
    Column("memory", Integer, nullable=False),
    Column("os", String(64), nullable=False, default=""),
    Column("registered_at", Float, nullable=False),
    Column("last_alive", Float, nullable=False),
    Column("reputation", Integer, nullable=False, default=0),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("app_id", Integer, ForeignKey("apps.id"), nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("batch", String(64)),
    Column("args", JSON, nullable=False),
    Column("inputs", JSON, nullable=False),  # [{"name", "sha256"}]
    Column("status", String(10), nullable=False),
    Column("replication", Integer, nullable=False),
    Column("quorum", Integer, nullable=False),
    Column("max_replicas", Integer, nullable=False),
    Column("max_errors", Integer, nullable=False),
    Column("memory", Integer, nullable=False),  # from the app's limits, for host capacity
    Column("visibility", String(8), nullable=False),  # public | owner | group
    Column("vis_group", String(64), nullable=False, default=""),
    Column("result_sha256", String(64)),
    Column("result_size", Integer),
    Column("error", Text),
    Column("submitted_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Index("ix_jobs_status", "status", "id"),
    Index("ix_jobs_owner", "owner_id", "id"),
    Index("ix_jobs_owner_batch", "owner_id", "batch", "status"),
)

replicas = Table(
    "replicas",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("job_id", Integer, ForeignKey("jobs.id"), nullable=False),
    Column("host_id", Integer, ForeignKey("hosts.id"), nullable=False),
    Column("status", String(10), nullable=False),
    Column("validation", String(10), nullable=False),
    Column("verdict", String(16)),
    Column("lease_expires", Float, nullable=False),
    Column("assigned_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("exit_code", Integer),
    Column("result_sha256", String(64)),
    Column("result_size", Integer),
    Column("stderr_tail", Text),
    Column("error", Text),
    Index("ix_replicas_job", "job_id"),
    Index("ix_replicas_host_status", "host_id", "status"),
)

# -- b560c23:xwpy/server/catalog/schema.py, the oracle's tables ----------------------------------------
oracle_metadata = MetaData()

chain_cursors = Table(
    "chain_cursors",
    oracle_metadata,
    Column("chain_id", BigInteger, primary_key=True, autoincrement=False),
    Column("hub", String(42), primary_key=True),
    Column("block", BigInteger, nullable=False),  # every request up to this block is in chain_tasks
    Column("block_hash", String(66), nullable=False),  # to notice a reorganisation below it
    Column("updated_at", Float, nullable=False),
)

chain_tasks = Table(
    "chain_tasks",
    oracle_metadata,
    Column("id", Integer, primary_key=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("hub", String(42), nullable=False),
    Column("task_id", BigInteger, nullable=False),
    Column("app_id", BigInteger, nullable=False),
    Column("app", String(64), nullable=False),  # the hub's app name: picks the handler
    Column("params", LargeBinary, nullable=False),
    Column("requester", String(42), nullable=False),
    Column("callback", String(42), nullable=False),
    Column("price", String(78), nullable=False),
    Column("deadline", BigInteger, nullable=False),  # chain time (UNIX seconds)
    Column("status", String(10), nullable=False),  # xwpy/lifecycle/chaintask.py
    Column("state", JSON, nullable=False),  # the handler's own state
    Column("round", Integer, nullable=False, default=0),  # job batches submitted so far
    Column("pending", JSON),  # a batch decided but not yet known to be submitted: [[tag, args]]
    Column("jobs", JSON, nullable=False),  # [[job id, tag]]
    Column("result_job", Integer),
    Column("digest", String(64)),  # hex; the certified result archive's sha256
    Column("result", LargeBinary),  # what goes on chain
    Column("commit_tx", String(66)),
    Column("commit_raw", LargeBinary),  # the signed commit, persisted before it is sent
    Column("commit_nonce", Integer),
    Column("commit_attempts", Integer, nullable=False, default=0),
    Column("commit_block", BigInteger),
    Column("commit_gas", Integer),
    Column("error", Text),
    Column("block_number", BigInteger, nullable=False),  # where the request was logged
    Column("log_tx", String(66), nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float),
    UniqueConstraint("chain_id", "hub", "task_id", name="uq_chain_tasks_task"),
    Index("ix_chain_tasks_status", "status", "id"),
)


def create_first(conn) -> None:
    """What 8bfe718's ``ensure_schema`` did to a new database."""
    metadata.create_all(conn)
    conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))


def add_oracle_tables(conn) -> None:
    """What b560c23's ``ensure_schema`` did to that catalog: create the tables it lacked."""
    oracle_metadata.create_all(conn)
