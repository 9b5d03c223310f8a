"""The worker's periodic check suspends and resumes its jobs by the volunteer's preferences, with
an injected clock, battery and owner's load (no coordinator, no process: the check alone)."""

from datetime import datetime, timedelta
from pathlib import Path

from twisted.internet.task import Clock

from xwpy.worker.daemon import Worker, WorkerOptions, _Task
from xwpy.worker.idle import IdleSettings, Sample
from xwpy.worker.prefs import Prefs, parse_window


class FakeRun:
    pid = 0

    def __init__(self):
        self.calls = []

    def suspend(self):
        self.calls.append("suspend")

    def resume(self):
        self.calls.append("resume")


def worker(tmp_path: Path, prefs: Prefs, now: list, load: list | None = None) -> tuple[Worker, FakeRun]:
    opts = WorkerOptions(url="https://x:1", ca_pem=b"", volunteer_token="", state_dir=tmp_path, prefs=prefs,
                         power_supply=tmp_path / "power_supply", idle=IdleSettings(0.5, 0.3, 1))
    sampler = (lambda pids: Sample(total=load[0], grid=0.0, cpus=1)) if load is not None else None
    w = Worker(Clock(), opts, sampler=sampler, clock=lambda: now[0])
    run = FakeRun()
    w.tasks[1] = _Task(assignment=None, slot=0, run=run)
    return w, run


def test_jobs_stop_when_the_window_closes_and_go_on_when_it_opens(tmp_path):
    now = [datetime(2026, 12, 7, 7, 59)]
    w, run = worker(tmp_path, Prefs(compute_windows=(parse_window("18:00-08:00"),)), now)
    w._check_idle()
    assert w.suspended == "" and run.calls == []
    now[0] += timedelta(minutes=1)  # 08:00: closed
    w._check_idle()
    assert w.suspended == "outside its computing window (opens at 18:00)" and run.calls == ["suspend"]
    now[0] = datetime(2026, 12, 7, 17, 59, 59)
    w._check_idle()
    assert run.calls == ["suspend"]  # still closed: nothing more
    now[0] += timedelta(seconds=1)
    w._check_idle()
    assert w.suspended == "" and run.calls == ["suspend", "resume"]
    assert w.snapshot().window_change == datetime(2026, 12, 8, 8, 0)


def test_jobs_stop_on_battery_only_if_the_volunteer_says_so(tmp_path):
    supply = tmp_path / "power_supply" / "BAT0"
    supply.mkdir(parents=True)
    (supply / "type").write_text("Battery\n")
    (supply / "status").write_text("Discharging\n")
    now = [datetime(2026, 12, 7, 12)]
    w, run = worker(tmp_path, Prefs(), now)
    w._check_idle()
    assert w.suspended == "" and run.calls == []
    w, run = worker(tmp_path, Prefs(on_battery=False), now)
    w._check_idle()
    assert w.suspended == "on battery" and run.calls == ["suspend"]
    (supply / "status").write_text("Charging\n")
    w._check_idle()
    assert w.suspended == "" and run.calls == ["suspend", "resume"]


def test_a_busy_owner_stops_jobs_unless_the_volunteer_says_not_to(tmp_path):
    now, load = [datetime(2026, 12, 7, 12)], [0.9]
    w, run = worker(tmp_path, Prefs(), now, load)
    w._check_idle()
    assert w.suspended == "owner load 90% above 50%" and run.calls == ["suspend"]
    load[0] = 0.1
    w._check_idle()
    assert w.suspended == "" and run.calls == ["suspend", "resume"]
    w, run = worker(tmp_path, Prefs(suspend_while_busy=False), now, [0.9])
    w._check_idle()
    assert w.suspended == "" and run.calls == []


def test_transfers_wait_for_their_window(tmp_path):
    now = [datetime(2026, 12, 7, 23, 0)]
    w, _ = worker(tmp_path, Prefs(transfer_windows=(parse_window("00:00-06:00"),)), now)
    assert w.transfer_wait() == 3600
    now[0] = datetime(2026, 12, 8, 1, 0)
    assert w.transfer_wait() == 0
