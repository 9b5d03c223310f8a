"""Resumable uploads: upload sessions with offsets (the design of tus.io and GCS resumable uploads).

A caller opens a session for one file (its sha256 and size), PATCHes chunks at the offset the
coordinator has (``Upload-Offset``), asks where it is after a cut (``GET``), and the chunk that
brings the session to its size completes it: the whole is checked against the sha256 and moved
into the blob store. A cut costs the chunk in flight, never what was stored before it.

Sessions live beside the blobs (``uploads/ID.part`` and ``ID.json``) and survive a restart. They
are bounded: a session's size by what its caller may upload, the sessions open per caller (user,
or host) by ``[limits] max_upload_sessions``; one untouched for ``upload_session_seconds`` is
removed by :meth:`UploadSessions.sweep`. A completed session is remembered (in memory) as long, so
that a caller whose last answer was lost learns that it completed.

The sha256 is computed as chunks are appended; after a restart it is computed once over the part
file when the session completes. Blocking methods say so: call them from a thread.
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from twisted.internet.defer import DeferredLock

from xwpy.server.blobstore import BlobStore, DigestMismatch, StoreFull, TooLarge

ID_RE = re.compile(r"[A-Za-z0-9_-]{22}")
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

Caller = tuple[int, "int | None"]  # (user id, host id): whose session it is


class TooMany(Exception):
    pass


class OffsetMismatch(Exception):
    def __init__(self, offset: int):
        super().__init__(f"the coordinator has {offset} bytes of this upload: send from there")
        self.offset = offset


@dataclass(eq=False)
class Session:
    id: str
    caller: Caller
    sha256: str
    size: int
    access: str = "private"
    name: str = ""
    offset: int = 0
    touched: float = 0.0
    hasher: Any = None  # the sha256 of the first ``offset`` bytes, when known (not after a restart)
    done: dict | None = None  # once complete: the stored data's description (for the caller)
    lock: DeferredLock = field(default_factory=DeferredLock)


class UploadSessions:
    def __init__(self, root: Path, blobs: BlobStore, *, max_per_caller: int, stale_seconds: float):
        self.root = Path(root)
        self.blobs = blobs
        self.max_per_caller = max_per_caller
        self.stale_seconds = stale_seconds
        self.sessions: dict[str, Session] = {}

    def _part(self, sid: str) -> Path:
        return self.root / f"{sid}.part"

    def _record(self, sid: str) -> Path:
        return self.root / f"{sid}.json"

    def load(self, now: float) -> None:
        """The sessions a previous run left (blocking); anything unreadable is removed."""
        self.root.mkdir(parents=True, exist_ok=True)
        for record in self.root.glob("*.json"):
            sid = record.stem
            try:
                raw = json.loads(record.read_text())
                s = Session(sid, (int(raw["user"]), raw["host"]), str(raw["sha256"]), int(raw["size"]),
                            str(raw.get("access", "private")), str(raw.get("name", "")), touched=now)
                s.offset = self._part(sid).stat().st_size
                if not ID_RE.fullmatch(sid) or s.offset > s.size:
                    raise ValueError(sid)
            except (OSError, ValueError, KeyError, TypeError):
                self._remove_files(sid)
                continue
            self.sessions[sid] = s
        for part in self.root.glob("*.part"):
            if part.stem not in self.sessions:
                part.unlink(missing_ok=True)

    def open_count(self, caller: Caller) -> int:
        return sum(1 for s in self.sessions.values() if s.caller == caller and s.done is None)

    def create(self, caller: Caller, sha256: str, size: int, now: float, access: str = "private",
               name: str = "") -> Session:
        """A new session (blocking: writes its record)."""
        if self.open_count(caller) >= self.max_per_caller:
            raise TooMany(f"{self.max_per_caller} uploads are open already: finish or cancel one first")
        sid = secrets.token_urlsafe(16)
        s = Session(sid, caller, sha256, size, access, name, touched=now, hasher=hashlib.sha256())
        record = {"user": caller[0], "host": caller[1], "sha256": sha256, "size": size, "access": access, "name": name}
        try:
            self._part(sid).write_bytes(b"")
            self._record(sid).write_text(json.dumps(record))
        except OSError as e:
            self._remove_files(sid)
            raise _no_room(e) from None
        self.sessions[sid] = s
        return s

    def completed(self, caller: Caller, sha256: str, size: int, now: float, done: dict) -> Session:
        """A session complete from the start (the data is stored already: nothing to send)."""
        s = Session(secrets.token_urlsafe(16), caller, sha256, size, offset=size, touched=now, done=done)
        self.sessions[s.id] = s
        return s

    def get(self, sid: str, caller: Caller) -> Session | None:
        s = self.sessions.get(sid)
        return s if s is not None and s.caller == caller else None

    def append(self, s: Session, src: BinaryIO, offset: int, now: float) -> int:
        """Append what ``src`` holds at ``offset`` (blocking; the caller holds ``s.lock``).
        Raises OffsetMismatch, TooLarge (past the announced size), StoreFull."""
        if offset != s.offset or s.done is not None:
            raise OffsetMismatch(s.offset)
        s.touched = now
        try:
            with open(self._part(s.id), "r+b") as out:
                out.seek(s.offset)
                while block := src.read(1 << 20):
                    if s.offset + len(block) > s.size:  # what was appended stays; the excess is refused
                        raise TooLarge(f"more bytes than the {s.size} announced")
                    out.write(block)
                    if s.hasher is not None:
                        s.hasher.update(block)
                    s.offset += len(block)
        except OSError as e:
            # What reached the file may be partial: where the session is, the file says.
            s.offset = self._part(s.id).stat().st_size
            s.hasher = None
            raise _no_room(e) from None
        return s.offset

    def finish(self, s: Session) -> str:
        """Check a session that holds its whole file and move it into the blob store (blocking).
        Raises DigestMismatch (and drops the session)."""
        if s.hasher is not None:
            digest = s.hasher.hexdigest()
        else:
            h = hashlib.sha256()
            with open(self._part(s.id), "rb") as f:
                while block := f.read(1 << 20):
                    h.update(block)
            digest = h.hexdigest()
        if digest != s.sha256:
            self.drop(s)
            raise DigestMismatch(f"the upload hashes to {digest}, not {s.sha256}")
        self.blobs.install(str(self._part(s.id)), digest)
        self._record(s.id).unlink(missing_ok=True)
        return digest

    def drop(self, s: Session) -> None:
        """Forget a session and remove its files (blocking)."""
        self.sessions.pop(s.id, None)
        self._remove_files(s.id)

    def stale(self, now: float) -> list[Session]:
        """Sessions untouched for ``stale_seconds`` (none busy with a chunk)."""
        return [s for s in self.sessions.values()
                if now - s.touched > self.stale_seconds and not s.lock.locked]

    def _remove_files(self, sid: str) -> None:
        self._part(sid).unlink(missing_ok=True)
        self._record(sid).unlink(missing_ok=True)


def _no_room(e: OSError) -> Exception:
    if e.errno in _NO_ROOM:
        return StoreFull(f"no room to store the upload: {e.strerror}")
    return e


__all__ = ["ID_RE", "OffsetMismatch", "Session", "TooMany", "UploadSessions"]
