"""The coordinator's content-addressed store: each blob is a file named by its sha256.

A blob is written under a temporary name, hashed as it is written, and renamed into place only if
the hash is the one announced: a partial or corrupt upload never becomes data. Blobs are
immutable; storing one that exists again replaces the stored copy with the verified new one. A
blob found damaged later (it is checked whenever it is read or served) is moved to ``corrupt/``;
uploading it again repairs it. Everything here blocks: call it from a thread.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO


class BlobError(ValueError):
    pass


class DigestMismatch(BlobError):
    pass


class TooLarge(BlobError):
    pass


class Corrupt(BlobError):
    """A stored blob whose content no longer hashes to its name (disk fault, tampering)."""


class StoreFull(BlobError):
    """No room for the blob (disk full, quota, file size limit): nothing was stored; retry later."""


class StoreUnavailable(BlobError):
    """The store did not answer (an object store down, unreachable, or refusing our keys)."""


_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_HEX = frozenset("0123456789abcdef")


class BlobStore:
    """The local directory. :class:`xwpy.server.blobstore_s3.S3BlobStore` has the same methods."""

    remote = False  # its methods are file operations (the S3 store's talk to a server)

    def __init__(self, root: Path, *, fsync: bool = False):
        self.root = Path(root)
        self.fsync = fsync
        self._tmp = self.root / "tmp"
        self._tmp.mkdir(parents=True, exist_ok=True)
        # Anything left in tmp was an upload cut short by a crash.
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def fetch(self, sha256: str) -> Path | None:
        """The blob's file, or None if not stored (the S3 store fetches a local copy)."""
        path = self.path(sha256)
        return path if path.exists() else None

    def size(self, sha256: str) -> int | None:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def put_stream(self, src: BinaryIO, expected: str | None, max_size: int) -> tuple[str, int]:
        """Store what ``src`` yields; check it against ``expected`` when given."""
        try:
            return self._put_stream(src, expected, max_size)
        except OSError as e:
            if e.errno in _NO_ROOM:
                raise StoreFull(f"no room to store the data: {e.strerror}") from None
            raise

    def _put_stream(self, src: BinaryIO, expected: str | None, max_size: int) -> tuple[str, int]:
        tmp, digest, size = spool(src, self._tmp, max_size, fsync=self.fsync)
        try:
            if expected is not None and digest != expected:
                raise DigestMismatch(f"content hashes to {digest}, not {expected}")
            self.install(tmp, digest)
            return digest, size
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def free_bytes(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize

    def probe(self) -> None:
        """Write a small file where uploads are written, read it back and remove it (blocking):
        the health check of a store that may have gone read-only, full or away."""
        probe(self._tmp)

    def put_bytes(self, data: bytes, expected: str | None = None) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        if expected is not None and digest != expected:
            raise DigestMismatch(f"content hashes to {digest}, not {expected}")
        if self.size(digest) is not None:
            self.touch(digest)
        else:
            fd, tmp = tempfile.mkstemp(dir=self._tmp)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                if self.fsync:
                    out.flush()
                    os.fsync(out.fileno())
            try:
                self.install(tmp, digest)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return digest, len(data)

    def install(self, tmp: str, digest: str) -> None:
        """Move a verified blob into place — over a stored copy too, which may have been
        damaged since: storing a blob again repairs it, for the price of a rename."""
        dest = self.path(digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)

    def read(self, sha256: str) -> bytes:
        data = self.path(sha256).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            self.quarantine(sha256)
            raise Corrupt(f"stored blob {sha256} is damaged (its content hashes to {digest})")
        return data

    def quarantine(self, sha256: str) -> None:
        """Set a damaged blob aside (kept for inspection): it is no longer served."""
        dest = self.root / "corrupt" / sha256
        dest.parent.mkdir(exist_ok=True)
        try:
            os.replace(self.path(sha256), dest)
        except FileNotFoundError:
            pass

    def quarantined(self, sha256: str) -> bool:
        return (self.root / "corrupt" / sha256).exists()

    def copy_to(self, sha256: str, dest: Path) -> None:
        shutil.copyfile(self.path(sha256), dest)

    # -- retention (xwpy.server.retention) ----------------------------------------------------------

    def touch(self, sha256: str) -> None:
        """Mark a stored blob as just stored (it is being relied upon again: not collected soon)."""
        try:
            os.utime(self.path(sha256))
        except FileNotFoundError:
            pass

    def listing(self) -> dict[str, float]:
        """Every stored blob: sha256 -> when it was last stored (mtime)."""
        out = {}
        for top in self.root.iterdir():
            if not (len(top.name) == 2 and _HEX.issuperset(top.name) and top.is_dir()):
                continue
            for sub in top.iterdir():
                for f in sub.iterdir() if sub.is_dir() else ():
                    if len(f.name) == 64 and _HEX.issuperset(f.name):
                        try:
                            out[f.name] = f.stat().st_mtime
                        except FileNotFoundError:
                            continue
        return out

    def remove(self, shas: list[str], stored_before: float | None = None) -> list[str]:
        """Delete these blobs' files — with ``stored_before``, only those last stored before then
        (checked now: one stored again meanwhile stays). Those removed."""
        gone = []
        for sha in shas:
            path = self.path(sha)
            try:
                if stored_before is not None and path.stat().st_mtime >= stored_before:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            gone.append(sha)
        return gone


def spool(src: BinaryIO, directory: Path, max_size: int, *, fsync: bool = False) -> tuple[str, str, int]:
    """Write what ``src`` yields to a new file in ``directory``, hashed on the way: its path, its
    sha256 and its size (the caller removes it). TooLarge past ``max_size``; nothing left behind
    when it fails."""
    h = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            while block := src.read(1 << 20):
                size += len(block)
                if size > max_size:
                    raise TooLarge(f"more than {max_size} bytes")
                h.update(block)
                out.write(block)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp, h.hexdigest(), size


def hash_prefix(path: Path, n: int):
    """The sha256 state of the first ``n`` bytes of ``path`` (blocking): a resumed download's
    first part, checked without being sent again."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while n > 0 and (block := f.read(min(n, 1 << 20))):
            h.update(block)
            n -= len(block)
    return h


def probe(directory: Path) -> None:
    """Write a small file in ``directory``, read it back and remove it (blocking)."""
    data = os.urandom(4096)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="probe-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        with open(tmp, "rb") as f:
            if f.read() != data:
                raise Corrupt("the probe read back differs from what was written")
    except OSError as e:
        if e.errno in _NO_ROOM:
            raise StoreFull(f"no room to store data: {e.strerror}") from None
        raise
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
