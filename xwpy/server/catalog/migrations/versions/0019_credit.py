"""Credit (issue 18, volunteers paid for what they certify): what each replica that certified a job
earned (replicas.credit) and each host's running total (hosts.credit). Work certified before this
version earned nothing: its run times were not kept as credit, and are not guessed now."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0019"
down_revision = "0018"


def upgrade() -> None:
    ops.add_column("hosts", sa.Column("credit", sa.Float, nullable=False, server_default=sa.text("0")))
    ops.add_column("replicas", sa.Column("credit", sa.Float))
