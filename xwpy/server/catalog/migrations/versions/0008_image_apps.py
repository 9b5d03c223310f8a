"""Image apps (00fa0ce): an app may run in a container image, checked at registration."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    ops.add_column("apps", sa.Column("image", sa.JSON))
