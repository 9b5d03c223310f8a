"""An operator's commands on a site directory of this machine: check it, renew its certificate."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from xwpy.client.context import Settings, emit, fail, pass_settings


def _site(s: Settings, site_dir: Path | None) -> Path:
    site_dir = site_dir or s.site
    if site_dir is None:
        fail("no site given: --site DIR (the directory made by xwpy init)")
    if not site_dir.is_dir():
        fail(f"--site: {site_dir} is not a directory")
    return site_dir


def register(cli: click.Group) -> None:
    @cli.command("doctor")
    @click.option("--site", "site_dir", type=click.Path(file_okay=False, path_type=Path),
                  help="The site directory (default: the global --site).")
    @click.option("--json", "as_json", is_flag=True)
    @pass_settings
    def doctor(s: Settings, site_dir, as_json):
        """Check a site: certificates, catalog, blob store, running coordinator, clock, chain.

        One line per check, with what to do when it fails; exit status 1 when any failed."""
        from xwpy.server.doctor import FAIL, examine

        findings = examine(_site(s, site_dir))
        emit([dataclasses.asdict(f) for f in findings], as_json, "\n".join(f.line() for f in findings))
        sys.exit(1 if any(f.level == FAIL for f in findings) else 0)

    @cli.group("cert")
    def cert():
        """The site's server certificate."""

    @cert.command("renew")
    @click.option("--site", "site_dir", type=click.Path(file_okay=False, path_type=Path),
                  help="The site directory (default: the global --site).")
    @click.option("--days", type=click.IntRange(1, 3650), default=825, show_default=True)
    @click.option("--name", "extra", multiple=True, help="Another host name or address to put in it (repeatable).")
    @pass_settings
    def renew(s: Settings, site_dir, days, extra):
        """Sign a new server certificate with the site CA, for the names of the old one (and
        [coordinator] public_host). Workers and users keep their CA file; restart the coordinator."""
        from xwpy.site import renew_server_cert

        names = renew_server_cert(_site(s, site_dir), days=days, extra_names=extra)
        click.echo(f"new server certificate for {', '.join(names)}, valid {days} days: restart the coordinator")
