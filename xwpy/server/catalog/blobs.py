"""Small blobs kept in the catalog (inline job results), by sha256, compressed: a result archive
of a short output is mostly tar padding and compresses twentyfold. Each is checked against its
sha256 when read: a damaged row raises :class:`Corrupt`, never returns wrong bytes."""

from __future__ import annotations

import hashlib
import zlib

from sqlalchemy import select

from xwpy.lifecycle import ACTIVE_NAMES
from twisted.internet.defer import Deferred

from xwpy.server.blobstore import Corrupt
from xwpy.server.catalog import bulk
from xwpy.server.catalog.schema import app_versions, apps, data, jobs, replicas, small_blobs


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


def live_inputs(conn, shas: list[str], after: int = 0) -> tuple[set[str], int]:
    """Those of ``shas`` that jobs not final (with ids above ``after``) take as inputs, and the
    highest job id seen: a scan of the active jobs, done as a read first so that the writer's
    transaction (:func:`drop_unreferenced`) only looks at the jobs submitted since."""
    wanted = set(shas)
    out: set[str] = set()
    top = after
    q = select(jobs.c.id, jobs.c.inputs).where(jobs.c.status.in_(ACTIVE_NAMES), jobs.c.id > after)
    for jid, inputs in conn.execute(q):
        top = max(top, jid)
        out.update(i["sha256"] for i in inputs or () if i.get("sha256") in wanted)
    return out, top


def referenced(conn, shas: list[str], inputs_seen: tuple[set[str], int] | None = None) -> set[str]:
    """Those of ``shas`` that something still refers to: a data row (any owner's), an app's bundle
    or image, a job's certified result, or an input, a replica's result or a checkpoint of a job
    not final. Only the rest may be collected. ``inputs_seen``: :func:`live_inputs` read before."""
    wanted = set(shas)
    seen, after = inputs_seen if inputs_seen is not None else (set(), 0)
    out = set(seen) | live_inputs(conn, shas, after)[0]
    q = (select(replicas.c.result_sha256, replicas.c.checkpoint, replicas.c.resume)
         .join(jobs, jobs.c.id == replicas.c.job_id).where(jobs.c.status.in_(ACTIVE_NAMES)))
    for row in conn.execute(q):
        out.update(b for b in row if b in wanted)
    for column in (apps.c.image, app_versions.c.image):
        for (image,) in conn.execute(select(column).where(column.is_not(None))):
            if isinstance(image, dict) and image.get("sha256") in wanted:
                out.add(image["sha256"])
    ordered = sorted(wanted)
    for start in range(0, len(ordered), 500):
        chunk = ordered[start:start + 500]
        for column in (data.c.sha256, apps.c.bundle_sha256, app_versions.c.bundle_sha256, jobs.c.result_sha256):
            out.update(r[0] for r in conn.execute(select(column).where(column.in_(chunk)).distinct()))
    return out & wanted


def drop_unreferenced(conn, shas: list[str],
                      inputs_seen: tuple[set[str], int] | None = None) -> tuple[list[str], set[str]]:
    """Those of ``shas`` nothing refers to (:func:`referenced`), and those of them the catalog
    held itself (small results, their rows deleted here): the caller removes the files. In the
    writer's transaction, so no reference is added meanwhile."""
    gone = sorted(set(shas) - referenced(conn, shas, inputs_seen))
    held: set[str] = set()
    for start in range(0, len(gone), 500):
        part = gone[start:start + 500]
        held.update(r[0] for r in conn.execute(select(small_blobs.c.sha256).where(small_blobs.c.sha256.in_(part))))
        conn.execute(small_blobs.delete().where(small_blobs.c.sha256.in_(part)))
    return gone, held


def all_shas(conn) -> list[str]:
    return [r[0] for r in conn.execute(select(small_blobs.c.sha256))]


class BlobsComponent:
    def __init__(self, catalog):
        self.catalog = catalog

    def get(self, sha256: str) -> Deferred:
        return self.catalog.read(get, sha256)

    def get_many(self, shas: list[str]) -> Deferred:
        return self.catalog.read(get_many, shas)

    async def drop_unreferenced(self, shas: list[str]) -> tuple[list[str], set[str]]:
        """As :func:`drop_unreferenced`, the scan of the active jobs' inputs read first (off the writer)."""
        seen = await self.catalog.read(live_inputs, shas)
        return await self.catalog.write(drop_unreferenced, shas, seen)

    def all_shas(self) -> Deferred:
        return self.catalog.read(all_shas)
