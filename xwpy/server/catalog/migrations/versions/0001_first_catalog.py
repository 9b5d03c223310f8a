"""The first catalog (8bfe718, "Grid core, first slice"): users, apps, data, hosts, jobs, replicas."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0001"
down_revision = None


def upgrade() -> None:
    ops.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    ops.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("login", sa.String(64), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("group_name", sa.String(64), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    ops.create_table(
        "apps",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("access", sa.String(8), nullable=False),
        sa.Column("bundle_sha256", sa.String(64)),
        sa.Column("command", sa.JSON, nullable=False),
        sa.Column("limits", sa.JSON, nullable=False),
        sa.Column("validator", sa.String(80), nullable=False),
        sa.Column("replication", sa.Integer, nullable=False),
        sa.Column("quorum", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    ops.create_table(
        "data",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("access", sa.String(8), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("job_id", sa.Integer),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("sha256", "owner_id", name="uq_data_sha256_owner"),
        sa.Index("ix_data_owner", "owner_id", "id"),
    )
    ops.create_table(
        "hosts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("cpus", sa.Integer, nullable=False),
        sa.Column("memory", sa.Integer, nullable=False),
        sa.Column("os", sa.String(64), nullable=False),
        sa.Column("registered_at", sa.Float, nullable=False),
        sa.Column("last_alive", sa.Float, nullable=False),
        sa.Column("reputation", sa.Integer, nullable=False),
    )
    ops.create_table(
        "jobs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("batch", sa.String(64)),
        sa.Column("args", sa.JSON, nullable=False),
        sa.Column("inputs", sa.JSON, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("replication", sa.Integer, nullable=False),
        sa.Column("quorum", sa.Integer, nullable=False),
        sa.Column("max_replicas", sa.Integer, nullable=False),
        sa.Column("max_errors", sa.Integer, nullable=False),
        sa.Column("memory", sa.Integer, nullable=False),
        sa.Column("visibility", sa.String(8), nullable=False),
        sa.Column("vis_group", sa.String(64), nullable=False),
        sa.Column("result_sha256", sa.String(64)),
        sa.Column("result_size", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("submitted_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Index("ix_jobs_status", "status", "id"),
        sa.Index("ix_jobs_owner", "owner_id", "id"),
        sa.Index("ix_jobs_owner_batch", "owner_id", "batch", "status"),
    )
    ops.create_table(
        "replicas",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("host_id", sa.Integer, sa.ForeignKey("hosts.id"), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("validation", sa.String(10), nullable=False),
        sa.Column("verdict", sa.String(16)),
        sa.Column("lease_expires", sa.Float, nullable=False),
        sa.Column("assigned_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float),
        sa.Column("finished_at", sa.Float),
        sa.Column("exit_code", sa.Integer),
        sa.Column("result_sha256", sa.String(64)),
        sa.Column("result_size", sa.Integer),
        sa.Column("stderr_tail", sa.Text),
        sa.Column("error", sa.Text),
        sa.Index("ix_replicas_job", "job_id"),
        sa.Index("ix_replicas_host_status", "host_id", "status"),
    )
