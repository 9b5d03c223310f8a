"""How a CLI command reaches its coordinator: options, environment, or a local site directory."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import click

from xwpy.client.errors import ClientError
from xwpy.client.exits import Exit


@dataclass
class Settings:
    url: str | None
    token: str | None
    ca: Path | None
    site: Path | None
    _client: Any = None  # the Client, made on first use
    from_env: set = field(default_factory=set)  # which of url, token, ca came from XWPY_* variables

    def use_site(self, site: Path) -> None:
        """``--site`` typed on the command line: the site's own coordinator, CA and admin token
        beat what the environment says (an exported XWPY_TOKEN must not pass for the admin)."""
        self.site = site
        for name in self.from_env:
            setattr(self, name, None)
        self.from_env = set()

    @property
    def site_token(self) -> bool:
        """The token in use is the site's admin.token (``--site`` and no token given)."""
        return self.site is not None and not self.token

    def client(self):
        """The coordinator's client (:class:`xwpy.client.api.Client`; imported here, so that the
        commands which never connect do not load the HTTP client)."""
        from xwpy.client.api import Client, Endpoint, endpoint_from_site

        if self._client is None:
            if self.site is not None and not (self.url and self.token and self.ca):
                ep = endpoint_from_site(self.site)
                ep = Endpoint(self.url or ep.url, self.token or ep.token, self.ca or ep.ca)
            elif self.url and self.token and self.ca:
                ep = Endpoint(self.url, self.token, self.ca)
            else:
                missing = [n for n, v in (("--url", self.url), ("--token", self.token), ("--ca", self.ca)) if not v]
                raise ClientError(
                    f"no coordinator given: set {', '.join(missing)} (or XWPY_URL, XWPY_TOKEN, XWPY_CA), or --site DIR",
                    code="usage",
                )
            self._client = Client(ep)
        return self._client


pass_settings = click.make_pass_decorator(Settings)


JSON_HELP = "Print JSON (for scripts) instead of text."


class _NoBar:
    def update(self, n: int) -> None:
        pass


def progress(length: int, label: str, file=None):
    """A progress bar on a terminal; in a log or a pipe nothing (click would print its label
    alone, a stray line)."""
    out = file if file is not None else sys.stdout
    if out.isatty():
        return click.progressbar(length=length, label=label, show_pos=True, file=out)
    return contextlib.nullcontext(_NoBar())


def emit(value: Any, as_json: bool, text: str | None = None) -> None:
    if as_json:
        click.echo(json.dumps(value, indent=2, sort_keys=True))
    elif text is not None:
        click.echo(text)


def table(rows: list[list[Any]], headers: list[str], width: int | None = None) -> str:
    """Columns padded to their widest cell. With ``width`` (a terminal's), the last column is cut
    to fit, ending in "…"; without it (a pipe, a file) nothing is cut."""
    cells = [headers] + [["" if c is None else str(c) for c in r] for r in rows]
    if width is not None:
        room = max(width - sum(max(len(r[i]) for r in cells) + 2 for i in range(len(headers) - 1)), 12)
        cells = [r[:-1] + [r[-1] if len(r[-1]) <= room else r[-1][:room - 1] + "…"] for r in cells]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


RLC_DECIMALS = 9  # the token's (xwpy.chain.deploy), here too: `xwpy hosts` runs without the chain extras


def format_rlc(units: int) -> str:
    """Base units of RLC as a volunteer reads them ("0.5 RLC")."""
    whole, frac = divmod(units, 10**RLC_DECIMALS)
    text = f"{whole}.{frac:0{RLC_DECIMALS}d}".rstrip("0").rstrip(".")
    return f"{text} RLC"


def terminal_width() -> int | None:
    """Columns of the terminal standard output is, or None when it is not one."""
    import shutil

    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def one_line(text: str) -> str:
    """``text`` safe to print as one line: control characters (a server's message may hold a
    newline, a carriage return or a terminal escape) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text.strip())  # (a stderr tail ends in \n)


PREFIX = "xwpy: error: "  # every error the CLI reports starts so, on one line


def fail(message: str, code: int = Exit.FAILED) -> NoReturn:
    click.echo(PREFIX + one_line(message), err=True)
    sys.exit(code)


def usage(message: str) -> NoReturn:
    """A mistake in the command line that click's own checks cannot see (two options that exclude
    each other): the same line as click's usage errors, and their exit status."""
    ctx = click.get_current_context(silent=True)
    where = f" (see `{ctx.command_path} -h`)" if ctx is not None else ""
    fail(message + where, Exit.USAGE)


class Duration(click.ParamType):
    """Seconds, as a number with an optional s, m, h or d suffix (6h, 90m, 2d, 3600)."""

    name = "duration"
    _UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        text = str(value).strip().lower()
        number, unit = (text[:-1], text[-1]) if text[-1:] in self._UNITS else (text, "s")
        try:
            n = round(float(number) * self._UNITS[unit])
        except ValueError:
            self.fail(f"{value!r} is not a duration (e.g. 6h, 90m, 2d, 3600)", param, ctx)
        if n < 1:
            self.fail(f"{value!r} is less than a second", param, ctx)
        return n


class Size(click.ParamType):
    """Bytes, as a number with an optional K, M, G or T suffix (powers of 1024; 4GiB and 4G alike),
    at least ``minimum`` (a job's memory: 16M)."""

    name = "size"

    def __init__(self, minimum: int = 16 << 20):
        self.minimum = minimum

    def convert(self, value, param, ctx):
        from xwpy.sizes import format_size, parse_size

        try:
            n = parse_size(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)
        if n < self.minimum:
            self.fail(f"{value!r} is less than {format_size(self.minimum)}", param, ctx)
        return n


class Expiry(click.ParamType):
    """When a token stops working: a duration from now (90d, 12h) or a UTC date or time
    (2027-03-01, 2027-03-01T12:00); seconds since the epoch."""

    name = "expiry"

    def convert(self, value, param, ctx):
        if isinstance(value, float):
            return value
        import datetime as dt

        text = str(value).strip()
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            try:
                return time.time() + Duration().convert(text, param, ctx)
            except click.BadParameter:
                self.fail(f"{value!r} is neither a duration (90d, 12h) nor a UTC date (2027-03-01)", param, ctx)
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        return when.timestamp()


def when(t: float | None) -> str:
    """A token's expiry as a table shows it."""
    return "never" if t is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))
