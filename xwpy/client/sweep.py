"""Parameter sweeps: ``--sweep a=1..100 --sweep b=x,y`` turned into one job per combination
(the cartesian product, the last axis varying fastest), with ``{a}`` and ``{b}`` filled in the
job's arguments and input names. Pure: parsing and expanding, no I/O but reading a values file."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Iterator

from xwpy.protocol import MAX_ARG_LEN

MAX_SWEEP_JOBS = 100_000  # one command's sweep: beyond it, a batch file (or several sweeps) says what is meant

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
# Any "A..B" without a comma is meant as a range: its ends must then be numbers.
_RANGE = re.compile(r"(?P<start>[^,]*?)\.\.(?P<stop>[^,:]*)(?::(?P<step>[^,]*))?")


class SweepError(ValueError):
    """A sweep that cannot be expanded; the message names the option and what is wrong."""


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple[str, ...]


def _number(text: str, spec: str) -> Decimal:
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise SweepError(f"--sweep {spec!r}: {text!r} is not a number") from None
    if not d.is_finite():
        raise SweepError(f"--sweep {spec!r}: {text!r} is not a number")
    return d


def _show(d: Decimal) -> str:
    """1, 0.25, 10 — never 1E+1 or 0.250."""
    text = format(d.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _range(m: re.Match, spec: str) -> tuple[str, ...]:
    start, stop = _number(m["start"], spec), _number(m["stop"], spec)
    step = _number(m["step"], spec) if m["step"] else Decimal(1 if stop >= start else -1)
    if step == 0:
        raise SweepError(f"--sweep {spec!r}: the step is 0")
    if (stop - start) * step < 0:
        raise SweepError(f"--sweep {spec!r}: a step of {_show(step)} never goes from {_show(start)} to {_show(stop)}")
    count = int((stop - start) / step) + 1  # the stop itself when the steps land on it
    if count > MAX_SWEEP_JOBS:
        raise SweepError(f"--sweep {spec!r}: {count:,} values, more than {MAX_SWEEP_JOBS:,}")
    return tuple(_show(start + i * step) for i in range(count))  # exact: decimal, not float, steps


def parse_axis(spec: str, *, base: Path | None = None) -> Axis:
    """``NAME=A..B[:STEP]`` (inclusive; decimals exact), ``NAME=x,y,z`` or ``NAME=@FILE`` (one value
    per line; blank lines and lines starting with # skipped)."""
    name, sep, body = spec.partition("=")
    if not sep or not _NAME.fullmatch(name):
        raise SweepError(f"--sweep {spec!r}: expected NAME=A..B[:STEP], NAME=x,y,z or NAME=@FILE "
                         "(NAME: letters, digits, _)")
    if body.startswith("@"):
        path = Path(body[1:]).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise SweepError(f"--sweep {spec!r}: cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
        values = tuple(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
    elif (m := _RANGE.fullmatch(body)) is not None:
        values = _range(m, spec)
    else:
        values = tuple(body.split(","))
    if not values or any(v == "" for v in values):
        raise SweepError(f"--sweep {spec!r}: {'an empty value' if values else 'no values'}")
    if len(values) > MAX_SWEEP_JOBS:
        raise SweepError(f"--sweep {spec!r}: {len(values):,} values, more than {MAX_SWEEP_JOBS:,}")
    if (long := next((v for v in values if len(v) > MAX_ARG_LEN), None)) is not None:
        raise SweepError(f"--sweep {spec!r}: a value of {len(long)} characters, more than {MAX_ARG_LEN}")
    return Axis(name, values)


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with ``{name}`` replaced for the sweep's names only: other braces (JSON in an
    argument, say) are left as they are."""
    if not values:
        return template
    pattern = re.compile(r"\{(" + "|".join(map(re.escape, values)) + r")\}")
    return pattern.sub(lambda m: values[m[1]], template)


def combinations(axes: list[Axis], templates: list[str]) -> Iterator[dict[str, str]]:
    """Each combination of the axes' values, in order; refuses a sweep of more than
    MAX_SWEEP_JOBS jobs, two axes of one name, and an axis no template uses (its jobs would be
    copies of one another)."""
    names = [a.name for a in axes]
    if (twice := next((n for n in names if names.count(n) > 1), None)) is not None:
        raise SweepError(f"--sweep {twice}: given twice")
    for a in axes:
        if not any("{" + a.name + "}" in t for t in templates):
            raise SweepError(f"--sweep {a.name}: {{{a.name}}} appears in no argument or input: its jobs would be copies")
    total = math.prod(len(a.values) for a in axes)
    if total > MAX_SWEEP_JOBS:
        raise SweepError(f"the sweep makes {total:,} jobs, more than {MAX_SWEEP_JOBS:,}")
    for combo in itertools.product(*(a.values for a in axes)):
        yield dict(zip(names, combo))
