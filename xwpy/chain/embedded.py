"""The embedded chain: eth-tester's py-evm backend, made a little more like a real node.

- Deterministic demo accounts (``accounts.py``) funded at genesis.
- One block per transaction, timestamped when the transaction arrives (eth-tester stamps a
  block when its predecessor is mined, which can be hours stale on an idle chain and makes
  deadlines misbehave), plus a settable time offset (``evm_increaseTime``) and empty blocks
  (``evm_mine``) as on ganache.
- ``eth_call`` and ``eth_estimateGas`` run on top of the next block at the chain's "now",
  so a refund just after a deadline estimates the way it will execute.
- Deterministic block hashes (``prevrandao`` derived from the parent hash instead of random),
  and, given a state directory, a journal of every state change that is replayed on start:
  the chain survives a restart of its process with the same blocks and hashes.

Not thread-safe by design (neither is eth-tester): every method takes the instance lock, and
the JSON-RPC resource runs them all on a single dedicated thread.

Served standalone by :mod:`xwpy.chain.serve`, in the coordinator by ``rpc.EmbeddedChainService``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Callable

from eth_utils import keccak, to_canonical_address, to_checksum_address

from xwpy.chain.accounts import DEMO_ETH_WEI, demo_accounts
from xwpy.chain.journal import Genesis, Journal, JournalError, MineRecord, OffsetRecord, TxRecord

ZERO_ADDRESS = b"\x00" * 20
# How far evm_increaseTime / evm_mine(timestamp) may move the clock past real time: enough for
# tests and demos of deadlines; the clock is journaled, so a jump of years would stay for good.
MAX_TIME_TRAVEL = 30 * 24 * 3600


class TransactionRejected(Exception):
    """The transaction was not included (bad nonce, signature, funds, chain id...)."""


class CallRejected(Exception):
    """A simulated call could not even start (value above balance, gas below intrinsic...)."""


class ExecutionReverted(Exception):
    """A simulated call failed; ``data`` is the revert data (may be empty)."""

    def __init__(self, reason: str, data: bytes):
        super().__init__(reason)
        self.reason = reason
        self.data = data


def _backend_class():
    # Imported lazily: py-evm is heavy and only the chain process needs it.
    from eth.vm.forks import PragueVM
    from eth.vm.forks.cancun import get_total_blob_gas
    from eth_tester import PyEVMBackend

    class DeterministicBackend(PyEVMBackend):
        """PyEVMBackend whose blocks depend only on their contents and timestamps."""

        def mine_blocks(self, num_blocks=1, coinbase=ZERO_ADDRESS):
            hashes = []
            for _ in range(num_blocks):
                pending = self.chain.header
                kwargs = {
                    "coinbase": coinbase,
                    # eth-tester draws prevrandao from os.urandom; derive it instead.
                    "mix_hash": keccak(b"xwpy prevrandao" + pending.parent_hash),
                }
                if isinstance(self.chain.get_vm(), PragueVM):
                    txs = self.chain.get_block().transactions
                    kwargs["blob_gas_used"] = sum(get_total_blob_gas(tx) for tx in txs)
                hashes.append(self.chain.mine_block(**kwargs).hash)
            return tuple(hashes)

    return DeterministicBackend


class EmbeddedChain:
    """An in-process chain. Build it with :meth:`create`."""

    def __init__(self, tester, journal: Journal | None, genesis: Genesis, clock: Callable[[], float]):
        self.tester = tester
        self.journal = journal
        self.genesis = genesis
        self._clock = clock
        self._offset = 0
        self.lock = threading.RLock()

    # --- construction ------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        state_dir: str | Path | None = None,
        *,
        clock: Callable[[], float] = time.time,
        balances: dict[str, int] | None = None,
    ) -> "EmbeddedChain":
        """A fresh chain, or the one journaled in STATE_DIR (replayed) if there is one.

        BALANCES (address -> wei) defaults to the demo accounts; it is ignored when a journal
        exists, whose genesis wins.
        """
        journal = Journal.in_dir(state_dir) if state_dir is not None else None
        if journal is not None:
            journal.acquire()
            try:
                if journal.exists():
                    genesis, records = journal.read()
                    chain = cls._from_genesis(genesis, journal, clock)
                    chain._replay(records)
                    return chain
            except BaseException:
                journal.close()
                raise
        if balances is None:
            balances = {a.address: DEMO_ETH_WEI for a in demo_accounts().values()}
        genesis = Genesis(
            timestamp=int(clock()),
            chain_id=0,  # filled in below from the backend
            balances={to_checksum_address(a): int(v) for a, v in balances.items()},
        )
        chain = cls._from_genesis(genesis, journal, clock)
        chain.genesis = Genesis(genesis.timestamp, chain.chain_id, genesis.balances)
        if journal is not None:
            journal.start(chain.genesis)
        return chain

    @classmethod
    def _from_genesis(cls, genesis: Genesis, journal: Journal | None, clock) -> "EmbeddedChain":
        from eth_tester import EthereumTester

        backend_cls = _backend_class()
        params = backend_cls.generate_genesis_params(overrides={"timestamp": genesis.timestamp})
        state = {
            to_canonical_address(addr): {"balance": bal, "nonce": 0, "code": b"", "storage": {}}
            for addr, bal in genesis.balances.items()
        }
        backend = backend_cls(genesis_parameters=params, genesis_state=state)
        if genesis.chain_id and backend.chain.chain_id != genesis.chain_id:
            raise JournalError(
                f"journal was written for chain id {genesis.chain_id}, "
                f"this eth-tester uses {backend.chain.chain_id}"
            )
        return cls(EthereumTester(backend=backend, auto_mine_transactions=True), journal, genesis, clock)

    def _replay(self, records) -> None:
        for rec in records:
            if isinstance(rec, OffsetRecord):
                self._offset = rec.seconds
                continue
            self._set_pending_timestamp(rec.timestamp)
            if isinstance(rec, TxRecord):
                try:
                    self.tester.send_raw_transaction(rec.raw)
                except Exception as exc:
                    raise JournalError(f"replay of block {rec.block}: transaction rejected: {exc}") from exc
            else:
                self.tester.mine_block()
            head = self._latest_header()
            if head.block_number != rec.block or "0x" + head.hash.hex() != rec.block_hash:
                raise JournalError(
                    f"replay diverged at block {rec.block}: got {head.block_number} "
                    f"0x{head.hash.hex()}, journal has {rec.block_hash} "
                    "(was py-evm or eth-tester upgraded?)"
                )

    def close(self) -> None:
        with self.lock:
            if self.journal is not None:
                self.journal.close()

    # --- clock and blocks --------------------------------------------------------------

    @property
    def chain_id(self) -> int:
        return self.tester.backend.chain.chain_id

    @property
    def _chain(self):
        return self.tester.backend.chain

    def _latest_header(self):
        chain = self._chain
        return chain.get_canonical_head()

    def now(self) -> int:
        return int(self._clock()) + self._offset

    def block_number(self) -> int:
        with self.lock:
            return self._latest_header().block_number

    def _next_timestamp(self, at_least: int | None = None) -> int:
        ts = max(self._latest_header().timestamp + 1, self.now())
        if at_least is not None:
            ts = max(ts, at_least)
        return ts

    def _set_pending_timestamp(self, ts: int) -> None:
        chain = self._chain
        chain.header = chain.header.copy(timestamp=ts)

    def increase_time(self, seconds: int) -> int:
        """Move the chain's clock forward (ganache's evm_increaseTime); returns the offset."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self.lock:
            # Relative to the chain's now, which can run ahead of the wall clock: block
            # timestamps must strictly increase, so a burst of transactions (one block
            # each) pushes them past real time. "Now + SECONDS" is then what callers mean.
            base = max(self._latest_header().timestamp, self.now())
            offset = base + int(seconds) - int(self._clock())
            if offset > MAX_TIME_TRAVEL:
                raise ValueError(f"the chain's clock may run at most {MAX_TIME_TRAVEL} s ahead of real time")
            if self.journal is not None:
                self.journal.append(OffsetRecord(offset))  # first: a failed write changes nothing
            self._offset = offset
            return self._offset

    def mine(self, timestamp: int | None = None) -> int:
        """Mine an empty block, at TIMESTAMP if given and later than the head; returns its number."""
        with self.lock:
            ts = self._next_timestamp(timestamp)
            if ts > int(self._clock()) + MAX_TIME_TRAVEL:
                raise ValueError(f"a block may be at most {MAX_TIME_TRAVEL} s ahead of real time")
            with self._journaled() as record:
                self._set_pending_timestamp(ts)
                self.tester.mine_block()
                head = self._latest_header()
                record(MineRecord(ts, head.block_number, "0x" + head.hash.hex()))
            return head.block_number

    @contextlib.contextmanager
    def _journaled(self):
        """Apply a change and journal it, or neither: a failed append (disk full) reverts the
        change, so the chain in memory never runs ahead of its journal (a block missing from
        the journal would make every later record diverge on replay: no restart)."""
        snapshot = self.tester.take_snapshot()
        records = []
        yield records.append
        if self.journal is None:
            return
        try:
            for rec in records:
                self.journal.append(rec)
        except BaseException:
            self.tester.revert_to_snapshot(snapshot)
            raise

    # --- transactions ------------------------------------------------------------------

    def send_raw_transaction(self, raw: bytes) -> bytes:
        """Include a signed transaction in a new block; returns its hash once journaled."""
        from eth_tester.exceptions import ValidationError as TesterValidationError
        from eth.exceptions import PyEVMError
        from eth_utils import ValidationError as UtilsValidationError
        from rlp.exceptions import DecodingError, DeserializationError

        with self.lock, self._journaled() as record:
            ts = self._next_timestamp()
            self._set_pending_timestamp(ts)
            try:
                self._check_nonce(raw)
                tx_hash = self.tester.send_raw_transaction("0x" + raw.hex())
            except (
                TesterValidationError,
                PyEVMError,
                UtilsValidationError,
                DecodingError,
                DeserializationError,
                ValueError,
            ) as exc:
                raise TransactionRejected(str(exc) or type(exc).__name__) from exc
            head = self._latest_header()
            record(TxRecord("0x" + raw.hex(), ts, head.block_number, "0x" + head.hash.hex()))
            return bytes.fromhex(tx_hash[2:])

    def _check_nonce(self, raw: bytes) -> None:
        """Word nonce errors as geth does, which is what clients recognise."""
        vm = self._chain.get_vm()
        tx = vm.get_transaction_builder().decode(raw)
        expected = vm.state.get_nonce(tx.sender)
        if tx.nonce < expected:
            raise TransactionRejected(f"nonce too low: next nonce {expected}, tx nonce {tx.nonce}")
        if tx.nonce > expected:
            # A real node would queue it; one block per transaction cannot.
            raise TransactionRejected(f"nonce too high: next nonce {expected}, tx nonce {tx.nonce}")

    # --- simulation --------------------------------------------------------------------

    def _spoof(self, vm, tx: dict):
        from eth.vm.spoof import SpoofTransaction

        sender = tx.get("from") or ZERO_ADDRESS
        unsigned = vm.get_transaction_builder().new_unsigned_dynamic_fee_transaction(
            chain_id=self.chain_id,
            nonce=vm.state.get_nonce(sender),
            max_priority_fee_per_gas=0,
            max_fee_per_gas=0,
            gas=tx["gas"],
            to=tx.get("to") or b"",
            value=tx.get("value", 0),
            data=tx.get("data", b""),
            access_list=(),
        )
        return SpoofTransaction(unsigned, from_=sender)

    def _sim_header(self, block: int | None):
        """Header to simulate on: the next block at "now", or a child of block BLOCK."""
        chain = self._chain
        if block is None:
            parent = self._latest_header()
            ts = self._next_timestamp()
        else:
            # As the first transaction of the block after BLOCK: with one transaction per
            # block, that replays a mined transaction exactly (tools use it for reasons).
            parent = chain.get_canonical_block_header_by_number(block)
            if block + 1 <= self._latest_header().block_number:
                ts = chain.get_canonical_block_header_by_number(block + 1).timestamp
            else:
                ts = max(parent.timestamp + 1, self.now())
        header = chain.create_header_from_parent(parent, timestamp=ts)
        # Calls are free, as on geth: no base fee, so any sender can simulate.
        if hasattr(header, "base_fee_per_gas"):
            header = header.copy(base_fee_per_gas=0)
        return header

    def call(self, tx: dict, block: int | None = None) -> bytes:
        """Run TX (canonical addresses, ints, bytes) without recording it; returns output."""
        with self.lock:
            header = self._sim_header(block)
            gas = tx.get("gas") or header.gas_limit
            vm = self._chain.get_vm(header)
            state = vm.state
            snapshot = state.snapshot()
            try:
                computation = state.apply_transaction(self._spoof(vm, {**tx, "gas": gas}))
            except Exception as exc:  # py-evm validation: value above balance...
                raise CallRejected(str(exc) or type(exc).__name__) from exc
            finally:
                state.revert(snapshot)
            if computation.is_error:
                raise ExecutionReverted(_revert_reason(computation), bytes(computation.output))
            return bytes(computation.output)

    def estimate_gas(self, tx: dict, block: int | None = None) -> int:
        """A gas limit with which TX succeeds in the next block, at most 0.5% above the least.

        Binary search, as geth does: the gas a call *uses* is not the gas it *needs* (EIP-150
        keeps 1/64 back at each call, and the hub refuses to start a callback that could not
        get its whole stipend).
        """
        with self.lock:
            header = self._sim_header(block)
            cap = tx.get("gas") or header.gas_limit
            vm = self._chain.get_vm(header)
            ok, used = self._try(vm, tx, cap)
            if not ok:
                # Fails at any gas: report why, as the call would.
                self.call({**tx, "gas": cap}, block)
                raise ExecutionReverted("execution failed", b"")
            lo, hi = 21000 - 1, max(used, 21000)
            while not self._try(vm, tx, hi)[0]:
                lo, hi = hi, min(cap, hi * 2)
            while hi - lo > max(hi // 200, 1):
                mid = (lo + hi) // 2
                if self._try(vm, tx, mid)[0]:
                    hi = mid
                else:
                    lo = mid
            return hi

    def _try(self, vm, tx: dict, gas: int) -> tuple[bool, int]:
        """Run TX with GAS on a scratch state: (succeeded, gas used before refunds)."""
        state = vm.state
        snapshot = state.snapshot()
        try:
            computation = state.apply_transaction(self._spoof(vm, {**tx, "gas": gas}))
        except Exception:  # intrinsic gas above GAS, value above balance...
            return False, gas
        finally:
            state.revert(snapshot)
        return not computation.is_error, gas - computation.get_gas_remaining()


def _revert_reason(computation) -> str:
    from eth_abi import decode as abi_decode

    err = computation.error
    out = bytes(computation.output)
    if out[:4] == bytes.fromhex("08c379a0"):
        try:
            return "execution reverted: " + abi_decode(["string"], out[4:])[0]
        except Exception:
            pass
    if out or type(err).__name__ == "Revert":
        return "execution reverted"
    return f"execution failed: {type(err).__name__}"

