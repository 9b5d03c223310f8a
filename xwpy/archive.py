"""Canonical result archives: the same files always give the same bytes, hence the same digest.

A result archive is an uncompressed POSIX tar of regular files and directories, names sorted,
with mtimes, owners and permission noise removed (mode 0644, or 0755 for executables), and no
padding after the end-of-archive blocks (a 10 KiB record for a one-line output would be mostly
zeros, sent and stored for every replica). Honest
replicas of a deterministic job therefore agree bit for bit, and the sha256 of the archive is the
digest that replicas vote with. Symbolic links and special files are never archived.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path
from typing import Iterable, Mapping

MAX_MEMBERS = 100_000


class ArchiveError(ValueError):
    pass


def _info(name: str, size: int, *, executable: bool = False, directory: bool = False) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = 0
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    if directory:
        ti.type, ti.mode, ti.size = tarfile.DIRTYPE, 0o755, 0
    else:
        ti.mode = 0o755 if executable else 0o644
    return ti


def walk(root: Path, exclude: Iterable[str] = ()) -> list[tuple[str, Path]]:
    """Regular files and directories below ``root`` as (posix relative name, path), sorted.
    ``exclude`` names relative paths to leave out (a directory with all it holds)."""
    skip = set(exclude)
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        rel_of = (lambda n: n) if rel_dir == "." else (lambda n: f"{rel_dir}/{n}".replace(os.sep, "/"))
        dirnames[:] = sorted(n for n in dirnames if rel_of(n) not in skip)  # not walked into
        for name in dirnames + filenames:
            rel = rel_of(name)
            if rel in skip:
                continue
            p = Path(dirpath, name)
            mode = p.lstat().st_mode
            if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
                out.append((rel, p))
    out.sort()
    if len(out) > MAX_MEMBERS:
        raise ArchiveError(f"more than {MAX_MEMBERS} files")
    return out


def _unpadded(out, start: int, tar: tarfile.TarFile) -> None:
    """Cut the record padding tarfile writes after the two end-of-archive blocks."""
    out.truncate(start + tar.offset)
    out.seek(start + tar.offset)


def write_dir(root: Path, out: io.BufferedIOBase, exclude: Iterable[str] = ()) -> None:
    """Write the canonical archive of a directory to a seekable binary stream."""
    start = out.tell()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, p in walk(root, exclude):
            st = p.lstat()
            if stat.S_ISDIR(st.st_mode):
                tar.addfile(_info(rel, 0, directory=True))
            else:
                with open(p, "rb") as f:
                    tar.addfile(_info(rel, st.st_size, executable=bool(st.st_mode & 0o111)), f)
    _unpadded(out, start, tar)


def from_files(files: Mapping[str, bytes]) -> bytes:
    """The canonical archive of in-memory files (names are relative posix paths)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            data = files[name]
            tar.addfile(_info(name, len(data)), io.BytesIO(data))
    _unpadded(buf, 0, tar)
    return buf.getvalue()


def read_files(data: bytes, max_total: int = 1 << 30) -> dict[str, bytes]:
    """The regular files of an archive, by name. Rejects unsafe names and oversize content."""
    out: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for ti in tar:
                _check_name(ti.name)
                if ti.isdir():
                    continue
                if not ti.isreg():
                    raise ArchiveError(f"{ti.name}: not a regular file")
                total += ti.size
                if total > max_total or len(out) >= MAX_MEMBERS:
                    raise ArchiveError("archive too large")
                f = tar.extractfile(ti)
                out[ti.name] = f.read() if f else b""
    except (tarfile.TarError, EOFError) as e:
        raise ArchiveError(f"not a valid archive: {e}") from None
    return out


def names(data_path: Path | bytes) -> set[str]:
    """The names of the regular files of the archive at ``data_path`` (or of the archive's bytes):
    its headers only, the files' contents skipped."""
    source = {"fileobj": io.BytesIO(data_path)} if isinstance(data_path, bytes) else {"name": data_path}
    try:
        with tarfile.open(mode="r:", **source) as tar:
            return {ti.name for ti in tar if ti.isreg()}
    except (tarfile.TarError, EOFError) as e:
        raise ArchiveError(f"not a valid archive: {e}") from None


def copy_member(data_path: Path | bytes, name: str, out, chunk: int = 1 << 20) -> bool:
    """Copy one regular file of the archive at ``data_path`` (or of the archive's bytes) to the
    binary stream ``out``, block by block (a file's archive never whole in memory). False when the
    archive has no such file."""
    source = {"fileobj": io.BytesIO(data_path)} if isinstance(data_path, bytes) else {"name": data_path}
    try:
        with tarfile.open(mode="r:", **source) as tar:
            for ti in tar:
                _check_name(ti.name)
                if ti.name != name or not ti.isreg():
                    continue
                f = tar.extractfile(ti)
                while f is not None and (block := f.read(chunk)):
                    out.write(block)
                return True
    except (tarfile.TarError, EOFError) as e:
        raise ArchiveError(f"not a valid archive: {e}") from None
    return False


def extract(data_path: Path, dest: Path) -> None:
    """Unpack an archive into ``dest`` safely (no absolute names, no '..', no links)."""
    try:
        with tarfile.open(data_path, mode="r:*") as tar:
            members = []
            for ti in tar:
                _check_name(ti.name)
                if not (ti.isreg() or ti.isdir()):
                    raise ArchiveError(f"{ti.name}: not a regular file or directory")
                members.append(ti)
            tar.extractall(dest, members=members, filter="data")
    except (tarfile.TarError, EOFError) as e:
        raise ArchiveError(f"not a valid archive: {e}") from None


def _check_name(name: str) -> None:
    parts = name.split("/")
    if name.startswith("/") or ".." in parts or not name:
        raise ArchiveError(f"unsafe member name {name!r}")


def sha256_file(path: Path, chunk: int = 1 << 20) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size
