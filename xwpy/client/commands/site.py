"""An operator's commands on a site directory of this machine: check it, renew its certificate."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from xwpy import config
from xwpy.client.context import JSON_HELP, Settings, emit, fail, pass_settings
from xwpy.client.exits import Exit
from xwpy.pki import MAX_SERVER_CERT_DAYS, SERVER_CERT_DAYS

LEVEL_COLORS = {"ok": "green", "warn": "yellow", "fail": "red"}


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
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def doctor(s: Settings, site_dir, as_json):
        """Check a site: certificates, catalog, blob store, running coordinator, clock, chain.

        One line per check, with what to do when it fails; exit status 1 when any failed."""
        from xwpy.server.doctor import FAIL, examine

        findings = examine(_site(s, site_dir))
        # The verdict word in colour on a terminal (click drops it in a pipe, or with NO_COLOR).
        lines = [click.style(f.line()[:4], fg=LEVEL_COLORS[f.level], bold=True) + f.line()[4:] for f in findings]
        emit([dataclasses.asdict(f) for f in findings], as_json, "\n".join(lines))
        sys.exit(Exit.FAILED if any(f.level == FAIL for f in findings) else Exit.OK)

    @cli.group("cert")
    def cert():
        """The site's server certificate."""

    @cert.command("renew")
    @click.option("--site", "site_dir", type=click.Path(file_okay=False, path_type=Path),
                  help="The site directory (default: the global --site).")
    @click.option("--days", type=click.IntRange(1, MAX_SERVER_CERT_DAYS), default=SERVER_CERT_DAYS, show_default=True,
                  help="Validity of the new certificate.")
    @click.option("--name", "extra", multiple=True, help="Another host name or address to put in it (repeatable).")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @pass_settings
    def renew(s: Settings, site_dir, days, extra, as_json):
        """Sign a new server certificate with the site CA, for the names of the old one (and
        [coordinator] public_host). Workers and users keep their CA file; a running coordinator
        serves it to new connections at once (SIGHUP), keeping those open and its work."""
        from xwpy import pki
        from xwpy.site import reload_certificate, renew_server_cert

        site_dir = _site(s, site_dir)
        names = renew_server_cert(site_dir, days=days, extra_names=extra)
        serial = pki.serial_of(config.load(site_dir).server_cert.read_bytes())
        try:
            pid = reload_certificate(site_dir)
        except RuntimeError as e:
            fail(f"new server certificate {serial:x} written, but {e}")
        served = "no coordinator runs: the next one serves it" if pid is None else f"coordinator {pid} serves it"
        emit({"names": names, "days": days, "serial": f"{serial:x}", "coordinator_pid": pid}, as_json,
             f"new server certificate {serial:x} for {', '.join(names)}, valid {days} days: {served}")
