"""Multi-row writes as single statements.

A driver's ``executemany`` runs one statement per row and, with SQLite, gives up and takes back the
GIL around each of them: on a busy coordinator the catalog writer thread then waits for the reactor
thread once per row. Here a batch of rows is one ``INSERT ... VALUES (...), (...)`` or one
``UPDATE ... FROM (VALUES ...)`` (SQLite >= 3.33, PostgreSQL), so a whole group commit costs a
handful of statements.

Row counts are rounded up to powers of two so that each statement shape is built (and prepared by
the driver) once: inserts are split into power-of-two chunks, updates are padded with rows for
id 0, which matches nothing (ids start at 1). Other databases get one statement per row.

Updates may be conditional (``guard``: the states a row must be in for the update to apply, e.g. a
job not final yet): a row found in another state makes the whole write fail (:class:`StaleWrite`),
so that a late ERROR never overwrites a COMPLETED, whoever wrote it.
"""

from __future__ import annotations

import json
from collections import defaultdict

from typing import Callable

from sqlalchemy import JSON, Table, bindparam

MAX_ROWS = 256

# For a set of updated columns, the (column, values it may hold) each row must match.
Guard = Callable[[tuple[str, ...]], tuple[tuple[str, tuple[str, ...]], ...]]


class StaleWrite(RuntimeError):
    """A conditional update found rows no longer in the state the writer believed: nothing of the
    transaction is stored."""


def _chunks(n: int) -> list[int]:
    """Sizes that add up to n, each a power of two no larger than MAX_ROWS, largest first."""
    out = []
    while n:
        size = min(MAX_ROWS, 1 << (n.bit_length() - 1))
        out.append(size)
        n -= size
    return out


def insert_rows(conn, table: Table, rows: list[dict], *, skip_existing: bool = False) -> None:
    """Insert rows (grouped by their set of keys) with few multi-row statements. With
    ``skip_existing``, rows whose primary key exists are left alone (content-addressed data)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(row))].append(row)
    dialect = conn.dialect
    for keys, group in groups.items():
        if dialect.name not in ("sqlite", "postgresql"):
            for row in group:
                if not (skip_existing and conn.execute(table.select().filter_by(**{
                        c.name: row[c.name] for c in table.primary_key})).first()):
                    conn.execute(table.insert(), row)
            continue
        procs = [_processor(table.c[k], dialect) for k in keys]
        start = 0
        for size in _chunks(len(group)):
            params = [p(v) if p and v is not None else v
                      for row in group[start:start + size] for p, v in zip(procs, (row[k] for k in keys))]
            conn.exec_driver_sql(_insert_sql(dialect, table, keys, size, skip_existing), tuple(params))
            start += size


def _insert_sql(dialect, table: Table, keys: tuple, n: int, skip_existing: bool) -> str:
    cached = _SQL.get(("insert", dialect.name, table.name, keys, n, skip_existing))
    if cached is not None:
        return cached
    q = dialect.identifier_preparer.quote
    if dialect.name == "sqlite":
        row = "(" + ", ".join("?" * len(keys)) + ")"
    else:
        row = "(" + ", ".join(f"%s::{table.c[k].type.compile(dialect=dialect)}" for k in keys) + ")"
    sql = f"INSERT INTO {q(table.name)} ({', '.join(q(k) for k in keys)}) VALUES {', '.join([row] * n)}"
    if skip_existing:
        sql += " ON CONFLICT DO NOTHING"  # SQLite >= 3.24 and PostgreSQL
    _SQL[("insert", dialect.name, table.name, keys, n, skip_existing)] = sql
    return sql


def select_by_ids(conn, table: Table, columns: tuple[str, ...], ids: list[int]) -> list[tuple]:
    """``SELECT id, columns FROM table WHERE id IN (ids)``, values decoded as SQLAlchemy would."""
    dialect = conn.dialect
    procs = [c.type.result_processor(dialect, None) for c in (table.c.id, *(table.c[k] for k in columns))]
    q = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    out = []
    for start in range(0, len(ids), 512):
        chunk = ids[start:start + 512]
        sql = (f"SELECT id, {', '.join(q(k) for k in columns)} FROM {q(table.name)} "
               f"WHERE id IN ({', '.join([mark] * len(chunk))})")
        for row in conn.exec_driver_sql(sql, tuple(chunk)):
            out.append(tuple(p(v) if p else v for p, v in zip(procs, row)))
    return out


def update_rows(conn, table: Table, rows: dict[int, dict], *, guard: Guard | None = None) -> None:
    """``UPDATE table SET ... WHERE id = ...`` for each row id, grouped by the set of columns; with
    ``guard``, ``AND column IN (values)`` too, and StaleWrite unless every row was updated."""
    groups: dict[tuple, list[tuple]] = defaultdict(list)
    for row_id, fields in rows.items():
        keys = tuple(sorted(fields))
        groups[keys].append((row_id, *(fields[k] for k in keys)))
    dialect = conn.dialect
    for keys, data in groups.items():
        if dialect.name not in ("sqlite", "postgresql"):
            stmt = table.update().where(table.c.id == bindparam("p_id")).values({k: bindparam(f"p_{k}") for k in keys})
            conn.execute(stmt, [{"p_id": r[0], **{f"p_{k}": v for k, v in zip(keys, r[1:])}} for r in data])
            continue
        procs = [_processor(c, dialect) for c in (table.c.id, *(table.c[k] for k in keys))]
        cond = guard(keys) if guard is not None else ()
        for start in range(0, len(data), MAX_ROWS):
            chunk = data[start:start + MAX_ROWS]
            real = len(chunk)
            padded = 1 << (len(chunk) - 1).bit_length()
            chunk = chunk + [(0, *([None] * len(keys)))] * (padded - len(chunk))
            params = [p(v) if p and v is not None else v for row in chunk for p, v in zip(procs, row)]
            done = conn.exec_driver_sql(_update_sql(dialect, table, keys, padded, cond), tuple(params)).rowcount
            if cond and done != real:
                raise StaleWrite(f"{real - done} of {real} {table.name} rows were not in the state this "
                                 f"coordinator expected ({_said(cond)}): written by someone else")


def _processor(col, dialect):
    if isinstance(col.type, JSON):  # sent as text, cast by the statement where needed
        return lambda v: json.dumps(v, separators=(",", ":"))
    return col.type.bind_processor(dialect)


def _said(cond) -> str:
    return ", ".join(f"{col} in {'/'.join(values)}" for col, values in cond)


def _update_sql(dialect, table: Table, keys: tuple, n: int, cond=()) -> str:
    cached = _SQL.get(("update", dialect.name, table.name, keys, n, cond))
    if cached is not None:
        return cached
    q = dialect.identifier_preparer.quote
    name = q(table.name)
    if dialect.name == "sqlite":  # VALUES columns are column1, column2, ...
        row = "(" + ", ".join("?" * (len(keys) + 1)) + ")"
        sets = ", ".join(f"{q(k)} = v.column{i + 2}" for i, k in enumerate(keys))
        sql = f"UPDATE {name} SET {sets} FROM (VALUES {', '.join([row] * n)}) AS v WHERE {name}.id = v.column1"
    else:  # PostgreSQL: typed placeholders, so that NULLs and numbers keep their column types
        types = [c.type.compile(dialect=dialect) for c in (table.c.id, *(table.c[k] for k in keys))]
        row = "(" + ", ".join(f"%s::{t}" for t in types) + ")"
        names = ", ".join(["id", *(q(k) for k in keys)])
        sets = ", ".join(f"{q(k)} = v.{q(k)}" for k in keys)
        sql = f"UPDATE {name} SET {sets} FROM (VALUES {', '.join([row] * n)}) AS v({names}) WHERE {name}.id = v.id"
    for col, values in cond:  # the values are the code's own constants (statuses), never input
        sql += f" AND {name}.{q(col)} IN ({', '.join(_literal(v) for v in values)})"
    _SQL[("update", dialect.name, table.name, keys, n, cond)] = sql
    return sql


def _literal(value: str) -> str:
    if not value.replace("_", "").isalnum():
        raise ValueError(f"not a status: {value!r}")
    return f"'{value}'"


_SQL: dict[tuple, str] = {}
