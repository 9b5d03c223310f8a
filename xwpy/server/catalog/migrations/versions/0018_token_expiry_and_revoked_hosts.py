"""Tokens and accounts (issue 14 item 3): a user's token may expire (users.token_expires), a host's
token may be revoked (hosts.revoked_at). Tokens have been stored as their sha256 since the first
catalog (0001: users.token_hash, hosts.token_hash), so there is no plaintext token to convert: an
upgraded site's tokens keep working, without expiry."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0018"
down_revision = "0017"


def upgrade() -> None:
    ops.add_column("users", sa.Column("token_expires", sa.Float))
    ops.add_column("hosts", sa.Column("revoked_at", sa.Float))
