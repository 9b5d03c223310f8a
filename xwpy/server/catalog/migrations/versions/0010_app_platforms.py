"""App versions per platform (d42dcda): the app's own build says its platform, the others are in
app_versions."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    ops.add_column("apps", sa.Column("platform", sa.String(40), nullable=False, server_default=sa.text("'any'")))
    ops.create_table(
        "app_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("app_id", sa.Integer, sa.ForeignKey("apps.id"), nullable=False),
        sa.Column("platform", sa.String(40), nullable=False),
        sa.Column("bundle_sha256", sa.String(64)),
        sa.Column("image", sa.JSON),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("app_id", "platform", name="app_versions_platform"),
    )
