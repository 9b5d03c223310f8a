"""The embedded chain: clock, journal and restart, JSON-RPC envelope and parameter errors."""

from __future__ import annotations

import json

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy.chain import ethrpc
from xwpy.chain.accounts import demo_accounts
from xwpy.chain.contracts import TaskStatus
from xwpy.chain.deploy import deploy_demo
from xwpy.chain.embedded import EmbeddedChain
from xwpy.chain.inprocess import web3_for
from xwpy.chain.journal import FILENAME, JournalError
from xwpy.chain.node import latest_timestamp
from xwpy.chain.nodeproc import start_embedded
from xwpy.chain.rpc import MAX_BATCH, handle_body
from xwpy.chain.tx import TxSender

T0 = 1_900_000_000


class FakeClock:
    def __init__(self, t: float = T0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def rpc(chain, method, *params, id_=1):
    out = json.loads(handle_body(chain, json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": list(params)}).encode()))
    assert out["id"] == id_
    return out


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def chain(clock, tmp_path):
    c = EmbeddedChain.create(tmp_path / "state", clock=clock)
    yield c
    c.close()


@pytest.fixture
def demo(chain):
    w3 = web3_for(chain)
    acc = demo_accounts()
    d = deploy_demo(w3, accounts=acc)
    return w3, acc, d, {role: TxSender(w3, a.key) for role, a in acc.items()}


# --- clock -----------------------------------------------------------------------------

def test_blocks_are_stamped_by_the_clock_and_strictly_increase(chain, clock, demo):
    w3, acc, d, tx = demo
    assert w3.eth.get_block(0)["timestamp"] == T0
    head = latest_timestamp(w3)
    assert head == T0 + w3.eth.block_number  # a frozen clock: +1 per block
    clock.t = T0 + 10_000
    d.token_at(w3).transfer(tx["requester"], acc["stranger"].address, 1)
    assert latest_timestamp(w3) == T0 + 10_000


def test_increase_time_moves_the_next_block_forward(chain, clock):
    chain.mine()
    head = latest_timestamp(web3_for(chain))
    assert rpc(chain, "evm_increaseTime", 3600)["result"] >= 3600
    rpc(chain, "evm_mine")
    assert latest_timestamp(web3_for(chain)) == head + 3600
    rpc(chain, "evm_mine", head + 10**6)
    assert latest_timestamp(web3_for(chain)) == head + 10**6


def test_calls_and_estimates_run_at_the_chains_now(chain, clock, demo):
    """Right after a deadline, a refund estimates as it will execute, before any new block."""
    w3, acc, d, tx = demo
    hub, token = d.hub_at(w3), d.token_at(w3)
    token.approve(tx["requester"], hub.address, 10**10)
    deadline = latest_timestamp(w3) + 100
    task_id = hub.request(tx["requester"], 1, b"", None, deadline)
    assert latest_timestamp(w3) < deadline
    clock.t = deadline + 1000  # the clock passes the deadline; no block mined since
    hub.refund(tx["requester"], task_id)  # estimate_gas first: must see the new time
    assert hub.task(task_id).status is TaskStatus.REFUNDED


# --- journal and restart ---------------------------------------------------------------

def test_a_reopened_chain_has_the_same_blocks_and_state(tmp_path, clock, demo, chain):
    w3, acc, d, tx = demo
    rpc(chain, "evm_increaseTime", 500)
    rpc(chain, "evm_mine")
    hashes = [w3.eth.get_block(n)["hash"] for n in range(w3.eth.block_number + 1)]
    chain.close()

    clock.t += 50_000  # wall time passed while it was down
    again = EmbeddedChain.create(tmp_path / "state", clock=clock)
    w3b = web3_for(again)
    assert [w3b.eth.get_block(n)["hash"] for n in range(w3b.eth.block_number + 1)] == hashes
    assert d.token_at(w3b).balance_of(acc["requester"].address) == d.token_at(w3).balance_of(acc["requester"].address)
    # And it goes on: the nonce of every account is where it was.
    hub = d.hub_at(w3b)
    assert hub.register_app(TxSender(w3b, acc["app_owner"].key), "after-restart", 1) == 2
    again.close()


def test_one_state_dir_one_chain(tmp_path, clock, chain):
    with pytest.raises(JournalError, match="in use by another embedded chain"):
        EmbeddedChain.create(tmp_path / "state", clock=clock)
    chain.close()
    EmbeddedChain.create(tmp_path / "state", clock=clock).close()


def test_a_torn_last_record_is_dropped(tmp_path, clock, chain):
    chain.mine()
    head = chain.block_number()
    chain.close()
    with open(tmp_path / "state" / FILENAME, "a") as f:
        f.write('{"op":"mine","timest')  # the process died mid-write
    again = EmbeddedChain.create(tmp_path / "state", clock=clock)
    assert again.block_number() == head
    again.mine()  # and appends cleanly after the truncated tail
    again.close()
    third = EmbeddedChain.create(tmp_path / "state", clock=clock)
    assert third.block_number() == head + 1
    third.close()


def test_a_diverging_replay_is_refused(tmp_path, clock, chain):
    chain.mine()
    chain.close()
    path = tmp_path / "state" / FILENAME
    lines = path.read_text().splitlines()
    record = json.loads(lines[-1])
    record["block_hash"] = "0x" + "ab" * 32
    path.write_text("\n".join(lines[:-1] + [json.dumps(record)]) + "\n")
    with pytest.raises(JournalError, match="replay diverged at block 1"):
        EmbeddedChain.create(tmp_path / "state", clock=clock)


def test_a_garbled_journal_is_refused_with_its_line(tmp_path, clock, chain):
    chain.mine()
    chain.close()
    path = tmp_path / "state" / FILENAME
    path.write_text(path.read_text() + "not json\n")
    with pytest.raises(JournalError, match="line 3"):
        EmbeddedChain.create(tmp_path / "state", clock=clock)


def test_the_chain_process_survives_a_crash(tmp_path):
    """kill -9 the served chain, start it again on the same directory: same chain, and a
    transaction sent before the crash is still there."""
    state = tmp_path / "chain"
    node = start_embedded(state)
    try:
        w3 = node.web3()
        acc = demo_accounts()
        d = deploy_demo(w3, accounts=acc)
        hub, token = d.hub_at(w3), d.token_at(w3)
        req = TxSender(w3, acc["requester"].key)
        token.approve(req, hub.address, 10**10)
        task_id = hub.request(req, 1, b"params", None, latest_timestamp(w3) + 3600)
        head = w3.eth.get_block("latest")
    finally:
        node.stop(kill=True)
    node = start_embedded(state)
    try:
        w3 = node.web3()
        assert w3.eth.get_block("latest")["hash"] == head["hash"]
        hub = d.hub_at(w3)
        assert hub.task(task_id).status is TaskStatus.REQUESTED
        assert [e.task_id for e in hub.requested_events(d.block)] == [task_id]
        hub.commit(TxSender(w3, acc["oracle"].key), task_id, b"\2" * 32, b"after the crash")
        assert hub.task(task_id).status is TaskStatus.COMPLETED
    finally:
        node.stop()


# --- JSON-RPC methods -----------------------------------------------------------------

def test_web3s_everyday_calls_work(chain, demo):
    w3, acc, d, tx = demo
    block = w3.eth.get_block(d.block, full_transactions=True)
    (deploy_tx,) = block["transactions"]
    assert deploy_tx["from"] == acc["deployer"].address and deploy_tx["to"] is None
    assert w3.eth.get_transaction(deploy_tx["hash"])["input"] == deploy_tx["input"]
    assert w3.eth.get_transaction_receipt(deploy_tx["hash"])["contractAddress"] == d.hub
    assert len(block["logsBloom"]) == 256 and any(block["logsBloom"])  # the hub logged at deploy
    assert w3.eth.get_code(d.hub) != b"" and w3.eth.get_code(acc["stranger"].address) == b""
    slots = [w3.eth.get_storage_at(d.hub, i) for i in range(8)]
    assert all(len(v) == 32 for v in slots)
    assert bytes(12) + bytes.fromhex(acc["deployer"].address[2:]) in slots  # the hub's admin
    assert w3.eth.get_storage_at(acc["stranger"].address, 0) == bytes(32)
    history = w3.eth.fee_history(3, "latest", [50])
    assert len(history["baseFeePerGas"]) == 4 and history["oldestBlock"] == w3.eth.block_number - 2
    assert w3.eth.gas_price == history["baseFeePerGas"][-1] + w3.eth.max_priority_fee
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest", "address": d.hub})
    assert logs and all(entry["address"] == d.hub for entry in logs)
    assert w3.eth.accounts == [] and w3.eth.chain_id == chain.chain_id


# --- JSON-RPC envelope -----------------------------------------------------------------

def test_envelope_errors_are_json_rpc_errors(chain):
    def body(raw: bytes):
        return json.loads(handle_body(chain, raw))

    assert body(b"{nope")["error"]["code"] == ethrpc.PARSE_ERROR
    assert body(b"[]")["error"]["code"] == ethrpc.INVALID_REQUEST
    assert body(b"[1]")[0]["error"]["code"] == ethrpc.INVALID_REQUEST
    too_many = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(MAX_BATCH + 1)])
    assert "batch of more than" in body(too_many.encode())["error"]["message"]
    assert body(b'{"jsonrpc":"1.0","id":1,"method":"eth_chainId"}')["error"]["code"] == ethrpc.INVALID_REQUEST
    # A notification (no id) gets no answer, alone or in a batch.
    assert handle_body(chain, b'{"jsonrpc":"2.0","method":"eth_chainId"}') is None
    batch = body(b'[{"jsonrpc":"2.0","method":"eth_chainId"},{"jsonrpc":"2.0","id":7,"method":"eth_chainId"}]')
    assert [r["id"] for r in batch] == [7] and int(batch[0]["result"], 16) == chain.chain_id


@pytest.mark.parametrize(
    "method,params,message",
    [
        ("eth_getBalance", ["0x1234"], "address: expected a 20-byte 0x address"),
        ("eth_getBalance", ["0x229d5960CA05eaeb1681b366dcee6C6A77f8f510"], "bad address checksum"),
        ("eth_getBalance", [], "missing parameter 0 (address)"),
        ("eth_getBlockByNumber", ["0xzz"], "block: expected a 0x-hex quantity"),
        ("eth_getTransactionReceipt", ["0x12"], "expected a 32-byte hash"),
        ("eth_sendRawTransaction", ["0x"], "signed transaction: empty"),
        ("eth_sendRawTransaction", ["0xdeadbeef"], "transaction rejected"),
        ("eth_getLogs", [{"fromBlock": "0x0", "blockHash": "0x" + "00" * 32}], "blockHash excludes"),
        ("eth_sendTransaction", [{}], "sign locally"),
        ("eth_mining_is_not_a_thing", [], "is not served"),
        ("evm_increaseTime", [-5], "time only moves forward"),
    ],
)
def test_bad_parameters_are_named(chain, method, params, message):
    error = rpc(chain, method, *params)["error"]
    assert message in error["message"]
    assert error["code"] in (ethrpc.INVALID_PARAMS, ethrpc.METHOD_NOT_FOUND, ethrpc.SERVER_ERROR)


def test_reads_of_unknown_things_are_null(chain):
    assert rpc(chain, "eth_getTransactionReceipt", "0x" + "11" * 32)["result"] is None
    assert rpc(chain, "eth_getTransactionByHash", "0x" + "11" * 32)["result"] is None
    assert rpc(chain, "eth_getBlockByNumber", "0xffff", False)["result"] is None
    assert rpc(chain, "eth_getBlockByHash", "0x" + "11" * 32, False)["result"] is None


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=80), st.integers(), st.none(), st.lists(st.integers(), max_size=3), st.binary(max_size=20).map(lambda b: "0x" + b.hex())))
def test_parsers_accept_or_name_the_problem(value):
    for parse in (ethrpc.parse_quantity, ethrpc.parse_data, ethrpc.parse_address, ethrpc.parse_hash):
        try:
            parse(value, "field")
        except ethrpc.RpcError as exc:
            assert exc.code == ethrpc.INVALID_PARAMS and exc.message.startswith("field")


@given(st.integers(min_value=0, max_value=2**256 - 1))
def test_quantities_round_trip(n):
    assert ethrpc.parse_quantity(hex(n), "q") == n


@given(st.binary(max_size=64))
def test_data_round_trips(b):
    assert ethrpc.parse_data("0x" + b.hex(), "d") == b


# --- HTTP ------------------------------------------------------------------------------

def test_http_refuses_get_and_oversized_bodies(embedded_node):
    r = requests.get(embedded_node.url, timeout=10)
    assert r.status_code == 405 and r.json()["error"]["code"] == ethrpc.INVALID_REQUEST
    r = requests.post(embedded_node.url, data=b"[" + b" " * (4 * 1024 * 1024 + 1), timeout=30)
    assert r.status_code == 413 and "larger than" in r.json()["error"]["message"]
    r = requests.post(embedded_node.url, json={"jsonrpc": "2.0", "id": 3, "method": "eth_blockNumber"}, timeout=10)
    assert r.status_code == 200 and r.json()["id"] == 3


# --- issue 18, 6 and 7: what a web page can do to the chain, and a failed journal write ----------

def test_web_pages_cannot_use_the_chain(tmp_path):
    """Any page may POST text/plain to 127.0.0.1 without a preflight, and a page whose name
    resolves to 127.0.0.1 (DNS rebinding) reads the answers: requests with an Origin, or a Host
    that is not the chain's address, are refused before anything runs."""
    node = start_embedded(tmp_path / "chain")
    try:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "evm_increaseTime", "params": [3600]})
        port = node.url.rsplit(":", 1)[1]
        attacks = [
            {"Content-Type": "text/plain", "Origin": "https://evil.example"},  # a cross-origin simple POST
            {"Content-Type": "application/json", "Origin": "null"},  # a sandboxed frame
            {"Content-Type": "text/plain", "Host": f"rebound.evil.example:{port}"},  # DNS rebinding
        ]
        for headers in attacks:
            r = requests.post(node.url, data=body, headers=headers, timeout=10)
            assert r.status_code == 403, (headers, r.text)
            assert "result" not in r.json()
        assert node.web3().eth.get_block("latest")["number"] == 0  # nothing ran
        for host in (f"127.0.0.1:{port}", f"localhost:{port}"):
            r = requests.post(node.url, data=body, headers={"Content-Type": "application/json", "Host": host}, timeout=10)
            assert r.status_code == 200 and "result" in r.json()
    finally:
        node.stop()


def test_time_travel_is_bounded(chain, clock):
    from xwpy.chain.embedded import MAX_TIME_TRAVEL

    assert "result" in rpc(chain, "evm_increaseTime", MAX_TIME_TRAVEL // 2)
    out = rpc(chain, "evm_increaseTime", MAX_TIME_TRAVEL)
    assert out["error"]["code"] == -32602 and "ahead of real time" in out["error"]["message"]
    out = rpc(chain, "evm_mine", T0 + 2 * MAX_TIME_TRAVEL)
    assert out["error"]["code"] == -32602
    clock.t += MAX_TIME_TRAVEL  # real time catches up: the chain may go on
    assert "result" in rpc(chain, "evm_increaseTime", MAX_TIME_TRAVEL // 2)


def test_a_failed_journal_write_leaves_a_chain_that_restarts(tmp_path, clock, monkeypatch):
    """The disk fills while a transaction is journaled: the client gets an error and the chain
    in memory does not keep the transaction (before, it did: the journal lacked that block, every
    later record diverged on replay, and the chain could not start again)."""
    import xwpy.chain.journal as journal

    chain = EmbeddedChain.create(tmp_path / "state", clock=clock)
    w3 = web3_for(chain)
    acc = demo_accounts()
    sender = TxSender(w3, acc["requester"].key)
    stranger = acc["stranger"].address

    def disk_full(fd):
        raise OSError(28, "No space left on device")  # the line is written, not on disk for sure

    class Send:
        def __init__(self, value):
            self.value = value

        def build_transaction(self, params):
            return {**params, "to": stranger, "value": self.value, "gas": 21000, "maxFeePerGas": 10**10,
                    "maxPriorityFeePerGas": 10**9}

    sender.transact(Send(1))
    monkeypatch.setattr(journal.os, "fsync", disk_full)
    with pytest.raises(Exception, match="internal error"):
        sender.transact(Send(2))
    monkeypatch.undo()
    sender.resync()
    sender.transact(Send(3))
    balance, head = w3.eth.get_balance(stranger), w3.eth.get_block("latest")
    chain.close()
    again = EmbeddedChain.create(tmp_path / "state", clock=clock)
    try:
        w3 = web3_for(again)
        assert w3.eth.get_block("latest")["hash"] == head["hash"]
        assert w3.eth.get_balance(stranger) == balance == demo_accounts_balance() + 1 + 3
    finally:
        again.close()


def demo_accounts_balance() -> int:
    from xwpy.chain.accounts import DEMO_ETH_WEI

    return DEMO_ETH_WEI
