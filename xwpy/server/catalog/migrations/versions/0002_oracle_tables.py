"""The oracle's tables (b560c23): the block cursor of each hub, and the chain tasks."""

import sqlalchemy as sa

from xwpy.server.catalog.migrations import ops

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    ops.create_table(
        "chain_cursors",
        sa.Column("chain_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hub", sa.String(42), primary_key=True),
        sa.Column("block", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    ops.create_table(
        "chain_tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("hub", sa.String(42), nullable=False),
        sa.Column("task_id", sa.BigInteger, nullable=False),
        sa.Column("app_id", sa.BigInteger, nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("params", sa.LargeBinary, nullable=False),
        sa.Column("requester", sa.String(42), nullable=False),
        sa.Column("callback", sa.String(42), nullable=False),
        sa.Column("price", sa.String(78), nullable=False),
        sa.Column("deadline", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("round", sa.Integer, nullable=False),
        sa.Column("pending", sa.JSON),
        sa.Column("jobs", sa.JSON, nullable=False),
        sa.Column("result_job", sa.Integer),
        sa.Column("digest", sa.String(64)),
        sa.Column("result", sa.LargeBinary),
        sa.Column("commit_tx", sa.String(66)),
        sa.Column("commit_raw", sa.LargeBinary),
        sa.Column("commit_nonce", sa.Integer),
        sa.Column("commit_attempts", sa.Integer, nullable=False),
        sa.Column("commit_block", sa.BigInteger),
        sa.Column("commit_gas", sa.Integer),
        sa.Column("error", sa.Text),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("log_tx", sa.String(66), nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("finished_at", sa.Float),
        sa.UniqueConstraint("chain_id", "hub", "task_id", name="uq_chain_tasks_task"),
        sa.Index("ix_chain_tasks_status", "status", "id"),
    )
