"""Accounts and machines: users (admin), hosts."""

from __future__ import annotations

import time

import click

from xwpy.client.context import JSON_HELP, Settings, emit, pass_settings, table


def register(cli: click.Group) -> None:
    @cli.group("users")
    def users():
        """Manage accounts (admin)."""

    @users.command("add")
    @click.argument("login")
    @click.option("--role", type=click.Choice(["user", "worker", "admin"]), default="user", show_default=True,
                  help="user: submits jobs; worker: a volunteer's account for hosts; admin: everything.")
    @click.option("--group", default="", help="Group name (shares group-access apps and data).")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def users_add(s: Settings, login, role, group, as_json):
        """Create an account; prints its token once."""
        u = s.client().add_user(login, role, group)
        emit(u, as_json, f"user {u['login']} (id {u['id']}, {u['role']})\ntoken: {u['token']}")

    @users.command("list")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def users_list(s: Settings, as_json):
        rows = s.client().users()
        emit(rows, as_json, table([[u["id"], u["login"], u["role"], u["group"]] for u in rows], ["ID", "LOGIN", "ROLE", "GROUP"]))

    @cli.command("whoami")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def whoami(s: Settings, as_json):
        """Show the account your token belongs to."""
        u = s.client().me()
        emit(u, as_json, f"{u['login']} ({u['role']})")

    @cli.command("hosts")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def hosts(s: Settings, as_json):
        """List hosts (yours; all of them for an admin)."""
        rows = s.client().hosts()
        now = time.time()
        emit(rows, as_json, table(
            [[h["id"], h["name"], h["owner"], h["cpus"], h.get("platform") or "", "yes" if h["alive"] else "no",
              f"{now - h['last_alive']:.0f}s ago", h["running"], h["reputation"],
              f"suspended: {h['suspended']}" if h.get("suspended") else ""] for h in rows],
            ["ID", "NAME", "OWNER", "CPUS", "PLATFORM", "ALIVE", "SEEN", "RUNNING", "REPUTATION", "STATE"],
        ))
