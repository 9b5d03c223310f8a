"""``xwpy init``: make a new site — configuration, certificates, catalog and the admin's token."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

from xwpy import config as config_module
from xwpy import pki, tokens
from xwpy.config import CatalogConfig, CoordinatorConfig, SiteConfig


class SiteExists(Exception):
    pass


DEFAULT_NAMES = ["localhost", "127.0.0.1", "::1"]


def init_site(
    site_dir: Path,
    *,
    name: str = "xwpy",
    interface: str = "127.0.0.1",
    port: int = 8443,
    public_host: str = "127.0.0.1",
    extra_names: tuple[str, ...] = (),
    database: str | None = None,
    scheduler: dict | None = None,
) -> tuple[SiteConfig, str]:
    """Create a site; returns its configuration and the admin token (shown once, stored 0600).
    Refuses to touch a directory that already holds a site."""
    site_dir = Path(site_dir).resolve()
    if (site_dir / config_module.CONFIG_NAME).exists() or (site_dir / "ca.key").exists():
        raise SiteExists(f"{site_dir} already holds an xwpy site; remove it first or choose another directory")
    site_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(site_dir, 0o700)
    names = list(dict.fromkeys([public_host, *DEFAULT_NAMES, *extra_names]))
    cfg = SiteConfig(
        dir=site_dir,
        name=name,
        coordinator=CoordinatorConfig(interface=interface, port=port, public_host=public_host),
        catalog=CatalogConfig(url=database) if database else CatalogConfig(),
    )
    if scheduler:
        cfg = dataclasses.replace(cfg, scheduler=dataclasses.replace(cfg.scheduler, **scheduler))

    ca_cert, ca_key = pki.make_ca(name)
    pki.write_private(cfg.ca_key, ca_key)
    cfg.ca_cert.write_bytes(ca_cert)
    cert, key = pki.make_server_cert(ca_cert, ca_key, names)
    pki.write_private(cfg.server_key, key)
    cfg.server_cert.write_bytes(cert)

    from xwpy.server.catalog import users
    from xwpy.server.catalog.connector import ensure_schema, make_engine

    token = tokens.new_token("xwu")
    engine = make_engine(cfg.database_url)
    try:
        ensure_schema(engine)
        with engine.begin() as conn:
            users.insert(conn, login="admin", role="admin", group="", token_hash=tokens.token_hash(token), now=time.time())
    finally:
        engine.dispose()
    pki.write_private(cfg.admin_token, token.encode() + b"\n")
    # The configuration goes last: its presence means the site is complete.
    (site_dir / config_module.CONFIG_NAME).write_text(config_module.render(cfg))
    return cfg, token
