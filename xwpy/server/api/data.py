"""Data: upload and download blobs by sha256. The coordinator re-hashes everything it receives."""

from __future__ import annotations

from twisted.internet.threads import deferToThread

from xwpy import protocol
from xwpy.server.api import ranges
from xwpy.server.api.router import (
    SCIENTIST, USER_OR_HOST, Api, ApiError, Ctx, Raw, Stream, bad_request, forbidden, not_found,
)

OCTETS = "application/octet-stream"


def _sha(value: str) -> str:
    if not protocol.SHA256_RE.fullmatch(value):
        raise bad_request("not a sha256 (64 lowercase hex digits)", "sha256")
    return value


async def response(found, request, content_type: str = "application/octet-stream") -> Stream | Raw:
    """What the grid found stored (a file to stream, or bytes) as a response — a part of it (206)
    for a ``Range`` that resumes a download (:mod:`xwpy.server.api.ranges`).

    A part is checked as the whole is: the bytes before it are read and hashed, not sent, first
    (a resumption costs a re-read of what the client has), so the sha256 of the whole file is
    still checked before the last byte goes out and no blob is ever served unchecked."""
    if isinstance(found, bytes):
        return Raw(found, content_type)  # small, from the catalog: whole, whatever the range
    header = request.getHeader(b"range")
    try:
        start = ranges.tail_start(header.decode("latin-1") if header else None, found.size)
    except ranges.Unsatisfiable as e:
        raise ApiError(416, "range_not_satisfiable", str(e), "range",
                       headers={b"content-range": f"bytes */{found.size}".encode()}) from None
    prefix = await deferToThread(found.hash_prefix, start) if start else None
    return Stream(str(found.path), found.size, content_type, sha256=found.sha256, on_corrupt=found.on_corrupt,
                  start=start, prefix_hash=prefix)


def install(api: Api, grid) -> None:
    @api.route("PUT", "/data/{sha256:sha}", USER_OR_HOST, body=OCTETS, query=protocol.DataQuery,
               reply=protocol.DataInfo, errors=(409, 410, 422, 503))
    async def upload(ctx: Ctx, sha256: str):
        sha256 = _sha(sha256)
        p = ctx.principal
        if p.host_id is None and p.user.role == "worker":
            raise forbidden("worker accounts may only register hosts")
        return await grid.store(p, ctx.request.content, sha256, ctx.args.access, ctx.args.name)

    @api.route("GET", "/data/{sha256:sha}", USER_OR_HOST, reply=OCTETS, replies={206: OCTETS}, errors=(410, 416))
    async def download(ctx: Ctx, sha256: str):
        sha256 = _sha(sha256)
        p = ctx.principal
        if p.host_id is not None:
            if not await grid.host_may_read(p.host_id, sha256):
                raise not_found(f"data {sha256}")
        elif await grid.readable(p.user, sha256) is None:
            raise not_found(f"data {sha256}")
        found = await grid.blob(sha256)
        if found is None:
            raise not_found(f"data {sha256}")
        return await response(found, ctx.request)

    @api.route("DELETE", "/data/{sha256:sha}", SCIENTIST, reply=protocol.Deleted, errors=(404,))
    async def delete(ctx: Ctx, sha256: str):
        """Delete your data row of this blob (an admin: every owner's); the blob goes from the
        store once nothing refers to it (no other owner's row, app, job result, live job)."""
        rows, blobs = await grid.delete_data(ctx.user, _sha(sha256))
        return protocol.Deleted(data=rows, blobs=blobs)

    @api.route("GET", "/data", SCIENTIST, query=protocol.Limit, reply=protocol.DataList)
    async def listing(ctx: Ctx):
        rows = await grid.data_of(ctx.user, limit=ctx.args.limit)
        return {
            "data": [
                protocol.encode(protocol.DataInfo(sha256=d.sha256, size=d.size, name=d.name, access=d.access, owner=d.owner))
                for d in rows
            ]
        }
