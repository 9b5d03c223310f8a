"""Submissions carry the client's request key (3f21d4a): a submission sent again returns the same
jobs."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0007"
down_revision = "0006"

KEYED = sa.text("request IS NOT NULL")


def upgrade() -> None:
    ops.add_column("jobs", sa.Column("request", sa.String(64)))
    ops.create_index("ix_jobs_request", "jobs", ["owner_id", "request"], sqlite_where=KEYED, postgresql_where=KEYED)
