"""Sleep is not death (b8a8c2a): an app's replica deadline, a replica's deadline and the replica it
covers; checkpoints (8a12832): an app's checkpoint policy, a replica's checkpoint, the one it
resumed from and the replica whose work it continues."""

import sqlalchemy as sa

from xwpy.protocol import DEFAULT_DEADLINE
from xwpy.server.catalog.migrations import ops

revision = "0017"
down_revision = "0016"


def upgrade() -> None:
    ops.add_column("apps", sa.Column("deadline", sa.Integer, nullable=False, server_default=sa.text(str(DEFAULT_DEADLINE))))
    ops.add_column("apps", sa.Column("checkpoints", sa.String(8), nullable=False, server_default=sa.text("'keep'")))
    ops.add_column("replicas", sa.Column("deadline", sa.Float))
    ops.add_column("replicas", sa.Column("covers", sa.Integer))
    ops.add_column("replicas", sa.Column("checkpoint", sa.String(64)))
    ops.add_column("replicas", sa.Column("resume", sa.String(64)))
    ops.add_column("replicas", sa.Column("origin", sa.Integer))
