"""Which chain, which contracts, which key: the oracle's start-up decisions, each checked.

- The key: a file holding the oracle's private key in hex, readable by its owner only; without
  one, the public demo key, and only on the embedded chain (its keys are public: anyone could
  commit as that oracle on any chain that honoured them).
- The deployment: on the embedded chain the demo stack (token, hub, one app per handler,
  requesters funded) is deployed at the first start and saved under the site; a node of your
  own takes the file ``xwpy chain deploy --out`` wrote.
- ``run/chain.json``: where the CLI finds the chain and the deployment of a running site.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from twisted.logger import Logger
from web3 import Web3

from xwpy.chain.accounts import demo_accounts, demo_key
from xwpy.chain.deploy import DEMO_APPS, DEMO_MINT, Deployment, deploy_stack
from xwpy.chain.node import redact_url
from xwpy.chain.tx import TxSender
from xwpy.config import ConfigError, OracleConfig, SiteConfig

log = Logger()

RUN_FILE = "run/chain.json"


def load_key(oracle: OracleConfig, site: SiteConfig) -> bytes:
    if not oracle.key_file:
        if oracle.chain != "embedded":
            raise ConfigError("[oracle] key_file is required with a chain URL")
        return demo_key("oracle")
    return read_key_file(site.path(oracle.key_file))


def read_key_file(path: Path) -> bytes:
    """A private key from PATH (64 hex digits, 0x optional), refused if others may read it."""
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as e:
        raise ConfigError(f"cannot read the key file {path}: {e.strerror}") from None
    if mode & 0o077:
        raise ConfigError(f"the key file {path} is readable by others: chmod 600 it")
    if text.startswith(("0x", "0X")):
        text = text[2:]
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ConfigError(f"the key file {path} must hold a private key: 64 hexadecimal digits")
    return key  # never logged, never in an exception's text


def write_key_file(path: Path, key: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")


def demo_apps(handlers) -> dict[str, int]:
    """Hub apps of a demo deployment: the standard ones first (stable ids), then the handlers'."""
    apps = {name: price for name, price in DEMO_APPS.items() if name in handlers}
    for name, handler in handlers.items():
        apps.setdefault(name, handler.price)
    return apps


def deployment_usable(w3: Web3, d: Deployment) -> bool:
    return d.chain_id == w3.eth.chain_id and bool(w3.eth.get_code(Web3.to_checksum_address(d.hub)))


def ensure_demo_deployment(w3: Web3, path: Path, handlers) -> Deployment:
    """The embedded chain's deployment: the saved one if it is on this chain, else a new one."""
    if path.exists():
        d = Deployment.load(path)
        if deployment_usable(w3, d):
            return d  # one of an older version has no distributor: no payouts (the oracle says so)
        log.warn("the deployment in {path} is not on this chain: deploying the demo stack again", path=str(path))
    acc = demo_accounts()
    owner = TxSender(w3, acc["app_owner"].key)
    d = deploy_stack(
        w3,
        TxSender(w3, acc["deployer"].key),
        oracle=acc["oracle"].address,  # the hub's pool: the payout distributor
        apps={name: (owner, price) for name, price in demo_apps(handlers).items()},
        mint={acc[r].address: DEMO_MINT for r in ("requester", "requester2")},
    )
    d.save(path)
    log.info("deployed the demo stack: hub {hub}, token {token}, apps {apps}", hub=d.hub, token=d.token, apps=d.apps)
    return d


def load_deployment(w3: Web3, path: Path) -> Deployment:
    if not path.exists():
        raise ConfigError(f"no deployment file {path}: make one with `xwpy chain deploy --out {path}`")
    try:
        return Deployment.load(path)
    except ValueError as e:
        raise ConfigError(str(e)) from None


def write_run_file(site: SiteConfig, url: str, d: Deployment, deployment_path: Path) -> Path:
    """Where the CLI finds the chain. A node URL that may carry an API key is not written in
    clear: the file says it is in the site's configuration (which readers of the site have)."""
    path = site.path(RUN_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    shown = redact_url(url)
    where = {"url": url} if shown == url else {"url": shown, "url_in_config": True}
    tmp.write_text(json.dumps({
        **where, "chain_id": d.chain_id, "hub": d.hub, "token": d.token, "deployment": str(deployment_path),
        "pid": os.getpid(),
    }, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def remove_run_file(site: SiteConfig) -> None:
    try:
        site.path(RUN_FILE).unlink()
    except FileNotFoundError:
        pass
