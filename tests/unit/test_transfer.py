"""The decisions of big transfers, without a network: ranges served, caps, windows, stalls, chunk
sizes (the clock is Twisted's task.Clock; the coordinator and the worker's wire are tested end to
end in tests/grid/test_transfers.py and test_big_data.py)."""

from __future__ import annotations

import hashlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.web.client import ResponseDone

from xwpy.server.api.ranges import Unsatisfiable, content_range, tail_start
from xwpy.worker import transfer
from xwpy.worker.throttle import MIN_BURST, TokenBucket, TransferPolicy

MiB = 1 << 20


# -- Range ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header, start", [
    (None, None),
    ("bytes=0-", 0),
    ("bytes=100-", 100),
    ("bytes=100-999", 100),  # to the last byte
    ("bytes=100-5000", 100),  # past it: to the end
    ("bytes=-10", 990),
    ("bytes=-5000", 0),
    ("bytes=100-200", None),  # stops short of the end: the whole blob instead
    ("bytes=0-0,5-", None),  # several ranges: the whole blob
    ("bytes=200-100", None),  # invalid: ignored
    ("items=0-", None),
    ("bytes=x-", None),
])
def test_tail_start(header, start):
    assert tail_start(header, 1000) == start


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-", "bytes=-0"])
def test_ranges_past_the_end_are_unsatisfiable(header):
    with pytest.raises(Unsatisfiable):
        tail_start(header, 1000)


@given(size=st.integers(1, 1 << 40), start=st.integers(0, 1 << 41))
def test_a_resumption_is_served_from_where_it_asks(size, start):
    if start >= size:
        with pytest.raises(Unsatisfiable):
            tail_start(f"bytes={start}-", size)
    else:
        assert tail_start(f"bytes={start}-", size) == start
        assert content_range(start, size) == f"bytes {start}-{size - 1}/{size}"


# -- caps -------------------------------------------------------------------------------------------


@settings(max_examples=200)
@given(rate=st.floats(1e3, 1e9), blocks=st.lists(st.integers(1, 4 * MiB), min_size=1, max_size=200),
       late=st.lists(st.floats(0, 10), min_size=1, max_size=200))
def test_no_sender_beats_the_cap(rate, blocks, late):
    """However a sender sizes its blocks and oversleeps, the bytes it sent are at most the cap's
    worth of the time taken plus one burst (and the block in hand)."""
    bucket = TokenBucket(rate)
    now, sent = 0.0, 0
    for i, n in enumerate(blocks):
        wait = bucket.take(n, now)
        sent += n
        assert sent <= rate * now + bucket.burst + n * (1 + 1e-9)
        now += wait + late[i % len(late)]


@settings(max_examples=200)
@given(rate=st.floats(1e3, 1e9), blocks=st.lists(st.floats(1, 4), min_size=1, max_size=200),
       late=st.lists(st.floats(0, 0.5), min_size=1, max_size=200))
def test_a_busy_sender_gets_its_cap_though_it_oversleeps(rate, blocks, late):
    """A sender that always has a block (at least a burst) to send, and sleeps as told or up to
    half a burst's time longer (a busy machine), loses nothing but its last overrun: the bucket
    pays the others back."""
    bucket = TokenBucket(rate)
    now, sent = 0.0, 0.0
    for i, k in enumerate(blocks):
        n = k * bucket.burst
        wait = bucket.take(n, now)
        sent += n
        now += wait + late[i % len(late)] * bucket.burst / rate
    assert sent >= rate * now - bucket.burst * (1 + 1e-9)  # behind by what it oversleeps last, at most


def test_a_bucket_starts_empty_and_saves_a_second_or_a_few_records():
    b = TokenBucket(4 * MiB)
    assert b.burst == 4 * MiB and b.take(MiB, 0.0) == 0.25  # no burst at the start
    assert b.take(0, 100.0) == 0 and b.tokens == b.burst  # idle for long: a second's worth saved
    assert TokenBucket(1000).burst == MIN_BURST


@given(size=st.integers(0, 1 << 40), rate=st.floats(0, 1e10))
def test_a_cut_costs_at_most_a_chunk(size, rate):
    n = transfer.chunk_size(size, rate)
    assert transfer.MIN_CHUNK <= n <= transfer.CHUNK
    if n > transfer.MIN_CHUNK:
        assert n <= size / 32  # a cut re-sends at most a 32nd of the file
        assert rate == 0 or n <= rate * transfer.CHUNK_SECONDS


# -- the upload body: caps, windows, stalls ----------------------------------------------------------


class Consumer:
    def __init__(self):
        self.data = bytearray()

    def write(self, b: bytes) -> None:
        self.data += b


def chunk_of(tmp_path, clock, policy, length, offset=0):
    path = tmp_path / "f"
    if not path.exists():
        path.write_bytes(bytes(range(256)) * (8 * 4096))  # 8 MiB
    bucket = policy.bucket(policy.upload_rate, clock.seconds())
    return transfer._FileChunk(path, offset, length, clock, policy, bucket), path


def test_upload_body_keeps_to_its_cap(tmp_path):
    clock = Clock()
    rate = 256 << 10
    body, path = chunk_of(tmp_path, clock, TransferPolicy(upload_rate=rate), 4 * MiB, offset=100)
    c = Consumer()
    done = body.startProducing(c)
    for t in range(1, 17):
        clock.pump([0.01] * 100)
        assert len(c.data) <= rate * t + body.bucket.burst + transfer.BLOCK
        assert len(c.data) >= rate * t - transfer.BLOCK
    clock.pump([0.01] * 100)
    assert done.called and bytes(c.data) == path.read_bytes()[100:100 + 4 * MiB]


def test_upload_body_stops_when_the_window_closes(tmp_path):
    clock = Clock()
    clock.advance(1000)
    policy = TransferPolicy(upload_rate=64 << 10, wait=lambda now: 0 if now < 1010 else 3600)
    body, _ = chunk_of(tmp_path, clock, policy, 4 * MiB)
    c = Consumer()
    failed = []
    body.startProducing(c).addErrback(failed.append)
    clock.pump([0.01] * 900)
    assert not failed and 9 * (64 << 10) <= len(c.data) < 4 * MiB
    clock.pump([0.01] * 200)
    assert failed and failed[0].check(transfer.WindowClosed)


def test_paused_upload_body_waits_for_the_connection(tmp_path):
    clock = Clock()
    body, _ = chunk_of(tmp_path, clock, TransferPolicy(), 1 * MiB)

    class Full(Consumer):  # a connection whose buffer fills after every block
        def write(self, b):
            super().write(b)
            body.pauseProducing()

    c = Full()
    done = body.startProducing(c)
    assert len(c.data) == transfer.BLOCK
    clock.advance(100)
    assert len(c.data) == transfer.BLOCK  # paused: nothing more until resumed
    while not done.called:
        body.resumeProducing()
        clock.advance(0)
    assert len(c.data) == MiB


# -- the download sink ------------------------------------------------------------------------------


class Transport:
    def __init__(self):
        self.paused = self.stopped = False

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False

    def stopProducing(self):
        self.stopped = True


def sink(clock, policy):
    out, h = io.BytesIO(), hashlib.sha256()
    s = transfer._ToFile(out, h, clock, policy, policy.bucket(policy.download_rate, clock.seconds()))
    s.makeConnection(Transport())
    return s, out, h


def test_a_download_without_bytes_for_a_while_is_cut_off():
    clock = Clock()
    s, out, _ = sink(clock, TransferPolicy(stall_seconds=30))
    errors = []
    s.done.addErrback(errors.append)
    for _ in range(10):  # slow but moving: never cut
        clock.advance(29)
        s.dataReceived(b"x")
    assert not errors
    clock.advance(30)
    assert errors[0].check(transfer.Stalled) and s.transport.stopped
    assert out.getvalue() == b"x" * 10


def test_a_capped_download_pauses_the_connection_and_is_not_a_stall():
    clock = Clock()
    s, out, h = sink(clock, TransferPolicy(download_rate=1000, stall_seconds=5))
    block = b"y" * 20_000  # 20 s worth
    s.dataReceived(block)
    assert s.transport.paused
    clock.advance(10)  # our own wait, longer than the stall limit: no stall
    assert s.transport.paused and not s.done.called
    clock.advance(10)
    assert not s.transport.paused
    s.connectionLost(Failure(ResponseDone()))
    assert s.done.result == len(block) and h.hexdigest() == hashlib.sha256(block).hexdigest()


def test_a_download_stops_when_the_window_closes():
    clock = Clock()
    s, _, _ = sink(clock, TransferPolicy(wait=lambda now: 0 if now < 100 else 50, stall_seconds=1000))
    errors = []
    s.done.addErrback(errors.append)
    s.dataReceived(b"a")
    clock.advance(100)
    s.dataReceived(b"b")
    assert errors[0].check(transfer.WindowClosed) and s.transport.stopped


def test_transfers_wait_for_their_window():
    """Closed until 3600 s on the clock: a transfer waits as long as the window says (looking again
    at least every window_poll_seconds), then goes."""
    clock = Clock()
    policy = TransferPolicy(wait=lambda now: max(0.0, 3600 - now), window_poll_seconds=600)
    from twisted.internet.defer import Deferred

    d = Deferred.fromCoroutine(transfer._until_open(clock, policy))
    clock.pump([600] * 5 + [599])
    assert not d.called
    clock.advance(1)
    assert d.called


def test_a_body_the_connection_takes_at_once_is_done_at_once(tmp_path):
    clock = Clock()
    body, path = chunk_of(tmp_path, clock, TransferPolicy(), 3 * transfer.BLOCK + 5, offset=7)
    c = Consumer()
    done = body.startProducing(c)
    assert done.called and bytes(c.data) == path.read_bytes()[7:7 + 3 * transfer.BLOCK + 5]


def test_the_worker_transfers_by_its_volunteers_preferences(tmp_path):
    """The worker's transfer policy comes from the preferences file: its caps, and its transfer
    windows by the worker's own (injected) time of day."""
    from datetime import datetime, timedelta

    from twisted.internet.defer import Deferred

    from xwpy.worker.daemon import Worker, WorkerOptions
    from xwpy.worker.prefs import Prefs, parse_window

    clock = Clock()
    start = datetime(2026, 12, 7, 23, 30)
    prefs = Prefs(transfer_windows=(parse_window("00:00-07:00"),), download_limit=2 * MiB, upload_limit=256 << 10)
    w = Worker(clock, WorkerOptions(url="https://x", ca_pem=b"", volunteer_token="", state_dir=tmp_path, prefs=prefs),
               clock=lambda: start + timedelta(seconds=clock.seconds()))
    policy = w.transfers()
    assert (policy.download_rate, policy.upload_rate) == (2 * MiB, 256 << 10)
    opened = Deferred.fromCoroutine(transfer._until_open(clock, policy))
    clock.pump([60] * 29)
    assert not opened.called  # 23:59
    clock.advance(60)
    assert opened.called  # midnight: the window opens
    clock.advance(7 * 3600 - 10)  # 06:59:50, an upload under way...
    body, _ = chunk_of(tmp_path, clock, policy, 8 * MiB)
    stopped = []
    body.startProducing(Consumer()).addErrback(stopped.append)
    clock.pump([0.5] * 19)
    assert not stopped
    clock.pump([0.5] * 2)  # ...stops at 07:00, when the window closes
    assert stopped and stopped[0].check(transfer.WindowClosed)
