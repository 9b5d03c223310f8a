"""Payouts (issue 18, volunteers paid for what they certify, stage 3): a host's payout address
(hosts.payout_address), the epoch that paid each chain task's pool share out
(chain_tasks.payout_epoch), and each epoch's tree and commitEpoch transaction (payout_epochs,
payout_leaves). Tasks committed before this version belong to no epoch: the next epoch pays them."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0022"
down_revision = "0021"


def upgrade() -> None:
    ops.add_column("hosts", sa.Column("payout_address", sa.String(42)))
    ops.add_column("chain_tasks", sa.Column("payout_epoch", sa.Integer))
    ops.create_table(
        "payout_epochs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("distributor", sa.String(42), nullable=False),
        sa.Column("epoch", sa.Integer, nullable=False),
        sa.Column("root", sa.String(66), nullable=False),
        sa.Column("total", sa.String(78), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("commit_tx", sa.String(66), nullable=False),
        sa.Column("commit_raw", sa.LargeBinary, nullable=False),
        sa.Column("commit_nonce", sa.Integer, nullable=False),
        sa.Column("commit_block", sa.BigInteger),
        sa.Column("error", sa.Text),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Index("ix_payout_epochs_status", "chain_id", "distributor", "status"),
    )
    ops.create_table(
        "payout_leaves",
        sa.Column("epoch_id", sa.Integer, sa.ForeignKey("payout_epochs.id"), primary_key=True, autoincrement=False),
        sa.Column("idx", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("account", sa.String(42), nullable=False),
        sa.Column("amount", sa.String(78), nullable=False),
        sa.Column("proof", sa.JSON, nullable=False),
        sa.Index("ix_payout_leaves_account", "account"),
    )
