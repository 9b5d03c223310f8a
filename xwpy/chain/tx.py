"""Send transactions from a local key: explicit nonces, signing, waiting for the receipt.

All functions block; call them off the reactor thread (the oracle wraps them in
``deferToThreadPool``). One :class:`TxSender` per key and process: it hands out nonces
under a lock, so several threads may send concurrently, and resynchronises with the node
when a nonce turns out to be taken (another process used the key, or a node restarted and
forgot a pending transaction).

Errors are typed so callers can tell what to do:

- :class:`TxReverted` - the contract refused (the revert reason is in the message); retrying
  the same call will not help. ``receipt`` is set when the transaction was mined (status 0),
  ``None`` when gas estimation already showed the revert and nothing was sent.
- :class:`TxTimeout` - sent, but no receipt in time. The transaction may still be mined:
  check chain state before sending anything that must happen once.
- Connection errors from requests/web3 propagate unchanged: transient, retry later.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from eth_abi import decode as abi_decode
from eth_account import Account
from hexbytes import HexBytes
from web3 import Web3
from eth_utils import keccak
from web3.exceptions import ContractLogicError, TimeExhausted, TransactionNotFound, Web3RPCError

DEFAULT_RECEIPT_TIMEOUT = 120.0

# Fragments of the messages geth, ganache and the embedded chain use for a nonce that is no
# longer free. Matched case-insensitively.
_NONCE_TAKEN = (
    "nonce too low",
    "already known",
    "already imported",
    "replacement transaction",
    "nonce has already been used",
    "correct nonce",  # ganache: "the tx doesn't have the correct nonce"
)


class TxError(Exception):
    pass


class TxReverted(TxError):
    def __init__(self, message: str, receipt: Any = None):
        super().__init__(message)
        self.receipt = receipt


class TxTimeout(TxError):
    def __init__(self, message: str, tx_hash: bytes):
        super().__init__(message)
        self.tx_hash = tx_hash


class NonceTaken(TxError):
    """A prepared transaction's nonce was used by another transaction: sign it again."""


@dataclasses.dataclass(frozen=True)
class Fees:
    """EIP-1559 fees of a transaction, in wei per gas."""

    max_fee: int
    tip: int


@dataclasses.dataclass(frozen=True)
class PreparedTx:
    """A signed transaction not sent yet (``TxSender.prepare``)."""

    tx_hash: bytes
    nonce: int
    raw: bytes = dataclasses.field(repr=False)


def fees_of(raw: bytes) -> Fees:
    """The fees a signed transaction offers (a legacy one's gas price is both)."""
    from eth_account.typed_transactions import TypedTransaction

    if raw and raw[0] < 0x80:
        d = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
        if "maxFeePerGas" in d:
            return Fees(d["maxFeePerGas"], d["maxPriorityFeePerGas"])
        return Fees(d["gasPrice"], d["gasPrice"])
    import rlp

    price = rlp.decode(raw)[1]
    value = int.from_bytes(price, "big")
    return Fees(value, value)


@dataclasses.dataclass(frozen=True)
class TxState:
    """What a node knows of a transaction: ``mined`` (with its receipt), ``pending`` or ``unknown``."""

    kind: str
    receipt: Any = None

    @property
    def succeeded(self) -> bool:
        return self.kind == "mined" and self.receipt["status"] == 1


_ERROR_STRING = bytes.fromhex("08c379a0")  # selector of Error(string)


def revert_reason(exc: Exception) -> str | None:
    """"execution reverted: REASON" for an error that is a contract revert, else None.

    Nodes word reverts differently (geth: code 3; ganache: code -32000 "VM Exception...");
    all put the ABI-encoded Error(string) in the error's data, so decode that.
    """
    data: object = None
    message = ""
    if isinstance(exc, ContractLogicError):
        data, message = exc.data, exc.message or ""
    elif isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
        err = exc.rpc_response.get("error")
        if isinstance(err, dict):
            data, message = err.get("data"), str(err.get("message", ""))
    else:
        return None
    if isinstance(data, dict):  # some nodes nest it: {"data": {"<hash>": {"return": ...}}}
        data = data.get("data") or data.get("result")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            raw = bytes.fromhex(data[2:])
        except ValueError:
            raw = b""
        if raw[:4] == _ERROR_STRING:
            try:
                return "execution reverted: " + abi_decode(["string"], raw[4:])[0]
            except Exception:
                pass
        if raw:
            return f"execution reverted (data {data[:74]})"
    if isinstance(exc, ContractLogicError) or "revert" in message.lower():
        return "execution reverted"  # without data: same words whatever the node
    return None


class TxSender:
    """Signs and sends transactions for one private key. Thread-safe."""

    def __init__(self, w3: Web3, private_key: bytes | str, *, receipt_timeout: float = DEFAULT_RECEIPT_TIMEOUT, poll_latency: float = 0.05):
        self.w3 = w3
        self._account = Account.from_key(private_key)
        self.receipt_timeout = receipt_timeout
        self.poll_latency = poll_latency
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        self._chain_id: int | None = None

    def __repr__(self) -> str:  # never the key
        return f"TxSender({self.address})"

    @property
    def address(self) -> str:
        return self._account.address

    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self.w3.eth.chain_id
        return self._chain_id

    def resync(self) -> None:
        """Forget the local nonce; the next send asks the node."""
        with self._lock:
            self._next_nonce = None

    # --- sending -----------------------------------------------------------------------

    def transact(self, call: Any, *, gas: int | None = None, value: int = 0, wait: bool = True):
        """Send a contract call or constructor (anything with ``build_transaction``).

        Without GAS the node estimates it, and a call that would revert raises TxReverted
        before anything is sent. With GAS the transaction is sent as is (tests use that to
        prove the chain itself refuses). Returns the receipt, or the hash if not WAIT.
        """
        with self._lock:
            tx = self._build(call, gas, value)
            tx_hash = self._send_signed(tx)
        if not wait:
            return tx_hash
        receipt = self.wait(tx_hash)
        if receipt["status"] != 1:
            raise TxReverted(self._failure_reason(tx, receipt), receipt)
        return receipt

    # --- two steps, for what must happen once: store the hash, then send -----------------

    def prepare(self, call: Any, *, gas: int | None = None, value: int = 0, nonce: int | None = None,
                fees: Fees | None = None) -> PreparedTx:
        """Build and sign CALL, without sending it, on NONCE (default: the node's next one,
        counting its pending transactions), with FEES (default: the node's suggestion).

        A caller that must not send twice (the oracle's commit) stores the hash and the bytes
        before :meth:`broadcast`, so after a crash it can look the transaction up, or send the
        very same bytes again: one nonce, so at most one of them is ever mined. No nonce is
        reserved here: one is used only once the node has a transaction on it, so a caller that
        failed to store what it signed signs the same nonce again, and leaves no hole.
        """
        params: dict[str, Any] = {"from": self.address, "value": value, "chainId": self.chain_id()}
        if gas is not None:
            params["gas"] = gas
        params["nonce"] = self.pending_nonce() if nonce is None else nonce
        if fees is not None:
            params.update(maxFeePerGas=fees.max_fee, maxPriorityFeePerGas=fees.tip)
        tx = self._build_at(call, params)
        signed = self._account.sign_transaction(tx)
        return PreparedTx(bytes(signed.hash), tx["nonce"], bytes(signed.raw_transaction))

    def prepare_filler(self, nonce: int, fees: Fees | None = None) -> PreparedTx:
        """A transfer of nothing to ourselves on NONCE: fills a hole below queued transactions."""
        tx: dict[str, Any] = {"to": self.address, "value": 0, "gas": 21_000, "nonce": nonce, "chainId": self.chain_id()}
        f = fees or self.suggested_fees()
        tx.update(maxFeePerGas=f.max_fee, maxPriorityFeePerGas=f.tip)
        signed = self._account.sign_transaction(tx)
        return PreparedTx(bytes(signed.hash), nonce, bytes(signed.raw_transaction))

    def suggested_fees(self) -> Fees:
        """What web3 would offer now: twice the next block's base fee plus the node's tip."""
        base = self.w3.eth.get_block("pending").get("baseFeePerGas") or 0
        tip = self.w3.eth.max_priority_fee
        return Fees(2 * base + tip, tip)

    def _build(self, call: Any, gas: int | None, value: int) -> dict:
        """With the lock held: CALL as a transaction on the next free nonce (the node estimates
        GAS when None; a call that would revert raises TxReverted)."""
        params: dict[str, Any] = {"from": self.address, "value": value, "chainId": self.chain_id()}
        if gas is not None:
            params["gas"] = gas
        params["nonce"] = self._reserve_nonce()
        return self._build_at(call, params)

    def estimate_gas(self, call: Any, value: int = 0) -> int:
        """The node's gas estimate for CALL from this key; TxReverted if it would revert."""
        return self._build_at(call, {"from": self.address, "value": value, "chainId": self.chain_id()})["gas"]

    def _build_at(self, call: Any, params: dict) -> dict:
        try:
            return call.build_transaction(params)
        except (ContractLogicError, Web3RPCError) as exc:
            reason = revert_reason(exc)
            if reason is None:
                raise
            raise TxReverted(reason) from None

    def broadcast(self, raw: bytes) -> bytes:
        """Send a prepared transaction's bytes; its hash. Sending it again is harmless.

        Raises NonceTaken when another transaction used its nonce, TxError when the node refuses
        it otherwise; connection errors propagate. After any failure the next nonce is asked
        from the node again.
        """
        tx_hash = keccak(raw)
        try:
            self.w3.eth.send_raw_transaction(raw)
        except Web3RPCError as exc:
            text = str(exc).lower()
            if any(frag in text for frag in _NONCE_TAKEN):
                if self._is_known(tx_hash):
                    return tx_hash  # already in: a retry of this very transaction
                self.resync()
                raise NonceTaken(f"nonce of 0x{tx_hash.hex()} is taken: {exc}") from None
            self.resync()
            raise TxError(f"node rejected the transaction: {exc}") from None
        except Exception:
            self.resync()
            raise
        return tx_hash

    def state(self, tx_hash: bytes) -> TxState:
        """Mined (with the receipt), pending, or unknown to the node."""
        h = HexBytes(tx_hash)
        try:
            return TxState("mined", self.w3.eth.get_transaction_receipt(h))
        except TransactionNotFound:
            pass
        try:
            self.w3.eth.get_transaction(h)
        except TransactionNotFound:
            return TxState("unknown")
        return TxState("pending")

    def explain(self, receipt) -> str:
        """Why a mined transaction failed (replayed on its parent block)."""
        tx = self.w3.eth.get_transaction(receipt["transactionHash"])
        call = {"from": tx["from"], "to": tx["to"], "data": tx["input"], "value": tx["value"], "gas": tx["gas"]}
        return self._failure_reason(call, receipt)

    def pending_nonce(self) -> int:
        """The nonce the node expects next from this key, counting its pending transactions."""
        return self.w3.eth.get_transaction_count(self.address, "pending")

    def _reserve_nonce(self) -> int:
        node_nonce = self.w3.eth.get_transaction_count(self.address, "pending")
        nonce = node_nonce if self._next_nonce is None else max(self._next_nonce, node_nonce)
        self._next_nonce = nonce
        return nonce

    def _send_signed(self, tx: dict) -> bytes:
        """Sign and send TX (its nonce reserved under the lock); advance the nonce."""
        signed = self._account.sign_transaction(tx)
        try:
            tx_hash = bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        except Web3RPCError as exc:
            text = str(exc).lower()
            if not any(frag in text for frag in _NONCE_TAKEN):
                raise TxError(f"node rejected the transaction: {exc}") from None
            if self._is_known(signed.hash):
                tx_hash = bytes(signed.hash)  # a retry of our own transaction: already in
            else:
                # Someone else took the nonce: resync and sign again, once.
                self._next_nonce = None
                tx = {**tx, "nonce": self._reserve_nonce()}
                signed = self._account.sign_transaction(tx)
                tx_hash = bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))
        self._next_nonce = tx["nonce"] + 1
        return tx_hash

    def _is_known(self, tx_hash: bytes) -> bool:
        try:
            return self.w3.eth.get_transaction(HexBytes(tx_hash)) is not None
        except Exception:
            return False

    def wait(self, tx_hash: bytes, timeout: float | None = None):
        try:
            return self.w3.eth.wait_for_transaction_receipt(
                HexBytes(tx_hash),
                timeout=self.receipt_timeout if timeout is None else timeout,
                poll_latency=self.poll_latency,
            )
        except TimeExhausted:
            raise TxTimeout(f"no receipt for 0x{bytes(tx_hash).hex()} yet", bytes(tx_hash)) from None

    def _failure_reason(self, tx: dict, receipt) -> str:
        """Replay a mined, failed transaction as a call on its parent block for the reason."""
        call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
        where = f"transaction 0x{bytes(receipt['transactionHash']).hex()} failed"
        try:
            self.w3.eth.call(call, block_identifier=receipt["blockNumber"] - 1)
        except (ContractLogicError, Web3RPCError) as exc:
            reason = revert_reason(exc)
            if reason is not None:
                return f"{where}: {reason}"
        except Exception:
            pass
        if receipt["gasUsed"] >= tx.get("gas", 0):
            return f"{where}: out of gas"
        return f"{where}: reason unavailable"
