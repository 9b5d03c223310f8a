"""Throughput over time, for the dashboard's plots: a small ring buffer of the scheduler's counters,
which the coordinator samples every few seconds, and the rates drawn from it. Pure: the caller
gives the time; nothing here survives a restart (the counters start again from zero then)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

SAMPLE_SECONDS = 10.0
CAPACITY = 360  # an hour at one sample every 10 s: 360 small records


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds since the epoch
    certified: int  # jobs certified since the coordinator started (a counter)
    reported: int  # results accepted from workers since it started (a counter)
    queued: int  # jobs waiting for a host now
    running: int  # replicas running now


class Samples:
    def __init__(self, capacity: int = CAPACITY):
        self._ring: deque[Sample] = deque(maxlen=capacity)
        self.version = 0  # samples kept so far: what is drawn from them changes with it only

    def __len__(self) -> int:
        return len(self._ring)

    def add(self, sample: Sample) -> None:
        if self._ring and sample.t <= self._ring[-1].t:
            return  # a clock stepped back: keep the series increasing in time
        self._ring.append(sample)
        self.version += 1

    def rates(self) -> list[dict]:
        """One point per interval between two samples: results and certifications per minute over
        it (never negative: a counter that went back is a restart), and the queue and running
        replicas at its end."""
        out = []
        ring = list(self._ring)
        for prev, s in zip(ring, ring[1:]):
            minutes = (s.t - prev.t) / 60
            out.append({
                "t": s.t,
                "certified_per_minute": max(s.certified - prev.certified, 0) / minutes,
                "reported_per_minute": max(s.reported - prev.reported, 0) / minutes,
                "queued": s.queued,
                "running": s.running,
            })
        return out


__all__ = ["CAPACITY", "SAMPLE_SECONDS", "Sample", "Samples"]
