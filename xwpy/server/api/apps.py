"""Applications: register a command template with limits and a validator; list what one may use."""

from __future__ import annotations

import dataclasses

from sqlalchemy.exc import IntegrityError
from twisted.internet.threads import deferToThread

from xwpy import platforms, protocol
from xwpy.image import Image, ImageError, ImageLimits, inspect
from xwpy.server.api.router import SCIENTIST, USER, Api, ApiError, Ctx, bad_request, forbidden, not_found
from xwpy.server.catalog.rows import App, AppVersion
from xwpy.verify import known_verifiers


def _spec(image: dict | None) -> protocol.ImageSpec | None:
    return protocol.parse(protocol.ImageSpec, image) if image else None


def app_info(app: App) -> dict:
    spec = _spec(app.image)
    return protocol.encode(
        protocol.AppInfo(
            id=app.id, name=app.name, owner=app.owner, command=app.command, bundle=app.bundle, access=app.access,
            limits=protocol.Limits(**app.limits), validator=app.validator, replication=app.replication,
            quorum=app.quorum, adaptive=app.adaptive, image=spec.sha256 if spec else None, image_spec=spec,
            platform=app.platform, network=app.network,
            versions=tuple(protocol.VersionInfo(platform=v.platform, bundle=v.bundle, image=_spec(v.image))
                           for v in app.versions),
        )
    )


def _platform(declared: str, image: dict | None) -> str:
    """The platform a bundle or image is for: as declared; an image's own if declared `any`."""
    if image is None or image["platform"] == platforms.ANY:
        return declared
    if declared == platforms.ANY:
        return image["platform"]
    if declared != image["platform"]:
        raise bad_request(f"the image is built for {image['platform']}, not {declared}", "platform")
    return declared


async def check_image(co, sha256: str) -> dict:
    """Read and verify an uploaded image archive off the reactor: its ImageSpec, or a 400 naming
    what is wrong with it (nothing is registered then)."""
    lim = co.config.limits
    limits = ImageLimits(max_archive_bytes=lim.max_upload_bytes, max_files=lim.max_image_files,
                         max_unpacked_bytes=lim.max_image_bytes)

    def thd() -> Image:
        path = co.blobs.path(sha256)
        if not path.exists():
            raise ImageError("not in the coordinator's store (upload it again)")
        return inspect(path, limits)

    try:
        image = await deferToThread(thd)
    except ImageError as e:
        raise bad_request(f"image {sha256[:12]}: {e}", "image") from None
    return protocol.encode(protocol.ImageSpec(
        sha256=sha256, id=image.id, platform=image.platform, env=image.env, workdir=image.workdir,
        entrypoint=image.entrypoint, cmd=image.cmd, files=image.files, unpacked_bytes=image.unpacked_bytes))


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
        image = None
        if msg.image is not None:
            if await co.readable(ctx.user, msg.image) is None:
                raise bad_request(f"image {msg.image} is not data you may read (upload it first)", "image")
            image = await check_image(co, msg.image)
        platform = _platform(msg.platform, image)
        limits = protocol.encode(msg.limits)
        try:
            app_id = await co.catalog.apps.add(
                name=msg.name, owner_id=ctx.user.id, access=msg.access, bundle=msg.bundle, command=msg.command,
                limits=limits, validator=msg.validator, replication=msg.replication, quorum=msg.quorum, now=co.now(),
                adaptive=msg.adaptive, network=msg.network, image=image, platform=platform,
            )
        except IntegrityError:
            raise ApiError(409, "conflict", f"app {msg.name!r} exists", "name") from None
        app = App(
            app_id, msg.name, ctx.user.id, ctx.user.login, msg.access, msg.bundle, tuple(msg.command), limits,
            msg.validator, msg.replication, msg.quorum, msg.adaptive, msg.network, image, platform,
        )
        co.directory.add_app(app)
        return app_info(app)

    @api.route("POST", "/apps/{name}/versions", SCIENTIST)
    async def add_version(ctx: Ctx, name: str):
        """Another platform's build of an app: a bundle or an image, checked as at registration."""
        msg = protocol.parse(protocol.NewVersion, ctx.json())
        app = co.directory.app_names.get(name)
        if app is None or not co.directory.may_use_app(ctx.user, app):
            raise not_found(f"app {name!r}")
        if app.owner_id != ctx.user.id and not ctx.user.admin:
            raise forbidden(f"app {name!r} is {app.owner}'s: only its owner adds versions")
        blob = msg.bundle or msg.image
        if await co.readable(ctx.user, blob) is None:
            raise bad_request(f"{blob} is not data you may read (upload it first)", "image" if msg.image else "bundle")
        if (app.image is None) != (msg.image is None):
            raise bad_request(f"app {name!r} runs {'in an image' if app.image else 'a bundle'}: "
                              f"its versions must too", "image" if msg.image else "bundle")
        image = await check_image(co, msg.image) if msg.image else None
        version = AppVersion(_platform(msg.platform, image), msg.bundle, image)
        current = co.directory.app_names.get(name, app)
        if any(v.platform == version.platform for v in current.versions):
            raise ApiError(409, "conflict", f"app {name!r} has a version for {version.platform}", "platform")
        try:
            await co.catalog.apps.add_version(app_id=app.id, version=version, now=co.now())
        except IntegrityError:
            raise ApiError(409, "conflict", f"app {name!r} has a version for {version.platform}", "platform") from None
        current = co.directory.app_names[name]
        updated = dataclasses.replace(current, extra=(*current.extra, version))
        co.directory.add_app(updated)
        return app_info(updated)

    @api.route("GET", "/apps", USER)
    async def list_apps(ctx: Ctx):
        return {"apps": [app_info(a) for a in co.directory.apps.values() if co.directory.may_use_app(ctx.user, a)]}

    @api.route("GET", "/apps/{name}", USER)
    async def show(ctx: Ctx, name: str):
        app = co.directory.app_names.get(name)
        if app is None or not co.directory.may_use_app(ctx.user, app):
            raise not_found(f"app {name!r}")
        return app_info(app)
