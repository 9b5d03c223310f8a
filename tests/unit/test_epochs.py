"""Payout epochs (xwpy/oracle/epochs.py), pure: what each volunteer earns from the tasks an epoch
pays out, and what to do with an epoch whose commitEpoch is stored.

Properties (hypothesis): an epoch never pays more than the tasks' pool shares nor more than the
distributor holds uncommitted; only VALID credit counts; a host without a payout address is paid
nothing now, nobody gets its part, and it is owed it: what the leaves pay plus what stays owed is
exactly the pool shares plus what was owed before; across epochs (each epoch takes the tasks no
epoch took before, hosts give addresses between them) no task's share and no owed amount is paid
twice, and once every host has an address each has been paid exactly its parts. And the commit: never a second transaction while the
stored one may still be mined, nothing sent once the distributor has the root."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from xwpy.chain.tx import TxState
from xwpy.lifecycle.replica import Validation
from xwpy.oracle.epochs import Earned, Owed, Stored, TaskShare, plan_commit, plan_epoch

VALIDATIONS = [v.value for v in Validation]
HOSTS = st.integers(1, 6)


def address(host: int) -> str:
    return "0x" + f"{host:040x}"


earned_rows = st.lists(st.builds(Earned, st.integers(1, 5), HOSTS, st.sampled_from(VALIDATIONS),
                                 st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False))), max_size=30)
shares = st.lists(st.builds(TaskShare, st.integers(1, 5), st.integers(0, 10**24)), max_size=5,
                  unique_by=lambda t: t.task)
address_books = st.dictionaries(HOSTS, st.one_of(st.none(), HOSTS.map(address)), max_size=6)


@given(shares, earned_rows, address_books, st.integers(0, 10**25))
def test_an_epoch_pays_at_most_its_pool_and_only_valid_credit(unpaid, earned, addresses, available):
    plan = plan_epoch(unpaid, earned, addresses, available)
    if plan is None:
        return
    assert 0 < plan.total <= min(sum(t.share for t in unpaid), available)
    assert plan.tasks == tuple(t.task for t in unpaid)
    paid_hosts = {e.host for e in earned if e.validation == Validation.VALID.value and e.credit
                  and round(e.credit * 1000) > 0 and e.task in {t.task for t in unpaid}}
    # Only addresses of hosts that earned VALID credit on one of the tasks are paid.
    assert set(plan.amounts) <= {addresses[h] for h in paid_hosts if addresses.get(h)}
    assert all(v > 0 for v in plan.amounts.values())


@given(shares, earned_rows, address_books)
def test_invalid_credit_changes_nothing(unpaid, earned, addresses):
    valid = [e for e in earned if e.validation == Validation.VALID.value]
    noise = [Earned(e.task, e.host, Validation.INVALID.value, e.credit) for e in earned]
    assert plan_epoch(unpaid, valid + noise, addresses, 10**30) == plan_epoch(unpaid, valid, addresses, 10**30)


@given(shares, earned_rows, address_books)
def test_a_host_without_an_address_leaves_its_part_unpaid_not_to_others(unpaid, earned, addresses):
    own = {h: address(h) for h in range(1, 7)}  # each host its own address: its part alone
    full = plan_epoch(unpaid, earned, own, 10**30)
    expected: dict[str, int] = {}
    for h, a in addresses.items():
        if a and full and own[h] in full.amounts:
            expected[a] = expected.get(a, 0) + full.amounts[own[h]]
    plan = plan_epoch(unpaid, earned, addresses, 10**30)
    assert (plan.amounts if plan else {}) == expected  # each paid its own hosts' parts, no more


def test_each_task_share_is_split_over_its_own_hosts_credit():
    earned = [Earned(1, 1, "VALID", 2.0), Earned(1, 2, "VALID", 2.0), Earned(1, 3, "INVALID", 9.0),
              Earned(2, 2, "VALID", 1.0), Earned(3, 1, "VALID", 5.0)]
    addresses = {1: address(1), 2: address(2), 3: address(3)}
    plan = plan_epoch([TaskShare(1, 100), TaskShare(2, 31)], earned, addresses, 10**9)
    assert plan.amounts == {address(1): 50, address(2): 81}  # task 3 is not in this epoch
    # Host 2 without an address: its 50 + 31 stay uncommitted; host 1 still gets 50, not 100.
    plan = plan_epoch([TaskShare(1, 100), TaskShare(2, 31)], earned, {1: address(1)}, 10**9)
    assert plan.amounts == {address(1): 50}
    # Less uncommitted than the shares (tasks paid to an older pool): scaled down to it, exactly.
    plan = plan_epoch([TaskShare(1, 100), TaskShare(2, 31)], earned, addresses, 100)
    assert plan.total == 100 and plan.amounts[address(2)] > plan.amounts[address(1)]
    # ...beside what is owed, which is paid whole: host 3 was owed 30, 100 held in all.
    plan = plan_epoch([TaskShare(1, 100), TaskShare(2, 31)], earned, addresses, 100, [Owed(5, 3, 30)])
    assert plan.total == 100 and plan.amounts[address(3)] == 30 and plan.owed_paid == (5,)
    # Host 2 without an address: its scaled parts are owed, and what is committed still fits.
    plan = plan_epoch([TaskShare(1, 100), TaskShare(2, 31)], earned, {1: address(1)}, 100)
    assert plan.total + sum(plan.owed.values()) == 100 and set(plan.owed) == {2}
    assert plan_epoch([TaskShare(1, 100)], [Earned(1, 3, "INVALID", 9.0)], addresses, 10**9) is None
    assert plan_epoch([], earned, addresses, 10**9) is None


@given(st.lists(st.tuples(shares, earned_rows), min_size=1, max_size=4), address_books)
def test_across_epochs_no_task_is_paid_twice(batches, addresses):
    """Tasks arrive between epochs; each epoch takes every task no epoch took (as the catalog's
    unpaid() does) and marks the ones it pays; a task's share is in one epoch at most."""
    paid_in: dict[int, int] = {}
    arrived: dict[int, TaskShare] = {}
    earned_all: list[Earned] = []
    total_paid = 0
    for n, (new, earned) in enumerate(batches, 1):
        for t in new:
            key = t.task + 10 * n  # a new task id per batch
            arrived[key] = TaskShare(key, t.share)
        earned_all += [Earned(e.task + 10 * n, e.host, e.validation, e.credit) for e in earned]
        unpaid = [t for k, t in sorted(arrived.items()) if k not in paid_in]
        plan = plan_epoch(unpaid, earned_all, addresses, 10**30)
        if plan is None:
            continue
        for k in plan.tasks:
            assert k not in paid_in
            paid_in[k] = n
        total_paid += plan.total
    assert total_paid <= sum(arrived[k].share for k in paid_in)


owed_rows = st.lists(st.builds(Owed, st.integers(1, 10**6), HOSTS, st.integers(1, 10**24)), max_size=6,
                    unique_by=lambda o: o.id)


def credited(unpaid, earned) -> int:
    """The shares of the tasks whose jobs earned VALID credit (a task with none pays nobody)."""
    tasks = {e.task for e in earned if e.validation == Validation.VALID.value and e.credit
             and round(e.credit * 1000) > 0}
    return sum(t.share for t in unpaid if t.task in tasks)


@given(shares, earned_rows, address_books, owed_rows)
def test_what_the_leaves_pay_plus_what_stays_owed_is_exactly_the_shares_plus_what_was_owed(unpaid, earned,
                                                                                         addresses, owed):
    plan = plan_epoch(unpaid, earned, addresses, 10**30, owed)
    if plan is None:  # nothing is paid: the tasks wait, what was owed stays owed
        assert not any(addresses.get(o.host) for o in owed)
        return
    still_owed = [o for o in owed if o.id not in plan.owed_paid]
    assert plan.total + sum(plan.owed.values()) + sum(o.amount for o in still_owed) == \
        credited(unpaid, earned) + sum(o.amount for o in owed)
    # Paid: exactly the rows of hosts that have an address now; owed from now: only hosts without one.
    assert set(plan.owed_paid) == {o.id for o in owed if addresses.get(o.host)}
    assert all(not addresses.get(h) and v > 0 for h, v in plan.owed.items())


@given(shares, earned_rows, address_books, owed_rows, st.integers(0, 10**25))
def test_an_epoch_commits_and_leaves_owed_no_more_than_the_distributor_holds(unpaid, earned, addresses, owed,
                                                                             available):
    """Whatever the distributor holds: what an epoch commits plus what it leaves owed fits in it,
    and what was owed is paid whole or not at all (never scaled: a row is cleared once)."""
    plan = plan_epoch(unpaid, earned, addresses, available, owed)
    if plan is None:
        return
    assert plan.total + sum(plan.owed.values()) <= available
    paid = {o.id: o for o in owed if o.id in plan.owed_paid}
    for o in paid.values():
        assert plan.amounts[addresses[o.host]] >= o.amount
    if available >= credited(unpaid, earned) + sum(o.amount for o in owed):
        assert set(paid) == {o.id for o in owed if addresses.get(o.host)}


def test_a_host_owed_is_paid_its_part_when_it_gives_an_address():
    earned = [Earned(1, 1, "VALID", 1.0), Earned(1, 2, "VALID", 3.0), Earned(2, 1, "VALID", 1.0),
              Earned(2, 2, "VALID", 1.0)]
    first = plan_epoch([TaskShare(1, 100)], earned, {1: address(1)}, 10**9)
    assert first.amounts == {address(1): 25} and first.owed == {2: 75}
    owed = [Owed(7, 2, 75)]
    # Still no address: the owed row waits, the new part is owed too.
    second = plan_epoch([TaskShare(2, 10)], earned, {1: address(1)}, 10**9, owed)
    assert second.amounts == {address(1): 5} and second.owed == {2: 5} and second.owed_paid == ()
    owed.append(Owed(8, 2, 5))
    # An address now: paid both rows and its part of the new task in one leaf, even with no task.
    third = plan_epoch([], earned, {1: address(1), 2: address(2)}, 10**9, owed)
    assert third.amounts == {address(2): 80} and third.owed_paid == (7, 8) and third.owed == {}
    assert plan_epoch([], earned, {1: address(1)}, 10**9, owed) is None  # nobody owed has an address


@given(st.lists(st.tuples(shares, earned_rows, st.sets(HOSTS)), min_size=1, max_size=4))
def test_across_epochs_every_host_is_paid_its_parts_exactly_once(batches):
    """Hosts give addresses between epochs (each its own, so what it is paid can be told apart);
    owed rows are kept as the catalog does (stored with their epoch, cleared by the one that pays
    them). At the end every host has an address, and one more epoch pays what is still owed: each
    host has been paid exactly what it earned, as if it had had an address from the start."""
    arrived: dict[int, TaskShare] = {}
    paid_tasks: set[int] = set()
    earned_all: list[Earned] = []
    owed: dict[int, Owed] = {}
    cleared: set[int] = set()
    paid: dict[str, int] = {}
    addresses: dict[int, str] = {}
    next_id = 1

    def epoch(unpaid):
        nonlocal next_id
        plan = plan_epoch(unpaid, earned_all, addresses, 10**30, list(owed.values()))
        if plan is None:
            return
        for i in plan.owed_paid:
            assert i not in cleared  # an owed row is paid once
            cleared.add(i)
            del owed[i]
        for host, amount in plan.owed.items():
            owed[next_id] = Owed(next_id, host, amount)
            next_id += 1
        for a, v in plan.amounts.items():
            paid[a] = paid.get(a, 0) + v
        assert not paid_tasks & set(plan.tasks)
        paid_tasks.update(plan.tasks)

    for n, (new, earned, with_address) in enumerate(batches, 1):
        for t in new:
            arrived[t.task + 10 * n] = TaskShare(t.task + 10 * n, t.share)
        earned_all += [Earned(e.task + 10 * n, e.host, e.validation, e.credit) for e in earned]
        addresses.update({h: address(h) for h in with_address})
        epoch([t for k, t in sorted(arrived.items()) if k not in paid_tasks])
    addresses.update({h: address(h) for h in range(1, 7)})
    epoch([t for k, t in sorted(arrived.items()) if k not in paid_tasks])
    assert not owed
    # As if each host had had its own address from the start, in one epoch over the same tasks.
    everything = plan_epoch([arrived[k] for k in sorted(paid_tasks)], earned_all, addresses, 10**30)
    assert paid == (everything.amounts if everything else {})


# -- the commit -------------------------------------------------------------------------------

ROOT = b"\x11" * 32
OTHER = b"\x22" * 32
ZERO = b"\x00" * 32
E = Stored(epoch=3, root=ROOT, commit_nonce=7)


def mined(status: int) -> TxState:
    return TxState("mined", {"status": status, "blockNumber": 9})


def test_the_commit_is_done_once_the_distributor_has_the_root():
    for tx in (TxState("unknown"), TxState("pending"), mined(1), mined(0)):
        assert plan_commit(E, ROOT, 3, tx, 8).kind == "committed"


def test_a_stored_commit_that_may_still_be_mined_is_never_signed_again():
    assert plan_commit(E, ZERO, 2, TxState("pending"), 8).kind == "wait"
    assert plan_commit(E, ZERO, 2, mined(1), None).kind == "wait"  # a node behind its receipts
    assert plan_commit(E, ZERO, 2, TxState("unknown"), 7).kind == "resend"  # the very same bytes


def test_a_commit_whose_nonce_went_elsewhere_is_signed_anew_for_the_same_number():
    assert plan_commit(E, ZERO, 2, TxState("unknown"), 8).kind == "sign"


def test_a_commit_pending_replace_after_blocks_is_replaced_not_before():
    assert plan_commit(E, ZERO, 2, TxState("pending"), 8, 2, replace_after=3).kind == "wait"
    assert plan_commit(E, ZERO, 2, TxState("pending"), 8, 3, replace_after=3).kind == "replace"
    assert plan_commit(E, ZERO, 2, TxState("pending"), 8, 9).kind == "wait"  # no replace_after: never
    assert plan_commit(E, ROOT, 2, TxState("pending"), 8, 9, replace_after=3).kind == "committed"


def test_an_epoch_whose_number_is_taken_or_that_reverted_fails():
    assert plan_commit(E, OTHER, 3, TxState("unknown"), 8).kind == "fail"
    assert plan_commit(E, ZERO, 2, mined(0), None).kind == "fail"
    # The distributor is not where the epoch was built (its number would come out another).
    assert plan_commit(E, ZERO, 0, TxState("unknown"), 8).kind == "fail"


@given(st.sampled_from([ROOT, OTHER, ZERO]), st.integers(0, 6),
       st.sampled_from([TxState("unknown"), TxState("pending"), mined(1), mined(0)]),
       st.one_of(st.none(), st.integers(0, 12)), st.one_of(st.none(), st.integers(0, 10)),
       st.one_of(st.none(), st.integers(1, 5)))
def test_sending_again_only_when_the_root_is_not_there_and_the_stored_one_cannot_be_mined(root, count, tx, nonce,
                                                                                         pending_for, replace_after):
    action = plan_commit(E, root, count, tx, nonce, pending_for, replace_after=replace_after)
    if action.kind in ("resend", "sign"):
        assert root != ROOT and count == E.epoch - 1 and tx.kind == "unknown"
    if action.kind == "replace":  # on its own nonce: whichever of the two is mined, the root lands once
        assert root != ROOT and count < E.epoch and tx.kind == "pending" and pending_for >= replace_after
    if action.kind == "sign":
        assert nonce != E.commit_nonce
    if root == ROOT:
        assert action.kind == "committed"
