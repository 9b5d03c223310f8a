"""The ``xwpy`` command: site administration, the daemons, and the scientists' client."""

from __future__ import annotations

from pathlib import Path

import click

from xwpy import __version__
from xwpy.client.api import ClientError
from xwpy.client.context import Settings, fail
from xwpy.config import ConfigError


class Group(click.Group):
    """Turns the errors a user can cause into a message and exit status 1, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ClientError as e:
            fail(str(e))
        except ConfigError as e:
            fail(f"configuration: {e}")


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="xwpy")
@click.option("--site", type=click.Path(file_okay=False, path_type=Path), envvar="XWPY_SITE",
              help="A local site directory: its running coordinator, CA and admin token.")
@click.option("--url", envvar="XWPY_URL", help="Coordinator URL (https://host:port).")
@click.option("--token", envvar="XWPY_TOKEN", help="Your bearer token.")
@click.option("--ca", type=click.Path(dir_okay=False, path_type=Path), envvar="XWPY_CA",
              help="The site's CA certificate (pinned).")
@click.pass_context
def cli(ctx, site, url, token, ca):
    """xwpy: a desktop grid. Run `xwpy COMMAND -h` for help on a command."""
    ctx.obj = Settings(url=url, token=token, ca=ca, site=site)


def main() -> None:
    from xwpy.client.commands import register

    register(cli)
    cli(prog_name="xwpy")
