"""The oracle's tasks keep the hub's request hash (7aa3494: with the task id it names the request,
which a reorganisation can give to another) and the head when a commit was signed (ae431a9)."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    ops.add_column("chain_tasks", sa.Column("request_hash", sa.String(66)))
    ops.add_column("chain_tasks", sa.Column("commit_sent_block", sa.BigInteger))
