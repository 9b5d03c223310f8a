"""Apply an image's layers to an empty directory, never writing outside it.

The worker unpacks into a fresh directory of its cache that no job can see yet, so the only
writer is this code and checking a path with ``lstat`` before using it is enough (no race with a
job). Every name is classified by :mod:`.entries` first; on top of that, nothing here follows a
symbolic link: a path whose parent is a link is refused, files are created with ``O_NOFOLLOW``
and ``O_EXCL``, a hard link must name a regular file already unpacked. Whiteouts hide what lower
layers left (never what the same layer adds, as the OCI spec says). Layer digests are verified as
the layers stream; on any error the caller removes the directory.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path

from xwpy.image.archive import Archive, ImageLimits, layer_entries, read
from xwpy.image.entries import DIR, FILE, HARDLINK, OPAQUE_DIR, ROOT, SYMLINK, WHITEOUT_FILE, Entry, ImageError, classify

_CHUNK = 1 << 20


@dataclass
class Stats:
    files: int = 0
    bytes: int = 0


class Root:
    def __init__(self, root: Path):
        self.root = root

    def _lstat(self, rel: str):
        try:
            return os.lstat(self.root / rel)
        except FileNotFoundError:
            return None

    def parent(self, rel: str) -> Path:
        """The directory ``rel`` goes in, created as needed; ImageError if any step is not a
        real directory (a symbolic link there could lead anywhere)."""
        cur = ""
        for part in rel.split("/")[:-1]:
            cur = f"{cur}/{part}" if cur else part
            st = self._lstat(cur)
            if st is None:
                os.mkdir(self.root / cur, 0o755)
            elif not stat.S_ISDIR(st.st_mode):
                raise ImageError(f"entry {rel!r}: {cur!r} is not a directory (a link?)")
        return self.root / rel

    def remove(self, rel: str) -> None:
        st = self._lstat(rel)
        if st is None:
            return
        path = self.root / rel
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)  # never follows links (fd-based on Linux)
        else:
            os.unlink(path)

    def prune(self, rel: str, keep: set[str]) -> None:
        """Remove what lower layers put below directory ``rel``, keeping this layer's own."""
        st = self._lstat(rel)
        if st is None or not stat.S_ISDIR(st.st_mode):
            return
        for name in os.listdir(self.root / rel if rel else self.root):
            child = f"{rel}/{name}" if rel else name
            if child not in keep:
                self.remove(child)
            elif stat.S_ISDIR(os.lstat(self.root / child).st_mode):
                self.prune(child, keep)


def _write(tf: tarfile.TarFile, info: tarfile.TarInfo, path: Path, mode: int) -> None:
    src = tf.extractfile(info)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        if src is not None:
            while chunk := src.read(_CHUNK):
                out.write(chunk)
        os.fchmod(out.fileno(), mode)
    os.utime(path, (info.mtime, info.mtime), follow_symlinks=False)


def _apply(root: Root, tf: tarfile.TarFile, info: tarfile.TarInfo, entry: Entry, created: set[str]) -> None:
    rel = entry.path
    if entry.kind == ROOT:
        os.chmod(root.root, entry.mode)
        return
    if entry.kind == WHITEOUT_FILE:
        root.parent(rel)
        if rel not in created:
            root.remove(rel)
        return
    if entry.kind == OPAQUE_DIR:
        if rel:
            root.parent(rel + "/x")
        root.prune(rel, created)
        return
    path = root.parent(rel)
    st = root._lstat(rel)
    if entry.kind == DIR:
        if st is not None and not stat.S_ISDIR(st.st_mode):
            root.remove(rel)
            st = None
        if st is None:
            os.mkdir(path, 0o700)
        os.chmod(path, entry.mode)
    else:
        root.remove(rel)
        if entry.kind == FILE:
            _write(tf, info, path, entry.mode)
        elif entry.kind == SYMLINK:
            os.symlink(entry.target, path)
        elif entry.kind == HARDLINK:
            root.parent(entry.target)  # its parents are real directories, so lstat follows nothing
            tst = root._lstat(entry.target)
            if tst is None or not stat.S_ISREG(tst.st_mode):
                raise ImageError(f"entry {rel!r}: hard link to {entry.target!r}, which is not a file of the image")
            os.link(root.root / entry.target, path, follow_symlinks=False)
    created.add(rel)


def unpack(archive: Path, dest: Path, limits: ImageLimits = ImageLimits(), expect_id: str = "") -> Stats:
    """Unpack ``archive``'s layers into ``dest`` (which must not exist). ImageError if the archive
    or any entry is refused; ``dest`` may then hold a partial tree for the caller to remove."""
    dest.mkdir(mode=0o755)
    root = Root(dest)
    stats = Stats()
    with Archive(archive, limits) as ar:
        described = read(ar)
        if expect_id and described.id != expect_id:
            raise ImageError(f"the archive holds image {described.id}, not {expect_id}")
        for layer in described.layers:
            created: set[str] = set()
            for tf, info in layer_entries(ar, layer):
                entry = classify(info)
                stats.files += 1
                stats.bytes += entry.size if entry.kind == FILE else 0
                if stats.files > limits.max_files:
                    raise ImageError(f"the image holds more than {limits.max_files} files")
                if stats.bytes > limits.max_unpacked_bytes:
                    raise ImageError(f"the image unpacks to more than {limits.max_unpacked_bytes} bytes")
                _apply(root, tf, info, entry, created)
    return stats
