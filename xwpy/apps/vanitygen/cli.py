"""``xwpy vanity ...``: estimate, keygen, combine, local search, grid search.

The group is attached to the main CLI with ``cli.add_command(vanity)``; on its own it runs as
``python -m xwpy.apps.vanitygen.cli``. Grid search (``vanity search``) plugs a coordinator backend into
``search.run_search`` and reuses ``_report``/``_progress_printer`` from here.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import click

from xwpy.client.context import JSON_HELP, emit

from xwpy.apps.vanitygen import combine as combine_mod
from xwpy.apps.vanitygen import kernels
from xwpy.apps.vanitygen.candidates import describe
from xwpy.apps.vanitygen.difficulty import estimate as estimate_of
from xwpy.apps.vanitygen.difficulty import format_duration
from xwpy.apps.vanitygen.keys import parse_private_key
from xwpy.apps.vanitygen.prefix import PrefixError, Target, compile_prefix
from xwpy.apps.vanitygen.progress import human, render
from xwpy.apps.vanitygen.search import Progress, SearchError, SearchSpec, plan_search, run_search
from xwpy.apps.vanitygen.secp256k1 import decode


def _target(prefix: str, icase: bool) -> Target:
    try:
        return compile_prefix(prefix, icase)
    except PrefixError as exc:
        raise click.BadParameter(str(exc), param_hint="PREFIX") from None


def _pubkey(text: Optional[str]) -> Optional[bytes]:
    if text is None:
        return None
    try:
        raw = bytes.fromhex(text.strip())
        decode(raw)
    except ValueError as exc:
        raise click.BadParameter(f"not a SEC1 public key in hex ({exc})", param_hint="--split-key") from None
    return raw


@click.group("vanity")
def vanity() -> None:
    """Bitcoin vanity addresses (P2PKH): the grid's demo application."""


@vanity.command()
@click.argument("prefix")
@click.option("--icase", is_flag=True, help="Case-insensitive match.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Keys/s for the time estimates (default: measure this machine).")
@click.option("--workers", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default=True, help="Processes assumed when measuring.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def estimate(prefix: str, icase: bool, rate: Optional[float], workers: int, as_json: bool) -> None:
    """Difficulty of PREFIX: expected tries, probabilities, time to find it."""
    target = _target(prefix, icase)
    e = estimate_of(target)
    if rate is None:
        from xwpy.apps.vanitygen import rates

        name, _ = kernels.get()
        per = rates.rate(name)
        rate = per * workers
        source = f"this machine: {workers} x {human(per)} keys/s, {name} kernel"
    else:
        source = "given"
    if as_json:
        emit({"prefix": prefix, "icase": icase, "probability": e.probability, "expected_tries": e.expected_tries,
              "tries_50": e.tries_50, "tries_90": e.tries_90, "tries_99": e.tries_99, "keys_per_second": rate,
              "seconds_50": e.tries_50 / rate, "seconds_90": e.tries_90 / rate, "seconds_99": e.tries_99 / rate}, True)
        return
    click.echo(f"prefix:           {prefix}" + (" (case-insensitive)" if icase else ""))
    click.echo(f"per key:          1 in {e.expected_tries:,.0f} (p = {e.probability:.4g})")
    click.echo(f"expected tries:   {e.expected_tries:,.0f}")
    click.echo(f"tries for 50/90/99%: {e.tries_50:,.0f} / {e.tries_90:,.0f} / {e.tries_99:,.0f}")
    click.echo(
        f"at {human(rate)} keys/s ({source}): 50% in {format_duration(e.tries_50 / rate)}, "
        f"90% in {format_duration(e.tries_90 / rate)}, 99% in {format_duration(e.tries_99 / rate)}"
    )


@vanity.command()
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="File for the secret (created, mode 0600).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def keygen(out: str, as_json: bool) -> None:
    """Make a split-key secret q and print its public key Q for --split-key."""
    q, pub = combine_mod.keygen()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise click.ClickException(f"{out} already exists; refusing to overwrite a secret") from None
    except OSError as exc:
        raise click.ClickException(f"cannot create {out}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(f"{q:064x}\n")
    if as_json:
        emit({"public_key": pub.hex(), "secret_file": out}, True)
        return
    click.echo(pub.hex())
    click.echo(f"secret written to {out}; keep it, the grid only ever sees the public key above", err=True)


@vanity.command()
@click.option("--secret", "secret_file", type=click.Path(exists=True, dir_okay=False), required=True, help="The file keygen wrote.")
@click.option("--result", "result_file", type=click.Path(exists=True, dir_okay=False), help="The match record (result.json).")
@click.option("--partial", help="Partial key in hex (instead of --result).")
@click.option("--candidate", type=click.IntRange(0, 5), help="Candidate index (with --partial).")
@click.option("--uncompressed", is_flag=True, help="The search used uncompressed keys (with --partial).")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def combine(secret_file: str, result_file: Optional[str], partial: Optional[str], candidate: Optional[int], uncompressed: bool,
            as_json: bool) -> None:
    """Combine a split-key search's partial key with your secret; print address and WIF."""
    try:
        with open(secret_file) as f:
            secret = parse_private_key(f.read())
    except (ValueError, OSError) as exc:
        raise click.ClickException(f"cannot read the secret from {secret_file}: {exc}") from None
    try:
        if result_file is not None:
            if partial is not None or candidate is not None:
                raise click.UsageError("give either --result or --partial with --candidate, not both")
            try:
                with open(result_file, "rb") as f:
                    record = json.loads(f.read())
            except (OSError, ValueError) as exc:
                raise click.ClickException(f"cannot read the match record {result_file}: {exc}") from None
            out = combine_mod.combine_record(record, secret)
        else:
            if partial is None or candidate is None:
                raise click.UsageError("give --result, or --partial and --candidate")
            try:
                k = int(partial, 16)
            except ValueError:
                raise click.BadParameter("not a hexadecimal number", param_hint="--partial") from None
            out = combine_mod.combine_parts(k, candidate, secret, not uncompressed)
    except combine_mod.CombineError as exc:
        raise click.ClickException(str(exc)) from None
    emit({"address": out.address, "wif": out.wif}, as_json, f"address: {out.address}\nprivate key (WIF): {out.wif}")


def _progress_printer(stream=None):
    """A callback for run_search that redraws one status line on a terminal (else logs lines)."""
    stream = stream or sys.stderr
    t0 = time.monotonic()
    last = [0.0]
    tty = stream.isatty()

    def show(progress: Progress) -> None:
        now = time.monotonic()
        if not tty and now - last[0] < 5 and not progress.done:
            return
        last[0] = now
        line = render(progress, now - t0)
        stream.write(("\r" + line + "\x1b[K") if tty else line + "\n")
        stream.flush()

    return show


def observed_rate(keys: int, seconds: float, workers: int) -> float:
    """Keys/s per process a run saw: KEYS over its whole time (start-up included), shared by its
    WORKERS: never more than the kernel does."""
    return keys / seconds / workers if seconds > 0 and workers > 0 else 0.0


def _report(record: dict, out: Optional[str], as_json: bool) -> None:
    """Print a verified match; in split-key mode say how to get the spending key."""
    if out is not None:
        from xwpy.apps.vanitygen.unit import result_bytes

        with open(out, "wb") as f:
            f.write(result_bytes(record))
    if as_json:
        emit(record, True)
        return
    click.echo(f"address: {record['address']}")
    if "wif" in record:
        click.echo(f"private key (WIF): {record['wif']}")
        return
    click.echo(f"partial key: {record['partial_key']}")
    click.echo(f"candidate: {record['candidate']} (spending key = {describe(record['candidate'])} * (partial + q) mod N)")
    where = f"--result {out}" if out else f"--partial {record['partial_key']} --candidate {record['candidate']}"
    unc = "" if out or record["compressed"] else " --uncompressed"
    click.echo(f"get the key with: xwpy vanity combine --secret SECRET_FILE {where}{unc}")


def _finish(found: Optional[dict], max_keys: Optional[int], out: Optional[str], as_json: bool) -> None:
    """After a search (local or grid): its match, or why there is none."""
    click.echo("", err=True)
    if found is None:
        raise click.ClickException(f"no match within {max_keys:,} keys")
    _report(found, out, as_json)


@vanity.command()
@click.argument("prefix")
@click.option("--icase", is_flag=True, help="Case-insensitive match.")
@click.option("--uncompressed", is_flag=True, help="Search uncompressed public keys.")
@click.option("--split-key", "split_key", metavar="PUBKEY", help="Your public key Q from keygen: the search finds a partial key only.")
@click.option("--workers", "-w", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default=True,
              help="Processes to search with.")
@click.option("--kernel", type=click.Choice(list(kernels.available())), help="Search kernel (default: fastest).")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the match record here (for combine).")
@click.option("--max-keys", type=click.IntRange(min=1), help="Give up after this many keys.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
def local(prefix, icase, uncompressed, split_key, workers, kernel, out, max_keys, as_json) -> None:
    """Search PREFIX on this machine's cores, without a coordinator."""
    from xwpy.apps.vanitygen import rates
    from xwpy.apps.vanitygen.local import LocalBackend

    _target(prefix, icase)
    spec = SearchSpec(prefix, icase=icase, compressed=not uncompressed, pubkey=_pubkey(split_key))
    try:
        # The pool's processes start while this one sizes the units.
        with LocalBackend(workers, kernel) as backend:
            rate = rates.rate(kernel)
            plan = plan_search(spec, keys_per_second=rate, min_unit_seconds=0.5, max_unit_seconds=2.0)
            click.echo(f"searching {prefix} with {workers} x {kernels.get(kernel)[0]} kernel (~{human(rate)} keys/s each)",
                       err=True)
            printer, last = _progress_printer(), []

            def on_progress(p: Progress) -> None:
                last[:] = [p]
                printer(p)

            t0 = time.monotonic()
            found = run_search(plan, backend, parallel=2 * workers, on_progress=on_progress, max_keys=max_keys)
            if last:  # what this run saw per process: raises a rate remembered from a busy machine
                rates.observe(kernel, observed_rate(last[0].keys_tried, time.monotonic() - t0, workers))
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
    except SearchError as exc:
        raise click.ClickException(str(exc)) from None
    _finish(found, max_keys, out, as_json)


@vanity.command()
@click.argument("prefix")
@click.option("--icase", is_flag=True, help="Case-insensitive match.")
@click.option("--uncompressed", is_flag=True, help="Search uncompressed public keys.")
@click.option("--split-key", "split_key", metavar="PUBKEY", help="Your public key Q from keygen: the grid finds a partial key only.")
@click.option("--rate", type=click.FloatRange(min=1), default=2_000_000, show_default=True,
              help="Keys/s of one grid worker, for sizing work units.")
@click.option("--unit-seconds", type=click.FloatRange(min=0.1), default=20, show_default=True,
              help="Target duration of one work unit on one worker.")
@click.option("--parallel", type=click.IntRange(min=1), help="Units in flight (default: twice the grid's live job slots; never more than your job quota allows).")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the match record here (for combine).")
@click.option("--max-keys", type=click.IntRange(min=1), help="Give up after this many keys.")
@click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
@click.pass_context
def search(ctx, prefix, icase, uncompressed, split_key, rate, unit_seconds, parallel, out, max_keys, as_json) -> None:
    """Search PREFIX on the grid (coordinator from the main options: --site, or --url/--token/--ca)."""
    import secrets as _secrets

    from xwpy.apps.vanitygen.grid import GridBackend, ensure_app, in_flight

    _target(prefix, icase)
    settings = ctx.find_root().obj
    if settings is None or not hasattr(settings, "client"):
        raise click.UsageError("run it as `xwpy vanity search` so that it can reach a coordinator")
    spec = SearchSpec(prefix, icase=icase, compressed=not uncompressed, pubkey=_pubkey(split_key))
    plan = plan_search(spec, keys_per_second=rate, min_unit_seconds=unit_seconds / 4, max_unit_seconds=unit_seconds)
    try:
        client = settings.client()
        ensure_app(client)
        slots, why = in_flight(client, parallel)
        batch = f"vanity-{_secrets.token_hex(6)}"
        click.echo(f"searching {prefix} on the grid: batch {batch}, {human(plan.keys_per_unit)} keys per unit, "
                   f"{slots} unit{'' if slots == 1 else 's'} in flight ({why})", err=True)
        found = run_search(plan, GridBackend(client, batch), parallel=slots, on_progress=_progress_printer(),
                           max_keys=max_keys)
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
    except SearchError as exc:
        raise click.ClickException(str(exc)) from None
    _finish(found, max_keys, out, as_json)


@vanity.command()
@click.option("--site", "site_dir", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="The site whose running coordinator's oracle serves the chain (default: xwpy --site).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port of the shop (0: a free one).")
@click.option("--interface", default="127.0.0.1", show_default=True,
              help="Address to listen on; any but loopback is served over TLS with the site's certificate.")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="The requester's private key (hex, mode 0600); required unless the chain is the embedded one.")
@click.option("--state", "state_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Directory of the order log (orders.jsonl) [default: SITE/shop].")
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="A shop token (mode 0600) the page must sign in with to order; required off loopback.")
@click.option("--spend-cap", metavar="RLC", help="The most RLC the shop pays in all (orders beyond are refused).")
@click.option("--keys-per-second", type=click.FloatRange(min=1, min_open=False), default=1e6, show_default=True,
              help="The grid's search rate the page's expected time assumes.")
@click.pass_context
def web(ctx, site_dir: Optional[Path], port: int, interface: str, key_file: Optional[Path], state_dir: Optional[Path],
        token_file: Optional[Path], spend_cap: Optional[str], keys_per_second: float) -> None:
    """Serve the shop's web page: see the price, order an address, pay on the chain, watch it being found."""
    import ipaddress

    from twisted.internet import reactor, task, threads
    from twisted.internet.error import CannotListenError
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from xwpy.apps.vanitygen.web.server import FOLLOW_EVERY, shop_for_site, site_for
    from xwpy.client.chainclient import ChainClientError, parse_rlc
    from xwpy.config import ConfigError

    settings = ctx.find_root().obj
    site_dir = site_dir or getattr(settings, "site", None)
    if site_dir is None:
        raise click.UsageError("give --site DIR: the site whose coordinator runs the oracle")
    try:
        local = ipaddress.ip_address(interface).is_loopback
    except ValueError:
        local = interface == "localhost"
    if not local and token_file is None:
        raise click.UsageError(f"the shop on {interface} pays for anyone who reaches it: give --token-file FILE "
                               "(the token customers sign in with)")
    token = None
    if token_file is not None:
        if token_file.stat().st_mode & 0o077:
            raise click.ClickException(f"the token file {token_file} is readable by others: chmod 600 it")
        token = token_file.read_text().strip()
        if len(token) < 16:
            raise click.ClickException(f"the token in {token_file} is shorter than 16 characters")
    try:
        cap = None if spend_cap is None else parse_rlc(spend_cap)
        shop = shop_for_site(site_dir, key_file, state=state_dir or Path(site_dir) / "shop", token=token,
                             spend_cap=cap, keys_per_second=keys_per_second)
    except (ChainClientError, ConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        raise click.ClickException(f"cannot read the shop's order log: {exc}") from None
    try:
        if local:  # this machine only: plain HTTP, as for any local tool's page
            listening = reactor.listenTCP(port, site_for(shop), interface=interface)
        else:  # between hosts, TLS: the site's server certificate (browsers must trust the site CA)
            from xwpy import config, pki

            cfg = config.load(site_dir)
            tls = pki.ServerTLS(cfg.server_cert.read_bytes(), cfg.server_key.read_bytes())
            listening = reactor.listenSSL(port, site_for(shop), tls, interface=interface)
    except CannotListenError as exc:
        raise click.ClickException(f"cannot listen on {interface}:{port}: {exc.socketError}") from None
    except (ConfigError, OSError) as exc:
        raise click.ClickException(f"cannot serve TLS with the site's certificate: {exc}") from None
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    host = f"[{interface}]" if ":" in interface else interface
    scheme = "http" if local else "https"
    click.echo(f"the vanity shop: {scheme}://{host}:{listening.getHost().port}/ (requester {shop.sender.address}, "
               f"hub {shop.target.need_deployment().hub}, {len(shop.pending())} pending orders followed)", err=True)
    # Orders paid before a restart are followed to their result even if no page asks.
    task.LoopingCall(threads.deferToThread, shop.follow_pending).start(FOLLOW_EVERY)
    reactor.run()


def register(cli: click.Group) -> None:
    cli.add_command(vanity)


if __name__ == "__main__":
    vanity()
