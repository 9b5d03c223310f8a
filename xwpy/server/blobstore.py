"""The coordinator's content-addressed store: each blob is a file named by its sha256.

A blob is written under a temporary name, hashed as it is written, and renamed into place only if
the hash is the one announced: a partial or corrupt upload never becomes data. Blobs are
immutable; storing one that exists is a no-op. Everything here blocks: call it from a thread.
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


class StoreFull(BlobError):
    """No room for the blob (disk full, quota, file size limit): nothing was stored; retry later."""


_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class BlobStore:
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
        h = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                while block := src.read(1 << 20):
                    size += len(block)
                    if size > max_size:
                        raise TooLarge(f"more than {max_size} bytes")
                    h.update(block)
                    out.write(block)
                if self.fsync:
                    out.flush()
                    os.fsync(out.fileno())
            digest = h.hexdigest()
            if expected is not None and digest != expected:
                raise DigestMismatch(f"content hashes to {digest}, not {expected}")
            self._install(tmp, digest)
            return digest, size
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_bytes(self, data: bytes, expected: str | None = None) -> tuple[str, int]:
        digest = hashlib.sha256(data).hexdigest()
        if expected is not None and digest != expected:
            raise DigestMismatch(f"content hashes to {digest}, not {expected}")
        if self.size(digest) is None:
            fd, tmp = tempfile.mkstemp(dir=self._tmp)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                if self.fsync:
                    out.flush()
                    os.fsync(out.fileno())
            try:
                self._install(tmp, digest)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return digest, len(data)

    def _install(self, tmp: str, digest: str) -> None:
        dest = self.path(digest)
        if dest.exists():
            return
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def copy_to(self, sha256: str, dest: Path) -> None:
        shutil.copyfile(self.path(sha256), dest)
