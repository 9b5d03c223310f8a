"""The Python chain API: artifact cache, nonce handling, deployment files, revert reasons."""

from __future__ import annotations

import shutil
import threading

import pytest
from web3.exceptions import ContractLogicError, Web3RPCError

from xwpy.chain import artifacts
from xwpy.chain.accounts import ROLES, demo_accounts
from xwpy.chain.deploy import Deployment, deploy_demo
from xwpy.chain.embedded import EmbeddedChain
from xwpy.chain.inprocess import web3_for
from xwpy.chain.tx import TxSender, revert_reason


# --- artifacts -------------------------------------------------------------------------

def test_artifacts_are_compiled_once_then_read_from_the_cache(tmp_path, monkeypatch):
    first = artifacts.load_artifact("RLC", cache_dir=tmp_path)
    assert first.bytecode.startswith("0x") and any(e.get("name") == "transfer" for e in first.abi)

    def no_compiler(*args):
        raise AssertionError("compiled although cached")

    monkeypatch.setattr(artifacts, "_compile", no_compiler)
    assert artifacts.load_artifact("RLC", cache_dir=tmp_path) == first


def test_an_edited_source_or_a_corrupt_entry_recompiles(tmp_path):
    src = tmp_path / "contracts"
    shutil.copytree(artifacts.CONTRACTS_DIR, src)
    cache = tmp_path / "cache"
    original = artifacts.load_artifact("RLC", cache_dir=cache, contracts_dir=src)
    path = src / "RLC.vy"
    path.write_text(path.read_text().replace("self.decimals = 9", "self.decimals = 6"))
    edited = artifacts.load_artifact("RLC", cache_dir=cache, contracts_dir=src)
    assert edited.key != original.key and edited.bytecode != original.bytecode

    (entry,) = [p for p in cache.iterdir() if edited.key[:32] in p.name]
    entry.write_text("{ truncated")
    assert artifacts.load_artifact("RLC", cache_dir=cache, contracts_dir=src) == edited


def test_compile_errors_name_the_file(tmp_path):
    src = tmp_path / "contracts"
    shutil.copytree(artifacts.CONTRACTS_DIR, src)
    (src / "RLC.vy").write_text("# pragma version ~=0.4.3\n@external\ndef f() -> uint256:\n    return nope\n")
    with pytest.raises(artifacts.CompileError, match="RLC.vy"):
        artifacts.load_artifact("RLC", cache_dir=tmp_path / "cache", contracts_dir=src)
    with pytest.raises(artifacts.CompileError, match="unknown contract"):
        artifacts.load_artifact("Nope", cache_dir=tmp_path / "cache")


def test_a_package_build_ships_artifacts_used_without_a_compiler_while_their_source_is_unchanged(
        tmp_path, monkeypatch):
    """What setup.py puts in a wheel; an install without vyper deploys from it."""
    out = tmp_path / "package"
    artifacts.build_package(out, cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in out.iterdir()) == ["Distributor.vy", "RLC.vy", "TaskHub.vy", "VanityConsumer.vy", "artifacts.json"]
    built = artifacts.prebuilt(out)
    import vyper

    assert {a.vyper_version for a in built.values()} == {vyper.__version__}
    monkeypatch.setitem(__import__("sys").modules, "vyper", None)  # not installed
    assert artifacts.load_artifact("TaskHub", contracts_dir=out, cache_dir=tmp_path / "empty") == built["TaskHub"]
    assert not (tmp_path / "empty").exists()
    # An edited source no longer matches its artifact: it needs the compiler, and says so.
    (out / "RLC.vy").write_text((out / "RLC.vy").read_text().replace("self.decimals = 9", "self.decimals = 6"))
    with pytest.raises(artifacts.CompileError, match="RLC.vy is not compiled in this install.*pip install"):
        artifacts.load_artifact("RLC", contracts_dir=out, cache_dir=tmp_path / "empty")


# --- accounts --------------------------------------------------------------------------

def test_demo_accounts_are_deterministic_distinct_and_keep_keys_out_of_repr():
    a, b = demo_accounts(), demo_accounts()
    assert list(a) == list(ROLES) and a == b
    assert len({x.address for x in a.values()}) == len(ROLES)
    assert all(x.key.hex() not in repr(x) for x in a.values())


# --- transactions ----------------------------------------------------------------------

@pytest.fixture
def chain(tmp_path):
    c = EmbeddedChain.create(None)
    yield c
    c.close()


def test_concurrent_senders_get_consecutive_nonces(chain):
    w3 = web3_for(chain)
    acc = demo_accounts()
    d = deploy_demo(w3, accounts=acc)
    token = d.token_at(w3)
    sender = TxSender(w3, acc["requester"].key)
    start = w3.eth.get_transaction_count(sender.address)
    errors: list[BaseException] = []

    def pay(i: int) -> None:
        try:
            token.transfer(sender, acc["stranger"].address, i + 1)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=pay, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert w3.eth.get_transaction_count(sender.address) == start + 8
    assert token.balance_of(acc["stranger"].address) == sum(range(1, 9))


def test_a_nonce_taken_elsewhere_is_recovered(chain):
    w3 = web3_for(chain)
    acc = demo_accounts()
    d = deploy_demo(w3, accounts=acc)
    token = d.token_at(w3)
    ours, theirs = TxSender(w3, acc["requester"].key), TxSender(w3, acc["requester"].key)
    token.transfer(ours, acc["stranger"].address, 1)  # ours now expects nonce n+1
    token.transfer(theirs, acc["stranger"].address, 1)  # ...which another process takes
    token.transfer(ours, acc["stranger"].address, 1)
    assert token.balance_of(acc["stranger"].address) == 3


def test_resending_our_own_transaction_is_not_an_error(chain):
    """A retry after a lost answer: the node already has it; we take its hash as sent."""
    w3 = web3_for(chain)
    acc = demo_accounts()
    sender = TxSender(w3, acc["requester"].key)
    tx = {"to": acc["stranger"].address, "value": 1, "gas": 21000, "nonce": 0, "chainId": w3.eth.chain_id,
          "maxFeePerGas": 10**10, "maxPriorityFeePerGas": 1}
    first = sender._send_signed(dict(tx))
    again = sender._send_signed(dict(tx))
    assert first == again and w3.eth.get_transaction_count(sender.address) == 1


def test_revert_reason_reads_every_nodes_wording():
    data = "0x08c379a0" + "20".rjust(64, "0") + "3".rjust(64, "0") + b"abc".hex().ljust(64, "0")
    geth = ContractLogicError("execution reverted: abc", data=data)
    ganache = Web3RPCError("x", rpc_response={"error": {"code": -32000, "message": "VM Exception while processing transaction: revert abc", "data": data}})
    bare = Web3RPCError("x", rpc_response={"error": {"code": -32000, "message": "VM Exception while processing transaction: revert", "data": "0x"}})
    unrelated = Web3RPCError("x", rpc_response={"error": {"code": -32000, "message": "nonce too low"}})
    assert revert_reason(geth) == revert_reason(ganache) == "execution reverted: abc"
    assert revert_reason(bare) == "execution reverted"
    assert revert_reason(unrelated) is None


# --- deployment files ------------------------------------------------------------------

def test_deployment_round_trips_and_bad_files_are_named(tmp_path, chain):
    d = deploy_demo(web3_for(chain))
    path = tmp_path / "deploy" / "chain.json"
    d.save(path)
    assert Deployment.load(path) == d
    with pytest.raises(ValueError, match="cannot read deployment"):
        Deployment.load(tmp_path / "missing.json")
    path.write_text('{"token": "0x00"}')
    with pytest.raises(ValueError, match="lacks"):
        Deployment.load(path)
