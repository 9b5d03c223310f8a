"""Ethereum JSON-RPC methods over an :class:`~xwpy.chain.embedded.EmbeddedChain`.

Pure translation, no I/O: ``dispatch(chain, method, params)`` validates the parameters, calls
the chain and returns the JSON-ready result, or raises :class:`RpcError` with a JSON-RPC error
code and a message that names what was wrong. The formats follow geth, so web3's HTTPProvider
(and any other client) sees no difference from a real node: quantities are 0x-hex, data is
0x-hex, reverts are ``{"code": 3, "message": "execution reverted: ...", "data": "0x..."}``.

Only what a client of this project needs is served; anything else is "method not found",
never a silent wrong answer. ``evm_mine`` and ``evm_increaseTime`` behave as on ganache so
tests can drive either chain the same way.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from eth_utils import is_checksum_address, is_hex_address, to_canonical_address, to_checksum_address

from xwpy.chain.embedded import CallRejected, EmbeddedChain, ExecutionReverted, TransactionRejected

# JSON-RPC 2.0 and geth error codes.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000  # geth: transaction rejected, call could not start...
EXECUTION_REVERTED = 3

# The fee suggested to clients. The chain has a real EIP-1559 base fee; the tip is arbitrary.
PRIORITY_FEE_WEI = 10**9

_HEX_RE = re.compile(r"^0x[0-9a-fA-F]*$")
_MAX_LOG_RANGE = 100_000
_LOGS_BLOOM_BYTES = 256


class RpcError(Exception):
    def __init__(self, code: int, message: str, data: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


# --- parameter parsing -----------------------------------------------------------------

def _param(params: list, i: int, name: str, default: Any = ...) -> Any:
    if i < len(params) and params[i] is not None:
        return params[i]
    if default is ...:
        raise RpcError(INVALID_PARAMS, f"missing parameter {i} ({name})")
    return default


def parse_quantity(value: Any, name: str) -> int:
    if isinstance(value, str) and _HEX_RE.match(value) and len(value) > 2 and len(value) <= 66:
        return int(value, 16)
    raise RpcError(INVALID_PARAMS, f"{name}: expected a 0x-hex quantity, got {value!r:.80}")


def parse_data(value: Any, name: str, max_bytes: int = 1 << 20) -> bytes:
    if isinstance(value, str) and _HEX_RE.match(value) and len(value) % 2 == 0:
        data = bytes.fromhex(value[2:])
        if len(data) > max_bytes:
            raise RpcError(INVALID_PARAMS, f"{name}: more than {max_bytes} bytes")
        return data
    raise RpcError(INVALID_PARAMS, f"{name}: expected 0x-hex bytes, got {value!r:.80}")


def parse_address(value: Any, name: str) -> bytes:
    if isinstance(value, str) and is_hex_address(value):
        # Mixed case must be a valid checksum, as web3 insists too: catches typos.
        if value[2:] != value[2:].lower() and value[2:] != value[2:].upper() and not is_checksum_address(value):
            raise RpcError(INVALID_PARAMS, f"{name}: bad address checksum {value}")
        return to_canonical_address(value)
    raise RpcError(INVALID_PARAMS, f"{name}: expected a 20-byte 0x address, got {value!r:.80}")


def parse_hash(value: Any, name: str) -> bytes:
    data = parse_data(value, name)
    if len(data) != 32:
        raise RpcError(INVALID_PARAMS, f"{name}: expected a 32-byte hash")
    return data


def parse_block(chain: EmbeddedChain, value: Any, name: str = "block") -> int:
    """A block tag or number -> a mined block number (pending is latest: we auto-mine)."""
    head = chain.block_number()
    if value in ("latest", "pending", "safe", "finalized"):
        return head
    if value == "earliest":
        return 0
    number = parse_quantity(value, name)
    if number > head:
        raise RpcError(SERVER_ERROR, f"{name}: block {number} is beyond the head ({head})")
    return number


def parse_call(value: Any) -> dict:
    if not isinstance(value, dict):
        raise RpcError(INVALID_PARAMS, "transaction: expected an object")
    tx: dict[str, Any] = {}
    if value.get("from") is not None:
        tx["from"] = parse_address(value["from"], "from")
    if value.get("to") is not None:
        tx["to"] = parse_address(value["to"], "to")
    if value.get("gas") is not None:
        tx["gas"] = parse_quantity(value["gas"], "gas")
    if value.get("value") is not None:
        tx["value"] = parse_quantity(value["value"], "value")
    data = value.get("input", value.get("data"))
    if data is not None:
        tx["data"] = parse_data(data, "input")
    return tx


# --- result formatting -----------------------------------------------------------------

_KEY_RENAMES = {"coinbase": "miner", "data": "input"}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p.capitalize() for p in rest)


def to_rpc(value: Any) -> Any:
    """eth-tester's normalized values -> JSON-RPC values (ints and bytes become 0x-hex)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [to_rpc(v) for v in value]
    if isinstance(value, dict):
        return {_camel(k): to_rpc(v) for k, v in value.items()}
    return value


def _bloom(value: Any) -> str:
    n = value if isinstance(value, int) else int(value, 16)
    return "0x" + n.to_bytes(_LOGS_BLOOM_BYTES, "big").hex()


def format_transaction(tx: dict) -> dict:
    out = to_rpc({k: v for k, v in tx.items() if k != "data"})
    out["input"] = tx["data"]
    if not tx.get("to"):
        out["to"] = None  # contract creation: null, as geth says
    if "gasPrice" not in out and "effectiveGasPrice" in out:
        out["gasPrice"] = out["effectiveGasPrice"]
    return out


def format_block(chain: EmbeddedChain, block: dict, full: bool) -> dict:
    out = to_rpc({k: v for k, v in block.items() if k not in ("coinbase", "logs_bloom", "transactions")})
    out["miner"] = block["coinbase"]
    # eth-tester reports a zero bloom; the header has the real one.
    header = chain.tester.backend.chain.get_canonical_block_header_by_number(block["number"])
    out["logsBloom"] = _bloom(header.bloom)
    if full:
        out["transactions"] = [
            format_transaction(chain.tester.get_transaction_by_hash(h)) for h in block["transactions"]
        ]
    else:
        out["transactions"] = list(block["transactions"])
    return out


def format_log(log: dict) -> dict:
    out = to_rpc({k: v for k, v in log.items() if k != "type"})
    out["removed"] = False
    return out


def format_receipt(receipt: dict) -> dict:
    out = to_rpc({k: v for k, v in receipt.items() if k not in ("state_root", "logs")})
    out["logs"] = [format_log(entry) for entry in receipt["logs"]]
    return out


# --- methods ---------------------------------------------------------------------------

Method = Callable[[EmbeddedChain, list], Any]
METHODS: dict[str, Method] = {}


def method(name: str):
    def register(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return register


@method("web3_clientVersion")
def _client_version(chain, params):
    from importlib.metadata import version

    return f"xwpy-embedded/eth-tester-{version('eth-tester')}/py-evm-{version('py-evm')}"


@method("net_version")
def _net_version(chain, params):
    return str(chain.chain_id)


@method("net_listening")
def _net_listening(chain, params):
    return True


@method("eth_chainId")
def _chain_id(chain, params):
    return hex(chain.chain_id)


@method("eth_syncing")
def _syncing(chain, params):
    return False


@method("eth_accounts")
def _accounts(chain, params):
    # No unlocked accounts: clients sign locally (see eth_sendTransaction).
    return []


@method("eth_blockNumber")
def _block_number(chain, params):
    return hex(chain.block_number())


@method("eth_getBlockByNumber")
def _block_by_number(chain, params):
    tag = _param(params, 0, "block")
    full = bool(_param(params, 1, "full transactions", False))
    try:
        number = parse_block(chain, tag)
    except RpcError as exc:
        if exc.code == SERVER_ERROR:
            return None  # a future block does not exist yet: null, as geth says
        raise
    with chain.lock:
        return format_block(chain, chain.tester.get_block_by_number(number), full)


@method("eth_getBlockByHash")
def _block_by_hash(chain, params):
    from eth_tester.exceptions import BlockNotFound

    block_hash = parse_hash(_param(params, 0, "block hash"), "block hash")
    full = bool(_param(params, 1, "full transactions", False))
    with chain.lock:
        try:
            block = chain.tester.get_block_by_hash("0x" + block_hash.hex())
        except BlockNotFound:
            return None
        return format_block(chain, block, full)


def _account_state(getter: str):
    def handler(chain, params):
        address = to_checksum_address(parse_address(_param(params, 0, "address"), "address"))
        number = parse_block(chain, _param(params, 1, "block", "latest"))
        with chain.lock:
            return to_rpc(getattr(chain.tester, getter)(address, number))

    return handler


METHODS["eth_getBalance"] = _account_state("get_balance")
METHODS["eth_getTransactionCount"] = _account_state("get_nonce")
METHODS["eth_getCode"] = _account_state("get_code")


@method("eth_getStorageAt")
def _storage_at(chain, params):
    address = to_checksum_address(parse_address(_param(params, 0, "address"), "address"))
    slot = parse_quantity(_param(params, 1, "slot"), "slot")
    number = parse_block(chain, _param(params, 2, "block", "latest"))
    with chain.lock:
        value = chain.tester.get_storage_at(address, hex(slot), number)
    raw = bytes.fromhex(value[2:]) if isinstance(value, str) else bytes(value)
    return "0x" + raw.rjust(32, b"\0").hex()


def _base_fee(chain) -> int:
    with chain.lock:
        return chain.tester.get_block_by_number("pending")["base_fee_per_gas"]


@method("eth_gasPrice")
def _gas_price(chain, params):
    return hex(_base_fee(chain) + PRIORITY_FEE_WEI)


@method("eth_maxPriorityFeePerGas")
def _priority_fee(chain, params):
    return hex(PRIORITY_FEE_WEI)


@method("eth_feeHistory")
def _fee_history(chain, params):
    count = _param(params, 0, "block count")
    count = count if isinstance(count, int) else parse_quantity(count, "block count")
    newest = parse_block(chain, _param(params, 1, "newest block"))
    percentiles = _param(params, 2, "reward percentiles", [])
    if not (1 <= count <= 1024):
        raise RpcError(INVALID_PARAMS, "block count: expected 1..1024")
    if not isinstance(percentiles, list) or not all(isinstance(p, (int, float)) and 0 <= p <= 100 for p in percentiles):
        raise RpcError(INVALID_PARAMS, "reward percentiles: expected numbers in 0..100")
    oldest = max(0, newest - count + 1)
    base_fees, ratios, rewards = [], [], []
    with chain.lock:
        for n in range(oldest, newest + 1):
            block = chain.tester.get_block_by_number(n)
            base_fees.append(hex(block["base_fee_per_gas"]))
            ratios.append(block["gas_used"] / block["gas_limit"])
            rewards.append([hex(PRIORITY_FEE_WEI)] * len(percentiles))
        base_fees.append(hex(chain.tester.get_block_by_number("pending")["base_fee_per_gas"]))
    out = {"oldestBlock": hex(oldest), "baseFeePerGas": base_fees, "gasUsedRatio": ratios}
    if percentiles:
        out["reward"] = rewards
    return out


def _sim_block(chain, params, i) -> int | None:
    tag = _param(params, i, "block", "latest")
    if tag in ("latest", "pending", "safe", "finalized"):
        return None  # the next block, at the chain's now
    return parse_block(chain, tag)


def _simulated(fn):
    try:
        return fn()
    except ExecutionReverted as exc:
        raise RpcError(EXECUTION_REVERTED if exc.data else SERVER_ERROR, exc.reason, "0x" + exc.data.hex()) from None
    except CallRejected as exc:
        raise RpcError(SERVER_ERROR, str(exc)) from None


@method("eth_call")
def _call(chain, params):
    tx = parse_call(_param(params, 0, "transaction"))
    block = _sim_block(chain, params, 1)
    return "0x" + _simulated(lambda: chain.call(tx, block)).hex()


@method("eth_estimateGas")
def _estimate_gas(chain, params):
    tx = parse_call(_param(params, 0, "transaction"))
    block = _sim_block(chain, params, 1)
    return hex(_simulated(lambda: chain.estimate_gas(tx, block)))


@method("eth_sendRawTransaction")
def _send_raw(chain, params):
    raw = parse_data(_param(params, 0, "signed transaction"), "signed transaction", max_bytes=128 * 1024)
    if not raw:
        raise RpcError(INVALID_PARAMS, "signed transaction: empty")
    try:
        return "0x" + chain.send_raw_transaction(raw).hex()
    except TransactionRejected as exc:
        raise RpcError(SERVER_ERROR, f"transaction rejected: {exc}") from None


@method("eth_sendTransaction")
def _send_transaction(chain, params):
    raise RpcError(
        METHOD_NOT_FOUND,
        "eth_sendTransaction is not served: sign locally and use eth_sendRawTransaction",
    )


@method("eth_getTransactionByHash")
def _tx_by_hash(chain, params):
    from eth_tester.exceptions import TransactionNotFound

    tx_hash = parse_hash(_param(params, 0, "transaction hash"), "transaction hash")
    with chain.lock:
        try:
            return format_transaction(chain.tester.get_transaction_by_hash("0x" + tx_hash.hex()))
        except TransactionNotFound:
            return None


@method("eth_getTransactionReceipt")
def _receipt(chain, params):
    from eth_tester.exceptions import TransactionNotFound

    tx_hash = parse_hash(_param(params, 0, "transaction hash"), "transaction hash")
    with chain.lock:
        try:
            receipt = chain.tester.get_transaction_receipt("0x" + tx_hash.hex())
        except TransactionNotFound:
            return None
        if receipt.get("block_number") is None:
            return None
        return format_receipt(receipt)


def _parse_topics(value: Any) -> list | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 4:
        raise RpcError(INVALID_PARAMS, "topics: expected a list of at most 4 entries")
    out: list = []
    for i, t in enumerate(value):
        if t is None:
            out.append(None)
        elif isinstance(t, list):
            out.append(["0x" + parse_hash(x, f"topics[{i}]").hex() for x in t])
        else:
            out.append("0x" + parse_hash(t, f"topics[{i}]").hex())
    return out


@method("eth_getLogs")
def _get_logs(chain, params):
    query = _param(params, 0, "filter")
    if not isinstance(query, dict):
        raise RpcError(INVALID_PARAMS, "filter: expected an object")
    head = chain.block_number()
    if query.get("blockHash") is not None:
        if query.get("fromBlock") is not None or query.get("toBlock") is not None:
            raise RpcError(INVALID_PARAMS, "filter: blockHash excludes fromBlock/toBlock")
        block = _block_by_hash(chain, [query["blockHash"]])
        if block is None:
            raise RpcError(SERVER_ERROR, "filter: unknown block hash")
        lo = hi = int(block["number"], 16)
    else:
        lo = _range_end(chain, query.get("fromBlock"), head, "fromBlock")
        hi = _range_end(chain, query.get("toBlock"), head, "toBlock")
    if lo > hi:
        return []
    if hi - lo > _MAX_LOG_RANGE:
        raise RpcError(SERVER_ERROR, f"filter: range of more than {_MAX_LOG_RANGE} blocks")
    addresses = query.get("address")
    if isinstance(addresses, str):
        addresses = [addresses]
    if addresses is not None:
        if not isinstance(addresses, list):
            raise RpcError(INVALID_PARAMS, "address: expected an address or a list")
        addresses = [to_checksum_address(parse_address(a, "address")) for a in addresses]
    topics = _parse_topics(query.get("topics"))
    with chain.lock:
        logs = chain.tester.get_logs(from_block=lo, to_block=hi, address=addresses, topics=topics)
    return [format_log(entry) for entry in logs]


def _range_end(chain, value, head, name) -> int:
    if value is None or value in ("latest", "pending", "safe", "finalized"):
        return head
    if value == "earliest":
        return 0
    # Beyond the head is allowed in a range (a poller may ask ahead): clamp.
    return min(parse_quantity(value, name), head + 1)


@method("evm_mine")
def _evm_mine(chain, params):
    ts = _param(params, 0, "timestamp", None)
    if isinstance(ts, dict):  # ganache also accepts {"timestamp": n, "blocks": k}
        ts = ts.get("timestamp")
    if ts is not None and not isinstance(ts, int):
        ts = parse_quantity(ts, "timestamp")
    try:
        chain.mine(ts)
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, f"timestamp: {exc}") from None
    return "0x0"


@method("evm_increaseTime")
def _evm_increase_time(chain, params):
    seconds = _param(params, 0, "seconds")
    if not isinstance(seconds, int):
        seconds = parse_quantity(seconds, "seconds")
    if seconds < 0:
        raise RpcError(INVALID_PARAMS, "seconds: time only moves forward")
    try:
        return chain.increase_time(seconds)
    except ValueError as exc:
        raise RpcError(INVALID_PARAMS, f"seconds: {exc}") from None


def dispatch(chain: EmbeddedChain, name: Any, params: Any) -> Any:
    """Run one JSON-RPC method; raises RpcError for anything the caller got wrong."""
    if not isinstance(name, str) or name not in METHODS:
        raise RpcError(METHOD_NOT_FOUND, f"method {name!r:.80} is not served by the embedded chain")
    if params is None:
        params = []
    if not isinstance(params, list):
        raise RpcError(INVALID_PARAMS, "params: expected a list")
    return METHODS[name](chain, params)
