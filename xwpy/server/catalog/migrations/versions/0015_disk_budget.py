"""Disk budget (issue 12 item 4): a host says how many bytes of inputs it holds, a job how many its
inputs take, for the scheduler's capacity check (0: not said)."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0015"
down_revision = "0014"


def upgrade() -> None:
    ops.add_column("hosts", sa.Column("disk", sa.BigInteger, nullable=False, server_default=sa.text("0")))
    ops.add_column("jobs", sa.Column("disk", sa.BigInteger, nullable=False, server_default=sa.text("0")))
