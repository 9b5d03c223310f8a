"""The ``xwpy`` command: site administration, the daemons, and the scientists' client."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from xwpy import __version__
from xwpy.client.errors import ClientError
from xwpy.client.context import PREFIX, Settings, fail, one_line
from xwpy.client.exits import Exit, for_client_error
from xwpy.config import ConfigError
from xwpy.refusal import CannotRun


class Group(click.Group):
    """Turns the errors a user can cause into one line and an exit status that says what kind of
    error it was (:mod:`xwpy.client.exits`), never a traceback. Its commands are imported when
    first asked for (:mod:`xwpy.client.commands`)."""

    def list_commands(self, ctx):
        from xwpy.client.commands import MODULES

        return sorted(set(self.commands) | set(MODULES))

    def get_command(self, ctx, name):
        from xwpy.client.commands import MODULES, load

        if name not in self.commands and name in MODULES:
            load(self, MODULES[name])
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ClientError as e:
            fail(str(e), for_client_error(e.status, e.code))
        except ConfigError as e:
            fail(f"configuration: {e}")
        except CannotRun as e:
            fail(str(e))


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xwpy")
@click.option("--site", type=click.Path(file_okay=False, path_type=Path), envvar="XWPY_SITE",
              help="A local site directory: its running coordinator, CA and admin token.")
@click.option("--url", envvar="XWPY_URL",
              help="Coordinator URL (https://host:port; several coordinators of one site: comma-separated).")
@click.option("--token", envvar="XWPY_TOKEN", help="Your bearer token.")
@click.option("--ca", type=click.Path(dir_okay=False, path_type=Path), envvar="XWPY_CA",
              help="The site's CA certificate (pinned).")
@click.pass_context
def cli(ctx, site, url, token, ca):
    """xwpy: a desktop grid. Run `xwpy COMMAND -h` for help on a command."""
    if os.environ.get("NO_COLOR"):  # https://no-color.org: any non-empty value
        ctx.color = False
    ctx.obj = Settings(url=url, token=token, ca=ca, site=site)
    ctx.obj.from_env = {n for n in ("url", "token", "ca")
                        if ctx.get_parameter_source(n) is click.core.ParameterSource.ENVIRONMENT}
    if site is not None and ctx.get_parameter_source("site") is click.core.ParameterSource.COMMANDLINE:
        ctx.obj.use_site(site)


_CONNECTION = {
    "site": dict(type=click.Path(file_okay=False, path_type=Path), help="A local site directory (as before the command)."),
    "url": dict(help="Coordinator URL (as before the command)."),
    "token": dict(help="Your bearer token (as before the command)."),
    "ca": dict(type=click.Path(dir_okay=False, path_type=Path), help="The site's CA certificate (as before the command)."),
}


def _set_connection(ctx: click.Context, param: click.Parameter, value) -> None:
    if value is not None:
        settings = ctx.find_object(Settings)
        if settings is not None:
            name = param.name.removeprefix("conn_")
            if name == "site":
                settings.use_site(value)
            else:
                setattr(settings, name, value)
                settings.from_env.discard(name)


def add_connection_options(command: click.Command) -> None:
    """Accept --site, --url, --token and --ca after the command name too (``xwpy status --site
    DIR``), unless the command has an option of that name of its own (``xwpy worker --token``)."""
    taken = {opt for p in command.params for opt in getattr(p, "opts", ())}
    for name, kw in _CONNECTION.items():
        if f"--{name}" not in taken:
            command.params.append(
                click.Option([f"--{name}", f"conn_{name}"], expose_value=False, callback=_set_connection, **kw)
            )
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_connection_options(sub)


def usage_error(e: click.UsageError) -> str:
    """A usage mistake in one line, with where to get help."""
    where = f" (see `{e.ctx.command_path} -h`)" if e.ctx is not None else ""
    return f"{PREFIX}{one_line(e.format_message())}{where}"


def main() -> None:
    try:
        rc = cli.main(prog_name="xwpy", standalone_mode=False)
    except click.UsageError as e:  # BadParameter, NoSuchOption, MissingParameter...: one line, exit 2
        click.echo(usage_error(e), err=True)
        sys.exit(Exit.USAGE)
    except click.ClickException as e:
        click.echo(PREFIX + one_line(e.format_message()), err=True)
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("xwpy: aborted", err=True)
        sys.exit(Exit.FAILED)
    sys.exit(rc if isinstance(rc, int) else 0)
