"""One epoch's payout (xwpy/chain/payouts.py): the split is exact and proportional; every claim's
proof leads to the root, and no claim altered does."""

from hypothesis import given
from hypothesis import strategies as st

from xwpy.chain import payouts

addresses = st.integers(1, 2**160 - 1).map(lambda n: "0x" + n.to_bytes(20, "big").hex())
ledgers = st.dictionaries(addresses, st.integers(0, 10**12), max_size=12)


@given(st.integers(0, 10**27), ledgers)
def test_the_split_is_exact_and_proportional(pool, credits):
    out = payouts.split(pool, credits)
    total = sum(c for c in credits.values() if c > 0)
    if total == 0:
        assert out == {}
        return
    assert sum(out.values()) == pool  # no dust lost: the remainder goes to the largest fractions
    assert set(out) <= {a for a, c in credits.items() if c > 0}  # no credit, nothing
    for a, c in credits.items():
        if c > 0:
            exact = pool * c // total
            assert exact <= out.get(a, 0) <= exact + 1


def test_the_remainder_goes_to_the_largest_fraction():
    assert payouts.split(10, {"0xa": 1, "0xb": 1, "0xc": 1}) == {"0xa": 4, "0xb": 3, "0xc": 3}
    assert payouts.split(10, {"0xa": 1, "0xb": 2}) == {"0xa": 3, "0xb": 7}  # 3.33 / 6.67
    assert payouts.split(7, {"0xa": 0, "0xb": 5}) == {"0xb": 7}


@given(st.lists(st.tuples(st.integers(0, 10**24), ledgers), max_size=6))
def test_an_epoch_pays_each_credited_task_share_exactly(tasks):
    out = payouts.epoch_amounts(tasks)
    credited = sum(share for share, credits in tasks if any(c > 0 for c in credits.values()))
    assert sum(out.values()) == credited  # a task without credit stays for the next epoch
    assert all(v > 0 for v in out.values())


@given(st.dictionaries(addresses, st.integers(1, 10**20), min_size=1, max_size=20), st.integers(1, 1000))
def test_every_proof_leads_to_the_root_and_no_altered_claim_does(amounts, epoch):
    tree = payouts.build(epoch, amounts)
    assert tree.total == sum(amounts.values()) and len(tree.claims) == len(amounts)
    for c in tree.claims:
        assert payouts.verify(epoch, c, tree.root)
        assert not payouts.verify(epoch, payouts.Claim(c.index, c.account, c.amount + 1, c.proof), tree.root)
        assert not payouts.verify(epoch + 1, c, tree.root)
    if len(tree.claims) > 1:
        a, b = tree.claims[:2]
        assert not payouts.verify(epoch, payouts.Claim(a.index, b.account, a.amount, a.proof), tree.root)


def test_a_claim_without_ether_for_its_gas_says_so():
    from xwpy.client.commands.payouts import CLAIM_GAS, gas_shortfall

    why = gas_shortfall("0xAbc", 0, 10**9)
    assert why.startswith("0xAbc holds 0 ether") and "send some ether to 0xAbc first" in why
    assert gas_shortfall("0xAbc", CLAIM_GAS * 10**9, 10**9) is None
