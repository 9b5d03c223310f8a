"""Data: upload and download blobs by sha256. The coordinator re-hashes everything it receives."""

from __future__ import annotations

from twisted.internet.threads import deferToThread

from xwpy import protocol
from xwpy.server.api.router import (
    SCIENTIST, USER_OR_HOST, Api, ApiError, Ctx, bad_request, forbidden, not_found,
)
from xwpy.server.blobstore import DigestMismatch, StoreFull, TooLarge


def _sha(value: str) -> str:
    if not protocol.SHA256_RE.fullmatch(value):
        raise bad_request("not a sha256 (64 lowercase hex digits)", "sha256")
    return value


def install(api: Api, co) -> None:
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
        limit = co.config.limits.max_upload_bytes
        if p.host_id is not None:
            # Hosts upload results only, bounded by what their current work may output.
            limit = co.result_limit(p.host_id)
            if limit == 0:
                raise forbidden("this host holds no work to upload results for")
        content = ctx.request.content
        if content is None:
            raise bad_request("a body is required")
        content.seek(0)
        try:
            digest, size = await deferToThread(co.blobs.put_stream, content, sha256, limit)
        except DigestMismatch as e:
            raise ApiError(422, "digest_mismatch", str(e), "sha256") from None
        except TooLarge as e:
            raise ApiError(413, "too_large", str(e)) from None
        except StoreFull as e:
            raise ApiError(503, "unavailable", f"the coordinator's storage is full ({e}); retry later") from None
        if p.host_id is None:
            access = await co.catalog.data.add(
                sha256=digest, size=size, owner_id=p.user.id, access=access, name=name, now=co.now()
            )
        return protocol.encode(protocol.DataInfo(sha256=digest, size=size, name=name, access=access, owner=p.user.login))

    @api.route("GET", "/data/{sha256:sha}", USER_OR_HOST)
    async def download(ctx: Ctx, sha256: str):
        sha256 = _sha(sha256)
        p = ctx.principal
        if p.host_id is not None:
            if not await co.host_may_read(p.host_id, sha256):
                raise not_found(f"data {sha256}")
        elif await co.readable(p.user, sha256) is None:
            raise not_found(f"data {sha256}")
        response = await co.blob(sha256)
        if response is None:
            raise not_found(f"data {sha256}")
        return response

    @api.route("GET", "/data", SCIENTIST)
    async def listing(ctx: Ctx):
        limit = ctx.qint("limit", 1000, 1, 10000)
        rows = await co.catalog.data.list(ctx.user.id, limit=limit, after=0)
        return {
            "data": [
                protocol.encode(protocol.DataInfo(sha256=d.sha256, size=d.size, name=d.name, access=d.access, owner=d.owner))
                for d in rows
            ]
        }
