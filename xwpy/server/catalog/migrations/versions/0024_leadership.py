"""The catalog's leader (issue 17, fencing): the ``leadership`` row whose epoch every write checks.
Its one row is made by the first coordinator that takes the lease."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0024"
down_revision = "0023"


def upgrade() -> None:
    ops.create_table(
        "leadership",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
