"""Distributor.vy (issue 18): the hub's pool share paid into it by commits, one epoch's root
committed by the oracle, each volunteer claiming its own share with a proof — on the embedded
chain and ganache. Claims sum exactly to the pool's share; nobody claims twice or another's share;
a liar with no credit has no leaf to claim."""

from __future__ import annotations

from chainhelp import FORCE_GAS, reverts

from xwpy.chain import payouts


def test_volunteers_claim_exactly_the_pool_share_once_each(stack, capsys):
    oracle, deployer = stack.tx["oracle"], stack.tx["deployer"]
    address = stack.deploy("Distributor", stack.token.address, stack.addr("oracle"))
    dist = stack.contract("Distributor", address).functions
    stack.hub.set_pool(deployer, address)  # the hub pays each task's pool share to the distributor
    for n in range(3):
        task_id, _ = stack.request()
        stack.hub.commit(oracle, task_id, bytes([n + 1]) * 32, b"r")
    pool = stack.token.balance_of(address)
    assert pool == 3 * stack.hub.pool_share(stack.price) > 0
    assert dist.uncommitted().call() == pool

    # Credit (thousandths) as the ledger has it: two honest volunteers and a third, the liar outvoted (none).
    volunteers = {"requester2": 3000, "stranger": 1001, "app_owner": 7, "pool": 0}
    amounts = payouts.split(pool, {stack.addr(r): c for r, c in volunteers.items()})
    tree = payouts.build(1, amounts)
    assert tree.total == pool and stack.addr("pool") not in amounts
    reverts(lambda: stack.tx["stranger"].transact(dist.commitEpoch(tree.root, pool), gas=FORCE_GAS),
            "distributor: only the oracle")
    reverts(lambda: oracle.transact(dist.commitEpoch(tree.root, pool + 1), gas=FORCE_GAS), "distributor: not funded")
    oracle.transact(dist.commitEpoch(tree.root, pool))
    assert dist.epochCount().call() == 1 and dist.uncommitted().call() == 0

    mine = tree.claim_of(stack.addr("requester2"))
    theirs = tree.claim_of(stack.addr("stranger"))
    # Another's share: its leaf names its address, so neither its proof nor another proof serves the caller.
    reverts(lambda: stack.tx["stranger"].transact(dist.claim(1, mine.index, mine.amount, list(mine.proof)),
                                                  gas=FORCE_GAS), "distributor: invalid proof")
    reverts(lambda: stack.tx["stranger"].transact(dist.claim(1, theirs.index, theirs.amount + 1, list(theirs.proof)),
                                                  gas=FORCE_GAS), "distributor: invalid proof")
    reverts(lambda: stack.tx["stranger"].transact(dist.claim(1, theirs.index, theirs.amount, list(mine.proof)),
                                                  gas=FORCE_GAS), "distributor: invalid proof")
    # The liar has no leaf: whatever it claims, with any volunteer's proof, fails.
    for c in tree.claims:
        reverts(lambda c=c: stack.tx["pool"].transact(dist.claim(1, c.index, c.amount, list(c.proof)), gas=FORCE_GAS),
                "distributor: invalid proof")
    reverts(lambda: stack.tx["stranger"].transact(dist.claim(2, theirs.index, theirs.amount, list(theirs.proof)),
                                                  gas=FORCE_GAS), "distributor: no such epoch")

    before = stack.balances(*volunteers)
    gas = {}
    for role in ("requester2", "stranger", "app_owner"):
        c = tree.claim_of(stack.addr(role))
        receipt = stack.tx[role].transact(dist.claim(1, c.index, c.amount, list(c.proof)))
        gas[role] = (receipt["gasUsed"], len(c.proof))
        reverts(lambda c=c, role=role: stack.tx[role].transact(dist.claim(1, c.index, c.amount, list(c.proof)),
                                                               gas=FORCE_GAS), "distributor: already claimed")
    after = stack.balances(*volunteers)
    paid = {r: after[r] - before[r] for r in volunteers}
    assert sum(paid.values()) == pool  # to the unit: the split's remainder is in someone's leaf
    assert paid["pool"] == 0 and paid["requester2"] > paid["stranger"] > paid["app_owner"] > 0
    assert stack.token.balance_of(address) == 0 and dist.paid().call() == pool
    with capsys.disabled():
        print(f"\nDistributor gas per claim (gasUsed, proof length): {gas}")
