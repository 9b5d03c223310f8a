"""Schema changes as the migrations make them, each done only if the catalog lacks it.

Before the migrations, an xwpy opening an older catalog created the tables it lacked and added
the columns it lacked (nullable or with a default), but changed no index or type. Such a catalog
has no revision and may hold any mixture of later tables and columns: it is upgraded from the
start (``revision.upgrade``), and each migration below skips what is already there.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


def _inspector():
    return sa.inspect(op.get_bind())


def has_table(name: str) -> bool:
    return _inspector().has_table(name)


def columns(table: str) -> dict[str, dict]:
    return {c["name"]: c for c in _inspector().get_columns(table)}


def indexes(table: str) -> dict[str, list[str]]:
    return {i["name"]: i["column_names"] for i in _inspector().get_indexes(table)}


def create_table(name: str, *items) -> None:
    if not has_table(name):
        op.create_table(name, *items)


def add_column(table: str, column: sa.Column) -> None:
    if column.name not in columns(table):
        op.add_column(table, column)


def create_index(name: str, table: str, cols: list[str], **kw) -> None:
    have = indexes(table)
    if name in have and have[name] != cols:
        op.drop_index(name, table_name=table)
    if have.get(name) != cols:
        op.create_index(name, table, cols, **kw)


def drop_index(name: str, table: str) -> None:
    if name in indexes(table):
        op.drop_index(name, table_name=table)


def widen_to_bigint(table: str, column: str) -> None:
    """INTEGER to BIGINT where the two differ (SQLite stores both alike: nothing to do there)."""
    if op.get_bind().dialect.name == "sqlite":
        return
    if not isinstance(columns(table)[column]["type"], sa.BigInteger):
        op.alter_column(table, column, type_=sa.BigInteger(), existing_type=sa.Integer())
