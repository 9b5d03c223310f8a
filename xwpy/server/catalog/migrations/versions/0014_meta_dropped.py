"""The meta table goes: its one row, the schema version, is alembic_version's job now."""

from alembic import op

from xwpy.server.catalog.migrations import ops

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    if ops.has_table("meta"):
        op.drop_table("meta")
