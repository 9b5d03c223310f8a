"""The worker's cache of unpacked images: each image unpacked once per host, then shared by
every job that runs in it (read-only: the sandbox binds it as the job's root).

An image is unpacked into a fresh directory no job can see, verified layer by layer as it goes
(:mod:`xwpy.image.unpack`), and renamed into place only when whole: a crash mid-unpack leaves a
``.tmp-`` directory that the next start removes, never a half image. Entries are named by the
image's id (its config digest). Blocking: call from a thread.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from twisted.logger import Logger

from xwpy.image import ImageLimits
from xwpy.image.archive import is_digest
from xwpy.image.entries import clean_path
from xwpy.image.unpack import Root, unpack
from xwpy.worker.bwrap import JOB_DIR, TMP_DIR

log = Logger()


@dataclass
class CacheStats:
    unpacks: int = 0
    hits: int = 0
    unpack_seconds: float = 0.0
    unpacked_bytes: int = 0


# Where the sandbox mounts its own: /proc, /dev, /tmp, the job's directory (JOB_DIR, or the
# image's WorkingDir: added by the caller), resolv.conf for a networked job.
MOUNT_POINTS = ("proc", "dev", TMP_DIR.lstrip("/"), JOB_DIR.lstrip("/"), "etc/resolv.conf")


def _mount_points(root: Path, paths: tuple[str, ...]) -> None:
    for rel in paths:
        rel = clean_path(rel)
        if not rel:
            continue
        target = Root(root).parent(rel)  # its parents: real directories (a link could lead out)
        want_file = rel == "etc/resolv.conf"
        st = os.lstat(target) if os.path.lexists(target) else None
        if st is not None and (stat.S_ISREG(st.st_mode) if want_file else stat.S_ISDIR(st.st_mode)):
            continue
        if st is not None:
            shutil.rmtree(target) if stat.S_ISDIR(st.st_mode) else os.unlink(target)
        if want_file:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644))
        else:
            os.mkdir(target, 0o755)


class ImageCache:
    def __init__(self, root: Path, limits: ImageLimits = ImageLimits()):
        self.root = root
        self.limits = limits
        self.stats = CacheStats()
        root.mkdir(mode=0o755, parents=True, exist_ok=True)
        for leftover in root.glob(".tmp-*"):  # an unpack cut short by a crash
            shutil.rmtree(leftover, ignore_errors=True)

    def _dir(self, image_id: str) -> Path:
        if not is_digest(image_id):
            raise ValueError(f"image id {image_id!r} is not a sha256 digest")
        return self.root / image_id.removeprefix("sha256:")

    def lookup(self, image_id: str) -> Path | None:
        path = self._dir(image_id)
        if path.is_dir():
            self.stats.hits += 1
            return path
        return None

    def unpack(self, image_id: str, archive: Path, mount_points: tuple[str, ...] = MOUNT_POINTS) -> Path:
        """Unpack ``archive`` (which must hold image ``image_id``) unless already there, with the
        directories (and ``etc/resolv.conf``) the sandbox mounts over made: its root is bound
        read-only, where nothing can be created."""
        final = self._dir(image_id)
        if final.is_dir():
            self.stats.hits += 1
            return final
        tmp = self.root / f".tmp-{final.name}-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        try:
            done = unpack(archive, tmp, self.limits, expect_id=image_id)
            _mount_points(tmp, mount_points)
            os.chmod(tmp, 0o755)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        took = time.monotonic() - started
        self.stats.unpacks += 1
        self.stats.unpack_seconds += took
        self.stats.unpacked_bytes += done.bytes
        log.info("image {id} unpacked: {files} files, {bytes} bytes in {s:.2f} s",
                 id=image_id[:19], files=done.files, bytes=done.bytes, s=took)
        return final
