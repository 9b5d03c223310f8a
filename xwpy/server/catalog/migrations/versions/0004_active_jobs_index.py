"""Cheaper writes on the dispatch path (47028e4): only active jobs in the status index; fewer
indexes to update."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0004"
down_revision = "0003"

ACTIVE = sa.text("status IN ('PENDING', 'RUNNING')")


def upgrade() -> None:
    ops.drop_index("ix_jobs_status", "jobs")
    ops.create_index("ix_jobs_active", "jobs", ["status", "id"], sqlite_where=ACTIVE, postgresql_where=ACTIVE)
    ops.create_index("ix_jobs_owner_batch", "jobs", ["owner_id", "batch"])
    ops.drop_index("ix_replicas_host_status", "replicas")
