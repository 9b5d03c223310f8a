"""Tolerant validation (issue 16 item 4): an app's comparator and its parameters (apps.comparator,
apps.compare), homogeneous redundancy (apps.homogeneous), and for each result the earlier results
of its job the comparator found equivalent (replicas.equivalent), which the quorum counts."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0023"
down_revision = "0022"


def upgrade() -> None:
    ops.add_column("apps", sa.Column("comparator", sa.String(64)))
    ops.add_column("apps", sa.Column("compare", sa.JSON))
    ops.add_column("apps", sa.Column("homogeneous", sa.Boolean, nullable=False, server_default=sa.false()))
    ops.add_column("replicas", sa.Column("equivalent", sa.JSON))
