"""What a layer's tar entry may be, decided from its header alone. Pure functions, no I/O.

Checked once when an image is uploaded (so a hostile archive is refused before it is stored) and
again by the worker as it unpacks (it trusts nothing it fetched). A root filesystem needs only
directories, regular files, symbolic links and hard links; anything else — device nodes, FIFOs,
sparse or unknown entries — is refused, and so is any name or link that could reach outside the
root. Setuid, setgid and sticky bits are dropped rather than refused: images routinely carry
``su`` or ``passwd``, and in a sandbox they must be plain files.
"""

from __future__ import annotations

import posixpath
import tarfile
from dataclasses import dataclass

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"

DIR, FILE, SYMLINK, HARDLINK, WHITEOUT_FILE, OPAQUE_DIR, ROOT = (
    "dir", "file", "symlink", "hardlink", "whiteout", "opaque", "root")


class ImageError(ValueError):
    """The image (or one of its entries) is refused; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Entry:
    kind: str
    path: str  # relative to the root, normalised, never empty but for ROOT
    mode: int = 0o755  # permission bits to give it, setuid/setgid/sticky dropped
    size: int = 0
    target: str = ""  # a symlink's target as written; a hard link's target path (normalised)


def clean_path(name: str) -> str:
    """A member name as a path inside the root, or ImageError. ``""`` is the root itself."""
    if "\x00" in name:
        raise ImageError(f"entry {name!r}: NUL in its name")
    if name.startswith("/"):
        raise ImageError(f"entry {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImageError(f"entry {name!r}: '..' in its path")
    return "/".join(parts)


def link_escapes(path: str, target: str) -> bool:
    """Would following symlink ``path`` -> ``target`` leave the root? An absolute target is
    resolved inside the root (that is how the sandbox sees it); a relative one from the link's
    directory, and it must not climb above the root."""
    if not target:
        return True
    if target.startswith("/"):
        return False
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(path) or ".", target))
    return joined == ".." or joined.startswith("../")


def permissions(mode: int, is_dir: bool) -> int:
    """The bits an unpacked entry gets: its rwx bits only, and readable (and, where its owner
    may, executable) by everyone — the job runs as an unprivileged uid, and the root is
    mounted read-only, so what matters is that the job can read its own image."""
    perm = mode & 0o777
    if perm & 0o400 or is_dir:
        perm |= 0o444
    if perm & 0o100 or is_dir:
        perm |= 0o111
    return perm | 0o200  # the worker must be able to remove it from its cache


def classify(info: tarfile.TarInfo) -> Entry:
    """One header as an :class:`Entry`, or ImageError naming the entry and what is wrong."""
    path = clean_path(info.name)
    base = posixpath.basename(path)
    if not path:
        if not info.isdir():
            raise ImageError(f"entry {info.name!r}: the root is not a directory")
        return Entry(ROOT, "", permissions(info.mode, True))
    if base.startswith(WHITEOUT):
        parent = posixpath.dirname(path)
        if base == OPAQUE:
            return Entry(OPAQUE_DIR, parent)
        hidden = base[len(WHITEOUT):]
        if hidden in ("", ".", "..") or hidden.startswith(WHITEOUT):
            raise ImageError(f"entry {info.name!r}: malformed whiteout")
        return Entry(WHITEOUT_FILE, posixpath.join(parent, hidden) if parent else hidden)
    if info.isdir():
        return Entry(DIR, path, permissions(info.mode, True))
    if info.isreg():
        if info.size < 0:
            raise ImageError(f"entry {info.name!r}: negative size")
        return Entry(FILE, path, permissions(info.mode, False), info.size)
    if info.issym():
        if link_escapes(path, info.linkname):
            raise ImageError(f"entry {info.name!r}: symbolic link to {info.linkname!r} leaves the image")
        return Entry(SYMLINK, path, target=info.linkname)
    if info.islnk():
        try:
            target = clean_path(info.linkname)
        except ImageError:
            raise ImageError(f"entry {info.name!r}: hard link to {info.linkname!r} leaves the image") from None
        if not target or target == path:
            raise ImageError(f"entry {info.name!r}: hard link to {info.linkname!r} is not a file of the image")
        return Entry(HARDLINK, path, target=target)
    if info.ischr() or info.isblk():
        raise ImageError(f"entry {info.name!r}: device node")
    if info.isfifo():
        raise ImageError(f"entry {info.name!r}: FIFO")
    raise ImageError(f"entry {info.name!r}: unsupported tar entry type {info.type!r}")
