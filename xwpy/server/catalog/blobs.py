"""Small blobs kept in the catalog (inline job results), by sha256, compressed: a result archive
of a short output is mostly tar padding and compresses twentyfold."""

from __future__ import annotations

import zlib

from sqlalchemy import select
from twisted.internet.defer import Deferred

from xwpy.server.catalog import bulk
from xwpy.server.catalog.schema import small_blobs


def store(conn, blobs: list[tuple[str, bytes]]) -> None:
    """Insert those not stored yet (content-addressed: an existing one is the same bytes)."""
    unique = dict(blobs)
    rows = [{"sha256": k, "data": zlib.compress(v, 1)} for k, v in unique.items()]
    bulk.insert_rows(conn, small_blobs, rows, skip_existing=True)


def get(conn, sha256: str) -> bytes | None:
    row = conn.execute(select(small_blobs.c.data).where(small_blobs.c.sha256 == sha256)).first()
    return zlib.decompress(row[0]) if row else None


class BlobsComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def get(self, sha256: str) -> Deferred:
        return self.catalog.read(get, sha256)
