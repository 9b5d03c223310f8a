"""Applications: register a command template with limits and a validator; list what one may use."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from xwpy import protocol
from xwpy.server.api.router import SCIENTIST, USER, Api, ApiError, Ctx, bad_request, not_found
from xwpy.server.catalog.rows import App
from xwpy.verify import known_verifiers


def app_info(app: App) -> dict:
    return protocol.encode(
        protocol.AppInfo(
            id=app.id, name=app.name, owner=app.owner, command=app.command, bundle=app.bundle, access=app.access,
            limits=protocol.Limits(**app.limits), validator=app.validator, replication=app.replication,
            quorum=app.quorum, adaptive=app.adaptive, network=app.network,
        )
    )


def install(api: Api, co) -> None:
    @api.route("POST", "/apps", SCIENTIST)
    async def register(ctx: Ctx):
        msg = protocol.parse(protocol.NewApp, ctx.json())
        if msg.name in co.directory.app_names:
            raise ApiError(409, "conflict", f"app {msg.name!r} exists", "name")
        if msg.validator.startswith("verifier:") and msg.validator[9:] not in known_verifiers():
            raise bad_request(f"unknown verifier {msg.validator[9:]!r}", "validator")
        if msg.bundle is not None and await co.readable(ctx.user, msg.bundle) is None:
            raise bad_request(f"bundle {msg.bundle} is not data you may read (upload it first)", "bundle")
        limits = protocol.encode(msg.limits)
        try:
            app_id = await co.catalog.apps.add(
                name=msg.name, owner_id=ctx.user.id, access=msg.access, bundle=msg.bundle, command=msg.command,
                limits=limits, validator=msg.validator, replication=msg.replication, quorum=msg.quorum, now=co.now(),
                adaptive=msg.adaptive, network=msg.network,
            )
        except IntegrityError:
            raise ApiError(409, "conflict", f"app {msg.name!r} exists", "name") from None
        app = App(
            app_id, msg.name, ctx.user.id, ctx.user.login, msg.access, msg.bundle, tuple(msg.command), limits,
            msg.validator, msg.replication, msg.quorum, msg.adaptive, msg.network,
        )
        co.directory.add_app(app)
        return app_info(app)

    @api.route("GET", "/apps", USER)
    async def list_apps(ctx: Ctx):
        return {"apps": [app_info(a) for a in co.directory.apps.values() if co.directory.may_use_app(ctx.user, a)]}

    @api.route("GET", "/apps/{name}", USER)
    async def show(ctx: Ctx, name: str):
        app = co.directory.app_names.get(name)
        if app is None or not co.directory.may_use_app(ctx.user, app):
            raise not_found(f"app {name!r}")
        return app_info(app)
