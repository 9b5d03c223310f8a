"""Finished results kept until reported (xwpy.worker.outbox), with an injected clock: retried with
back-off until their replica's deadline and no longer, dropped at once when the coordinator no
longer wants them, kept on disk for the next life of the worker."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from xwpy import protocol
from xwpy.worker import outbox
from xwpy.worker.link import Refused, Unreachable
from xwpy.worker.outbox import Outbox, Pending, next_attempt

SHA = "ab" * 32


class FakeLink:
    """The coordinator as the outbox sees it: down (``down``), or answering ``verdict``."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.down = True
        self.verdict = "accepted"
        self.refuse: Refused | None = None
        self.reports: list[tuple[float, int]] = []  # (when, replica) of each report that got through
        self.tries: list[float] = []
        self.uploads: list[str] = []
        self.stored = False
        self.sessions: list[str] = []  # upload sessions opened
        self.cut = False  # each upload is cut after its session is opened
        self.hold: Deferred | None = None  # a report under way until it fires

    async def upload(self, path, sha256, session, replica=None):
        self.tries.append(self.clock.seconds())
        if self.down:
            raise Unreachable("connection refused")
        if session.id is None:  # (as transfer.upload opens one)
            session.id = f"session-{len(self.sessions)}"
            self.sessions.append(session.id)
            if session.opened is not None:
                session.opened(session.id)
        if self.cut:
            raise Unreachable("cut mid-upload")
        self.uploads.append(path.name)
        self.stored = True
        return {"complete": True}

    async def results(self, reports):
        if self.hold is not None:
            await self.hold
        if self.down:
            self.tries.append(self.clock.seconds())
            raise Unreachable("connection refused")
        if self.refuse is not None:
            raise self.refuse
        self.reports.extend((self.clock.seconds(), r.replica_id) for r in reports)
        if self.verdict == "accepted" and not self.stored and reports[0].inline is None:
            return {r.replica_id: "missing-result" for r in reports}
        return {r.replica_id: self.verdict for r in reports}


def pending(tmp_path, rid: int, deadline: float, archive: bool = True) -> Pending:
    path = None
    if archive:
        path = tmp_path / f"{rid}.tar"
        path.write_bytes(b"result")
    report = protocol.ResultReport(replica_id=rid, exit_code=0, result_sha256=SHA)
    return Pending(report, deadline, path)


def setup(tmp_path, link_up: bool = False):
    clock = Clock()
    link = FakeLink(clock)
    link.down = not link_up
    done, drops = [], []
    box = Outbox(clock, tmp_path, lambda: link, on_done=lambda rid, v: done.append((rid, v)),
                 on_drop=drops.append)
    box.start()
    return clock, link, box, done, drops


def run(d: Deferred):
    """The outcome of a Deferred that has fired (the fake link answers at once)."""
    out = []
    d.addBoth(out.append)
    assert out, "still waiting"
    return out[0]


def add(box: Outbox, p: Pending) -> None:
    run(Deferred.fromCoroutine(box.add(p)))


def test_a_result_is_retried_with_back_off_until_its_deadline_then_dropped(tmp_path):
    clock, link, box, done, drops = setup(tmp_path)
    add(box, pending(tmp_path, 7, deadline=3600.0))
    assert outbox.record_path(tmp_path, 7).exists() and (tmp_path / "7.tar").exists()  # kept on disk
    assert box.held() == [7] and link.tries == [0.0]
    clock.pump([1.0] * 3599)
    # Tried again and again, each wait longer than the one before up to the cap, the last at the deadline.
    gaps = [b - a for a, b in zip(link.tries, link.tries[1:])]
    assert len(link.tries) > 10 and link.tries[-1] <= 3599
    assert all(0 < g <= outbox.RETRY_CAP + 1 for g in gaps) and gaps[0] <= 2 and min(gaps[-4:]) > 100
    clock.pump([1.0])
    assert link.tries[-1] == 3600.0 and box.held() == []  # one last try at the deadline, then dropped
    tries = len(link.tries)
    clock.pump([10.0] * 300)
    assert len(link.tries) == tries  # and never tried again
    assert not outbox.record_path(tmp_path, 7).exists() and not (tmp_path / "7.tar").exists()
    assert box.dropped_late == 1 and drops == [7] and done == []


def test_a_coordinator_back_before_the_deadline_gets_the_result_once(tmp_path):
    clock, link, box, done, drops = setup(tmp_path)
    add(box, pending(tmp_path, 7, deadline=3600.0))
    clock.pump([1.0] * 600)
    link.down = False
    clock.pump([1.0] * int(outbox.RETRY_CAP))  # the next try, within one back-off period
    assert link.uploads == ["7.tar"] and [rid for _, rid in link.reports] == [7]
    assert done == [(7, "accepted")] and box.held() == [] and drops == [7]
    assert not outbox.record_path(tmp_path, 7).exists() and not (tmp_path / "7.tar").exists()
    clock.advance(3600)
    assert len(link.reports) == 1  # reported once


def test_kick_retries_at_once_when_the_coordinator_is_back(tmp_path):
    clock, link, box, done, _ = setup(tmp_path)
    add(box, pending(tmp_path, 7, deadline=3600.0))
    clock.pump([1.0] * 1000)  # waits are long by now
    link.down = False
    box.kick()
    assert done == [(7, "accepted")] and link.reports == [(1000.0, 7)]  # now, not at its next try


@pytest.mark.parametrize("verdict", ["aborted", "lost", "unknown", "valid"])
def test_a_result_no_longer_wanted_is_dropped_at_once(tmp_path, verdict):
    clock, link, box, done, drops = setup(tmp_path, link_up=True)
    link.verdict = verdict
    link.stored = True
    add(box, pending(tmp_path, 7, deadline=3600.0))
    assert done == [(7, verdict)] and box.held() == [] and drops == [7]
    assert not outbox.record_path(tmp_path, 7).exists() and not (tmp_path / "7.tar").exists()
    clock.advance(3600)
    assert len(link.reports) == 1


def test_a_refusal_drops_it_but_a_busy_coordinator_is_tried_again(tmp_path):
    clock, link, box, done, _ = setup(tmp_path, link_up=True)
    link.refuse = Refused(429, "too_many", "busy")
    add(box, pending(tmp_path, 7, deadline=3600.0, archive=False))
    assert box.held() == [7]  # kept: 429 is "later"
    link.refuse = Refused(400, "bad_request", "no")
    clock.advance(outbox.RETRY_CAP)
    assert box.held() == [] and done == []


def test_an_abort_from_the_heartbeat_drops_a_waiting_result(tmp_path):
    clock, link, box, done, drops = setup(tmp_path)
    add(box, pending(tmp_path, 7, deadline=3600.0))
    box.drop(7, "aborted")
    assert box.held() == [] and drops == [7] and not (tmp_path / "7.tar").exists()
    tries = len(link.tries)
    clock.advance(3600)
    assert len(link.tries) == tries  # its loop ended with it


def test_a_result_the_coordinator_lost_is_uploaded_again(tmp_path):
    clock, link, box, done, _ = setup(tmp_path, link_up=True)
    add(box, pending(tmp_path, 7, deadline=3600.0))
    assert link.uploads == ["7.tar"] and done == [(7, "accepted")]
    link.stored = False  # stored, then lost (its session expired): the next report says missing
    add(box, pending(tmp_path, 8, deadline=3600.0))
    assert link.uploads == ["7.tar", "8.tar"] and done[-1] == (8, "accepted")


def test_records_outlive_the_worker_and_leftovers_do_not(tmp_path):
    clock, link, box, done, _ = setup(tmp_path)
    add(box, pending(tmp_path, 7, deadline=3600.0))
    add(box, pending(tmp_path, 9, deadline=7200.0, archive=False))
    box.stop()
    (tmp_path / "12.tar").write_bytes(b"an archive without its record")
    (tmp_path / "5.checkpoint.tar").write_bytes(b"a checkpoint being packed")
    (tmp_path / "13.tmp").write_text("{")
    found = outbox.load(tmp_path)
    assert sorted(found) == [7, 9]
    assert found[7].deadline == 3600.0 and found[7].archive == tmp_path / "7.tar" and found[9].archive is None
    assert found[7].report == pending(tmp_path, 7, 0).report
    assert sorted(p.name for p in tmp_path.iterdir()) == ["7.json", "7.tar", "9.json"]
    # The next life reports them.
    clock2, link2 = Clock(), None
    link2 = FakeLink(clock2)
    link2.down = False
    done2 = []
    box2 = Outbox(clock2, tmp_path, lambda: link2, on_done=lambda rid, v: done2.append((rid, v)))
    box2.adopt(found)
    assert box2.held() == [7, 9]  # said at hello, before they are reported
    box2.start()
    assert sorted(done2) == [(7, "accepted"), (9, "accepted")] and list(tmp_path.iterdir()) == []


def test_a_record_whose_archive_is_gone_is_not_reported(tmp_path):
    clock, link, box, _, _ = setup(tmp_path)
    add(box, pending(tmp_path, 7, deadline=3600.0))
    (tmp_path / "7.tar").unlink()
    assert outbox.load(tmp_path) == {} and list(tmp_path.iterdir()) == []


@given(st.floats(0, 1e6), st.floats(0, 1e6), st.floats(0, 1e4))
def test_the_next_attempt_is_never_after_the_deadline(now, deadline, delay):
    when = next_attempt(now, deadline, delay)
    if now >= deadline:
        assert when is None
    else:
        assert now <= when <= deadline and when <= now + delay


def test_an_upload_cut_short_resumes_in_its_session_after_a_restart(tmp_path):
    clock, link, box, done, _ = setup(tmp_path, link_up=True)
    link.cut = True
    add(box, pending(tmp_path, 7, deadline=3600.0))
    assert link.sessions == ["session-0"]
    box.stop()  # the worker stops (or is killed) mid-upload
    found = outbox.load(tmp_path)
    assert found[7].session.id == "session-0"  # from the record
    link.cut = False
    box2 = Outbox(clock, tmp_path, lambda: link, on_done=lambda rid, v: done.append((rid, v)))
    box2.adopt(found)
    box2.start()
    assert link.sessions == ["session-0"] and done == [(7, "accepted")]  # no new session: resumed


@pytest.mark.parametrize("down", [False, True], ids=["accepted", "unanswered"])
def test_an_abort_crossing_a_report_under_way_waits_for_its_answer(tmp_path, down):
    clock, link, box, done, drops = setup(tmp_path, link_up=True)
    link.stored = True
    link.hold = Deferred()
    first = Deferred.fromCoroutine(box.add(pending(tmp_path, 7, deadline=3600.0)))
    box.abort(7, "aborted")  # a heartbeat answered while the report was on its way
    assert box.held() == [7] and drops == []
    link.down = down
    link.hold.callback(None)
    run(first)
    assert box.held() == []
    assert done == ([] if down else [(7, "accepted")])  # accepted: it counts, it was not "dropped"


def test_the_log_says_why_a_result_is_no_longer_wanted(tmp_path):
    """A replica aborted because its job no longer needed it: the log says so, not 'unknown'."""
    from twisted.logger import formatEvent, globalLogPublisher

    lines = []

    def observer(event):
        lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observer)
    try:
        clock, link, box, done, drops = setup(tmp_path, link_up=True)
        link.verdict, link.stored = "aborted", True
        add(box, pending(tmp_path, 7, deadline=3600.0))
    finally:
        globalLogPublisher.removeObserver(observer)
    assert "replica 7: result dropped (the coordinator no longer wants it: aborted, its job no longer needed it " \
           "(certified, cancelled or ended without it))" in lines, lines
