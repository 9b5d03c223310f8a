"""Small blobs kept in the catalog (inline job results), by sha256, compressed: a result archive
of a short output is mostly tar padding and compresses twentyfold. Each is checked against its
sha256 when read: a damaged row raises :class:`Corrupt`, never returns wrong bytes."""

from __future__ import annotations

import hashlib
import zlib

from sqlalchemy import select
from twisted.internet.defer import Deferred

from xwpy.server.blobstore import Corrupt
from xwpy.server.catalog import bulk
from xwpy.server.catalog.schema import small_blobs


def store(conn, blobs: list[tuple[str, bytes]]) -> None:
    """Insert those not stored yet (content-addressed: an existing one is the same bytes)."""
    unique = dict(blobs)
    rows = [{"sha256": k, "data": zlib.compress(v, 1)} for k, v in unique.items()]
    bulk.insert_rows(conn, small_blobs, rows, skip_existing=True)


def get(conn, sha256: str) -> bytes | None:
    row = conn.execute(select(small_blobs.c.data).where(small_blobs.c.sha256 == sha256)).first()
    return None if row is None else _checked(sha256, row[0])


def get_many(conn, shas: list[str]) -> dict[str, bytes]:
    """Those of ``shas`` stored here, by sha256, each checked; a damaged one is left out (whoever
    wants it asks for it alone and hears why)."""
    out: dict[str, bytes] = {}
    for start in range(0, len(shas), 500):
        q = select(small_blobs.c.sha256, small_blobs.c.data).where(small_blobs.c.sha256.in_(shas[start:start + 500]))
        for sha256, packed in conn.execute(q):
            try:
                out[sha256] = _checked(sha256, packed)
            except Corrupt:
                continue
    return out


def _checked(sha256: str, packed: bytes) -> bytes:
    try:
        data = zlib.decompress(packed)
    except zlib.error as e:
        raise Corrupt(f"catalog blob {sha256} is damaged ({e})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise Corrupt(f"catalog blob {sha256} is damaged (its content hashes to {digest})")
    return data


class BlobsComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def get(self, sha256: str) -> Deferred:
        return self.catalog.read(get, sha256)

    def get_many(self, shas: list[str]) -> Deferred:
        return self.catalog.read(get_many, shas)
