"""Fair-share usage kept (issue 16 item 5): each user's decayed recent usage (share_usage), written
as the user's jobs end, read back by a restarted coordinator. Nothing to convert: it was kept in
memory only, and a catalog without rows starts every user from what runs."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0026"
down_revision = "0025"


def upgrade() -> None:
    ops.create_table(
        "share_usage",
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True, autoincrement=False),
        sa.Column("recent", sa.Float, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
