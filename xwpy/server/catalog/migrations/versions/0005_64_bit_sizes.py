"""Sizes and memory in 64-bit columns (2b3f2b1): data and results of 2 GiB and more."""

from xwpy.server.catalog.migrations import ops

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    for table, column in (("data", "size"), ("hosts", "memory"), ("jobs", "memory"), ("jobs", "result_size"),
                          ("replicas", "result_size")):
        ops.widen_to_bigint(table, column)
