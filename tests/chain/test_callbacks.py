"""Result delivery: the vanity consumer, and callbacks that fail, burn gas or re-enter."""

from __future__ import annotations

import json

import pytest
from chainhelp import FORCE_GAS, reverts
from eth_keys import keys
from web3.logs import DISCARD

from xwpy.chain.contracts import TaskStatus, VanityConsumer, callback_fee_for, fee_split
from xwpy.chain.deploy import deploy_consumer
from xwpy.chain.tx import TxReverted

DIGEST = b"\x11" * 32
PUBKEY = keys.PrivateKey(b"\x07" * 32).public_key.to_compressed_bytes().hex()
MODE_ACCEPT, MODE_REVERT, MODE_BURN, MODE_REENTER = range(4)


@pytest.fixture
def consumer(stack) -> VanityConsumer:
    return deploy_consumer(stack.tx["deployer"], stack.deployment, PUBKEY)


def request_vanity(stack, consumer, prefix="1ab", ttl=3600, role="requester"):
    stack.token.approve(stack.tx[role], consumer.address, stack.price)
    deadline = stack.now() + ttl
    return consumer.request_vanity(stack.tx[role], prefix, deadline), deadline


def test_consumer_requests_for_its_own_key_and_stores_the_result(stack, consumer):
    roles = ("requester", "app_owner", "pool", consumer.address)
    before = stack.balances(*roles)
    task_id, deadline = request_vanity(stack, consumer, prefix="1Love")

    (req,) = stack.hub.requested_events(stack.deployment.block)
    assert json.loads(req.params) == {"prefix": "1Love", "pubkey": PUBKEY}
    assert (req.task_id, req.requester, req.callback, req.deadline) == (task_id, consumer.address, consumer.address, deadline)
    assert consumer.payer(task_id) == stack.addr("requester")
    assert consumer.result(task_id) is None

    result = json.dumps({"address": "1LoveXYZ", "partial_key": "ab" * 32}).encode()
    completed = stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, result)
    assert completed.callback_ok is True
    assert consumer.result(task_id) == result
    assert consumer.last_task_id() == task_id
    assert consumer.contract.functions.lastResult().call() == result

    after = stack.balances(*roles)
    to_owner, to_pool = fee_split(stack.price, stack.deployment.pool_fee_bps)
    assert before["requester"] - after["requester"] == stack.price
    assert (after["app_owner"] - before["app_owner"], after["pool"] - before["pool"]) == (to_owner, to_pool)
    assert after[consumer.address] == before[consumer.address] == 0


def test_a_result_too_big_for_the_stipend_is_still_paid_and_logged(stack, consumer):
    """Storing 1 KiB costs the consumer ~750k gas, beyond its 400k stipend: the callback
    fails, the payment and the TaskCompleted event (with the result) stand."""
    task_id, _ = request_vanity(stack, consumer)
    big = b"r" * 1024
    completed = stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, big)
    assert completed.callback_ok is False and completed.result == big
    assert consumer.result(task_id) is None
    assert stack.hub.task(task_id).status is TaskStatus.COMPLETED


def test_a_callback_without_code_is_not_called(stack):
    task_id, _ = stack.request(callback=stack.addr("stranger"))
    assert stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"r").callback_ok is False
    assert stack.hub.task(task_id).status is TaskStatus.COMPLETED


def test_consumer_accepts_results_only_from_the_hub(stack, consumer):
    task_id, _ = request_vanity(stack, consumer)
    fn = consumer.contract.functions.receiveResult(task_id, b"forged")
    for role in ("stranger", "oracle", "requester"):
        reverts(lambda: stack.tx[role].transact(fn, gas=FORCE_GAS), "consumer: caller is not the hub")
    assert consumer.result(task_id) is None


def test_consumer_checks_prefix_and_pubkey(stack, consumer):
    stack.token.approve(stack.tx["requester"], consumer.address, stack.price)
    deadline = stack.now() + 3600
    for bad in ('1a"', "1a\\", "0abc", "1Il", "", "1 a"):
        reverts(
            lambda: consumer.request_vanity(stack.tx["requester"], bad, deadline, gas=FORCE_GAS),
            "consumer: empty prefix" if bad == "" else "consumer: prefix is not base58",
        )
    assert stack.hub.task_count() == 0
    for bad, reason in (
        (PUBKEY[:-2], "66 hex characters"),
        ("04" + PUBKEY[2:], "not compressed"),
        (PUBKEY[:10] + "zz" + PUBKEY[12:], "not hex"),
    ):
        with pytest.raises(TxReverted, match=reason):
            deploy_consumer(stack.tx["deployer"], stack.deployment, bad)


def test_consumer_reclaims_for_the_payer_after_the_deadline(stack, consumer):
    before = stack.balances("requester")
    task_id, deadline = request_vanity(stack, consumer, ttl=60)
    reverts(lambda: consumer.reclaim(stack.tx["requester"], task_id, gas=FORCE_GAS), "hub: deadline not passed")
    assert stack.advance(120) > deadline
    reverts(lambda: consumer.reclaim(stack.tx["stranger"], task_id, gas=FORCE_GAS), "consumer: caller is not the payer")
    consumer.reclaim(stack.tx["requester"], task_id)
    assert stack.balances("requester") == before
    assert stack.hub.task(task_id).status is TaskStatus.REFUNDED
    reverts(lambda: consumer.reclaim(stack.tx["requester"], task_id, gas=FORCE_GAS), "hub: task is not open")
    assert stack.balances("requester") == before


# --- hostile callbacks -----------------------------------------------------------------

@pytest.fixture
def hostile(stack):
    address = stack.deploy("HostileCallback", stack.hub.address, stack.token.address)
    contract = stack.contract("HostileCallback", address)
    # Fund it so that it can request (and, in MODE_REENTER, try to request again).
    stack.token.transfer(stack.tx["requester"], address, 3 * stack.price)
    stack.tx["stranger"].transact(contract.functions.approveHub(3 * stack.price))
    return contract


def hostile_task(stack, hostile, mode: int, fee: int | None = None) -> int:
    deadline = stack.now() + 3600
    stack.tx["stranger"].transact(hostile.functions.setMode(mode, stack.app_id, deadline))
    fee = callback_fee_for(stack.w3, stack.deployment.callback_gas) if fee is None else fee
    receipt = stack.tx["stranger"].transact(hostile.functions.requestTask(stack.app_id, deadline), value=fee)
    (event,) = stack.hub.contract.events.TaskRequested().process_receipt(receipt, errors=DISCARD)
    return event["args"]["taskId"]


@pytest.mark.parametrize("mode", [MODE_REVERT, MODE_BURN])
def test_a_failing_callback_does_not_undo_the_payment(stack, hostile, mode):
    task_id = hostile_task(stack, hostile, mode)
    before = stack.balances("app_owner", "pool")
    completed = stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"result")
    assert completed.callback_ok is False
    assert stack.hub.task(task_id).status is TaskStatus.COMPLETED
    after = stack.balances("app_owner", "pool")
    assert (after["app_owner"] - before["app_owner"], after["pool"] - before["pool"]) == fee_split(
        stack.price, stack.deployment.pool_fee_bps
    )
    assert hostile.functions.calls().call() == 0  # its state changes were rolled back


def test_a_gas_burning_callback_costs_at_most_the_stipend(stack, hostile):
    # One mode per contract at a time: commit each task before switching.
    accepting = hostile_task(stack, hostile, MODE_ACCEPT)
    cheap = stack.hub.commit(stack.tx["oracle"], accepting, DIGEST, b"r")
    receipt_ok = stack.w3.eth.get_transaction_receipt(cheap.ref.tx_hash)
    burning = hostile_task(stack, hostile, MODE_BURN)
    burnt = stack.hub.commit(stack.tx["oracle"], burning, DIGEST, b"r")
    receipt_burn = stack.w3.eth.get_transaction_receipt(burnt.ref.tx_hash)
    assert cheap.callback_ok and not burnt.callback_ok
    extra = receipt_burn["gasUsed"] - receipt_ok["gasUsed"]
    # The burner took its whole stipend, and not a unit more.
    assert 0 < extra <= stack.deployment.callback_gas


def test_the_oracle_cannot_starve_the_callback_of_gas(stack, consumer):
    """A commit with too little gas for the full stipend reverts instead of quietly
    failing the callback (EIP-150 would hand the callee only 63/64 of what is left)."""
    task_id, _ = request_vanity(stack, consumer)
    fn = stack.hub.commit_call(task_id, stack.hub.task(task_id).request_hash, DIGEST, b"result")
    estimate = stack.w3.eth.estimate_gas({"from": stack.addr("oracle"), "to": stack.hub.address, "data": fn._encode_transaction_data()})
    assert estimate > stack.deployment.callback_gas
    reverts(lambda: stack.tx["oracle"].transact(fn, gas=estimate - 30_000), "hub: not enough gas for the callback")
    assert stack.hub.task(task_id).status is TaskStatus.REQUESTED
    completed = stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"result", gas=estimate)
    assert completed.callback_ok and consumer.result(task_id) == b"result"


def test_the_hub_cannot_be_reentered_from_a_callback(stack, hostile):
    task_id = hostile_task(stack, hostile, MODE_REENTER)
    before = stack.balances(hostile.address, stack.hub.address)
    completed = stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"result")
    assert completed.callback_ok is True  # the callback ran to its end...
    assert hostile.functions.reenterAttempted().call() is True
    assert hostile.functions.reenterRequestOk().call() is False  # ...but its calls into the hub failed
    assert hostile.functions.reenterRefundOk().call() is False
    assert stack.hub.task_count() == task_id
    after = stack.balances(hostile.address, stack.hub.address)
    assert after[stack.hub.address] == before[stack.hub.address] - stack.price
    assert after[hostile.address] == before[hostile.address]
    # Control: the very same request, made outside a callback, is accepted, so it was the
    # lock that refused it, not a missing allowance or balance.
    second = stack.tx["stranger"].transact(hostile.functions.requestTask(stack.app_id, stack.now() + 3600),
                                           value=callback_fee_for(stack.w3, stack.deployment.callback_gas))
    assert second["status"] == 1 and stack.hub.task_count() == task_id + 1


# --- who pays for a callback (issue 18) --------------------------------------------------

def commit_cost(stack, task_id: int, result: bytes = b"r") -> tuple[int, object]:
    """What a commit cost the oracle in ether (gas paid less any fee received), and its event."""
    oracle = stack.addr("oracle")
    before = stack.w3.eth.get_balance(oracle)
    completed = stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, result)
    return before - stack.w3.eth.get_balance(oracle), completed


def test_the_requester_pays_for_its_callback_not_the_oracle(stack, hostile):
    """A callback that burns all the gas it gets costs the oracle nothing more than a commit
    without callback: the requester's fee, sent with the request, pays for the gas it burns."""
    plain_id, _ = stack.request()
    plain_cost, _ = commit_cost(stack, plain_id)
    burning = hostile_task(stack, hostile, MODE_BURN)
    fee = stack.hub.task(burning).callback_fee
    assert fee > 0
    burn_cost, completed = commit_cost(stack, burning)
    receipt = stack.w3.eth.get_transaction_receipt(completed.ref.tx_hash)
    assert not completed.callback_ok and receipt["gasUsed"] > stack.deployment.callback_gas  # it did burn
    assert burn_cost <= plain_cost, (burn_cost, plain_cost)


def test_a_callback_gets_only_the_gas_its_fee_buys(stack, hostile):
    """No fee, no gas: the oracle does not spend its ether on a callback nobody paid for."""
    unpaid = hostile_task(stack, hostile, MODE_BURN, fee=0)
    _, completed = commit_cost(stack, unpaid)
    receipt = stack.w3.eth.get_transaction_receipt(completed.ref.tx_hash)
    assert not completed.callback_ok and receipt["gasUsed"] < stack.deployment.callback_gas
    assert hostile.functions.calls().call() == 0


def test_an_unspent_callback_fee_is_refunded_with_the_price(stack, consumer):
    task_id, deadline = request_vanity(stack, consumer, ttl=60)
    fee = stack.hub.task(task_id).callback_fee
    assert fee > 0 and consumer.contract.functions.fee(task_id).call() == fee
    stack.advance(120)
    payer = stack.addr("requester")
    before = stack.w3.eth.get_balance(payer)
    receipt = consumer.reclaim(stack.tx["requester"], task_id)
    gas = receipt["gasUsed"] * receipt["effectiveGasPrice"]
    assert stack.w3.eth.get_balance(payer) == before - gas + fee
    assert stack.w3.eth.get_balance(consumer.address) == 0 and stack.w3.eth.get_balance(stack.hub.address) == 0
