"""The metrics the scheduler keeps itself: the certification-latency histogram, fed from
:class:`SubmitTimes`. Everything else ``/api/v1/metrics`` shows is read at scrape time from where
each fact already lives (:mod:`xwpy.server.api.ops`), so nothing on the dispatch path pays for it."""

from __future__ import annotations

import bisect

from prometheus_client.core import HistogramMetricFamily

# From a trivial job on an idle grid (tens of ms) to a day-long one.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class Histogram:
    """A Prometheus histogram kept as plain counts, made into its metric family when scraped.
    prometheus_client's own takes a lock and walks its buckets at each observation: 3 us, some
    2 % of the reactor thread's time under dispatch (py-spy), for one observation per job."""

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]):
        self.name, self.documentation = name, documentation
        self.bounds = tuple(float(b) for b in buckets)
        self.counts = [0] * (len(self.bounds) + 1)  # per bucket, not cumulative; the last: above every bound
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # (le: value <= bound)
        self.sum += value

    def collect(self) -> list[HistogramMetricFamily]:
        cumulative, total = [], 0
        for bound, n in zip((*(_le(b) for b in self.bounds), "+Inf"), self.counts):
            total += n
            cumulative.append((bound, total))
        return [HistogramMetricFamily(self.name, self.documentation, buckets=cumulative, sum_value=self.sum)]


def _le(bound: float) -> str:
    """A bucket's bound as prometheus_client writes it (0.05, 1.0, 86400.0)."""
    return repr(float(bound))


def latency_histogram() -> Histogram:
    """Submission to certification, per certified job (one per coordinator)."""
    return Histogram("xwpy_certification_seconds", "Seconds from a job's submission to its certification",
                     LATENCY_BUCKETS)


class SubmitTimes:
    """When the jobs submitted since this coordinator started were submitted: one entry per
    submission (its jobs have consecutive ids), not one per job — 100,000 pending jobs cost a few
    entries. Jobs loaded after a restart have no entry and are not timed."""

    def __init__(self) -> None:
        self._first: list[int] = []
        self._at: list[float] = []

    def __len__(self) -> int:
        return len(self._first)

    def add(self, first_id: int, at: float) -> None:
        self._first.append(first_id)
        self._at.append(at)

    def at(self, job_id: int) -> float | None:
        i = bisect.bisect_right(self._first, job_id) - 1
        return self._at[i] if i >= 0 else None

    def forget_before(self, job_id: int) -> None:
        """Drop the submissions all of whose jobs have ids below ``job_id`` (none active)."""
        i = bisect.bisect_right(self._first, job_id) - 1  # the submission holding job_id stays
        if i > 0:
            del self._first[:i], self._at[:i]
