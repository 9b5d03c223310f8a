"""The search driver and its state, against an in-process backend (no threads, no timing)."""


import pytest

from xwpy.verify import Verdict

from xwpy.apps.vanitygen.search import SearchError, SearchSpec, SearchState, plan_search, run_search
from xwpy.apps.vanitygen.secp256k1 import N
from xwpy.apps.vanitygen.unit import parse_args, run_args


class InlineBackend:
    """Runs each submitted unit when polled, one per poll, in submission order."""

    def __init__(self, tamper=None):
        self.queue = []
        self.submitted = []
        self.cancelled = []
        self.tamper = tamper or (lambda index, data: data)

    def submit(self, units):
        self.submitted += [i for i, _ in units]
        self.queue += units

    def poll(self, timeout):
        if not self.queue:
            return []
        index, args = self.queue.pop(0)
        return [(index, self.tamper(index, run_args(args, "python")))]

    def cancel(self, indices):
        self.cancelled += list(indices)


def test_plan_units_tile_the_key_space_from_a_random_base():
    plan = plan_search(SearchSpec("1Abc"), keys_per_second=60_000, min_unit_seconds=1, max_unit_seconds=5)
    specs = [parse_args(plan.unit_args(i)) for i in range(4)]
    assert [s.start for s in specs] == [(plan.base + i * plan.unit_points) % N for i in range(4)]
    assert all(s.count == plan.unit_points and s.prefix == "1Abc" for s in specs)
    other = plan_search(SearchSpec("1Abc"), keys_per_second=60_000, min_unit_seconds=1, max_unit_seconds=5)
    assert other.base != plan.base  # fresh randomness per search


def test_unit_size_follows_difficulty_within_time_bounds():
    rate = 600_000
    easy = plan_search(SearchSpec("1A"), keys_per_second=rate, min_unit_seconds=2, max_unit_seconds=60)
    hard = plan_search(SearchSpec("1LoveYou"), keys_per_second=rate, min_unit_seconds=2, max_unit_seconds=60)
    mid = plan_search(SearchSpec("1Love"), keys_per_second=rate, min_unit_seconds=0.01, max_unit_seconds=60)
    assert easy.keys_per_unit == rate * 2
    assert hard.keys_per_unit == rate * 60
    assert mid.unit_points == int(4_476_342.78 / 6 / 8)


def test_search_finds_a_verified_match_and_cancels_the_rest():
    plan = plan_search(SearchSpec("1Ab"), keys_per_second=6_000, min_unit_seconds=0.1, max_unit_seconds=0.1)
    backend = InlineBackend()
    seen = []
    found = run_search(plan, backend, parallel=3, on_progress=seen.append)
    assert found["address"].startswith("1Ab")
    index = backend.submitted[len(seen) - 1]
    assert found["start"] == f"{plan.unit(index).start:064x}"
    assert set(backend.cancelled) == set(backend.submitted) - set(backend.submitted[: len(seen)])
    assert len(backend.cancelled) == 2  # the window stays full until the match
    last = seen[-1]
    assert last.found == found
    assert last.keys_tried == (len(seen) - 1) * plan.keys_per_unit + found["offset"] * 6 + found["candidate"] + 1
    assert [p.keys_tried for p in seen] == sorted(p.keys_tried for p in seen)


def test_forged_results_are_retried_not_believed():
    plan = plan_search(SearchSpec("1Ab"), keys_per_second=6_000, min_unit_seconds=0.1, max_unit_seconds=0.1)
    forged_once = set()

    def tamper(index, data):
        if index not in forged_once:
            forged_once.add(index)
            return b'{"status":"match","offset":0,"candidate":0}'
        return data

    backend = InlineBackend(tamper)
    found = run_search(plan, backend, parallel=1)
    assert found["address"].startswith("1Ab")
    assert backend.submitted[:2] == [0, 0]  # unit 0 resubmitted after the forgery


def test_persistent_liars_stop_the_search():
    plan = plan_search(SearchSpec("1Ab"), keys_per_second=6_000, min_unit_seconds=0.1, max_unit_seconds=0.1)
    backend = InlineBackend(lambda index, data: b"garbage")
    with pytest.raises(SearchError, match="failed verification"):
        run_search(plan, backend, parallel=2)


def test_failed_units_are_resubmitted():
    plan = plan_search(SearchSpec("1Ab"), keys_per_second=6_000, min_unit_seconds=0.1, max_unit_seconds=0.1)
    state = SearchState(plan)
    [(i, args)] = state.take(1)
    assert state.record(i, None) is None
    assert state.take(1) == [(i, args)]


def test_units_failing_one_after_another_stop_the_search():
    """A unit whose job always fails (an app the hosts cannot run) is not resubmitted for ever: the
    demo's search once submitted 3,300 jobs that all ended in ERROR. Failures between successes
    do not add up."""
    plan = plan_search(SearchSpec("1" * 12), keys_per_second=6_000, min_unit_seconds=0.1, max_unit_seconds=0.1)
    state = SearchState(plan, max_failed_in_a_row=3)
    for _ in range(2):  # fail, fail, succeed: the count starts again
        [(i, _args)] = state.take(1)
        state.record(i, None)
    [(i, args)] = state.take(1)
    assert state.record(i, run_args(args)) is Verdict.UNVERIFIABLE
    for _ in range(2):
        [(i, _args)] = state.take(1)
        state.record(i, None)
    [(i, _args)] = state.take(1)
    with pytest.raises(SearchError, match="3 units in a row failed"):
        state.record(i, None)


def test_key_budget_ends_a_fruitless_search():
    plan = plan_search(SearchSpec("1" * 12), keys_per_second=6_000, min_unit_seconds=0.1, max_unit_seconds=0.1)
    backend = InlineBackend()
    assert run_search(plan, backend, parallel=2, max_keys=3 * plan.keys_per_unit) is None
    assert backend.submitted == [0, 1, 2] and backend.cancelled == []


def test_duplicate_and_unknown_results_are_ignored():
    plan = plan_search(SearchSpec("1Love"), keys_per_second=6_000, min_unit_seconds=0.1, max_unit_seconds=0.1)
    state = SearchState(plan)
    [(i, args)] = state.take(1)
    data = run_args(args, "python")
    assert state.record(i, data) is Verdict.UNVERIFIABLE
    assert state.record(i, data) is None
    assert state.record(99, data) is None
    assert state.progress().keys_tried == plan.keys_per_unit


def test_bad_split_key_is_refused_early():
    with pytest.raises(ValueError, match="public key"):
        SearchSpec("1A", pubkey=b"\x02" + b"\xff" * 32)


def test_the_last_progress_line_of_a_search_that_gives_up_counts_every_key():
    """A search that gives up (--max-keys) ends with a line counting what it searched, on a
    terminal or not (a log prints a line every 5 s: the last one used to be the first, '0 keys')."""
    import io

    from xwpy.apps.vanitygen.cli import _progress_printer
    from xwpy.apps.vanitygen.progress import human

    plan = plan_search(SearchSpec("1" * 12), keys_per_second=6_000, min_unit_seconds=0.1, max_unit_seconds=0.1)
    for tty in (False, True):
        stream = io.StringIO()
        stream.isatty = lambda tty=tty: tty
        seen = []
        printer = _progress_printer(stream)
        assert run_search(plan, InlineBackend(), parallel=2, max_keys=3 * plan.keys_per_unit,
                          on_progress=lambda p: (seen.append(p), printer(p))) is None
        assert seen[-1].keys_tried == 3 * plan.keys_per_unit and seen[-1].units_in_flight == 0
        last = stream.getvalue().replace("\x1b[K", "").replace("\r", "\n").strip().splitlines()[-1]
        assert f"] {human(3 * plan.keys_per_unit)} keys," in last, last
