"""Shares, priorities, quotas, cleanup (issue 16 item 5): a job's priority among its owner's jobs
(jobs.priority, 0 for the jobs submitted before), and the id floors that keep deleted jobs' and
replicas' ids from being given again (id_floors)."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0021"
down_revision = "0020"


def upgrade() -> None:
    ops.add_column("jobs", sa.Column("priority", sa.Integer, nullable=False, server_default=sa.text("0")))
    ops.create_table(
        "id_floors",
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("next_id", sa.BigInteger, nullable=False),
    )
