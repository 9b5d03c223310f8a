"""An app may declare that its jobs need the network (5bb8aea)."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    ops.add_column("apps", sa.Column("network", sa.Boolean, nullable=False, server_default=sa.false()))
