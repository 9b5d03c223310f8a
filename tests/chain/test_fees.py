"""The fee split: pure property, and the contract paying exactly that for random inputs."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xwpy.chain.accounts import demo_accounts
from xwpy.chain.contracts import BPS, Hub, Token, fee_split
from xwpy.chain.deploy import DEFAULT_CALLBACK_GAS, deploy_contract
from xwpy.chain.node import latest_timestamp
from xwpy.chain.tx import TxSender

prices = st.integers(min_value=0, max_value=2**128)
fees = st.integers(min_value=0, max_value=BPS)


@given(prices, fees)
def test_split_sums_to_the_price_and_floors_the_pool_share(price, bps):
    to_owner, to_pool = fee_split(price, bps)
    assert to_owner + to_pool == price
    assert 0 <= to_pool <= price and to_owner >= 0
    # The pool's share is the largest amount not above its exact fraction.
    assert to_pool * BPS <= price * bps < (to_pool + 1) * BPS


@pytest.mark.parametrize("price,bps", [(-1, 0), (1, -1), (1, BPS + 1)])
def test_split_rejects_nonsense(price, bps):
    with pytest.raises(ValueError):
        fee_split(price, bps)


@pytest.fixture(scope="module")
def chain(embedded_node):
    w3 = embedded_node.web3()
    acc = demo_accounts()
    tx = {role: TxSender(w3, a.key) for role, a in acc.items()}
    token_addr, _ = deploy_contract(tx["deployer"], "RLC", "fee test", "RLC")
    token = Token(w3, token_addr)
    token.mint(tx["deployer"], acc["requester"].address, 2**200)
    hubs: dict[int, Hub] = {}

    def hub_for(bps: int) -> Hub:
        if bps not in hubs:
            address, _ = deploy_contract(
                tx["deployer"], "TaskHub", token_addr, acc["oracle"].address, acc["pool"].address, bps, DEFAULT_CALLBACK_GAS
            )
            hubs[bps] = Hub(w3, address)
        return hubs[bps]

    return w3, acc, tx, token, hub_for


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(price=prices, bps=st.sampled_from([0, 1, 2500, 3000, 3333, 9999, BPS]))
def test_contract_pool_share_matches_python(chain, price, bps):
    _, _, _, _, hub_for = chain
    assert hub_for(bps).pool_share(price) == fee_split(price, bps)[1]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(price=st.integers(min_value=0, max_value=2**100), bps=st.sampled_from([0, 1, 3333, 7777, BPS]))
def test_commit_moves_exactly_the_split(chain, price, bps):
    w3, acc, tx, token, hub_for = chain
    hub = hub_for(bps)
    app_id = hub.register_app(tx["app_owner"], "p", price)
    token.approve(tx["requester"], hub.address, price)
    task_id = hub.request(tx["requester"], app_id, b"", None, latest_timestamp(w3) + 3600)
    who = [acc["requester"].address, acc["app_owner"].address, acc["pool"].address, hub.address]
    before = [token.balance_of(a) for a in who]
    hub.commit(tx["oracle"], task_id, b"\1" * 32, b"")
    after = [token.balance_of(a) for a in who]
    to_owner, to_pool = fee_split(price, bps)
    assert [a - b for a, b in zip(after, before)] == [0, to_owner, to_pool, -price]
