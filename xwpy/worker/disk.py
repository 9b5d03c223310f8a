"""The worker's disk budget (the volunteer's ``disk.budget``): its cache — inputs, bundles, images —
and its jobs' directories together stay within it.

- A job's directory holds a copy of each of its inputs: the worker reserves their sizes (the
  coordinator sends them) for as long as the job runs, and says at hello that its jobs' inputs
  may take half its budget, summed (each input is held twice while its job stages: cached, and
  copied), so that the scheduler never sends it a job whose inputs would not fit
  (:mod:`xwpy.server.scheduler.capacity`).
- Room is made by evicting the least recently used cache entries not in use (an input being
  copied, a bundle being unpacked, the image of a running job are pinned). A download whose size is
  known makes its room first; what arrives without a known size (a bundle, an image) is settled
  after it lands.
- The order of use survives restarts: each use touches the entry's mtime, read back at start.
- What else takes room counts too: a download cut short (its ``.part``, kept to resume) until it
  is resumed, when it counts within its blob's size; a directory kept from an earlier life (a job
  with a checkpoint) for what it holds; a finished result waiting to be reported
  (:mod:`xwpy.worker.outbox`) until it is. Results go in an order of their own
  (:func:`eviction_order`): past their deadline, before anything; still awaited, only when nothing
  else is left — and the worker says so.

:func:`to_evict` is the rule (pure); :class:`DiskBudget` keeps the index. Its methods run on the
reactor thread and do no more I/O than an unlink or a rename; sizes of directories are measured
by the caller in a thread (:func:`tree_size`).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from twisted.logger import Logger

from xwpy.sizes import human_size

log = Logger()


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    size: int
    last_used: float
    pinned: bool = False
    deadline: float | None = None  # a finished result waiting to be reported: wanted until then


def blob_key(sha256: str) -> str:
    return f"blob:{sha256}"


def image_key(image_id: str) -> str:
    return f"image:{image_id}"


def part_key(sha256: str) -> str:
    """A partial download (``cache/<sha256>.part``) left by a cut: resumed when its blob is wanted."""
    return f"part:{sha256}"


def result_key(replica_id: int) -> str:
    """A finished result kept until it is reported (xwpy.worker.outbox)."""
    return f"result:{replica_id}"


def eviction_order(e: Entry, now: float) -> tuple:
    """Who goes first: results past their deadline (the oldest first: nobody waits for them), then
    cached files least recently used first, then — only when nothing else is left — results still
    within their deadline, the one whose deadline is nearest first."""
    if e.deadline is None:
        return (1, e.last_used, e.key)
    return (0 if e.deadline <= now else 2, e.deadline, e.key)


def to_evict(entries: Iterable[Entry], budget: int, reserved: int, incoming: int, now: float = 0.0) -> list[str] | None:
    """The entries not pinned, in :func:`eviction_order`, whose removal lets what stays, plus
    ``reserved`` (the jobs' directories) and ``incoming`` (what is about to land), fit ``budget``;
    [] if it all fits already; None if even removing every entry not pinned would not do."""
    entries = list(entries)
    total = sum(e.size for e in entries) + reserved + incoming
    if total <= budget:
        return []
    out = []
    for e in sorted((e for e in entries if not e.pinned), key=lambda e: eviction_order(e, now)):
        out.append(e.key)
        total -= e.size
        if total <= budget:
            return out
    return None


def inputs_offer(budget: int, results_held: int) -> int:
    """The bytes of inputs a worker offers at hello (capacity.Offer.disk): half of what the results
    it keeps leave of its budget, since each input is held twice while its job stages (cached, and
    copied). 0 is "no limit", so a budget its results fill still offers 1 byte: jobs without inputs."""
    if not budget:
        return 0
    return max(1, (budget - results_held) // 2)


class NoRoom(Exception):
    pass


@dataclass(slots=True)
class _Item:
    path: Path
    size: int
    last_used: float
    pins: int = 0
    deadline: float | None = None
    evicted: Callable[[], None] | None = None  # told when the budget removes it (a result: dropped)


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (or of ``path``, a file), links not followed. Blocking."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not os.path.isdir(path) or os.path.islink(path):
        return st.st_size
    total = 0
    for dirpath, _dirnames, filenames in os.walk(path):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


class DiskBudget:
    """The cache's index (key -> path, size, last use, pins) and the jobs' reservations.
    ``budget`` 0: no limit (the index is kept all the same, for the figures)."""

    def __init__(self, budget: int, *, clock: Callable[[], float] = time.time):
        self.budget = budget
        self._clock = clock
        self._items: dict[str, _Item] = {}
        self._reserved: dict[object, int] = {}
        self.evicted = 0  # entries removed to make room, since start

    # -- the index ---------------------------------------------------------------------------------

    def known(self, key: str) -> bool:
        return key in self._items

    def add(self, key: str, path: Path, size: int) -> None:
        """An entry that has landed (or was found at start, with its mtime as its last use)."""
        item = self._items.get(key)
        if item is None:
            self._items[key] = _Item(path, size, self._clock())
        else:
            item.size, item.path = size, path
            self.use(key)

    def add_result(self, key: str, path: Path, size: int, deadline: float, evicted: Callable[[], None]) -> None:
        """A finished result waiting to be reported: it counts, and goes only past its deadline or
        when nothing else can make room (``evicted`` is called then)."""
        self._items[key] = _Item(path, size, self._clock(), deadline=deadline, evicted=evicted)

    def found(self, key: str, path: Path, size: int, last_used: float) -> None:
        self._items[key] = _Item(path, size, last_used)

    def use(self, key: str) -> None:
        item = self._items.get(key)
        if item is not None:
            item.last_used = self._clock()
            try:
                os.utime(item.path, follow_symlinks=False)  # the order survives a restart
            except OSError:
                pass

    def pin(self, key: str) -> None:
        """In use (being copied, unpacked, or a running job's image): never evicted until unpinned.
        A key may be pinned before its entry lands."""
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = _Item(Path(), 0, self._clock())
        item.pins += 1

    @contextmanager
    def pinned(self, key: str):
        self.pin(key)
        try:
            yield
        finally:
            self.unpin(key)

    def unpin(self, key: str) -> None:
        item = self._items.get(key)
        if item is not None and item.pins:
            item.pins -= 1
            if not item.pins and item.path == Path():  # pinned, but it never landed
                del self._items[key]

    def forget(self, key: str) -> None:
        self._items.pop(key, None)

    # -- the jobs' directories ---------------------------------------------------------------------

    def reserve(self, owner: object, size: int) -> None:
        self._reserved[owner] = size

    def release(self, owner: object) -> None:
        self._reserved.pop(owner, None)

    # -- making room -------------------------------------------------------------------------------

    def results_held(self) -> int:
        """Bytes of finished results waiting to be reported (each stays until its deadline)."""
        return sum(i.size for i in self._items.values() if i.deadline is not None)

    @property
    def used(self) -> int:
        return sum(i.size for i in self._items.values()) + sum(self._reserved.values())

    def _entries(self) -> list[Entry]:
        return [Entry(k, i.size, i.last_used, i.pins > 0, i.deadline) for k, i in self._items.items()]

    def make_room(self, incoming: int, what: str = "") -> None:
        """Evict until ``incoming`` more bytes fit; NoRoom (nothing evicted) if they cannot."""
        if not self.budget:
            return
        victims = to_evict(self._entries(), self.budget, sum(self._reserved.values()), incoming, self._clock())
        if victims is None:
            raise NoRoom(f"{what or human_size(incoming)} would not fit the disk budget ({human_size(self.budget)}) "
                         f"beside the jobs running and the files they use")
        self._evict(victims)

    def settle(self) -> None:
        """Back within budget after something of unknown size landed, as far as evicting allows."""
        if not self.budget:
            return
        entries = self._entries()
        victims = to_evict(entries, self.budget, sum(self._reserved.values()), 0, self._clock())
        if victims is None:  # evict all that may be: the rest is in use
            victims = [e.key for e in entries if not e.pinned]
        self._evict(victims)

    def _evict(self, keys: list[str]) -> None:
        now = self._clock()
        for key in keys:
            item = self._items.pop(key)
            self.evicted += 1
            if item.evicted is not None:  # a result: its owner removes it, and says why
                if item.deadline is not None and item.deadline > now:
                    log.warn("disk budget: the result {key} ({size}) is dropped although the coordinator waits "
                             "for it for {left:.0f} s more: nothing else is left to make room in {budget}",
                             key=key, size=human_size(item.size), left=item.deadline - now,
                             budget=human_size(self.budget))
                item.evicted()
                continue
            _remove(item.path)
            log.info("disk budget: evicted {key} ({size}, unused for {age:.0f} s)", key=key[:24],
                     size=human_size(item.size), age=max(0.0, self._clock() - item.last_used))


def _remove(path: Path) -> None:
    """Gone from its name at once (a directory renamed aside, then removed in the background)."""
    try:
        if path.is_dir() and not path.is_symlink():
            aside = path.with_name(f".tmp-evicted-{uuid.uuid4().hex[:8]}")  # ImageCache clears .tmp-* at start
            os.rename(path, aside)
            from twisted.internet.threads import deferToThread

            deferToThread(shutil.rmtree, aside, True)
        else:
            path.unlink(missing_ok=True)
    except OSError as e:
        log.warn("disk budget: could not remove {path}: {e}", path=str(path), e=e)
