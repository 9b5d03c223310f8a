"""The worker's disk budget: which cache entries go to make room (pure), and the index that keeps
the cache and the jobs' directories within the budget."""

from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from xwpy.worker.disk import DiskBudget, Entry, NoRoom, eviction_order, inputs_offer, to_evict


def test_least_recently_used_go_first_and_only_as_many_as_needed():
    entries = [Entry("a", 10, 3.0), Entry("b", 10, 1.0), Entry("c", 10, 2.0)]
    assert to_evict(entries, 100, 0, 10) == []
    assert to_evict(entries, 35, 0, 10) == ["b"]
    assert to_evict(entries, 30, 5, 10) == ["b", "c"]


def test_pinned_entries_stay_and_impossible_is_none():
    entries = [Entry("a", 10, 1.0, pinned=True), Entry("b", 10, 2.0)]
    assert to_evict(entries, 20, 0, 10) == ["b"]
    assert to_evict(entries, 15, 0, 10) is None  # "a" is in use: 10 + 10 > 15 whatever goes


entries = st.lists(st.builds(Entry, st.text("abcdefgh", min_size=1, max_size=3), st.integers(0, 100),
                             st.floats(0, 1000), st.booleans()), max_size=10, unique_by=lambda e: e.key)


@given(entries, st.integers(0, 600), st.integers(0, 100), st.integers(0, 100))
def test_what_stays_fits_and_nothing_more_recent_goes_than_needed(es, budget, reserved, incoming):
    victims = to_evict(es, budget, reserved, incoming)
    pinned_total = sum(e.size for e in es if e.pinned)
    if victims is None:
        assert pinned_total + reserved + incoming > budget
        return
    gone = set(victims)
    assert not any(e.pinned for e in es if e.key in gone)
    assert sum(e.size for e in es if e.key not in gone) + reserved + incoming <= budget
    # Least recently used first: every entry evicted is older than (or tied with) every one kept...
    kept = [e for e in es if e.key not in gone and not e.pinned]
    assert all((v.last_used, v.key) <= (k.last_used, k.key) for v in es if v.key in gone for k in kept)
    # ...and no more than needed: without the last one evicted, it would not fit.
    if victims:
        last = next(e for e in es if e.key == victims[-1])
        assert sum(e.size for e in es if e.key not in gone) + last.size + reserved + incoming > budget


def test_expired_results_go_first_and_results_still_awaited_last():
    now = 100.0
    es = [Entry("cache-old", 10, 1.0), Entry("cache-new", 10, 50.0), Entry("late", 10, 0.0, deadline=90.0),
          Entry("later", 10, 0.0, deadline=20.0), Entry("awaited", 10, 0.0, deadline=5000.0),
          Entry("soon", 10, 0.0, deadline=200.0)]
    assert to_evict(es, 50, 0, 10, now) == ["later", "late"]  # past their deadlines: the oldest first
    assert to_evict(es, 30, 0, 10, now) == ["later", "late", "cache-old", "cache-new"]
    # Only when nothing else is left: a result still awaited, the nearest deadline first.
    assert to_evict(es, 20, 0, 10, now) == ["later", "late", "cache-old", "cache-new", "soon"]


results = st.lists(st.builds(Entry, st.text("abcdefgh", min_size=1, max_size=3), st.integers(0, 100),
                             st.floats(0, 1000), st.booleans(), st.one_of(st.none(), st.floats(0, 1000))),
                   max_size=10, unique_by=lambda e: e.key)


@given(results, st.integers(0, 600), st.integers(0, 100), st.integers(0, 100), st.floats(0, 1000))
def test_a_result_still_awaited_goes_only_when_nothing_else_would_do(es, budget, reserved, incoming, now):
    victims = to_evict(es, budget, reserved, incoming, now)
    if victims is None:
        assert sum(e.size for e in es if e.pinned) + reserved + incoming > budget
        return
    gone = set(victims)
    assert not any(e.pinned for e in es if e.key in gone)
    assert sum(e.size for e in es if e.key not in gone) + reserved + incoming <= budget
    kept = [e for e in es if e.key not in gone and not e.pinned]
    # In order: whatever stays (and may go) comes after everything that went...
    assert all(eviction_order(v, now) <= eviction_order(k, now) for v in es if v.key in gone for k in kept)
    # ...so a result still awaited goes only once no cache entry and no expired result is left.
    def awaited(e):
        return e.deadline is not None and e.deadline > now
    if any(awaited(e) for e in es if e.key in gone):
        assert all(awaited(k) for k in kept)
    if victims:  # and no more than needed
        last = next(e for e in es if e.key == victims[-1])
        assert sum(e.size for e in es if e.key not in gone) + last.size + reserved + incoming > budget


def test_the_budget_drops_a_result_only_when_it_must_and_says_so(tmp_path):
    now = [100.0]
    dropped = []
    d = DiskBudget(100, clock=lambda: now[0])
    d.add("cache", blob(tmp_path, "cache", 30), 30)
    d.add_result("result:1", blob(tmp_path, "1.tar", 40), 40, 500.0, lambda: dropped.append(1))
    d.add_result("result:2", blob(tmp_path, "2.tar", 20), 20, 50.0, lambda: dropped.append(2))
    d.make_room(20)  # 90 + 20 > 100: the expired result goes, not the cache
    assert dropped == [2] and (tmp_path / "cache").exists()
    d.forget("result:2")  # (what the worker's outbox does when it drops one)
    d.make_room(50)  # 70 + 50: the cache goes, the awaited result stays
    assert dropped == [2] and not (tmp_path / "cache").exists()
    d.make_room(80)  # only the awaited result is left to go
    assert dropped == [2, 1]
    assert (tmp_path / "1.tar").exists()  # its owner removes it (and its record), not the index
    with pytest.raises(NoRoom):
        d.make_room(101)


def blob(tmp: Path, name: str, size: int) -> Path:
    p = tmp / name
    p.write_bytes(b"x" * size)
    return p


def test_the_index_evicts_files_least_recently_used_first(tmp_path):
    now = [0.0]
    d = DiskBudget(100, clock=lambda: now[0])
    for i, name in enumerate("abc"):
        now[0] = float(i)
        d.add(name, blob(tmp_path, name, 30), 30)
    now[0] = 10.0
    d.use("a")  # used again: now the most recent
    d.make_room(30)  # 90 + 30 > 100: "b" goes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "c"] and d.evicted == 1
    assert d.used == 60


def test_pinned_and_reserved_bytes_count(tmp_path):
    d = DiskBudget(100)
    d.add("a", blob(tmp_path, "a", 40), 40)
    d.pin("a")
    d.reserve("job 1", 50)
    with pytest.raises(NoRoom, match=r"input x would not fit the disk budget \(100\)"):
        d.make_room(20, "input x")
    assert (tmp_path / "a").exists()  # nothing evicted when it cannot help
    d.unpin("a")
    d.make_room(20)
    assert not (tmp_path / "a").exists()
    d.release("job 1")
    assert d.used == 0


def test_a_pin_before_the_entry_lands_is_dropped_if_it_never_does(tmp_path):
    d = DiskBudget(100)
    d.pin("a")
    assert d.known("a")
    d.unpin("a")
    assert not d.known("a")


def test_settle_after_an_unknown_size_landed(tmp_path):
    now = [0.0]
    d = DiskBudget(100, clock=lambda: now[0])
    d.add("old", blob(tmp_path, "old", 60), 60)
    now[0] = 1.0
    d.add("image", blob(tmp_path, "image", 70), 70)
    d.settle()
    assert [p.name for p in tmp_path.iterdir()] == ["image"]


def test_no_budget_evicts_nothing(tmp_path):
    d = DiskBudget(0)
    d.add("a", blob(tmp_path, "a", 10), 10)
    d.make_room(1 << 40)
    d.settle()
    assert (tmp_path / "a").exists()


def test_a_download_cut_short_counts_from_the_next_start(tmp_path):
    from xwpy.worker.daemon import _scan_cache
    from xwpy.worker.disk import blob_key, part_key

    (tmp_path / "cache").mkdir()
    (tmp_path / "images").mkdir()
    sha = "ab" * 32
    blob(tmp_path / "cache", sha, 10)
    blob(tmp_path / "cache", "cd" * 32 + ".part", 7)
    blob(tmp_path / "cache", "not-a-blob.part", 5)
    found = {key: size for key, _path, size, _mtime in _scan_cache(tmp_path)}
    assert found == {blob_key(sha): 10, part_key("cd" * 32): 7}


@given(st.integers(0, 1 << 40), st.lists(st.integers(0, 1 << 30), max_size=6))
def test_the_inputs_offered_leave_room_for_the_results_kept(budget, results):
    """A worker that keeps finished results (the coordinator was away) offers only what they leave:
    the inputs it accepts, held twice while staging, plus its results fit its budget."""
    d = DiskBudget(budget)
    for i, size in enumerate(results):
        d.add_result(f"result/{i}", Path(f"/nowhere/{i}"), size, deadline=1e12, evicted=lambda: None)
    d.add("blob/x", Path("/nowhere/x"), 7)  # a cache entry: it may be evicted, so it does not count
    offer = inputs_offer(budget, d.results_held())
    if budget == 0:
        assert offer == 0  # no limit
        return
    assert offer >= 1  # never 0, which would say "no limit"
    if sum(results) < budget - 1:
        assert 2 * offer + sum(results) <= budget
        assert 2 * (offer + 1) + sum(results) > budget  # and nothing more is held back
