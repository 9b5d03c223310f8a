"""Job graphs (issue 16 item 3): the jobs a job runs after (jobs.after, null for most jobs). A job
held until they are certified is PENDING; files of their results are among its inputs (``job`` and
``member`` in jobs.inputs, resolved to the certified result when it is dispatched)."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0020"
down_revision = "0019"


def upgrade() -> None:
    ops.add_column("jobs", sa.Column("after", sa.JSON))
