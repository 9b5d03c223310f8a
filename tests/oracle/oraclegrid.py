"""A whole grid with its oracle, in real processes: the coordinator (serving the embedded chain,
or following a ganache node), volunteers' workers, and the chain as requesters see it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from sqlalchemy import create_engine

from xwpy.chain.accounts import demo_accounts
from xwpy.chain.deploy import Deployment
from xwpy.chain.node import advance_time, connect, latest_timestamp
from xwpy.chain.tx import TxSender
from xwpy.client.chainclient import ChainTarget
from xwpy.oracle.chainsetup import ensure_demo_deployment, write_key_file
from xwpy.oracle.handlers import default_handlers
from xwpy.server.catalog import chain as chain_catalog
from tests.harness import wait_for


@dataclass
class OracleGrid:
    grid: object  # tests.harness.Grid
    kind: str  # embedded | ganache
    node: object = None  # the ganache NodeProcess
    accounts: dict = field(default_factory=demo_accounts)
    chain_url: str | None = None  # the node's URL as the site's configuration gives it (ganache)

    def start(self, workers: int = 3, **oracle) -> "OracleGrid":
        g = self.grid
        if self.kind == "ganache":
            path = g.cfg.dir / "chain" / "deployment.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            ensure_demo_deployment(self.node.web3(), path, default_handlers())
            write_key_file(g.cfg.dir / "oracle.key", self.accounts["oracle"].key)
            # ganache mines a block per transaction and never reorganises: no confirmations to wait.
            g.enable_oracle(chain=self.chain_url or self.node.url, deployment=str(path), key_file="oracle.key",
                            poll_seconds=0.2, confirmations=0, **oracle)
        else:
            g.enable_oracle(rpc_port=0, poll_seconds=0.2, **oracle)
        self.start_coordinator()
        self.admin = g.client()
        for i in range(workers):
            g.start_worker(f"w{i}", g.user(f"volunteer{i}", "worker"))
        if workers:
            wait_for(lambda: len(self.admin.hosts()) == workers, 30, "the workers to register")
        return self

    def start_coordinator(self):
        proc = self.grid.start_coordinator()
        info = self.grid.chain_info()
        self.use_chain(self.node.url if info.get("url_in_config") else info["url"], info["deployment"])
        return proc

    def use_chain(self, url: str, deployment: str) -> None:
        """Talk to the chain at URL, where DEPLOYMENT (a deployment.json) is."""
        self.url = url
        self.w3 = connect(self.url)
        self.deployment = Deployment.load(deployment)
        self.target = ChainTarget(self.url, self.w3, self.deployment)
        self.hub = self.deployment.hub_at(self.w3)
        self.token = self.deployment.token_at(self.w3)

    def sender(self, role: str) -> TxSender:
        return TxSender(self.w3, self.accounts[role].key)

    def address(self, role: str) -> str:
        """A demo account's address; "pool": where the hub pays the pool's share (the distributor)."""
        return self.deployment.pool if role == "pool" else self.accounts[role].address

    def now(self) -> int:
        return latest_timestamp(self.w3)

    def advance(self, seconds: int) -> int:
        return advance_time(self.w3, seconds)

    def balances(self, *roles: str) -> dict[str, int]:
        return {r: self.token.balance_of(self.address(r)) for r in roles}

    def task_row(self, task_id: int):
        engine = create_engine(self.grid.cfg.database_url)
        try:
            with engine.connect() as conn:
                return chain_catalog.find(conn, self.deployment.chain_id, self.deployment.hub, task_id)
        finally:
            engine.dispose()

    def wait_committed(self, task_id: int, timeout: float = 90):
        wait_for(lambda: self.hub.task(task_id).status.name == "COMPLETED", timeout, f"task {task_id} committed")
        return wait_for(lambda: (r := self.task_row(task_id)) is not None and r.status.value == "COMMITTED" and r,
                        30, f"the oracle to record task {task_id} as committed")

    def oracle_jobs(self) -> list[dict]:
        return [j for j in self.admin.call("GET", "/jobs", all=1, limit=1000)["jobs"] if j["owner"] == "oracle"]


def hashchain(text: str, rounds: int) -> str:
    data = text.encode()
    for _ in range(rounds):
        data = hashlib.sha256(data).digest()
    return data.hex()


def start_shop(grid, *extra: str, name: str = "shop"):
    """`xwpy vanity web` on the grid's site (port 0): (the process, its URL)."""
    import re

    proc = grid.spawn(name, "vanity", "web", "--site", str(grid.cfg.dir), "--port", "0", *extra)

    def listening():
        if not proc.alive():
            raise RuntimeError(f"the shop exited:\n{proc.output()[-3000:]}")
        m = re.search(r"the vanity shop: (http://127\.0\.0\.1:\d+)/", proc.output())
        return m and m.group(1)

    return proc, wait_for(listening, 30, "the shop to listen")


def shop_clean(proc) -> None:
    assert "Traceback" not in proc.output() and "internal error" not in proc.output(), proc.output()[-3000:]
