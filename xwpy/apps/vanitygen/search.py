"""A whole search: its plan (random base scalar, unit size, unit arguments) and its driver.

The driver needs only a *backend* that runs units somewhere: ``submit`` a batch of unit argument
lists, ``poll`` for finished units (their ``result.json`` bytes), ``cancel`` what is still running
once a match is certified. The grid client implements it with coordinator jobs; ``local.py`` with
a process pool on this machine. Search state is pure logic (``SearchState``), tested directly.

Unit ``i`` covers scalars ``base + i * unit_points`` onwards (mod N), so units never overlap and
the whole search is reproducible from ``(spec, base, unit_points)``.
"""

from __future__ import annotations

import json
import math
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, Sequence

from xwpy.verify import Verdict

from xwpy.apps.vanitygen.candidates import PER_POINT
from xwpy.apps.vanitygen.difficulty import expected_tries, probability_after
from xwpy.apps.vanitygen.prefix import Target, compile_prefix
from xwpy.apps.vanitygen.secp256k1 import N, decode
from xwpy.apps.vanitygen.unit import MAX_COUNT, UnitSpec
from xwpy.apps.vanitygen.verify import verify

DEFAULT_RATE = 400_000.0  # keys/s of one worker assumed when sizing units (pure-Python kernel)


class SearchError(RuntimeError):
    """The search cannot continue (e.g. workers keep returning results that fail verification)."""


@dataclass(frozen=True)
class SearchSpec:
    prefix: str
    icase: bool = False
    compressed: bool = True
    pubkey: Optional[bytes] = None  # split-key mode: the requester's Q (SEC1)

    def __post_init__(self) -> None:
        if self.pubkey is not None:
            decode(self.pubkey)  # ValueError naming the problem

    def target(self) -> Target:
        return compile_prefix(self.prefix, self.icase)


@dataclass(frozen=True)
class SearchPlan:
    spec: SearchSpec
    base: int
    unit_points: int

    @property
    def keys_per_unit(self) -> int:
        return self.unit_points * PER_POINT

    def unit(self, index: int) -> UnitSpec:
        s = self.spec
        return UnitSpec(
            prefix=s.prefix,
            start=(self.base + index * self.unit_points) % N,
            count=self.unit_points,
            icase=s.icase,
            compressed=s.compressed,
            pubkey=s.pubkey,
        )

    def unit_args(self, index: int) -> list[str]:
        return self.unit(index).to_args()


def plan_search(
    spec: SearchSpec,
    *,
    keys_per_second: float = DEFAULT_RATE,
    min_unit_seconds: float = 10.0,
    max_unit_seconds: float = 120.0,
    units_per_expectation: int = 8,
    base: Optional[int] = None,
) -> SearchPlan:
    """Size units so that about ``units_per_expectation`` cover the expected number of tries,
    each lasting between the two bounds at the given rate (too short: scheduling overhead wins;
    too long: progress is coarse and "no match" replicas cost more)."""
    if keys_per_second <= 0 or not 0 < min_unit_seconds <= max_unit_seconds:
        raise ValueError("need keys_per_second > 0 and 0 < min_unit_seconds <= max_unit_seconds")
    points = expected_tries(spec.target()) / PER_POINT / units_per_expectation
    lo = keys_per_second * min_unit_seconds / PER_POINT
    hi = keys_per_second * max_unit_seconds / PER_POINT
    unit_points = int(min(max(points, lo), hi, MAX_COUNT))
    if base is None:
        base = secrets.randbelow(N)
    if not 0 <= base < N:
        raise ValueError("base must be a scalar in [0, N)")
    return SearchPlan(spec=spec, base=base, unit_points=max(unit_points, 1))


@dataclass(frozen=True)
class Progress:
    keys_tried: int  # keys searched in finished units (up to the match in the matching unit)
    units_done: int
    units_in_flight: int
    probability: float  # chance that a search this long would have found a match by now
    expected_tries: float
    found: Optional[dict]
    done: bool = False  # the search is over (found, or the key budget spent): the last report


@dataclass
class SearchState:
    plan: SearchPlan
    max_rejections: int = 20
    max_failed_in_a_row: int = 8  # units failing one after another (a broken app or host), not bad luck
    next_index: int = 0
    in_flight: dict = field(default_factory=dict)  # index -> args
    retry: deque = field(default_factory=deque)
    units_done: int = 0
    keys_tried: int = 0
    rejections: int = 0
    failed_in_a_row: int = 0
    found: Optional[dict] = None

    def __post_init__(self) -> None:
        target = self.plan.spec.target()
        self._p = float(target.probability)
        self._expected = expected_tries(target)

    def take(self, n: int) -> list[tuple[int, list[str]]]:
        """Up to ``n`` units to submit next (failed ones first); none once a match is found."""
        out = []
        while len(out) < n and self.found is None:
            if self.retry:
                index = self.retry.popleft()
            else:
                index = self.next_index
                self.next_index += 1
            args = self.plan.unit_args(index)
            self.in_flight[index] = args
            out.append((index, args))
        return out

    def record(self, index: int, data: Optional[bytes]) -> Verdict | None:
        """A unit finished with ``data`` (its result.json) or failed (None). The result is checked
        with the app's verifier, so a lying coordinator or worker cannot fake a match."""
        args = self.in_flight.pop(index, None)
        if args is None or self.found is not None:
            return None  # unknown, duplicate or no longer wanted
        if data is None:
            self.failed_in_a_row += 1
            if self.failed_in_a_row >= self.max_failed_in_a_row:
                raise SearchError(f"{self.failed_in_a_row} units in a row failed (their jobs ended in ERROR or "
                                  "their processes died): giving up; `xwpy status --batch BATCH` says why")
            self.retry.append(index)
            return None
        self.failed_in_a_row = 0
        verdict = verify(args, {"result.json": data})
        if verdict is Verdict.VERIFIED:
            record = json.loads(data)
            self.found = record
            self.units_done += 1
            self.keys_tried += record["offset"] * PER_POINT + record["candidate"] + 1
        elif verdict is Verdict.UNVERIFIABLE:
            self.units_done += 1
            self.keys_tried += self.plan.keys_per_unit
        else:
            self.rejections += 1
            if self.rejections > self.max_rejections:
                raise SearchError(f"{self.rejections} unit results failed verification; giving up")
            self.retry.append(index)
        return verdict

    def progress(self, done: bool = False) -> Progress:
        return Progress(
            keys_tried=self.keys_tried,
            units_done=self.units_done,
            units_in_flight=len(self.in_flight),
            probability=probability_after(self._p, self.keys_tried),
            expected_tries=self._expected,
            found=self.found,
            done=done or self.found is not None,
        )


class Backend(Protocol):
    """Where units run. ``poll`` waits up to ``timeout`` seconds for at least one finished unit
    and returns ``(index, result.json bytes or None if the unit failed)`` pairs, possibly none."""

    def submit(self, units: Sequence[tuple[int, list[str]]]) -> None: ...

    def poll(self, timeout: float) -> Sequence[tuple[int, Optional[bytes]]]: ...

    def cancel(self, indices: Sequence[int]) -> None: ...


def run_search(
    plan: SearchPlan,
    backend: Backend,
    *,
    parallel: int,
    on_progress: Optional[Callable[[Progress], None]] = None,
    max_keys: Optional[int] = None,
    poll_timeout: float = 0.5,
) -> Optional[dict]:
    """Keep ``parallel`` units in flight until a verified match (returned) or ``max_keys`` keys
    were submitted and all came back without one (None). Cancels what is left on the way out.
    ON_PROGRESS hears after each poll, and last with ``done`` set (every key searched counted)."""
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    state = SearchState(plan)
    max_units = math.inf if max_keys is None else max(1, math.ceil(max_keys / plan.keys_per_unit))
    try:
        while state.found is None:
            room = parallel - len(state.in_flight)
            room = int(min(room, max_units - state.next_index + len(state.retry)))
            if room > 0:
                backend.submit(state.take(room))
            if not state.in_flight:
                if on_progress is not None:
                    on_progress(state.progress(done=True))  # what it searched in all, said last
                break  # budget exhausted, no match
            for index, data in backend.poll(poll_timeout):
                state.record(index, data)
            if on_progress is not None:
                on_progress(state.progress())
    finally:
        if state.in_flight:
            backend.cancel(list(state.in_flight))
    return state.found
