"""A volunteer's preferences: the file, its mistakes, precedence, and each decision (pure, with
the clock, the battery and the owner's load given)."""

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st

from xwpy.worker import power, prefs as vp
from xwpy.worker.prefs import COMMAND_LINE, DEFAULT, FILE, Prefs, PrefsError, Window, parse_window

DAY = 24 * 3600


def at(hh: int, mm: int = 0, ss: int = 0, day: int = 7) -> datetime:
    return datetime(2026, 12, day, hh, mm, ss)


FULL = """
[compute]
windows = ["18:00-08:00", "12:00-13:30"]
cores = 3
cpu_percent = 50
memory = "4G"
memory_percent = 25
on_battery = false
suspend_while_busy = false
busy_percent = 40
network_apps = true

[disk]
budget = "20G"

[transfer]
windows = ["00:00-07:00"]
download_limit = "2M"
upload_limit = 524288
"""


def test_every_key_is_read():
    got = vp.parse(FULL)
    assert Prefs(**got) == Prefs(
        compute_windows=(Window(18 * 3600, 8 * 3600), Window(12 * 3600, 13 * 3600 + 1800)),
        cores=3, cpu_percent=50, memory=4 << 30, memory_percent=25, on_battery=False, suspend_while_busy=False,
        busy_percent=40, network_apps=True, disk_budget=20 << 30, transfer_windows=(Window(0, 7 * 3600),),
        download_limit=2 << 20, upload_limit=512 << 10,
    )
    assert {k.field for k in vp.KEYS} == set(Prefs.__dataclass_fields__)  # every preference has a key


def test_an_empty_file_is_the_defaults():
    assert vp.resolve(vp.parse(""), {}).prefs == Prefs()


@pytest.mark.parametrize("text, key", [
    ("[compute]\nwindows = [\"10:00-10:00\"]", "compute.windows[0]: '10:00-10:00' is empty"),
    ("[compute]\nwindows = [\"25:00-26:00\"]", "compute.windows[0]: '25:00-26:00': 25:00 is not a time of day"),
    ("[compute]\nwindows = [\"9-17\"]", "compute.windows[0]: '9-17' is not a window"),
    ("[compute]\nwindows = \"09:00-17:00\"", "compute.windows: must be a list"),
    ("[compute]\nwindows = [9]", "compute.windows[0]: must be a string"),
    ("[compute]\nwindows = [\"24:00-08:00\"]", "cannot start at 24:00"),
    ("[compute]\ncpu_percent = 0", "compute.cpu_percent: 0 is not a percentage"),
    ("[compute]\nmemory_percent = 150", "compute.memory_percent: 150 is not a percentage"),
    ("[compute]\nbusy_percent = true", "compute.busy_percent: True is not a percentage"),
    ("[compute]\non_battery = \"no\"", "compute.on_battery: 'no' is not true or false"),
    ("[compute]\ncores = 0", "compute.cores: 0 is not a number of cores"),
    ("[compute]\nmemory = \"1M\"", "compute.memory: '1M' is less than 16M"),
    ("[compute]\nmemory = \"lots\"", "compute.memory: 'lots' is not a size"),
    ("[disk]\nbudget = \"10M\"", "disk.budget: '10M' is less than 16M (0: no limit)"),
    ("[disk]\nbudget = -5", "disk.budget: -5 is negative"),
    ("[transfer]\nupload_limit = \"100\"", "transfer.upload_limit: '100' is less than 1K"),
    ("[compute]\ncpus = 2", "compute.cpus: unknown key (known: windows, cores"),
    ("[cpu]\npercent = 2", "cpu.percent: unknown key (sections: compute, disk, transfer)"),
    ("budget = 2", "budget: unknown key"),
    ("[compute\n", "not valid TOML"),
])
def test_mistakes_are_one_line_naming_the_key(text, key):
    with pytest.raises(PrefsError) as e:
        vp.parse(text, "prefs.toml")
    msg = str(e.value)
    assert msg.startswith("prefs.toml: ") and key in msg, msg
    assert "\n" not in msg


def test_zero_caps_and_budget_mean_none():
    got = vp.parse("[disk]\nbudget = 0\n[transfer]\nupload_limit = \"0\"")
    assert got == {"disk_budget": 0, "upload_limit": 0}


def test_precedence_command_line_then_file_then_default():
    r = vp.resolve(vp.parse("[compute]\ncores = 3\ncpu_percent = 50"), {"cores": 2, "on_battery": False}, "p.toml")
    assert (r.prefs.cores, r.prefs.cpu_percent, r.prefs.on_battery, r.prefs.busy_percent) == (2, 50, False, 50)
    assert (r.sources["cores"], r.sources["cpu_percent"], r.sources["on_battery"], r.sources["busy_percent"]) == (
        COMMAND_LINE, FILE, COMMAND_LINE, DEFAULT)
    shown = {k: (v, s) for k, v, s in vp.describe(r)}
    assert shown["compute.cores"] == ("2", "command line (--cores)")
    assert shown["compute.cpu_percent"] == ("50%", "file p.toml")
    assert shown["compute.on_battery"] == ("no (suspend)", "command line (--no-battery)")
    assert shown["compute.busy_percent"] == ("50%", "default")
    assert shown["compute.windows"] == ("always", "default")


def test_what_the_machine_cannot_lend_is_named_as_set():
    r = vp.resolve(vp.parse("[compute]\ncores = 16"), {}, "p.toml")
    with pytest.raises(PrefsError, match=r"^p.toml: compute.cores 16: this machine has 8 cores$"):
        vp.check_machine(r, 8, 1 << 34)
    r = vp.resolve({}, {"memory": 64 << 30})
    with pytest.raises(PrefsError, match=r"^--memory 64G: this machine has 16G$"):
        vp.check_machine(r, 8, 16 << 30)
    vp.check_machine(vp.resolve({}, {"cores": 8}), 8, 1 << 30)
    r = vp.resolve(vp.parse("[disk]\nbudget = \"2T\""), {}, "p.toml")
    with pytest.raises(PrefsError, match=r"^p.toml: disk.budget 2T: the file system of the worker's state holds 1T in all$"):
        vp.check_machine(r, 8, 1 << 30, disk=1 << 40)
    vp.check_machine(r, 8, 1 << 30)  # the file system not known (xwpy worker prefs without --state)


# -- shares of the machine ------------------------------------------------------------------------


@pytest.mark.parametrize("cores, percent, machine, lent", [
    (0, 100, 8, 8), (0, 50, 8, 4), (3, 100, 8, 3), (3, 25, 8, 2), (6, 50, 8, 4), (0, 10, 4, 1), (0, 99, 2, 1),
])
def test_cores_lent_are_the_smaller_of_the_limits(cores, percent, machine, lent):
    assert vp.lent_cores(Prefs(cores=cores, cpu_percent=percent), machine) == lent


def test_memory_lent_is_the_smaller_of_the_limits():
    G = 1 << 30
    assert vp.lent_memory(Prefs(), 16 * G) == 16 * G
    assert vp.lent_memory(Prefs(memory_percent=25), 16 * G) == 4 * G
    assert vp.lent_memory(Prefs(memory=2 * G, memory_percent=25), 16 * G) == 2 * G
    assert vp.lent_memory(Prefs(memory=8 * G, memory_percent=25), 16 * G) == 4 * G


@given(st.integers(0, 4096), st.integers(1, 100), st.integers(1, 4096))
def test_cores_lent_never_exceed_either_limit(cores, percent, machine):
    lent = vp.lent_cores(Prefs(cores=min(cores, machine), cpu_percent=percent), machine)
    assert 1 <= lent <= machine
    assert lent <= max(1, machine * percent // 100)
    assert not cores or lent <= cores


# -- windows --------------------------------------------------------------------------------------


def test_window_parsing():
    assert parse_window("18:00-08:00") == Window(18 * 3600, 8 * 3600)
    assert parse_window("9:30-17:00") == Window(9 * 3600 + 1800, 17 * 3600)
    assert parse_window("00:00-24:00") == Window(0, DAY)
    assert parse_window("22:00-24:00") == Window(22 * 3600, DAY)
    assert str(parse_window("7:05 - 9:00")) == "07:05-09:00"


def test_a_window_over_midnight():
    w = (parse_window("22:00-06:00"),)
    assert [vp.in_windows(w, at(h)) for h in (21, 22, 23, 0, 5, 6, 12)] == [False, True, True, True, True, False, False]
    assert not vp.in_windows(w, at(21, 59, 59)) and vp.in_windows(w, at(5, 59, 59))


def test_no_windows_means_always():
    assert vp.in_windows((), at(3)) and vp.next_change((), at(3)) is None


def test_next_change_opens_then_closes():
    w = (parse_window("22:00-06:00"), parse_window("12:00-13:00"))
    assert vp.next_change(w, at(9)) == at(12)
    assert vp.next_change(w, at(12, 30)) == at(13)
    assert vp.next_change(w, at(14)) == at(22)
    assert vp.next_change(w, at(23)) == at(6, day=8)
    assert vp.next_change((parse_window("00:00-24:00"),), at(9)) is None  # open all day: never closes


def test_adjacent_windows_make_one():
    w = (parse_window("08:00-12:00"), parse_window("12:00-14:00"))
    assert vp.next_change(w, at(9)) == at(14)


windows = st.lists(st.tuples(st.integers(0, 47), st.integers(1, 48), st.frozensets(st.integers(0, 6), min_size=1))
                   .filter(lambda t: t[0] != t[1] % 48)
                   .map(lambda t: Window(t[0] * 1800, t[1] * 1800, t[2])), max_size=4).map(tuple)
WEEK = 7 * DAY
moments = st.integers(0, WEEK - 1).map(lambda s: at(0) + timedelta(seconds=s))  # (7 Dec 2026 is a Monday)


@settings(max_examples=300)
@given(windows, moments)
def test_next_change_is_the_first_second_the_answer_changes(ws, now):
    change = vp.next_change(ws, now)
    inside = vp.in_windows(ws, now)
    if change is None:
        assert all(vp.in_windows(ws, now + timedelta(minutes=m)) == inside for m in range(0, 8 * 24 * 60, 7))
        return
    assert change > now and vp.in_windows(ws, change) != inside
    assert vp.in_windows(ws, change - timedelta(seconds=1)) == inside
    span = int((change - now).total_seconds())
    assert all(vp.in_windows(ws, now + timedelta(seconds=s)) == inside for s in range(0, span, max(1, span // 50)))


@given(windows, moments)
def test_in_windows_agrees_with_intervals_of_the_week(ws, now):
    """Each window is, for each of its days, an interval of the week from its start on that day."""
    t = (now - at(0)).total_seconds() % WEEK
    intervals = [(d * DAY + w.start, d * DAY + (w.end if w.end > w.start else w.end + DAY))
                 for w in ws for d in w.days]
    plain = not ws or any(a <= t < b or a <= t + WEEK < b for a, b in intervals)
    assert vp.in_windows(ws, now) == plain


def test_windows_on_days_of_the_week():
    assert parse_window("mon-fri 18:00-08:00") == Window(18 * 3600, 8 * 3600, frozenset(range(5)))
    assert parse_window("Sat,Sun 00:00-24:00") == Window(0, DAY, frozenset({5, 6}))
    assert parse_window("fri-mon 9:00-17:00").days == frozenset({4, 5, 6, 0})
    assert str(parse_window("mon-fri 18:00-08:00")) == "mon-fri 18:00-08:00"
    assert str(parse_window("sat,sun 00:00-24:00")) == "sat,sun 00:00-24:00"
    friday_night = (parse_window("fri 22:00-06:00"),)
    fri = 11  # 11 Dec 2026
    assert vp.in_windows(friday_night, at(23, day=fri)) and vp.in_windows(friday_night, at(5, day=fri + 1))
    assert not vp.in_windows(friday_night, at(23, day=fri + 1)) and not vp.in_windows(friday_night, at(5, day=fri))
    weeknights = Prefs(compute_windows=(parse_window("mon-fri 18:00-08:00"),))
    # Saturday noon: Friday's night is over, and the next one begins on Monday.
    assert vp.suspension(weeknights, at(12, day=12)) == "outside its computing window (opens at Mon 18:00)"
    with pytest.raises(ValueError, match="'someday' is not a day"):
        parse_window("someday 10:00-12:00")


# -- may jobs run now? ----------------------------------------------------------------------------


EVENINGS = Prefs(compute_windows=(parse_window("18:00-08:00"),))


def test_outside_its_computing_window_says_when_it_opens():
    assert vp.suspension(EVENINGS, at(9)) == "outside its computing window (opens at 18:00)"
    assert vp.suspension(EVENINGS, at(18)) == ""
    assert vp.suspension(EVENINGS, at(7, 59)) == ""


def test_on_battery_only_when_the_volunteer_says_so():
    assert vp.suspension(Prefs(on_battery=False), at(9), on_battery=True) == "on battery"
    assert vp.suspension(Prefs(on_battery=False), at(9), on_battery=False) == ""
    assert vp.suspension(Prefs(), at(9), on_battery=True) == ""


def test_busy_owner_only_when_the_volunteer_says_so():
    assert vp.suspension(Prefs(), at(9), busy="owner load 80% above 50%") == "owner load 80% above 50%"
    assert vp.suspension(Prefs(suspend_while_busy=False), at(9), busy="owner load 80% above 50%") == ""
    assert vp.idle_threshold(Prefs(busy_percent=30)) == 0.3


@given(st.booleans(), st.booleans(), st.booleans(), moments)
def test_jobs_run_only_when_nothing_forbids_it(battery, allow_battery, busy, now):
    p = Prefs(compute_windows=EVENINGS.compute_windows, on_battery=allow_battery)
    why = vp.suspension(p, now, on_battery=battery, busy="owner busy" if busy else "")
    forbidden = not vp.in_windows(p.compute_windows, now) or (battery and not allow_battery) or busy
    assert bool(why) == forbidden


# -- transfers (the hook for downloads and uploads) -----------------------------------------------


def test_transfers_wait_for_their_window():
    p = Prefs(transfer_windows=(parse_window("00:00-07:00"),))
    assert vp.transfer_wait(p, at(3)) == 0
    assert vp.transfer_wait(p, at(23, 30)) == 1800
    assert vp.transfer_wait(Prefs(), at(12)) == 0


# -- the battery, read from the power-supply class ------------------------------------------------


def supply(root, name, **files):
    d = root / name
    d.mkdir()
    for k, v in files.items():
        (d / k).write_text(v + "\n")


def test_battery_discharging_without_mains(tmp_path):
    supply(tmp_path, "AC", type="Mains", online="0")
    supply(tmp_path, "BAT0", type="Battery", status="Discharging")
    assert power.on_battery(tmp_path)
    (tmp_path / "AC" / "online").write_text("1\n")
    assert not power.on_battery(tmp_path)


def test_no_battery_or_no_power_supply_class_is_mains(tmp_path):
    assert not power.on_battery(tmp_path / "absent")
    assert not power.on_battery(tmp_path)
    supply(tmp_path, "BAT0", type="Battery", status="Charging")
    assert not power.on_battery(tmp_path)
