"""Accounts and machines: users (admin), hosts."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click

from xwpy import pki
from xwpy.client.context import JSON_HELP, Expiry, Settings, emit, fail, format_rlc, pass_settings, table, when

EXPIRES_HELP = "When the token stops working: a duration from now (90d, 12h) or a UTC date (2027-03-01); default never."


def _replace_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 600) in one step: a reader sees the old file or the new."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    pki.write_private(tmp, data)
    os.replace(tmp, path)


def register(cli: click.Group) -> None:
    @cli.group("users")
    def users():
        """Manage accounts (admin)."""

    @users.command("add")
    @click.argument("login")
    @click.option("--role", type=click.Choice(["user", "worker", "admin"]), default="user", show_default=True,
                  help="user: submits jobs; worker: a volunteer's account for hosts; admin: everything.")
    @click.option("--group", default="", help="Group name (shares group-access apps and data).")
    @click.option("--expires", type=Expiry(), help=EXPIRES_HELP)
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def users_add(s: Settings, login, role, group, expires, as_json):
        """Create an account; prints its token once."""
        u = s.client().add_user(login, role, group, expires)
        emit(u, as_json, f"user {u['login']} (id {u['id']}, {u['role']}, expires {when(u['expires_at'])})\n"
                         f"token: {u['token']}")

    @users.command("list")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def users_list(s: Settings, as_json):
        """Every account: its role, group, state and when its token expires."""
        rows = s.client().users()
        emit(rows, as_json, table(
            [[u["id"], u["login"], u["role"], u["group"], "disabled" if u["disabled"] else "enabled",
              when(u["expires_at"])] for u in rows],
            ["ID", "LOGIN", "ROLE", "GROUP", "STATE", "TOKEN EXPIRES"]))

    @users.command("disable")
    @click.argument("login")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def users_disable(s: Settings, login, as_json):
        """Refuse an account's token and its hosts' tokens, at once (admin)."""
        u = s.client().set_disabled(login, True)
        emit(u, as_json, f"user {login} disabled: its token and its hosts' tokens are refused")

    @users.command("enable")
    @click.argument("login")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def users_enable(s: Settings, login, as_json):
        """Accept a disabled account's tokens again (admin)."""
        u = s.client().set_disabled(login, False)
        emit(u, as_json, f"user {login} enabled")

    @cli.group("token")
    def token():
        """Your bearer token."""

    @token.command("rotate")
    @click.argument("login", required=False)
    @click.option("--expires", type=Expiry(), help=EXPIRES_HELP)
    @click.option("--save", type=click.Path(dir_okay=False, path_type=Path),
                  help="Write the new token to this file (mode 600) instead of printing it.")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def token_rotate(s: Settings, login, expires, save, as_json):
        """Replace your token (an admin: LOGIN's) with a new one, printed once; the old one is
        refused at once. With --site, rotating the site's admin token rewrites its admin.token."""
        client = s.client()
        me = client.me()["login"]
        login = login or me
        u = client.rotate_token(login, expires)
        site_file = s.site / "admin.token" if s.site is not None and login == me and s.site_token else None
        files = [p for p in (save, site_file) if p is not None]
        try:
            for path in files:
                _replace_private(path, (u["token"] + "\n").encode())
        except OSError as e:  # the old token is gone already: this one must not be lost too
            click.echo(u["token"])
            fail(f"cannot write {e.filename}: {e.strerror}; the new token of {login} is printed above")
        if files:
            u = {**u, "token": None, "saved_to": [str(p) for p in files]}
            emit(u, as_json, f"new token of {login} written to {', '.join(map(str, files))} "
                             f"(expires {when(u['expires_at'])}); the old one is refused")
        elif as_json:
            emit(u, True)
        else:
            click.echo(u["token"])
            click.echo(f"the token of {login} (expires {when(u['expires_at'])}); the old one is refused", err=True)

    @cli.command("whoami")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def whoami(s: Settings, as_json):
        """Show the account your token belongs to."""
        u = s.client().me()
        emit(u, as_json, f"{u['login']} ({u['role']})")

    @cli.group("hosts", invoke_without_command=True)
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @click.pass_context
    def hosts(ctx: click.Context, as_json):
        """List hosts (yours; all of them for an admin); `xwpy hosts revoke ID` revokes one."""
        if ctx.invoked_subcommand is not None:
            return
        s = ctx.find_object(Settings)
        rows = s.client().hosts()
        now = time.time()
        emit(rows, as_json, table(
            [[h["id"], h["name"], h["owner"], h["cpus"], h.get("platform") or "", "yes" if h["alive"] else "no",
              f"{now - h['last_alive']:.0f}s ago", h["running"], h["reputation"], f"{h.get('credit', 0):.0f}",
              "revoked" if h.get("revoked") else f"suspended: {h['suspended']}" if h.get("suspended") else ""]
             for h in rows],
            ["ID", "NAME", "OWNER", "CPUS", "PLATFORM", "ALIVE", "SEEN", "RUNNING", "REPUTATION", "CREDIT", "STATE"],
        ) + "".join(f"\n{owed_line(h)}" for h in rows if int(h.get("owed") or 0) > 0))

    def owed_line(h: dict) -> str:
        owed = f"host {h['id']} is owed {format_rlc(int(h['owed']))} by payout epochs built while it had no payout address"
        if h.get("payout_address"):
            return f"{owed}: the next epoch pays it to {h['payout_address']}"
        return f"{owed}: give it one (xwpy worker payout-address) and the next epoch pays it"

    @hosts.command("revoke")
    @click.argument("host_id", type=int)
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def hosts_revoke(s: Settings, host_id, as_json):
        """Revoke a host's token at once (yours; any, for an admin): its worker is refused and
        its replicas go to other hosts."""
        h = s.client().revoke_host(host_id)
        emit(h, as_json, f"host {h['id']} ({h['name']}) revoked: its worker is refused, its replicas are rescheduled")
