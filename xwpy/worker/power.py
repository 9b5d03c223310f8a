"""Is this machine on battery? Read from Linux's power-supply class (``/sys/class/power_supply``;
another directory of the same layout for tests, or where a container mounts it).

On battery means: no mains (or USB) supply online, and a battery discharging. A desktop without a
battery, or a machine whose supplies cannot be read, is not on battery.
"""

from __future__ import annotations

from pathlib import Path

POWER_SUPPLY = Path("/sys/class/power_supply")


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def on_battery(root: Path = POWER_SUPPLY) -> bool:
    try:
        supplies = sorted(root.iterdir())
    except OSError:
        return False
    discharging = False
    for s in supplies:
        kind = _read(s / "type")
        if kind in ("Mains", "USB") and _read(s / "online") == "1":
            return False
        if kind == "Battery" and _read(s / "status") == "Discharging":
            discharging = True
    return discharging
