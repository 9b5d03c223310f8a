"""A volunteer's preferences: what the worker may use of the machine, and when.

One TOML file (``xwpy worker --prefs FILE``), every key optional::

    [compute]
    windows = ["mon-fri 18:00-08:00", "sat,sun 00:00-24:00"]   # when jobs may run, local time; [] = always
    cpu_percent = 50            # lend at most this share of the machine's cores ...
    memory_percent = 50         # ... and of its memory
    on_battery = false          # suspend jobs while the machine runs on battery
    suspend_while_busy = true   # suspend jobs while the owner uses the machine ...
    busy_percent = 50           # ... i.e. while the owner's CPU load is above this share of it
    network_apps = false        # give the network to apps that need it (as --allow-network)

    [disk]
    budget = "20G"              # the cache and the job directories together

    [transfer]
    windows = ["00:00-07:00"]   # when inputs and results may move
    download_limit = "2M"       # bytes per second
    upload_limit = "512K"

Precedence, key by key: the command line (``--cores``, ``--memory``, ``--allow-network``,
``--no-battery``, ``--no-idle-check``, ``--idle-threshold``) beats the file, which beats the
defaults (:data:`KEYS`). Absolute ``cores``/``memory`` and the ``*_percent`` shares combine: the
worker lends the smaller. Everything here is pure (no I/O but :func:`read_file`): the decisions
("may jobs run now?", "may transfers run now?", "how much does it lend?") take the preferences and
the facts (a clock's reading, the battery, the owner's load) as arguments.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from xwpy.sizes import format_size, human_size, parse_size

DAY = 24 * 3600
MIN_MEMORY = 16 << 20
MIN_DISK_BUDGET = 16 << 20
MIN_RATE = 1 << 10  # bytes per second: below, a transfer cap is a mistake, not a preference


class PrefsError(ValueError):
    """A preference that cannot be: its message is one line that names the key."""


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EVERY_DAY = frozenset(range(7))


@dataclass(frozen=True, slots=True)
class Window:
    """A time window on some days of the week (local time): [start, end) in seconds since
    midnight, wrapping midnight when end <= start (22:00-06:00: it belongs to the day it starts on,
    so "fri 22:00-06:00" ends on Saturday morning)."""

    start: int
    end: int
    days: frozenset[int] = EVERY_DAY  # 0 = Monday, as datetime.weekday()

    def contains(self, t: datetime) -> bool:
        s, day = _second_of_day(t), t.weekday()
        if self.start < self.end:
            return day in self.days and self.start <= s < self.end
        return (day in self.days and s >= self.start) or ((day - 1) % 7 in self.days and s < self.end)

    def __str__(self) -> str:
        return f"{_show_days(self.days)}{_hhmm(self.start)}-{_hhmm(self.end)}"


def _hhmm(s: int) -> str:
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


def _show_days(days: frozenset[int]) -> str:
    if days == EVERY_DAY:
        return ""
    ds = sorted(days)
    if len(ds) > 2 and ds == list(range(ds[0], ds[-1] + 1)):
        return f"{DAYS[ds[0]]}-{DAYS[ds[-1]]} "
    return ",".join(DAYS[d] for d in ds) + " "


_WINDOW_RE = re.compile(r"(?:([a-z,\-]+)\s+)?(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})")


def _parse_days(text: str, spec: str) -> frozenset[int]:
    days: set[int] = set()
    for part in spec.split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"{text!r}: {part!r} is not a day or a range of days (mon, tue, ... sun; mon-fri)")
        a, b = DAYS.index(first), DAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])  # fri-mon wraps
    return frozenset(days)


def parse_window(text: str) -> Window:
    """``"18:00-08:00"`` (every day), ``"mon-fri 18:00-08:00"``, ``"sat,sun 00:00-24:00"``."""
    m = _WINDOW_RE.fullmatch(text.strip().lower())
    if m is None:
        raise ValueError(f"{text!r} is not a window like \"18:00-08:00\" or \"mon-fri 18:00-08:00\"")
    days = _parse_days(text, m.group(1)) if m.group(1) else EVERY_DAY
    h1, m1, h2, m2 = map(int, m.groups()[1:])
    for h, mi in ((h1, m1), (h2, m2)):
        if mi > 59 or h > 24 or (h == 24 and mi):
            raise ValueError(f"{text!r}: {h:02d}:{mi:02d} is not a time of day (00:00 to 24:00)")
    start, end = (h1 * 60 + m1) * 60, (h2 * 60 + m2) * 60
    if start == DAY:
        raise ValueError(f"{text!r}: a window cannot start at 24:00")
    if start == end % DAY:
        if (start, end) == (0, DAY):
            return Window(0, DAY, days)
        raise ValueError(f"{text!r} is empty (it ends when it starts; the whole day is \"00:00-24:00\")")
    return Window(start, end, days)


# -- the preferences ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prefs:
    compute_windows: tuple[Window, ...] = ()  # () = always
    cores: int = 0  # 0 = all of the machine's
    cpu_percent: int = 100
    memory: int = 0  # bytes; 0 = all of the machine's
    memory_percent: int = 100
    on_battery: bool = True
    suspend_while_busy: bool = True
    busy_percent: int = 50
    network_apps: bool = False
    disk_budget: int = 0  # bytes for the cache and the job directories; 0 = no limit (xwpy.worker.disk)
    # For the transfers (downloads of inputs, uploads of results): see transfer_wait().
    transfer_windows: tuple[Window, ...] = ()
    download_limit: int = 0  # bytes per second; 0 = no cap
    upload_limit: int = 0


@dataclass(frozen=True)
class Key:
    path: str  # as in the file: section.name
    field: str  # of Prefs
    parse: Callable[[Any], Any]  # the file's value to the field's (ValueError: why it cannot be)
    show: Callable[[Any], str]
    option: str = ""  # the command-line option that sets it, if any


def _windows(value: Any) -> tuple[Window, ...]:
    if not isinstance(value, list):
        raise ValueError("must be a list of windows like [\"18:00-08:00\"]")
    out = []
    for i, w in enumerate(value):
        if not isinstance(w, str):
            raise ValueError(f"[{i}]: must be a string like \"18:00-08:00\"")
        try:
            out.append(parse_window(w))
        except ValueError as e:
            raise ValueError(f"[{i}]: {e}") from None
    return tuple(out)


def _percent(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 100:
        raise ValueError(f"{value!r} is not a percentage from 1 to 100")
    return int(value)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4096:
        raise ValueError(f"{value!r} is not a number of cores from 1 to 4096")
    return value


def _size(minimum: int, zero_ok: bool) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        n = parse_size(value)
        if n == 0 and zero_ok:
            return 0
        if n < minimum:
            raise ValueError(f"{value!r} is less than {format_size(minimum)}" + (" (0: no limit)" if zero_ok else ""))
        return n

    return parse


def _show_windows(ws: tuple[Window, ...]) -> str:
    return ", ".join(map(str, ws)) if ws else "always"


def _show_size(n: int, none: str) -> str:
    return format_size(n) if n else none


KEYS: tuple[Key, ...] = (
    Key("compute.windows", "compute_windows", _windows, _show_windows),
    Key("compute.cores", "cores", _count, lambda n: str(n) if n else "all", "--cores"),
    Key("compute.cpu_percent", "cpu_percent", _percent, lambda n: f"{n}%"),
    Key("compute.memory", "memory", _size(MIN_MEMORY, False), lambda n: _show_size(n, "all"), "--memory"),
    Key("compute.memory_percent", "memory_percent", _percent, lambda n: f"{n}%"),
    Key("compute.on_battery", "on_battery", _bool, lambda b: "yes" if b else "no (suspend)", "--no-battery"),
    Key("compute.suspend_while_busy", "suspend_while_busy", _bool, lambda b: "yes" if b else "no", "--no-idle-check"),
    Key("compute.busy_percent", "busy_percent", _percent, lambda n: f"{n}%", "--idle-threshold"),
    Key("compute.network_apps", "network_apps", _bool, lambda b: "yes" if b else "no", "--allow-network"),
    Key("disk.budget", "disk_budget", _size(MIN_DISK_BUDGET, True), lambda n: _show_size(n, "no limit")),
    Key("transfer.windows", "transfer_windows", _windows, _show_windows),
    Key("transfer.download_limit", "download_limit", _size(MIN_RATE, True),
        lambda n: f"{format_size(n)}/s" if n else "no cap"),
    Key("transfer.upload_limit", "upload_limit", _size(MIN_RATE, True),
        lambda n: f"{format_size(n)}/s" if n else "no cap"),
)
_BY_PATH = {k.path: k for k in KEYS}
_BY_FIELD = {k.field: k for k in KEYS}

DEFAULT, FILE, COMMAND_LINE = "default", "file", "command line"


def parse(text: str, origin: str = "preferences") -> dict[str, Any]:
    """The fields a preferences file sets (pure: the file's text). PrefsError names the key."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PrefsError(f"{origin}: not valid TOML: {e}") from None
    out: dict[str, Any] = {}
    for section, table in doc.items():
        if not isinstance(table, dict):
            raise PrefsError(f"{origin}: {section}: unknown key (sections: compute, disk, transfer)")
        for name, value in table.items():
            key = _BY_PATH.get(f"{section}.{name}")
            if key is None:
                known = ", ".join(k.path.split(".")[1] for k in KEYS if k.path.startswith(section + "."))
                raise PrefsError(f"{origin}: {section}.{name}: unknown key" + (f" (known: {known})" if known else
                                 " (sections: compute, disk, transfer)"))
            try:
                out[key.field] = key.parse(value)
            except ValueError as e:
                why = str(e)
                raise PrefsError(f"{origin}: {key.path}{'' if why.startswith('[') else ': '}{why}") from None
    return out


def read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise PrefsError(f"{path}: cannot read it ({e})") from None
    return parse(text, str(path))


@dataclass(frozen=True)
class Resolved:
    prefs: Prefs
    sources: dict[str, str] = field(default_factory=dict)  # by field: DEFAULT, FILE or COMMAND_LINE
    origin: str = ""  # the file's name, if any


def resolve(from_file: dict[str, Any], from_command_line: dict[str, Any], origin: str = "") -> Resolved:
    """Each field from the command line, else the file, else its default."""
    values: dict[str, Any] = {}
    sources = {}
    for k in KEYS:
        if k.field in from_command_line:
            values[k.field], sources[k.field] = from_command_line[k.field], COMMAND_LINE
        elif k.field in from_file:
            values[k.field], sources[k.field] = from_file[k.field], FILE
        else:
            sources[k.field] = DEFAULT
    return Resolved(Prefs(**values), sources, origin)


def check_machine(r: Resolved, cpus: int, memory: int, disk: int = 0) -> None:
    """What no machine of this size can lend is an error (named as the volunteer set it).
    ``disk``: the size of the file system that holds the worker's state (0: not known)."""
    p = r.prefs
    if p.cores > cpus:
        raise PrefsError(f"{_name(r, 'cores')} {p.cores}: this machine has {cpus} cores")
    if p.memory > memory:
        raise PrefsError(f"{_name(r, 'memory')} {format_size(p.memory)}: this machine has {format_size(memory)}")
    if disk and p.disk_budget > disk:
        raise PrefsError(f"{_name(r, 'disk_budget')} {format_size(p.disk_budget)}: the file system of the worker's "
                         f"state holds {human_size(disk)} in all")


def _name(r: Resolved, fld: str) -> str:
    k = _BY_FIELD[fld]
    return k.option if r.sources.get(fld) == COMMAND_LINE else f"{r.origin + ': ' if r.origin else ''}{k.path}"


def describe(r: Resolved) -> list[tuple[str, str, str]]:
    """(key, value, source) for every preference, as ``xwpy worker prefs`` prints them."""
    out = []
    for k in KEYS:
        src = r.sources.get(k.field, DEFAULT)
        where = {FILE: f"file {r.origin}" if r.origin else FILE, COMMAND_LINE: f"command line ({k.option})"}.get(src, src)
        out.append((k.path, k.show(getattr(r.prefs, k.field)), where))
    return out


# -- decisions ------------------------------------------------------------------------------------


def lent_cores(p: Prefs, machine: int) -> int:
    """The cores lent: ``cores`` (all by default) and at most ``cpu_percent`` of the machine's, at least 1."""
    share = max(1, machine * p.cpu_percent // 100)
    return max(1, min(p.cores or machine, share))


def lent_memory(p: Prefs, machine: int) -> int:
    share = machine * p.memory_percent // 100
    return min(p.memory or machine, share)


def _second_of_day(t: datetime) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def in_windows(windows: tuple[Window, ...], now: datetime) -> bool:
    """No windows: always."""
    return not windows or any(w.contains(now) for w in windows)


def next_change(windows: tuple[Window, ...], now: datetime) -> datetime | None:
    """When ``in_windows`` next changes (opens if closed, closes if open), to the second; None if never."""
    if not windows:
        return None
    inside = in_windows(windows, now)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    edges = sorted({midnight + timedelta(days=d, seconds=s % DAY)
                    for d in range(9) for w in windows for s in (w.start, w.end)})  # a week, and a wrap
    for t in edges:
        if t > now and in_windows(windows, t) != inside:
            return t
    return None


def suspension(p: Prefs, now: datetime, *, on_battery: bool = False, busy: str = "") -> str:
    """Why jobs may not run now ("" when they may). ``busy``: the idle policy's reason when it
    finds the owner busy (:mod:`xwpy.worker.idle`), "" otherwise."""
    if not in_windows(p.compute_windows, now):
        opens = next_change(p.compute_windows, now)
        when = f"{opens:%H:%M}" if opens and opens - now < timedelta(hours=24) else f"{opens:%a %H:%M}" if opens else ""
        return "outside its computing window" + (f" (opens at {when})" if when else "")
    if on_battery and not p.on_battery:
        return "on battery"
    if busy and p.suspend_while_busy:
        return busy
    return ""


def transfer_wait(p: Prefs, now: datetime) -> float:
    """Seconds before transfers may run (0: now). The hook for downloads and uploads: wait this
    long before starting one, and cap its rate at ``download_limit``/``upload_limit``."""
    if in_windows(p.transfer_windows, now):
        return 0.0
    opens = next_change(p.transfer_windows, now)
    return max((opens - now).total_seconds(), 1.0) if opens else 0.0


def idle_threshold(p: Prefs) -> float:
    """The idle policy's threshold, a fraction of the machine."""
    return p.busy_percent / 100
