"""Making a site and running its daemons: init, coordinator, worker."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import sys
from pathlib import Path

import click

from click.core import ParameterSource

from xwpy import pki, protocol
from xwpy.client.commands import payouts
from xwpy.client.context import JSON_HELP, Size, emit, fail, table
from xwpy.worker.power import POWER_SUPPLY


def _run_on_without_token_in_argv(token: str) -> None:
    """Every user of a machine can read every process's command line (/proc/PID/cmdline) — the jobs
    a worker runs included. A worker given --token runs on as the same process (exec), with the
    token in its environment instead, which only its own user can read."""
    args, skip = [], False
    for a in sys.argv[1:]:
        if skip:
            skip = False
        elif a == "--token":
            skip = True
        elif not a.startswith("--token="):
            args.append(a)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "xwpy", *args], {**os.environ, "XWPY_TOKEN": token})


_PROBE_UID = 65534  # nobody: a root worker's jobs create their namespaces as an unprivileged uid


def _check_confinement(ctx, _param, value):
    """``xwpy worker --check``: what confinement this machine supports."""
    if not value or ctx.resilient_parsing:
        return
    from xwpy.worker.bwrap import probe

    root = os.geteuid() == 0
    why = probe(_PROBE_UID if root else None)
    click.echo(f"bwrap: {'supported' if why is None else 'NOT supported: ' + why}")
    click.echo("uid: " + ("supported (each slot's jobs as an unprivileged uid of their own, with limits)" if root
                          else "limits only (not root: jobs run as your own user)"))
    slirp = shutil.which("slirp4netns")
    click.echo("network for apps that need it (--allow-network): " + (
        "supported (slirp4netns, without the host's loopback)" if why is None and root and slirp else
        "NOT supported: " + ("needs bwrap" if why is not None else "needs a root worker" if not root
                             else "apt install slirp4netns")))
    click.echo("images (apps shipped as container images): " + ("supported" if why is None else "NOT supported: needs bwrap"))
    from xwpy import platforms

    click.echo(f"platform: {platforms.this_platform()}, {os.cpu_count()} cores")
    click.echo(f"default: {'bwrap' if why is None else 'none (the worker refuses to start without --confinement uid)'}")
    ctx.exit(0 if why is None else 1)


def _check_coordinator(url: str, ca: Path) -> None:
    """The worker's connection settings, checked before it starts (it retries a coordinator that is
    away, never one it could not talk to). ``url`` may name several coordinators, comma-separated."""
    from xwpy import coordinators

    try:
        coordinators.parse(url)
    except coordinators.BadURL as e:
        fail(f"--coordinator {e}")
    try:
        pki.client_ssl_context(ca)
    except (ssl.SSLError, OSError, ValueError) as e:
        fail(f"--ca {ca}: not a usable CA certificate ({e})")


def register(cli: click.Group) -> None:
    @cli.command("init")
    @click.argument("site_dir", type=click.Path(file_okay=False, path_type=Path))
    @click.option("--config", "template", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="A configuration to start from (see conf/); the options below override it.")
    @click.option("--name", help="Site name (in the CA's subject).  [default: xwpy]")
    @click.option("--interface", help="Address the coordinator listens on.  [default: 127.0.0.1]")
    @click.option("--port", type=click.IntRange(0, 65535), help="0 picks a free port.  [default: 8443]")
    @click.option("--public-host", help="Name workers and clients use.  [default: 127.0.0.1]")
    @click.option("--host", "extra", multiple=True, help="Another name or address for the certificate.")
    @click.option("--database", help="SQLAlchemy URL of the catalog (default: SQLite in the site).")
    @click.option("--heartbeat", type=click.FloatRange(0.05, 3600), help="Worker heartbeat period, seconds.")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    def init(site_dir, template, name, interface, port, public_host, extra, database, heartbeat, as_json):
        """Create a site: configuration, CA and server certificate, catalog, admin token."""
        from xwpy import config
        from xwpy.site import SiteExists, init_site

        try:
            base = config.parse(template.read_text(), site_dir, str(template)) if template else None
        except (config.ConfigError, OSError, UnicodeDecodeError) as e:
            fail(f"cannot use {template}: {e}")
        try:
            cfg, token = init_site(
                site_dir, base=base, name=name, interface=interface, port=port, public_host=public_host,
                extra_names=extra, database=database,
                scheduler={"heartbeat_seconds": heartbeat} if heartbeat else None,
            )
        except SiteExists as e:
            fail(str(e))
        except Exception as e:  # a database URL that does not work, a directory we cannot write
            why = getattr(e, "orig", None) or e  # the driver's own words, not SQLAlchemy's wrapping
            fail(f"cannot create the site: {(str(why).strip().splitlines() or [type(why).__name__])[0]}")
        made = {"site": str(cfg.dir), "config": str(cfg.dir / "xwpy.toml"), "ca": str(cfg.ca_cert),
                "admin_token_file": str(cfg.admin_token)}
        emit(made, as_json, f"site created in {cfg.dir}\n"
                            f"  config:       {made['config']}\n"
                            f"  CA (give to workers and users): {cfg.ca_cert}\n"
                            f"  admin token:  {cfg.admin_token} (readable by you only)")

    @cli.command("coordinator")
    @click.option("--site", "site_dir", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
                  help="The site directory made by `xwpy init`.")
    @click.option("--log-level", type=click.Choice(["debug", "info", "warn", "error"]),
                  help="Least severe events logged.  [default: the site's [logging] level]")
    def coordinator(site_dir, log_level):
        """Run the coordinator of a site (until SIGTERM or Ctrl-C)."""
        from xwpy.server.main import run_coordinator

        sys.exit(run_coordinator(site_dir, log_level))

    @cli.group("worker", invoke_without_command=True)
    @click.option("--check", is_flag=True, is_eager=True, expose_value=False, callback=_check_confinement,
                  help="Print what confinement this machine supports, and exit.")
    @click.option("--coordinator", "url", envvar="XWPY_URL",
                  help="https://host:port, or several coordinators of one site, comma-separated  [required]")
    @click.option("--ca", type=click.Path(exists=True, dir_okay=False, path_type=Path), envvar="XWPY_CA",
                  help="The site's CA certificate.  [required]")
    @click.option("--token", envvar="XWPY_TOKEN",
                  help="Your volunteer (or user) token, used to register this host (better: XWPY_TOKEN or --token-file).")
    @click.option("--token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                  help="A file holding the volunteer's token (better than --token: not on the command line).")
    @click.option("--state", "state_dir", type=click.Path(file_okay=False, path_type=Path),
                  help="The worker's own directory (host identity, cache, job directories).  [required]")
    @click.option("--prefs", "prefs_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="The volunteer's preferences (TOML: windows, shares of the machine, disk budget, battery, "
                       "transfers); `xwpy worker prefs` shows the ones in force.")
    @click.option("--max-cpus", type=click.IntRange(1, protocol.MAX_CORES), help="Run at most this many jobs at once.")
    @click.option("--cores", type=click.IntRange(1, protocol.MAX_CORES),
                  help="Cores lent to jobs (default: all): jobs run side by side only while their cores fit.")
    @click.option("--memory", type=Size(),
                  help="Memory lent to jobs, e.g. 4G (default: all): jobs run side by side only while theirs fits.")
    @click.option("--name", default="", help="Host name shown to the site (default: this machine's).")
    @click.option("--idle-threshold", type=click.FloatRange(0.01, 1.0),
                  help="Suspend jobs while the owner's CPU load is above this fraction of the machine.  [default: 0.5]")
    @click.option("--no-battery", is_flag=True, help="Do not compute on battery power.")
    @click.option("--no-idle-check", is_flag=True, help="Compute whatever the owner's load (dedicated machines).")
    @click.option("--idle-period", type=click.FloatRange(0.1, 600), default=2.0, show_default=True,
                  help="Seconds between two measures of the owner's load.")
    @click.option("--wait", type=click.FloatRange(0, protocol.MAX_WAIT), default=20.0, show_default=True, help="Long-poll seconds.")
    @click.option("--confinement", type=click.Choice(["bwrap", "uid"]), default="bwrap", show_default=True,
                  help="bwrap: each job in a bubblewrap sandbox (namespaces, no network, only its own files); "
                       "uid: only its own uid and limits (no sandbox; choose it knowingly).")
    @click.option("--allow-network", is_flag=True,
                  help="Give the network to jobs of apps that declare they need it (never the host's loopback).")
    @click.option("--log-level", type=click.Choice(["debug", "info", "warn", "error"]), default="info",
                  show_default=True, help="Least severe events logged.")
    @click.pass_context
    def worker(ctx, url, ca, token, token_file, state_dir, prefs_file, max_cpus, cores, memory, name, idle_threshold,
               no_battery, no_idle_check, idle_period, wait, confinement, allow_network, log_level):
        """Run a worker daemon that lends this machine's idle cycles to a site."""
        if ctx.invoked_subcommand == "prefs":  # `worker prefs`: what it would run with
            ctx.meta["xwpy.worker.prefs"] = _worker_prefs(ctx, prefs_file)
            return
        if ctx.invoked_subcommand is not None:  # payout-address, claim: as the host (commands/payouts.py)
            return
        for value, option in ((url, "--coordinator"), (ca, "--ca"), (state_dir, "--state")):
            if value is None:
                raise click.MissingParameter(ctx=ctx, param_hint=f"'{option}'", param_type="option")
        if token and ctx.get_parameter_source("token") is ParameterSource.COMMANDLINE:
            _run_on_without_token_in_argv(token)
        from xwpy.worker import prefs as vp
        from xwpy.worker.daemon import WorkerOptions
        from xwpy.worker.idle import IdleSettings
        from xwpy.worker.main import run_worker

        resolved = _worker_prefs(ctx, prefs_file)
        p = resolved.prefs
        if token_file is not None:
            token = token_file.read_text().strip()
        if not token and not (state_dir / "host.json").exists():
            fail("give --token, --token-file or XWPY_TOKEN to register this host")
        _check_coordinator(url, ca)
        cpus = os.cpu_count() or 1
        allow_network = p.network_apps
        net = "--allow-network" if resolved.sources["network_apps"] == vp.COMMAND_LINE else \
            f"{prefs_file}: compute.network_apps"
        root = os.geteuid() == 0
        if confinement == "bwrap":
            from xwpy.worker.bwrap import probe

            why = probe(_PROBE_UID if root else None)
            if why is not None:
                fail(why)
            if allow_network and not root:
                fail(f"{net} needs a root worker (it gives each networked job a network namespace of its own)")
            if allow_network and shutil.which("slirp4netns") is None:
                fail(f"{net} needs slirp4netns: apt install slirp4netns")
        elif allow_network:
            fail(f"{net} needs the sandbox (--confinement bwrap): with uid, jobs would share this machine's network")
        else:
            click.echo("warning: --confinement uid: jobs run unsandboxed, seeing this machine's files and network",
                       err=True)
        if not root:
            click.echo("warning: not root: jobs run as your own user, unconfined by file rights", err=True)
        import psutil

        machine_memory = psutil.virtual_memory().total
        lent_cores, lent_memory = vp.lent_cores(p, cpus), vp.lent_memory(p, machine_memory)
        threshold = vp.idle_threshold(p)
        opts = WorkerOptions(
            url=url, ca_pem=ca.read_bytes(), volunteer_token=token or "", state_dir=state_dir.resolve(),
            slots=min(max_cpus or cpus, protocol.MAX_CORES), name=name, wait=wait,
            idle=IdleSettings(threshold=threshold, resume_below=min(0.3, threshold)),
            idle_period=idle_period,
            confine_uids=root, confinement=confinement, allow_network=allow_network,
            # 0: not limited (the worker then offers all of the machine, or as many cores as its slots)
            cores=lent_cores if p.cores or p.cpu_percent < 100 else 0,
            memory=lent_memory if p.memory or p.memory_percent < 100 else 0,
            prefs=p, power_supply=Path(os.environ.get("XWPY_POWER_SUPPLY") or POWER_SUPPLY),
        )
        sys.exit(run_worker(opts, log_level=log_level, watch_idle=p.suspend_while_busy))

    def _worker_prefs(ctx: click.Context, prefs_file: Path | None):
        """The preferences in force: the command line's, else the file's, else the defaults; a
        mistake is one line naming the key, and exit 1."""
        from xwpy.worker import prefs as vp

        given = {k: ctx.params[k] for k in ("cores", "memory", "no_battery", "no_idle_check", "idle_threshold",
                                             "allow_network")
                 if ctx.get_parameter_source(k) is ParameterSource.COMMANDLINE}
        cli_prefs = {}
        if "cores" in given:
            cli_prefs["cores"] = given["cores"]
        if "memory" in given:
            cli_prefs["memory"] = given["memory"]
        if given.get("no_battery"):
            cli_prefs["on_battery"] = False
        if given.get("no_idle_check"):
            cli_prefs["suspend_while_busy"] = False
        if "idle_threshold" in given:
            cli_prefs["busy_percent"] = max(1, round(given["idle_threshold"] * 100))
        if given.get("allow_network"):
            cli_prefs["network_apps"] = True
        try:
            resolved = vp.resolve(vp.read_file(prefs_file) if prefs_file else {}, cli_prefs,
                                  str(prefs_file) if prefs_file else "")
            import psutil

            vp.check_machine(resolved, os.cpu_count() or 1, psutil.virtual_memory().total,
                             _file_system_size(ctx.params.get("state_dir")))
        except vp.PrefsError as e:
            fail(str(e))
        return resolved

    def _file_system_size(state_dir: Path | None) -> int:
        """The size of the file system that holds (or will hold) ``state_dir``; 0 if unknown."""
        path = state_dir.resolve() if state_dir is not None else None
        while path is not None and not path.exists() and path != path.parent:
            path = path.parent
        try:
            return shutil.disk_usage(path).total if path is not None else 0
        except OSError:
            return 0

    @worker.command("prefs")
    @click.option("--prefs", "prefs_file", type=click.Path(dir_okay=False, path_type=Path),
                  help="The preferences file (as `xwpy worker --prefs`).")
    @click.option("--json", "as_json", is_flag=True, help=JSON_HELP)
    @click.pass_context
    def worker_prefs(ctx, prefs_file, as_json):
        """Print the preferences in force, each with its source (default, file or command line),
        and what the worker lends of this machine. Options of `xwpy worker` given before `prefs`
        count as they would for the worker."""
        from xwpy.sizes import human_size
        from xwpy.worker import prefs as vp

        resolved = _worker_prefs(ctx.parent, prefs_file) if prefs_file is not None else ctx.meta["xwpy.worker.prefs"]
        import psutil

        cpus, mem = os.cpu_count() or 1, psutil.virtual_memory().total
        rows = vp.describe(resolved)
        lends = (f"lends {vp.lent_cores(resolved.prefs, cpus)} of {cpus} cores and "
                 f"{human_size(vp.lent_memory(resolved.prefs, mem))} of {human_size(mem)} of memory")
        if as_json:
            click.echo(json.dumps({"prefs": [{"key": k, "value": v, "source": s} for k, v, s in rows],
                                  "lends": {"cores": vp.lent_cores(resolved.prefs, cpus),
                                            "memory": vp.lent_memory(resolved.prefs, mem)}}, indent=2))
            return
        click.echo(table([list(r) for r in rows], ["KEY", "VALUE", "SOURCE"]))
        click.echo(lends)

    payouts.register(worker)

    @cli.command("demo")
    @click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path),
                  help="Where to put the demo site and logs (default: a temporary directory).")
    @click.option("--workers", type=click.IntRange(1, 16), default=3, show_default=True, help="Workers (volunteers' hosts) to start.")
    @click.option("--jobs", type=click.IntRange(1, 1000), default=12, show_default=True, help="Jobs in the demo's batch.")
    @click.option("--chain/--no-chain", default=True, show_default=True,
                  help="End with a vanity address paid in RLC on the embedded chain, delivered by the oracle.")
    def demo(root, workers, jobs, chain):
        """Run a whole grid on this machine, end to end: coordinator, workers, a batch of jobs."""
        import tempfile

        from xwpy.demo import run_demo

        if chain:
            try:
                import web3  # noqa: F401
            except ImportError:
                fail("the demo's chain part needs xwpy[chain]: pip install 'xwpy[chain]', or run xwpy demo --no-chain")
        if root is None:
            with tempfile.TemporaryDirectory(prefix="xwpy-demo-") as tmp:
                sys.exit(run_demo(Path(tmp), workers, jobs, chain=chain))
        sys.exit(run_demo(root, workers, jobs, keep=True, chain=chain))
