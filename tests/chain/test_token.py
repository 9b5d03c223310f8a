"""RLC: ERC-20 behaviour and the minter's privilege."""

from __future__ import annotations

from chainhelp import FORCE_GAS, reverts
from web3.logs import DISCARD

from xwpy.chain.deploy import DEMO_MINT, RLC


def test_metadata_and_demo_supply(stack):
    assert (stack.token.symbol(), stack.token.decimals()) == ("RLC", 9)
    assert stack.token.contract.functions.name().call() == "iExec RLC (xwpy demo)"
    assert stack.token.total_supply() == 2 * DEMO_MINT
    assert stack.balances("requester", "requester2", "stranger") == {"requester": DEMO_MINT, "requester2": DEMO_MINT, "stranger": 0}


def test_only_the_minter_mints(stack):
    reverts(lambda: stack.token.mint(stack.tx["requester"], stack.addr("requester"), 1, gas=FORCE_GAS), "RLC: caller is not the minter")
    stack.token.mint(stack.tx["deployer"], stack.addr("stranger"), 5 * RLC)
    assert stack.token.balance_of(stack.addr("stranger")) == 5 * RLC
    assert stack.token.total_supply() == 2 * DEMO_MINT + 5 * RLC


def test_transfer_moves_balance_and_logs(stack):
    receipt = stack.token.transfer(stack.tx["requester"], stack.addr("stranger"), 7)
    (event,) = stack.token.contract.events.Transfer().process_receipt(receipt, errors=DISCARD)
    assert (event["args"]["sender"], event["args"]["receiver"], event["args"]["value"]) == (stack.addr("requester"), stack.addr("stranger"), 7)
    assert stack.balances("requester", "stranger") == {"requester": DEMO_MINT - 7, "stranger": 7}
    reverts(lambda: stack.token.transfer(stack.tx["stranger"], stack.addr("requester"), 8, gas=FORCE_GAS), "RLC: balance too low")
    reverts(lambda: stack.token.transfer(stack.tx["requester"], "0x" + "00" * 20, 1, gas=FORCE_GAS), "RLC: transfer to the zero address")


def test_approve_and_transfer_from_spend_the_allowance_exactly(stack):
    owner, spender = stack.tx["requester"], stack.tx["stranger"]
    receipt = stack.token.approve(owner, spender.address, 10)
    (event,) = stack.token.contract.events.Approval().process_receipt(receipt, errors=DISCARD)
    assert event["args"]["value"] == 10
    stack.token.transfer_from(spender, owner.address, stack.addr("pool"), 6)
    assert stack.token.allowance(owner.address, spender.address) == 4
    reverts(lambda: stack.token.transfer_from(spender, owner.address, stack.addr("pool"), 5, gas=FORCE_GAS), "RLC: allowance too low")
    stack.token.transfer_from(spender, owner.address, stack.addr("pool"), 4)
    assert stack.token.allowance(owner.address, spender.address) == 0
    assert stack.token.balance_of(stack.addr("pool")) == 10
