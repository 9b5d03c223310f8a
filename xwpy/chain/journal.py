"""Append-only journal of everything that changed the embedded chain's state.

eth-tester keeps its chain in memory only. The embedded chain instead records, one JSON line
each, the genesis parameters and every state change: a raw transaction with the timestamp of
the block that included it, an empty block, a change of the time offset. Replaying the lines
against the same genesis rebuilds the same blocks, bit for bit (the chain makes block hashes
deterministic for that); each record carries the block hash it produced, so a replay that
diverges (say, after a py-evm upgrade changed gas rules) stops with a clear error instead of
serving a different history.

A record is flushed and fsync'ed before the RPC call that caused it answers, so a
transaction whose hash a client received survives a crash. A torn last line (the process
died while writing it) is dropped on open: its client never got an answer.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterator

FORMAT = "xwpy-embedded-chain/1"
FILENAME = "chain.jsonl"
LOCKNAME = "chain.lock"


class JournalError(Exception):
    """The journal cannot be read, or does not match this chain."""


@dataclasses.dataclass(frozen=True)
class Genesis:
    timestamp: int
    chain_id: int
    # checksummed address -> balance in wei
    balances: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "op": "genesis", **dataclasses.asdict(self)}


@dataclasses.dataclass(frozen=True)
class TxRecord:
    raw: str  # 0x-prefixed signed transaction
    timestamp: int
    block: int
    block_hash: str

    op = "tx"


@dataclasses.dataclass(frozen=True)
class MineRecord:
    timestamp: int
    block: int
    block_hash: str

    op = "mine"


@dataclasses.dataclass(frozen=True)
class OffsetRecord:
    seconds: int

    op = "offset"


Record = TxRecord | MineRecord | OffsetRecord
_RECORD_TYPES: dict[str, type] = {cls.op: cls for cls in (TxRecord, MineRecord, OffsetRecord)}


def encode(record: Record | Genesis) -> str:
    if isinstance(record, Genesis):
        obj = record.to_json()
    else:
        obj = {"op": record.op, **dataclasses.asdict(record)}
    return json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n"


def decode(line: str, lineno: int) -> Record | Genesis:
    try:
        obj = json.loads(line)
        op = obj.pop("op")
        if op == "genesis":
            if obj.pop("format") != FORMAT:
                raise JournalError(f"line {lineno}: unsupported journal format")
            return Genesis(**obj)
        return _RECORD_TYPES[op](**obj)
    except JournalError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise JournalError(f"line {lineno}: malformed record ({exc})") from exc


class Journal:
    """The journal file of one chain directory. Not thread-safe: the chain serialises."""

    def __init__(self, path: Path):
        self.path = path
        self._file = None
        self._lock = None

    def acquire(self) -> None:
        """Take the directory for this process: two writers would interleave the journal."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(self.path.parent / LOCKNAME, "a")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise JournalError(f"{self.path.parent} is in use by another embedded chain") from None
        self._lock = lock

    @classmethod
    def in_dir(cls, directory: str | os.PathLike) -> "Journal":
        return cls(Path(directory) / FILENAME)

    def exists(self) -> bool:
        return self.path.exists() and self.path.stat().st_size > 0

    def read(self) -> tuple[Genesis, Iterator[Record]]:
        """Return the genesis and the records after it; drops a torn last line first."""
        self._drop_torn_tail()
        lines = self.path.read_text().splitlines()
        if not lines:
            raise JournalError(f"{self.path}: empty journal")
        genesis = decode(lines[0], 1)
        if not isinstance(genesis, Genesis):
            raise JournalError(f"{self.path}: first record is not the genesis")

        def records() -> Iterator[Record]:
            for n, line in enumerate(lines[1:], start=2):
                rec = decode(line, n)
                if isinstance(rec, Genesis):
                    raise JournalError(f"{self.path}: line {n}: second genesis record")
                yield rec

        return genesis, records()

    def _drop_torn_tail(self) -> None:
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as f:
                f.truncate(keep)
                f.flush()
                os.fsync(f.fileno())

    def start(self, genesis: Genesis) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "w") as f:
            f.write(encode(genesis))
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(self.path.parent)

    def append(self, record: Record) -> None:
        """Write RECORD durably, or raise with the file as it was (a half-written line would
        sit in the middle of the journal once a later append succeeds)."""
        if self._file is None:
            self._file = open(self.path, "a")
        end = self._file.tell()
        try:
            self._file.write(encode(record))
            self._file.flush()
            os.fsync(self._file.fileno())
        except BaseException:
            self._file.close()
            self._file = None
            with open(self.path, "r+b") as f:
                f.truncate(end)
            raise

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._lock is not None:
            self._lock.close()  # releases the flock
            self._lock = None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
