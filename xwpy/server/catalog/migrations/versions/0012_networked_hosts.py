"""A worker says whether it gives jobs the network (23a2253)."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    ops.add_column("hosts", sa.Column("network", sa.Boolean, nullable=False, server_default=sa.false()))
