"""Owed payouts (issue 18): what a host without a payout address earned in an epoch is kept owed
to it (payout_owed) and paid by the first epoch after it gives one, instead of staying in the
distributor for ever. Nothing to convert: parts left out by earlier epochs were not recorded."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0025"
down_revision = "0024"


def upgrade() -> None:
    ops.create_table(
        "payout_owed",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("distributor", sa.String(42), nullable=False),
        sa.Column("host_id", sa.Integer, nullable=False),
        sa.Column("amount", sa.String(78), nullable=False),
        sa.Column("from_epoch", sa.Integer, sa.ForeignKey("payout_epochs.id"), nullable=False),
        sa.Column("paid_epoch", sa.Integer, sa.ForeignKey("payout_epochs.id")),
        sa.Index("ix_payout_owed_host", "host_id", "paid_epoch"),
        sa.Index("ix_payout_owed_open", "chain_id", "distributor", "paid_epoch"),
    )
