"""What a host offers and what a job needs — cores, memory, a platform — and whether they meet.
Pure functions, no I/O.

- A host offers the cores and memory its volunteer allows, its platform (``linux-x86_64``, …) and
  whether it can run images. A job needs cores and memory (its app's limits) and one of its app's
  versions: one built for the host's platform, or one for ``any`` (a pure-Python bundle, or an
  image — which only a host that runs images may take).
- A host may also offer disk: the bytes of inputs its volunteer's disk budget holds for the jobs
  it runs (0: it did not say, no check); a job needs the sum of its inputs' sizes.
- Packing: the replicas running on a host never need more cores, memory or disk, summed, than it
  offers. A job that needs more than a host offers when idle can never run there: that is a
  reason shown to its owner, not a wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from xwpy import platforms


@dataclass(frozen=True, slots=True)
class Offer:
    cores: int
    memory: int
    platform: str = ""  # "" for a worker that did not say: it runs only `any` versions
    images: bool = False
    network: bool = False  # its volunteer gives the network to apps that need it
    disk: int = 0  # bytes of inputs it holds for its jobs, summed (0: not said)


@dataclass(frozen=True, slots=True)
class Version:
    platform: str  # a platform name, or platforms.ANY
    image: bool = False


ANY_BUNDLE = (Version(platforms.ANY),)


@dataclass(frozen=True, slots=True)
class Need:
    cores: int = 1
    memory: int = 0
    versions: tuple[Version, ...] = ANY_BUNDLE
    network: bool = False  # its app needs the network
    disk: int = 0  # bytes: its inputs' sizes, summed


def version_for(offer: Offer, versions: tuple[Version, ...]) -> int | None:
    """The index of the version this host runs: its own platform's first, else one for ``any``;
    None if it runs none of them."""
    fallback = None
    for i, v in enumerate(versions):
        if v.image and not offer.images:
            continue
        if v.platform != platforms.ANY and v.platform == offer.platform:
            return i
        if v.platform == platforms.ANY and fallback is None:
            fallback = i
    return fallback


VERSION, CORES, MEMORY, NETWORK, DISK = "version", "cores", "memory", "network", "disk"


def _disk_short(offer: Offer, need: Need, used: int = 0) -> bool:
    return bool(offer.disk and need.disk and used + need.disk > offer.disk)


def lacking(offer: Offer, need: Need) -> str | None:
    """What the host lacks to run the job even idle (VERSION, CORES, MEMORY, NETWORK or DISK), or None."""
    if version_for(offer, need.versions) is None:
        return VERSION
    if need.network and not offer.network:
        return NETWORK
    if need.cores > offer.cores:
        return CORES
    if need.memory and offer.memory and need.memory > offer.memory:
        return MEMORY
    if _disk_short(offer, need):
        return DISK
    return None


def never(offer: Offer, need: Need) -> str | None:
    """Why this host could not run the job even idle, in words, or None if it could."""
    if version_for(offer, need.versions) is None:
        wanted = ", ".join(sorted({v.platform + (" image" if v.image else "") for v in need.versions}))
        have = (offer.platform or "an unknown platform") + ("" if offer.images else ", no images")
        return f"no version for it ({have}; the app has {wanted})"
    if need.network and not offer.network:
        return "its app needs the network, which the host's volunteer does not give (xwpy worker --allow-network)"
    if need.cores > offer.cores:
        return f"it needs {need.cores} cores, the host offers {offer.cores}"
    if need.memory and offer.memory and need.memory > offer.memory:
        return f"it needs {_mib(need.memory)} of memory, the host offers {_mib(offer.memory)}"
    if _disk_short(offer, need):
        return f"its inputs take {_mib(need.disk)}, the host's disk budget holds {_mib(offer.disk)} of inputs"
    return None


def has_room(offer: Offer, used_cores: int, used_memory: int, need: Need, used_disk: int = 0) -> bool:
    """Do the job's cores, memory and inputs fit beside what the host runs (whether it could run
    the job at all is :func:`lacking`)?"""
    if used_cores + need.cores > offer.cores:
        return False
    if offer.memory and need.memory and used_memory + need.memory > offer.memory:
        return False
    return not _disk_short(offer, need, used_disk)


def fits(offer: Offer, used_cores: int, used_memory: int, need: Need, used_disk: int = 0) -> bool:
    """May the host start this job now, beside what it runs?"""
    return lacking(offer, need) is None and has_room(offer, used_cores, used_memory, need, used_disk)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.0f} MiB" if n < 10 << 30 else f"{n / (1 << 30):.1f} GiB"
