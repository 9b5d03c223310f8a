"""The chain as the oracle needs it, each call run on the oracle's own thread pool.

web3 blocks; the reactor must not. Every method here returns a Deferred (or is a coroutine)
whose work runs on a small dedicated pool, so a slow or dead node stalls chain work only, never
the coordinator's API or scheduler. Errors are web3's and ``xwpy.chain.tx``'s, unchanged: the
caller decides what is transient.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool
from web3 import Web3

from xwpy.chain.contracts import Distributor, Hub, TaskInfo, TaskRequested
from xwpy.chain.deploy import Deployment
from xwpy.chain.tx import Fees, PreparedTx, TxSender, TxState

# Gas the commit needs besides the callback's stipend: checks, two token transfers, the digest,
# the event with up to 400 bytes of result (about 150k measured; the rest is margin).
COMMIT_GAS_BESIDES_CALLBACK = 300_000
# commitEpoch: three new storage words, two updated, an event (122k measured; the rest is margin).
EPOCH_GAS = 200_000


class ChainMismatch(Exception):
    """The node is not the chain the deployment was made on, or the hub is not there."""


@dataclass(frozen=True)
class Block:
    number: int
    hash: str  # 0x-prefixed hex
    timestamp: int


def served_apps(deployment: Deployment) -> dict[int, str]:
    """The hub apps this oracle runs, by app id: those of its own deployment file.

    Never by name: ``registerApp`` is open to anyone and names are not unique, so a stranger's
    app called "hashchain" (price 0, a callback that burns its stipend) would get grid work and
    oracle-paid commits. The operator approves another app by adding its id to the file.
    """
    return {app_id: name for name, app_id in deployment.apps.items()}


def commit_gas_for(callback_gas: int) -> int:
    """A gas limit that always covers the hub's callback stipend (EIP-150's 63/64 included)."""
    return callback_gas * 64 // 63 + COMMIT_GAS_BESIDES_CALLBACK


class ChainLink:
    def __init__(self, w3: Web3, deployment: Deployment, key: bytes, reactor, *, threads: int = 4,
                 commit_gas: int = 0, receipt_timeout: float = 60.0):
        self.w3 = w3
        self.deployment = deployment
        self.hub = Hub(w3, deployment.hub)
        self.distributor = Distributor(w3, deployment.distributor) if deployment.distributor else None
        self.sender = TxSender(w3, key, receipt_timeout=receipt_timeout, poll_latency=0.02)
        self.commit_gas = commit_gas or commit_gas_for(deployment.callback_gas)
        self._reactor = reactor
        self._pool = ThreadPool(minthreads=1, maxthreads=threads, name="xwpy-oracle-chain")
        self._trigger = None
        self.served = served_apps(deployment)

    @property
    def address(self) -> str:
        return self.sender.address

    @property
    def chain_id(self) -> int:
        return self.deployment.chain_id

    @property
    def hub_address(self) -> str:
        return self.hub.address

    def start(self) -> None:
        self._pool.start()
        self._trigger = self._reactor.addSystemEventTrigger("during", "shutdown", self._pool.stop)

    def stop(self) -> None:
        if self._trigger is not None:
            self._reactor.removeSystemEventTrigger(self._trigger)
            self._trigger = None
            self._pool.stop()

    def _run(self, fn, *args, **kw):
        return deferToThreadPool(self._reactor, self._pool, fn, *args, **kw)

    # -- reads -------------------------------------------------------------------------------

    def _check(self) -> str:
        chain_id = self.w3.eth.chain_id
        if chain_id != self.deployment.chain_id:
            raise ChainMismatch(f"the node serves chain {chain_id}, the deployment is on chain {self.deployment.chain_id}")
        if not self.w3.eth.get_code(self.hub.address):
            raise ChainMismatch(f"no contract at the hub's address {self.hub.address}")
        return self.hub.oracle()

    async def check(self) -> str:
        """Check that this is the deployment's chain and hub; the hub's oracle address."""
        return await self._run(self._check)

    def _block(self, which) -> Block:
        b = self.w3.eth.get_block(which)
        return Block(b["number"], "0x" + bytes(b["hash"]).hex(), b["timestamp"])

    async def head(self) -> Block:
        return await self._run(self._block, "latest")

    async def block(self, number: int) -> Block:
        return await self._run(self._block, number)

    async def requests(self, first: int, last: int) -> list[TaskRequested]:
        return await self._run(self.hub.requested_events, first, last)

    def app_name(self, app_id: int) -> str | None:
        """The handler's name for APP_ID, None for an app this oracle does not serve."""
        return self.served.get(app_id)

    async def task(self, task_id: int) -> TaskInfo:
        return await self._run(self.hub.task, task_id)

    # -- the commit, in steps ----------------------------------------------------------------

    async def prepare_commit(self, task_id: int, request_hash: bytes, digest: bytes, result: bytes, *,
                             nonce: int | None = None, fees: Fees | None = None) -> PreparedTx:
        call = self.hub.commit_call(task_id, request_hash, digest, result)
        return await self._run(self.sender.prepare, call, gas=self.commit_gas, nonce=nonce, fees=fees)

    async def prepare_filler(self, nonce: int) -> PreparedTx:
        return await self._run(self.sender.prepare_filler, nonce)

    async def suggested_fees(self) -> Fees:
        return await self._run(self.sender.suggested_fees)

    async def broadcast(self, raw: bytes) -> bytes:
        return await self._run(self.sender.broadcast, raw)

    async def tx_state(self, tx_hash: bytes) -> TxState:
        return await self._run(self.sender.state, tx_hash)

    async def pending_nonce(self) -> int:
        return await self._run(self.sender.pending_nonce)

    async def wait(self, tx_hash: bytes, timeout: float):
        return await self._run(self.sender.wait, tx_hash, timeout)

    # -- the payout distributor ----------------------------------------------------------------

    def _epoch_state(self, epoch: int) -> tuple[int, bytes]:
        head = self.w3.eth.block_number  # both read at one block
        return self.distributor.epoch_count(head), self.distributor.root(epoch, head)

    async def epoch_state(self, epoch: int) -> tuple[int, bytes]:
        """The distributor's epoch count and its root for EPOCH (zeros: none)."""
        return await self._run(self._epoch_state, epoch)

    async def epoch_count(self) -> int:
        return await self._run(self.distributor.epoch_count)

    async def uncommitted(self) -> int:
        """RLC the distributor received and no epoch committed yet."""
        return await self._run(self.distributor.uncommitted)

    async def distributor_oracle(self) -> str:
        return await self._run(self.distributor.oracle)

    async def prepare_epoch(self, root: bytes, total: int, *, nonce: int | None = None,
                            fees: Fees | None = None) -> PreparedTx:
        call = self.distributor.commit_call(root, total)
        return await self._run(self.sender.prepare, call, gas=EPOCH_GAS, nonce=nonce, fees=fees)

    async def explain(self, receipt) -> str:
        return await self._run(self.sender.explain, receipt)
