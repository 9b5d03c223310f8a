"""Small results kept in the catalog, written with the result that refers to them; results reused
as inputs found by their digest (89fde3a)."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    ops.create_table(
        "small_blobs",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    ops.create_index("ix_jobs_result", "jobs", ["result_sha256"])
