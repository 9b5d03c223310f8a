"""Adaptive replication (df1d37d): an app may let a trusted host's result certify a job alone."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    ops.add_column("apps", sa.Column("adaptive", sa.Boolean, nullable=False, server_default=sa.false()))
    ops.add_column("jobs", sa.Column("adaptive", sa.Boolean, nullable=False, server_default=sa.false()))
    ops.add_column("jobs", sa.Column("solo", sa.Boolean, nullable=False, server_default=sa.false()))
