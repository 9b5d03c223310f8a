"""Applications: register a command template with limits and a validator; list what one may use."""

from __future__ import annotations

from xwpy import protocol
from xwpy.server.api.router import SCIENTIST, USER, Api, Ctx
from xwpy.server.catalog.rows import App


def _spec(image: dict | None) -> protocol.ImageSpec | None:
    return protocol.parse(protocol.ImageSpec, image) if image else None


def app_info(app: App) -> dict:
    spec = _spec(app.image)
    return protocol.encode(
        protocol.AppInfo(
            id=app.id, name=app.name, owner=app.owner, command=app.command, bundle=app.bundle, access=app.access,
            limits=protocol.Limits(**app.limits), validator=app.validator, replication=app.replication,
            quorum=app.quorum, adaptive=app.adaptive, image=spec.sha256 if spec else None, image_spec=spec,
            platform=app.platform, network=app.network, deadline=app.deadline,
            checkpoints=app.checkpoints, comparator=app.comparator, homogeneous=app.homogeneous,
            rtol=(app.compare or {}).get("rtol"), atol=(app.compare or {}).get("atol"),
            versions=tuple(protocol.VersionInfo(platform=v.platform, bundle=v.bundle, image=_spec(v.image))
                           for v in app.versions),
        )
    )


def install(api: Api, grid) -> None:
    @api.route("POST", "/apps", SCIENTIST, body=protocol.NewApp, reply=protocol.AppInfo, errors=(404, 409, 422))
    async def register(ctx: Ctx):
        return app_info(await grid.register_app(ctx.user, ctx.body))

    @api.route("POST", "/apps/{name}/versions", SCIENTIST, body=protocol.NewVersion, reply=protocol.AppInfo,
               errors=(409, 422))
    async def add_version(ctx: Ctx, name: str):
        """Another platform's build of an app: a bundle or an image, checked as at registration."""
        return app_info(await grid.add_version(ctx.user, name, ctx.body))

    @api.route("GET", "/apps", USER, reply=protocol.AppList)
    async def list_apps(ctx: Ctx):
        return {"apps": [app_info(a) for a in grid.apps_for(ctx.user)]}

    @api.route("GET", "/apps/{name}", USER, reply=protocol.AppInfo)
    async def show(ctx: Ctx, name: str):
        return app_info(grid.app_for(ctx.user, name))
