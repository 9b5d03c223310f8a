"""``xwpy init``: make a new site — configuration, certificates, catalog and the admin's token."""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from pathlib import Path

from xwpy import config as config_module
from xwpy import pki, tokens
from xwpy.config import SiteConfig


class SiteExists(Exception):
    pass


DEFAULT_NAMES = ["localhost", "127.0.0.1", "::1"]


def init_site(
    site_dir: Path,
    *,
    base: SiteConfig | None = None,
    name: str | None = None,
    interface: str | None = None,
    port: int | None = None,
    public_host: str | None = None,
    extra_names: tuple[str, ...] = (),
    database: str | None = None,
    scheduler: dict | None = None,
) -> tuple[SiteConfig, str]:
    """Create a site; returns its configuration and the admin token (shown once, stored 0600).
    ``base`` is a configuration to start from (an example of ``conf/``); the other arguments,
    where given, override it. Refuses to touch a directory that already holds a site."""
    site_dir = Path(site_dir).resolve()
    if (site_dir / config_module.CONFIG_NAME).exists() or (site_dir / "ca.key").exists():
        raise SiteExists(f"{site_dir} already holds an xwpy site; remove it first or choose another directory")
    cfg = dataclasses.replace(base, dir=site_dir) if base else SiteConfig(dir=site_dir)
    given = {"interface": interface, "port": port, "public_host": public_host}
    cfg = dataclasses.replace(
        cfg,
        name=name or cfg.name,
        coordinator=dataclasses.replace(cfg.coordinator, **{k: v for k, v in given.items() if v is not None}),
        catalog=dataclasses.replace(cfg.catalog, url=database) if database else cfg.catalog,
        scheduler=dataclasses.replace(cfg.scheduler, **scheduler) if scheduler else cfg.scheduler,
    )
    made_dir = not site_dir.exists()
    site_dir.mkdir(parents=True, exist_ok=True)
    before = set(site_dir.iterdir())
    try:
        token = _make(site_dir, cfg, extra_names)
    except BaseException:
        # Nothing half-made is left behind (keys and certificates without a catalog would make the
        # next `xwpy init` refuse the directory as a site): what this call wrote goes.
        if made_dir:
            shutil.rmtree(site_dir, ignore_errors=True)
        else:
            for path in set(site_dir.iterdir()) - before:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise
    return cfg, token


def _make(site_dir: Path, cfg: SiteConfig, extra_names: tuple[str, ...]) -> str:
    """Writes the site's keys, certificates, catalog, admin token and configuration: its token."""
    os.chmod(site_dir, 0o700)
    names = list(dict.fromkeys([cfg.coordinator.public_host, *DEFAULT_NAMES, *extra_names]))
    name = cfg.name

    ca_cert, ca_key = pki.make_ca(name)
    pki.write_private(cfg.ca_key, ca_key)
    cfg.ca_cert.write_bytes(ca_cert)
    cert, key = pki.make_server_cert(ca_cert, ca_key, names)
    pki.write_private(cfg.server_key, key)
    cfg.server_cert.write_bytes(cert)

    from xwpy.server.catalog import users
    from xwpy.server.catalog import revision
    from xwpy.server.catalog.connector import make_engine, shown_url

    token = tokens.new_token("xwu")
    engine = make_engine(cfg.database_url)
    try:
        with engine.begin() as conn:
            if revision.current(conn) is not None:
                raise SiteExists(f"{shown_url(cfg.catalog.url)} already holds an xwpy catalog")
            revision.create(conn)  # today's schema, stamped at the newest migration
            users.insert(conn, login="admin", role="admin", group="", token_hash=tokens.token_hash(token), now=time.time())
    finally:
        engine.dispose()
    pki.write_private(cfg.admin_token, token.encode() + b"\n")
    # The configuration goes last: its presence means the site is complete.
    (site_dir / config_module.CONFIG_NAME).write_text(config_module.render(cfg))
    return token


def renew_server_cert(site_dir: Path, *, days: int = pki.SERVER_CERT_DAYS, extra_names: tuple[str, ...] = ()) -> list[str]:
    """A new server certificate (and key) signed by the site CA, for the names of the current one,
    [coordinator] public_host and ``extra_names``; the old pair is replaced atomically."""
    from cryptography import x509

    cfg = config_module.load(Path(site_dir))
    names = [cfg.coordinator.public_host, *DEFAULT_NAMES]
    try:
        old = x509.load_pem_x509_certificate(cfg.server_cert.read_bytes())
        san = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names += [str(n.value) for n in san]
    except (OSError, ValueError, x509.ExtensionNotFound):
        pass  # unreadable or nameless: the configured names will do
    names = list(dict.fromkeys([*names, *extra_names]))
    cert, key = pki.make_server_cert(cfg.ca_cert.read_bytes(), cfg.ca_key.read_bytes(), names, days=days)
    pairs = [(cfg.server_key, key), (cfg.server_cert, cert)]
    for path, data in pairs:  # both written before either is replaced
        tmp = path.with_name(path.name + ".new")
        tmp.unlink(missing_ok=True)
        pki.write_private(tmp, data)
    for path, _ in pairs:
        os.replace(path.with_name(path.name + ".new"), path)
    return names


def served_serial(url: str, ca: Path, timeout: float = 5.0) -> int:
    """The serial number of the certificate that ``url`` serves to a new connection (the site CA
    pinned)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout) as raw:
        with pki.client_ssl_context(ca).wrap_socket(raw, server_hostname=parts.hostname) as tls:
            return pki.serial_of(tls.getpeercert(binary_form=True))


def reload_certificate(site_dir: Path, timeout: float = 15.0) -> int | None:
    """Make the site's running coordinator serve its server certificate as now on disk (SIGHUP),
    and wait until a new connection gets it: the coordinator's pid, or None when none runs.
    Raises RuntimeError if it does not serve it within ``timeout``."""
    import json
    import signal

    cfg = config_module.load(Path(site_dir))
    try:
        run = json.loads(cfg.run_file.read_text())
        pid, url = int(run["pid"]), run["url"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    serial = pki.serial_of(cfg.server_cert.read_bytes())
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return None  # (a run file left by a coordinator that died)
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        try:
            seen = served_serial(url, cfg.ca_cert)
        except OSError:
            seen = None
        if seen == serial:
            return pid
        time.sleep(0.2)
    raise RuntimeError(f"the coordinator (pid {pid}) still serves "
                       f"{'no certificate' if seen is None else f'serial {seen:x}'}, not {serial:x}: see its log")
