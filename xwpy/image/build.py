"""Write an image archive from a directory, with no registry and no container engine.

What ``podman save`` would write, byte for byte reproducible (sorted names, mtime 0, owner 0):
the demo builds its image app with it, and the tests build good and hostile images. ``xwpy image
build DIR -o FILE -- CMD...`` exposes it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

from xwpy import platforms
from xwpy.image.archive import DOCKER, OCI

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER = "application/vnd.oci.image.layer.v1.tar"


def _info(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname = kind, mode, size, link
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = 0, 0, 0, "", ""
    return ti


def layer_from_dir(root: Path) -> bytes:
    """A layer tar of ``root``'s directories, files and symbolic links (others are skipped)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            for name in sorted(dirnames + filenames):
                path = Path(dirpath, name)
                rel = name if rel_dir == "." else f"{rel_dir}/{name}"
                st = path.lstat()
                if stat.S_ISDIR(st.st_mode):
                    tf.addfile(_info(rel, tarfile.DIRTYPE, st.st_mode & 0o777))
                elif stat.S_ISLNK(st.st_mode):
                    tf.addfile(_info(rel, tarfile.SYMTYPE, 0o777, link=os.readlink(path)))
                elif stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as f:
                        tf.addfile(_info(rel, tarfile.REGTYPE, st.st_mode & 0o777, st.st_size), f)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    tf.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))


def write(out: Path, layers: list[bytes], *, entrypoint: list[str] | None = None, cmd: list[str] | None = None,
          env: list[str] | None = None, workdir: str = "", platform: str = "", fmt: str = OCI,
          compress: bool = False, tag: str = "localhost/xwpy-image:latest") -> str:
    """Write an image of ``layers`` (uncompressed layer tars, lowest first) to ``out``; returns
    its id (the config's digest)."""
    os_name, _, arch = (platform or platforms.this_platform()).partition("-")
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch)
    inner: dict = {"Env": env if env is not None else ["PATH=/usr/local/bin:/usr/bin:/bin"]}
    if entrypoint:
        inner["Entrypoint"] = entrypoint
    if cmd:
        inner["Cmd"] = cmd
    if workdir:
        inner["WorkingDir"] = workdir
    config = {"architecture": arch, "os": os_name, "config": inner,
              "rootfs": {"type": "layers", "diff_ids": [_sha(layer) for layer in layers]}}
    config_bytes = json.dumps(config, sort_keys=True).encode()
    blobs = [gzip.compress(layer, mtime=0) if compress else layer for layer in layers]
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tf:
        if fmt == DOCKER:
            config_name = _sha(config_bytes).removeprefix("sha256:") + ".json"
            names = [f"{_sha(layer).removeprefix('sha256:')}/layer.tar" for layer in layers]
            _add(tf, config_name, config_bytes)
            for name, blob in zip(names, blobs):
                _add(tf, name, blob)
            _add(tf, "manifest.json", json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": names}]).encode())
        else:
            media = MEDIA_LAYER + ("+gzip" if compress else "")
            manifest = {"schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
                        "config": {"mediaType": MEDIA_CONFIG, "digest": _sha(config_bytes), "size": len(config_bytes)},
                        "layers": [{"mediaType": media, "digest": _sha(b), "size": len(b)} for b in blobs]}
            manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
            index = {"schemaVersion": 2, "manifests": [{
                "mediaType": MEDIA_MANIFEST, "digest": _sha(manifest_bytes), "size": len(manifest_bytes),
                "annotations": {"org.opencontainers.image.ref.name": tag}}]}
            _add(tf, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
            _add(tf, "index.json", json.dumps(index, sort_keys=True).encode())
            for data in (manifest_bytes, config_bytes, *blobs):
                name = "blobs/sha256/" + _sha(data).removeprefix("sha256:")
                if name not in tf.getnames():
                    _add(tf, name, data)
    return _sha(config_bytes)


def _libraries(program: str) -> list[str]:
    """The shared libraries ``program`` loads (none for a static one), from ``ldd``."""
    try:
        out = subprocess.run(["ldd", program], capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return []
    libs = []
    for line in out.splitlines():
        for word in line.split():
            if word.startswith("/") and os.path.exists(word):
                libs.append(word)
    return libs


def add_program(root: Path, program: str, name: str = "") -> Path:
    """Copy ``program`` and the libraries it loads into ``root`` at their own paths (the binary
    under ``bin/NAME``): enough to run it there with no other userland."""
    for lib in _libraries(program):
        dst = root / lib.lstrip("/")
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(os.path.realpath(lib), dst)
        dst.chmod(0o755)
    target = root / "bin" / (name or os.path.basename(program))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(program, target)
    target.chmod(0o755)
    return target


def busybox_root(root: Path, busybox: str = "", applets: tuple[str, ...] = ()) -> Path:
    """A minimal root: busybox (static or with its libraries) and its applets as links. Debian's
    ``busybox`` package is enough; the demo and the tests build their images from it."""
    busybox = busybox or shutil.which("busybox") or "/bin/busybox"
    for d in ("etc", "tmp", "work"):
        (root / d).mkdir(parents=True, exist_ok=True)
    add_program(root, busybox, "busybox")
    for applet in applets or ("sh", "cat", "echo", "gzip", "sha256sum", "ls", "wc", "tr", "sort", "id", "env", "head"):
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    return root
