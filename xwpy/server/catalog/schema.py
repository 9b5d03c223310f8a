"""The catalog's whole schema, on one page.

Times are UNIX seconds (float). Ids of jobs and replicas are allocated by the scheduler of the one
coordinator that leads the catalog (``leadership``), from the catalog's largest ids as it takes the
lease, so rows can be written in batches without a round trip for each id.

Indexes follow the hot paths: a work request or a result touches rows by primary key only; the
start-up rebuild finds active jobs through ``jobs(status)``; listings go through an owner's index.
No request scans all jobs.
"""

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
    false,
    text,
)

from xwpy.protocol import DEFAULT_DEADLINE

# Every change here comes with a migration beside it (migrations/versions/NNNN_*.py), from the
# first catalog on; tests/catalog/test_migrations.py checks that they build this same schema.
metadata = MetaData()

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
    Column("token_expires", Float),  # when its token stops working (None: never)
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
    Column("adaptive", Boolean, nullable=False, server_default=false()),
    Column("created_at", Float, nullable=False),
    Column("image", JSON),  # protocol.ImageSpec of an image app, checked at registration
    # The platform the app's bundle or image above is built for; app_versions holds the others.
    Column("platform", String(40), nullable=False, server_default=text("'any'")),
    Column("network", Boolean, nullable=False, server_default=false()),  # its jobs need the network
    # Seconds a replica of its jobs may take, its host asleep or offline included (protocol.NewApp).
    Column("deadline", Integer, nullable=False, server_default=text(str(DEFAULT_DEADLINE))),
    Column("checkpoints", String(8), nullable=False, server_default=text("'keep'")),  # keep | upload
    # Tolerant validation: the comparator its results are compared with (null: bitwise) and its
    # parameters ({"rtol", "atol"}); homogeneous redundancy: a job's replicas on one platform.
    Column("comparator", String(64)),
    Column("compare", JSON),
    Column("homogeneous", Boolean, nullable=False, server_default=false()),
)

app_versions = Table(
    "app_versions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("app_id", Integer, ForeignKey("apps.id"), nullable=False),
    Column("platform", String(40), nullable=False),
    Column("bundle_sha256", String(64)),
    Column("image", JSON),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("app_id", "platform", name="app_versions_platform"),
)

data = Table(
    "data",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("access", String(8), nullable=False),
    Column("name", String(128), nullable=False, default=""),
    Column("job_id", Integer),  # set for a certified job result
    Column("created_at", Float, nullable=False),
    UniqueConstraint("sha256", "owner_id", name="uq_data_sha256_owner"),
    Index("ix_data_owner", "owner_id", "id"),
)

# Small blobs — inline job results — live in the catalog: stored in the same transaction as the
# result that refers to them, at the cost of one multi-row INSERT instead of a file each.
small_blobs = Table(
    "small_blobs",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

# The next id of each table whose rows may be deleted (jobs, replicas): a deleted job's id is
# never given again, even when it was the highest (ids come from max(id) + 1 at start).
id_floors = Table(
    "id_floors",
    metadata,
    Column("name", String(16), primary_key=True),
    Column("next_id", BigInteger, nullable=False),
)

hosts = Table(
    "hosts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("cpus", Integer, nullable=False),
    Column("memory", BigInteger, nullable=False),
    Column("os", String(64), nullable=False, default=""),
    Column("registered_at", Float, nullable=False),
    Column("last_alive", Float, nullable=False),
    Column("reputation", Integer, nullable=False, default=0),
    # What the worker offers (with cpus and memory above, as of its last hello): see capacity.Offer.
    Column("platform", String(40), nullable=False, server_default=text("''")),
    Column("images", Boolean, nullable=False, server_default=false()),
    Column("network", Boolean, nullable=False, server_default=false()),  # given to apps that need it
    Column("disk", BigInteger, nullable=False, server_default=text("0")),  # bytes of inputs it holds (0: not said)
    Column("revoked_at", Float),  # its token was revoked then (None: it is not)
    # Credit earned by the replicas of it that certified a job (the sum of their replicas.credit).
    Column("credit", Float, nullable=False, server_default=text("0")),
    # Where the volunteer wants this host's share of the pool paid (0x..., checksummed; None: unpaid).
    Column("payout_address", String(42)),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("app_id", Integer, ForeignKey("apps.id"), nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id"), nullable=False),
    Column("batch", String(64)),
    Column("request", String(64)),  # the client's key of the submission that made the job
    Column("args", JSON, nullable=False),
    Column("inputs", JSON, nullable=False),  # [{"name", "sha256"}]
    Column("status", String(10), nullable=False),
    Column("replication", Integer, nullable=False),
    Column("quorum", Integer, nullable=False),
    Column("max_replicas", Integer, nullable=False),
    Column("max_errors", Integer, nullable=False),
    Column("memory", BigInteger, nullable=False),  # from the app's limits, for host capacity
    Column("disk", BigInteger, nullable=False, server_default=text("0")),  # its inputs' sizes, for host capacity
    Column("adaptive", Boolean, nullable=False, server_default=false()),  # adaptive replication allowed
    Column("solo", Boolean, nullable=False, server_default=false()),  # trusted host's result alone
    Column("visibility", String(8), nullable=False),  # public | owner | group
    Column("vis_group", String(64), nullable=False, default=""),
    Column("priority", Integer, nullable=False, server_default=text("0")),  # higher first among its owner's jobs
    Column("result_sha256", String(64)),
    Column("result_size", BigInteger),
    Column("error", Text),
    Column("submitted_at", Float, nullable=False),
    Column("started_at", Float),
    Column("finished_at", Float),
    Column("after", JSON),  # the job ids it runs after (job graphs; null: none)
    # Only active jobs are indexed by status: completed ones leave the index, which stays as
    # small as the work in progress however large the catalog grows.
    Index(
        "ix_jobs_active", "status", "id",
        sqlite_where=text("status IN ('PENDING', 'RUNNING')"),
        postgresql_where=text("status IN ('PENDING', 'RUNNING')"),
    ),
    Index("ix_jobs_owner", "owner_id", "id"),
    Index("ix_jobs_owner_batch", "owner_id", "batch"),
    Index(
        "ix_jobs_request", "owner_id", "request",
        sqlite_where=text("request IS NOT NULL"), postgresql_where=text("request IS NOT NULL"),
    ),
    Index("ix_jobs_result", "result_sha256"),  # results reused as inputs
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
    Column("result_size", BigInteger),
    Column("stderr_tail", Text),
    Column("error", Text),
    # When the scheduler stops waiting for it (null: a replica of an earlier xwpy, its lease only).
    Column("deadline", Float),
    Column("covers", Integer),  # the replica of a silent host this one was started beside (silence.py)
    Column("checkpoint", String(64)),  # its latest checkpoint uploaded (apps with checkpoints = upload)
    Column("resume", String(64)),  # the checkpoint it was started from (another replica's)
    Column("origin", Integer),  # the replica whose work it continues, when resumed: one vote between them
    Column("equivalent", JSON),  # digests of its job's earlier results its app's comparator found equivalent
    Column("credit", Float),  # what it earned by certifying its job (scheduler/credit.py; None: nothing)
    Index("ix_replicas_job", "job_id"),
)

# -- the oracle (xwpy/oracle/) ----------------------------------------------------------------------
# A hub is named by (chain id, address). Chain numbers (ids, blocks, task ids, deadlines) are
# BigInteger; amounts are uint256 and kept exact as decimal text.

chain_cursors = Table(
    "chain_cursors",
    metadata,
    Column("chain_id", BigInteger, primary_key=True, autoincrement=False),
    Column("hub", String(42), primary_key=True),
    Column("block", BigInteger, nullable=False),  # every request up to this block is in chain_tasks
    Column("block_hash", String(66), nullable=False),  # to notice a reorganisation below it
    Column("updated_at", Float, nullable=False),
)

chain_tasks = Table(
    "chain_tasks",
    metadata,
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
    # The hub's requestHash (hex): with the task id, names the request (a reorganisation can give
    # the id to another one). NULL in rows of versions before it.
    Column("request_hash", String(66)),
    Column("commit_sent_block", BigInteger),  # the head when the stored commit was signed
    # The payout epoch (payout_epochs.id) that paid its pool share out: a task is counted once.
    Column("payout_epoch", Integer),
    UniqueConstraint("chain_id", "hub", "task_id", name="uq_chain_tasks_task"),
    Index("ix_chain_tasks_status", "status", "id"),
)

# Payouts (oracle/epochs.py): each epoch's Merkle tree over what the volunteers earned, stored with
# its signed commitEpoch transaction before that is sent (the same journal as a task's commit).
payout_epochs = Table(
    "payout_epochs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("distributor", String(42), nullable=False),
    Column("epoch", Integer, nullable=False),  # the distributor's number for it (its leaves name it)
    Column("root", String(66), nullable=False),
    Column("total", String(78), nullable=False),  # base units of RLC (decimal text: above 64 bits)
    Column("status", String(12), nullable=False),  # COMMITTING, COMMITTED, FAILED
    Column("commit_tx", String(66), nullable=False),
    Column("commit_raw", LargeBinary, nullable=False),
    Column("commit_nonce", Integer, nullable=False),
    Column("commit_block", BigInteger),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Index("ix_payout_epochs_status", "chain_id", "distributor", "status"),
)

payout_leaves = Table(
    "payout_leaves",
    metadata,
    Column("epoch_id", Integer, ForeignKey("payout_epochs.id"), primary_key=True, autoincrement=False),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("account", String(42), nullable=False),  # checksummed
    Column("amount", String(78), nullable=False),
    Column("proof", JSON, nullable=False),  # ["0x..."], the siblings from the leaf up
    Index("ix_payout_leaves_account", "account"),
)

# What a host was owed by an epoch built while it had no payout address (oracle/epochs.py): stored
# with that epoch (``from_epoch``), and paid by the first epoch built after it gives one
# (``paid_epoch``, set in the transaction that stores that epoch). A failed epoch takes back what it
# stored and gives back what it paid, as it gives back its tasks.
payout_owed = Table(
    "payout_owed",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("distributor", String(42), nullable=False),
    Column("host_id", Integer, nullable=False),
    Column("amount", String(78), nullable=False),  # base units of RLC (decimal text)
    Column("from_epoch", Integer, ForeignKey("payout_epochs.id"), nullable=False),
    Column("paid_epoch", Integer, ForeignKey("payout_epochs.id")),  # NULL: still owed
    Index("ix_payout_owed_host", "host_id", "paid_epoch"),
    Index("ix_payout_owed_open", "chain_id", "distributor", "paid_epoch"),
)

# The catalog's leader (xwpy/server/catalog/lease.py): one row, id 1. ``epoch`` grows by one at each
# takeover and every write transaction checks it (a leader that has been replaced writes nothing);
# ``expires_at`` is the leader's lease in the database's clock (PostgreSQL), renewed while it leads.
leadership = Table(
    "leadership",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("epoch", BigInteger, nullable=False),
    Column("holder", String(200), nullable=False),  # host, pid and session name of the leader
    Column("expires_at", Float, nullable=False),
)

# Fair share (scheduler/shares.py): each user's recent usage (slots held, decayed), as of ``at``,
# written with the certification (or other end) of the user's jobs, so that a restarted coordinator
# goes on from it rather than from what runs at its start.
share_usage = Table(
    "share_usage",
    metadata,
    Column("owner_id", Integer, ForeignKey("users.id"), primary_key=True, autoincrement=False),
    Column("recent", Float, nullable=False),
    Column("at", Float, nullable=False),
)
