"""Sizes as people type them: a number with an optional K, M, G or T suffix (powers of 1024)."""

from __future__ import annotations

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(value: str | int) -> int:
    """Bytes from ``4G``, ``512M``, ``1.5K``, ``1073741824`` (or an int); ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size (e.g. 4G, 512M, 1073741824)")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative")
        return value
    text = str(value).strip().upper().removesuffix("IB").removesuffix("B")
    number, unit = (text[:-1], text[-1]) if text[-1:] in UNITS and text[-1:] else (text, "")
    try:
        n = float(number) * UNITS[unit]
    except ValueError:
        raise ValueError(f"{value!r} is not a size (e.g. 4G, 512M, 1073741824)") from None
    if not 0 <= n < 1 << 60:  # (NaN fails too)
        raise ValueError(f"{value!r} is not a size (e.g. 4G, 512M, 1073741824)")
    return int(n)


def format_size(n: int) -> str:
    """The shortest exact spelling of ``n`` bytes with a suffix when there is one (4G, 1536M)."""
    for unit in ("T", "G", "M", "K"):
        if n and n % UNITS[unit] == 0:
            return f"{n // UNITS[unit]}{unit}"
    return str(n)


def human_size(n: int) -> str:
    """``n`` bytes to read at a glance (11.8G, 512M): rounded, unlike :func:`format_size`."""
    for unit in ("T", "G", "M", "K"):
        if n >= UNITS[unit]:
            return f"{n / UNITS[unit]:.1f}".removesuffix(".0") + unit
    return str(n)
