"""What a worker offers, kept with its host (c1e934a): its platform and whether it runs images."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0011"
down_revision = "0010"


def upgrade() -> None:
    ops.add_column("hosts", sa.Column("platform", sa.String(40), nullable=False, server_default=sa.text("''")))
    ops.add_column("hosts", sa.Column("images", sa.Boolean, nullable=False, server_default=sa.false()))
