"""Platforms: what a worker's machine is, and what an app version is built for. Defined once.

A platform is ``OS-ARCH`` (``linux-x86_64``, ``darwin-arm64``, ...). An app version built for
``any`` (a pure-Python bundle, or an image, whose root brings its own userland) runs on every
platform whose worker can run it. Pure functions, no I/O but :func:`this_platform`.
"""

from __future__ import annotations

import platform as _platform
import re

ANY = "any"
KNOWN = ("linux-x86_64", "linux-aarch64", "darwin-x86_64", "darwin-arm64", "windows-x86_64")
PLATFORM_RE = re.compile(r"any|[a-z][a-z0-9]{0,15}-[a-z0-9_]{1,16}")

# What Python (platform.machine) and image configs (OCI "architecture") call one architecture.
_ARCH = {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64", "x86_64": "x86_64"}


def normalize(os_name: str, arch: str) -> str:
    """``("Linux", "AMD64")`` -> ``"linux-x86_64"``."""
    os_name, arch = os_name.strip().lower(), arch.strip().lower()
    arch = _ARCH.get(arch, arch)
    if os_name == "darwin" and arch == "aarch64":
        arch = "arm64"  # Apple's own name, as pip and conda spell it
    return f"{os_name}-{arch}"


def this_platform() -> str:
    return normalize(_platform.system(), _platform.machine())


def check(name: str) -> str:
    """A platform name as a user typed it, or ValueError naming what is wrong."""
    if not PLATFORM_RE.fullmatch(name):
        raise ValueError(f"platform {name!r} is not OS-ARCH (one of {', '.join(KNOWN)}) or {ANY!r}")
    return name


def runs(host_platform: str, version_platform: str) -> bool:
    """May a host of ``host_platform`` run a version built for ``version_platform``?"""
    return version_platform == ANY or version_platform == host_platform
