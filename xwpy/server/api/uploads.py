"""Resumable uploads (:mod:`xwpy.server.uploads`): open a session, PATCH chunks at an offset, ask
where it is, cancel it. Users upload data as with ``PUT /data``; hosts upload results (bounded by
what their current work may output), as with ``PUT /data`` too."""

from __future__ import annotations

from xwpy import protocol
from xwpy.server.api.router import USER_OR_HOST, Api, Ctx
from xwpy.server.uploads import Session


def state(s: Session) -> dict:
    data = protocol.parse(protocol.DataInfo, s.done) if s.done else None
    return protocol.encode(protocol.UploadState(upload=s.id, sha256=s.sha256, size=s.size, offset=s.offset,
                                                complete=s.done is not None, data=data))


def install(api: Api, grid) -> None:
    @api.route("POST", "/uploads", USER_OR_HOST, body=protocol.NewUpload, reply=protocol.UploadState,
               errors=(409, 413, 422, 429, 503))
    async def create(ctx: Ctx):
        return state(await grid.open_upload(ctx.principal, ctx.body))

    @api.route("GET", "/uploads/{upload}", USER_OR_HOST, reply=protocol.UploadState)
    async def show(ctx: Ctx, upload: str):
        return state(grid.upload(ctx.principal, upload))

    @api.route("PATCH", "/uploads/{upload}", USER_OR_HOST, body="application/octet-stream",
               headers=protocol.UploadOffset, reply=protocol.UploadState, errors=(409, 410, 422))
    async def append(ctx: Ctx, upload: str):
        return state(await grid.append_upload(ctx.principal, upload, ctx.headers.upload_offset, ctx.request.content))

    @api.route("DELETE", "/uploads/{upload}", USER_OR_HOST, reply=protocol.UploadCancelled)
    async def cancel(ctx: Ctx, upload: str):
        return protocol.UploadCancelled(cancelled=(await grid.cancel_upload(ctx.principal, upload)).id)
