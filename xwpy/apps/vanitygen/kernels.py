"""Choosing a search kernel. All kernels return the same answers; they differ only in speed.

``native`` (C extension, when built) > ``python`` (pure Python) > ``reference`` (coincurve, slow).
``XWPY_VANITY_KERNEL`` overrides the choice (for tests and benchmarks; results do not change).
"""

from __future__ import annotations

import os
from typing import Callable

from xwpy.apps.vanitygen import kernel, native, reference

ScanFn = Callable[..., list]


def available() -> dict[str, ScanFn]:
    out: dict[str, ScanFn] = {}
    if native.AVAILABLE:
        out["native"] = native.scan
    out["python"] = kernel.scan
    out["reference"] = reference.scan
    return out


def get(name: str | None = None) -> tuple[str, ScanFn]:
    """The named kernel, else $XWPY_VANITY_KERNEL, else the fastest available."""
    kernels = available()
    name = name or os.environ.get("XWPY_VANITY_KERNEL") or next(iter(kernels))
    if name not in kernels:
        raise ValueError(f"unknown or unavailable kernel {name!r}; available: {', '.join(kernels)}")
    return name, kernels[name]
