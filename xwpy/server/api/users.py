"""Users: admins create accounts; everyone can see who they are."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from xwpy import __version__, protocol, tokens
from xwpy.server.api.router import ADMIN, ANON, USER, Api, ApiError, Ctx


def user_info(u, token: str | None = None) -> dict:
    return protocol.encode(protocol.UserInfo(id=u.id, login=u.login, role=u.role, group=u.group, token=token))


def install(api: Api, co) -> None:
    @api.route("GET", "/ping", ANON)
    async def ping(ctx: Ctx):
        return {"service": "xwpy", "version": __version__, "api": "v1"}

    @api.route("GET", "/users/me", USER)
    async def me(ctx: Ctx):
        return user_info(ctx.user)

    @api.route("GET", "/users", ADMIN)
    async def list_users(ctx: Ctx):
        return {"users": [user_info(u) for u in co.directory.users.values()]}

    @api.route("POST", "/users", ADMIN)
    async def add_user(ctx: Ctx):
        msg = protocol.parse(protocol.NewUser, ctx.json())
        if msg.login in co.directory.logins:
            raise ApiError(409, "conflict", f"user {msg.login!r} exists", "login")
        token = tokens.new_token("xwu")
        try:
            user = await co.catalog.users.add(
                login=msg.login, role=msg.role, group=msg.group, token_hash=tokens.token_hash(token), now=co.now()
            )
        except IntegrityError:
            raise ApiError(409, "conflict", f"user {msg.login!r} exists", "login") from None
        co.directory.add_user(user)
        co.log.info("user {login} created with role {role}", login=user.login, role=user.role)
        return user_info(user, token)
