"""TaskHub rules, on each node of the ``node`` fixture (embedded chain and ganache).

Forbidden paths are sent with explicit gas, so the transaction is mined and the assertion
is about the contract's own refusal (receipt status 0) and the unchanged state after it.
"""

from __future__ import annotations

import pytest
from chainhelp import FORCE_GAS, reverts

from xwpy.chain.contracts import TaskStatus, fee_split, request_hash
from xwpy.chain.deploy import DEFAULT_CALLBACK_GAS, RLC
from xwpy.chain.tx import TxReverted

DIGEST = bytes(range(32))


def test_register_app_assigns_ids_and_owner(stack):
    first = stack.app_id
    second = stack.hub.register_app(stack.tx["stranger"], "other-app", 3 * RLC)
    assert second == first + 1 == stack.hub.app_count()
    app = stack.hub.app(second)
    assert (app.owner, app.price, app.name) == (stack.addr("stranger"), 3 * RLC, "other-app")
    assert stack.hub.app(second + 1) is None
    reverts(lambda: stack.hub.register_app(stack.tx["stranger"], "", 1, gas=FORCE_GAS), "hub: empty app name")


def test_only_the_app_owner_sets_its_price(stack):
    reverts(
        lambda: stack.hub.set_app_price(stack.tx["stranger"], stack.app_id, 1, gas=FORCE_GAS),
        "hub: caller is not the app owner",
    )
    stack.hub.set_app_price(stack.tx["app_owner"], stack.app_id, 4 * RLC)
    assert stack.hub.app(stack.app_id).price == 4 * RLC


def test_request_escrows_the_price_and_logs_the_task(stack):
    before = stack.balances("requester", stack.hub.address)
    params = b'{"prefix":"1ab","pubkey":"02aa"}'
    task_id, deadline = stack.request(params=params, callback=stack.addr("stranger"))
    after = stack.balances("requester", stack.hub.address)
    assert after["requester"] == before["requester"] - stack.price
    assert after[stack.hub.address] == before[stack.hub.address] + stack.price

    task = stack.hub.task(task_id)
    assert task.status is TaskStatus.REQUESTED
    assert (task.app_id, task.requester, task.callback) == (stack.app_id, stack.addr("requester"), stack.addr("stranger"))
    assert (task.price, task.deadline, task.digest) == (stack.price, deadline, b"\0" * 32)

    (event,) = stack.hub.requested_events(stack.deployment.block)
    assert (event.task_id, event.app_id, event.requester) == (task_id, stack.app_id, stack.addr("requester"))
    assert (event.callback, event.params, event.deadline, event.price) == (stack.addr("stranger"), params, deadline, stack.price)
    assert event.request_hash == task.request_hash == request_hash(
        stack.app_id, stack.addr("requester"), stack.addr("stranger"), params, deadline, stack.price, 0)


def test_request_ids_are_sequential_and_events_filter_by_block(stack):
    t1, _ = stack.request()
    mid = stack.w3.eth.block_number
    t2, _ = stack.request("requester2")
    assert t2 == t1 + 1 == stack.hub.task_count()
    assert [e.task_id for e in stack.hub.requested_events(stack.deployment.block)] == [t1, t2]
    assert [e.task_id for e in stack.hub.requested_events(mid + 1)] == [t2]
    assert stack.hub.requested_events(stack.w3.eth.block_number + 1) == []


def test_request_needs_approval_a_known_app_and_a_future_deadline(stack):
    hub, req = stack.hub, stack.tx["requester"]
    now = stack.now()
    before = stack.balances("requester")
    reverts(lambda: hub.request(req, stack.app_id, b"", None, now + 3600, gas=FORCE_GAS), "RLC: allowance too low")
    stack.token.approve(req, hub.address, stack.price)
    reverts(lambda: hub.request(req, 999, b"", None, now + 3600, gas=FORCE_GAS), "hub: unknown app")
    reverts(lambda: hub.request(req, stack.app_id, b"", None, now - 1, gas=FORCE_GAS), "hub: deadline not in the future")
    assert stack.balances("requester") == before
    assert hub.task_count() == 0


def test_request_without_funds_reverts(stack):
    poor = stack.tx["stranger"]
    stack.token.approve(poor, stack.hub.address, stack.price)
    reverts(
        lambda: stack.hub.request(poor, stack.app_id, b"", None, stack.now() + 3600, gas=FORCE_GAS),
        "RLC: balance too low",
    )


def test_commit_pays_owner_and_pool_exactly_and_stores_the_digest(stack):
    task_id, _ = stack.request()
    roles = ("requester", "app_owner", "pool", stack.hub.address)
    before = stack.balances(*roles)
    completed = stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"the result")
    after = stack.balances(*roles)

    to_owner, to_pool = fee_split(stack.price, stack.deployment.pool_fee_bps)
    assert to_owner + to_pool == stack.price and to_pool == stack.price * 3 // 10
    assert after["app_owner"] - before["app_owner"] == to_owner
    assert after["pool"] - before["pool"] == to_pool
    assert after["requester"] == before["requester"]
    assert before[stack.hub.address] - after[stack.hub.address] == stack.price

    assert (completed.task_id, completed.digest, completed.result, completed.callback_ok) == (task_id, DIGEST, b"the result", False)
    task = stack.hub.task(task_id)
    assert task.status is TaskStatus.COMPLETED and task.digest == DIGEST
    assert stack.hub.completed_events(stack.deployment.block, task_id=task_id) == [completed]


def test_commit_from_a_non_oracle_account_reverts(stack):
    task_id, _ = stack.request()
    before = stack.balances("app_owner", "pool", stack.hub.address)
    for role in ("requester", "app_owner", "pool", "deployer"):
        reverts(
            lambda: stack.hub.commit(stack.tx[role], task_id, DIGEST, b"forged", gas=FORCE_GAS),
            "hub: caller is not the oracle",
        )
    assert stack.hub.task(task_id).status is TaskStatus.REQUESTED
    assert stack.balances("app_owner", "pool", stack.hub.address) == before


def test_double_commit_reverts(stack):
    task_id, _ = stack.request()
    stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"first")
    before = stack.balances("app_owner", "pool")
    reverts(
        lambda: stack.hub.commit(stack.tx["oracle"], task_id, bytes(32), b"second", gas=FORCE_GAS),
        "hub: task is not open",
    )
    assert stack.hub.task(task_id).digest == DIGEST
    assert stack.balances("app_owner", "pool") == before


def test_commit_of_an_unknown_task_reverts(stack):
    reverts(lambda: stack.hub.commit(stack.tx["oracle"], 42, DIGEST, b"", gas=FORCE_GAS), "hub: task is not open")


def test_commit_after_the_deadline_reverts(stack):
    task_id, deadline = stack.request(ttl=60)
    assert stack.advance(120) > deadline
    reverts(lambda: stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"late", gas=FORCE_GAS), "hub: deadline passed")
    assert stack.hub.task(task_id).status is TaskStatus.REQUESTED


def test_refund_before_the_deadline_reverts(stack):
    task_id, _ = stack.request()
    reverts(lambda: stack.hub.refund(stack.tx["requester"], task_id, gas=FORCE_GAS), "hub: deadline not passed")
    assert stack.hub.task(task_id).status is TaskStatus.REQUESTED


def test_refund_after_the_deadline_returns_the_escrow_once(stack):
    before = stack.balances("requester", stack.hub.address)
    task_id, deadline = stack.request(ttl=60)
    assert stack.advance(120) > deadline
    reverts(lambda: stack.hub.refund(stack.tx["requester2"], task_id, gas=FORCE_GAS), "hub: caller is not the requester")
    stack.hub.refund(stack.tx["requester"], task_id)
    assert stack.balances("requester", stack.hub.address) == before
    assert stack.hub.task(task_id).status is TaskStatus.REFUNDED
    (refunded,) = stack.hub.refunded_events(stack.deployment.block)
    assert (refunded.task_id, refunded.requester, refunded.amount) == (task_id, stack.addr("requester"), stack.price)

    reverts(lambda: stack.hub.refund(stack.tx["requester"], task_id, gas=FORCE_GAS), "hub: task is not open")
    reverts(lambda: stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"", gas=FORCE_GAS), "hub: task is not open")
    assert stack.balances("requester", stack.hub.address) == before


def test_refund_after_commit_reverts(stack):
    task_id, _ = stack.request(ttl=60)
    stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"done")
    stack.advance(120)
    before = stack.balances("requester")
    reverts(lambda: stack.hub.refund(stack.tx["requester"], task_id, gas=FORCE_GAS), "hub: task is not open")
    assert stack.balances("requester") == before


def test_refund_of_an_unknown_task_reverts(stack):
    reverts(lambda: stack.hub.refund(stack.tx["requester"], 7, gas=FORCE_GAS), "hub: unknown task")


def test_a_price_change_does_not_touch_open_tasks(stack):
    task_id, _ = stack.request()
    old_price = stack.price
    stack.hub.set_app_price(stack.tx["app_owner"], stack.app_id, old_price * 5)
    before = stack.balances("app_owner", "pool")
    stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"")
    after = stack.balances("app_owner", "pool")
    assert after["app_owner"] - before["app_owner"] + after["pool"] - before["pool"] == old_price


def test_free_apps_need_no_payment(stack):
    app_id = stack.hub.register_app(stack.tx["app_owner"], "free", 0)
    before = stack.balances("requester", "app_owner", "pool")
    task_id, _ = stack.request(app_id=app_id)
    stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"")
    assert stack.balances("requester", "app_owner", "pool") == before
    assert stack.hub.task(task_id).status is TaskStatus.COMPLETED


def test_only_the_admin_changes_oracle_and_pool(stack):
    hub = stack.hub
    for fn in (hub.set_oracle, hub.set_pool):
        reverts(lambda: fn(stack.tx["oracle"], stack.addr("stranger"), gas=FORCE_GAS), "hub: caller is not the admin")
    reverts(lambda: hub.set_oracle(stack.tx["deployer"], "0x" + "00" * 20, gas=FORCE_GAS), "hub: oracle is the zero address")

    task_id, _ = stack.request()
    hub.set_oracle(stack.tx["deployer"], stack.addr("stranger"))
    hub.set_pool(stack.tx["deployer"], stack.addr("requester2"))
    assert (hub.oracle(), hub.pool()) == (stack.addr("stranger"), stack.addr("requester2"))
    reverts(lambda: hub.commit(stack.tx["oracle"], task_id, DIGEST, b"", gas=FORCE_GAS), "hub: caller is not the oracle")
    before = stack.balances("requester2")
    hub.commit(stack.tx["stranger"], task_id, DIGEST, b"")
    assert stack.balances("requester2")["requester2"] - before["requester2"] == fee_split(stack.price, 3000)[1]


def test_hub_constructor_rejects_a_fee_above_100_percent(stack):
    with pytest.raises(TxReverted, match="hub: pool fee above 100%"):
        stack.deploy("TaskHub", stack.token.address, stack.addr("oracle"), stack.addr("pool"), 10_001, DEFAULT_CALLBACK_GAS)


def test_oversized_result_or_params_are_refused(stack):
    task_id, _ = stack.request()
    with pytest.raises(ValueError, match="at most 1024"):
        stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"x" * 1025)
    with pytest.raises(ValueError, match="at most 1024"):
        stack.hub.request(stack.tx["requester"], stack.app_id, b"p" * 1025, None, stack.now() + 60)
    # Past the client-side check, the contract's own bound refuses it too.
    fn = stack.hub.contract.functions.commit(task_id, stack.hub.task(task_id).request_hash, DIGEST, b"x" * 1025)
    reverts(lambda: stack.tx["oracle"].transact(fn, gas=FORCE_GAS), "execution reverted")
    assert stack.hub.task(task_id).status is TaskStatus.REQUESTED


def test_python_bounds_match_the_contract_source():
    import re

    from xwpy.chain import contracts
    from xwpy.chain.artifacts import source_path

    source = source_path("TaskHub").read_text()
    for name in ("MAX_PARAMS", "MAX_RESULT", "BPS", "CALLBACK_OVERHEAD"):
        (value,) = re.findall(rf"^{name}: constant\(uint256\) = (\d+)$", source, re.M)
        assert int(value) == getattr(contracts, name), name


# --- issue 18: prices, overflow, request identity ----------------------------------------------

def test_an_owner_raising_the_price_in_front_of_a_request_cannot_charge_more(stack):
    """The owner front-runs a request with setAppPrice: the requester approved generously (as
    wallets do), but its maximum price makes the request revert instead of paying 20,000,000x."""
    req = stack.tx["requester"]
    offered = stack.price
    stack.token.approve(req, stack.hub.address, 10**18)
    stack.hub.set_app_price(stack.tx["app_owner"], stack.app_id, offered * 20_000_000)
    before = stack.balances("requester")
    reverts(lambda: stack.hub.request(req, stack.app_id, b"", None, stack.now() + 3600, max_price=offered,
                                      gas=FORCE_GAS), "hub: price above the maximum")
    assert stack.balances("requester") == before and stack.hub.task_count() == 0
    # At the price asked, or with a maximum above it, the request goes through.
    stack.hub.set_app_price(stack.tx["app_owner"], stack.app_id, offered)
    task_id = stack.hub.request(req, stack.app_id, b"", None, stack.now() + 3600, max_price=offered + 1)
    assert stack.hub.task(task_id).price == offered


def test_the_same_front_run_through_the_vanity_consumer(stack):
    from xwpy.chain.deploy import deploy_consumer
    from eth_keys import keys

    consumer = deploy_consumer(stack.tx["deployer"], stack.deployment,
                               keys.PrivateKey(b"\x07" * 32).public_key.to_compressed_bytes().hex())
    req = stack.tx["requester"]
    offered = stack.price
    stack.token.approve(req, consumer.address, 10**18)
    stack.hub.set_app_price(stack.tx["app_owner"], stack.app_id, offered * 20_000_000)
    before = stack.balances("requester")
    reverts(lambda: consumer.request_vanity(req, "1ab", stack.now() + 3600, max_price=offered, gas=FORCE_GAS),
            "consumer: price above the maximum")
    assert stack.balances("requester") == before


def test_a_huge_price_is_split_without_overflow(stack):
    """price * poolFeeBps overflowed uint256: such a task could only be refunded."""
    huge = 2**255 + 12_345
    app_id = stack.hub.register_app(stack.tx["app_owner"], "huge", huge)
    stack.token.mint(stack.tx["deployer"], stack.addr("requester2"), huge)
    roles = ("app_owner", "pool")
    task_id, _ = stack.request("requester2", app_id=app_id)
    before = stack.balances(*roles)
    stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"")
    after = stack.balances(*roles)
    to_owner, to_pool = fee_split(huge, stack.deployment.pool_fee_bps)
    assert (after["app_owner"] - before["app_owner"], after["pool"] - before["pool"]) == (to_owner, to_pool)
    assert stack.hub.pool_share(huge) == to_pool


def test_a_commit_names_the_request_not_only_its_id(stack):
    """After a reorganisation the same task id can be another request: a commit computed for the
    first names its hash, and the hub refuses it for the second."""
    task_id, deadline = stack.request(params=b'{"prefix":"1x"}')
    other = request_hash(stack.app_id, stack.addr("requester"), None, b'{"prefix":"1y"}', deadline, stack.price, 0)
    reverts(lambda: stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"r", request_hash=other, gas=FORCE_GAS),
            "hub: not this request")
    assert stack.hub.task(task_id).status is TaskStatus.REQUESTED
    stack.hub.commit(stack.tx["oracle"], task_id, DIGEST, b"r", request_hash=stack.hub.task(task_id).request_hash)
