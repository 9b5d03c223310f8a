"""Data: upload and download blobs by sha256. The coordinator re-hashes everything it receives."""

from __future__ import annotations

from xwpy import protocol
from xwpy.server.api.router import SCIENTIST, USER_OR_HOST, Api, Ctx, Raw, Stream, bad_request, forbidden, not_found


def _sha(value: str) -> str:
    if not protocol.SHA256_RE.fullmatch(value):
        raise bad_request("not a sha256 (64 lowercase hex digits)", "sha256")
    return value


def response(found, content_type: str = "application/octet-stream") -> Stream | Raw:
    """What the grid found stored (a file to stream, or bytes) as a response."""
    if isinstance(found, bytes):
        return Raw(found, content_type)
    return Stream(str(found.path), found.size, content_type, sha256=found.sha256, on_corrupt=found.on_corrupt)


def install(api: Api, grid) -> None:
    @api.route("PUT", "/data/{sha256:sha}", USER_OR_HOST)
    async def upload(ctx: Ctx, sha256: str):
        sha256 = _sha(sha256)
        p = ctx.principal
        if p.host_id is None and p.user.role == "worker":
            raise forbidden("worker accounts may only register hosts")
        access = ctx.query.get("access", "private")
        if access not in protocol.ACCESS:
            raise bad_request(f"access must be one of {', '.join(protocol.ACCESS)}", "access")
        name = ctx.query.get("name", "")
        if name and not protocol.FILE_RE.fullmatch(name):
            raise bad_request("not a valid file name", "name")
        return protocol.encode(await grid.store(p, ctx.request.content, sha256, access, name))

    @api.route("GET", "/data/{sha256:sha}", USER_OR_HOST)
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
        return response(found)

    @api.route("GET", "/data", SCIENTIST)
    async def listing(ctx: Ctx):
        rows = await grid.data_of(ctx.user, limit=ctx.qint("limit", 1000, 1, 10000))
        return {
            "data": [
                protocol.encode(protocol.DataInfo(sha256=d.sha256, size=d.size, name=d.name, access=d.access, owner=d.owner))
                for d in rows
            ]
        }
