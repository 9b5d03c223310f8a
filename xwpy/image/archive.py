"""Read an image archive and prove it is whole: every digest and size it declares holds.

Two formats, both plain tar files as ``podman save`` / ``docker save`` / ``skopeo copy`` write:

- docker-archive: ``manifest.json`` lists one image's config and layer tars; the config's
  ``rootfs.diff_ids`` are the sha256 of each uncompressed layer.
- oci-archive: an OCI image layout — ``oci-layout``, ``index.json``, ``blobs/sha256/…`` — where
  the index names a manifest, which names a config and layers by digest and size.

:func:`inspect` reads every byte once: each blob is hashed as it streams, each layer is
decompressed and its entries classified (:mod:`.entries`) and counted against the limits. The
archive is never extracted here; :mod:`.unpack` does that, verifying the same digests again.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

from xwpy import platforms
from xwpy.image.entries import FILE, ImageError, classify

DOCKER, OCI = "docker-archive", "oci-archive"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_GZIP_MAGIC = b"\x1f\x8b"
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


def environment(env: tuple[str, ...] | list[str]) -> dict[str, str]:
    """An image config's ``Env`` (``NAME=VALUE`` items) as a mapping; malformed items ignored."""
    out: dict[str, str] = {}
    for item in env:
        name, sep, value = item.partition("=")
        if sep and name:
            out[name] = value
    return out


def is_digest(value: object) -> bool:
    return isinstance(value, str) and DIGEST_RE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_archive_bytes: int = 2 << 30
    max_files: int = 200_000  # entries over all layers
    max_unpacked_bytes: int = 4 << 30  # regular files' bytes over all layers
    max_json_bytes: int = 1 << 20  # manifest, index, config


@dataclass(frozen=True, slots=True)
class Layer:
    member: str  # its name in the archive
    digest: str  # sha256 of the blob as stored ("" when the format does not name it)
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # of the blob as stored


@dataclass(frozen=True)
class Image:
    format: str
    id: str  # the config's digest: the same image saved in either format has the same id
    layers: tuple[Layer, ...]
    platform: str
    env: tuple[str, ...] = ()
    workdir: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    files: int = 0
    unpacked_bytes: int = 0
    tags: tuple[str, ...] = field(default=())

    def argv(self, command: list[str] | tuple[str, ...]) -> list[str]:
        """What runs: the image's entrypoint, then the app's command (or the image's Cmd)."""
        return [*self.entrypoint, *(command or self.cmd)]

    def environment(self) -> dict[str, str]:
        return environment(self.env)

    def to_json(self) -> dict:
        """What the worker needs to run it (it still verifies every layer as it unpacks)."""
        return {"format": self.format, "id": self.id, "platform": self.platform, "env": list(self.env),
                "workdir": self.workdir, "entrypoint": list(self.entrypoint), "cmd": list(self.cmd),
                "files": self.files, "unpacked_bytes": self.unpacked_bytes}


class _Hashing(io.RawIOBase):
    """Reads through, hashing and counting what passes."""

    def __init__(self, raw: IO[bytes], limit: int | None = None, what: str = ""):
        self.raw, self.hash, self.count, self.limit, self.what = raw, hashlib.sha256(), 0, limit, what

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.hash.update(data)
        self.count += n
        if self.limit is not None and self.count > self.limit:
            raise ImageError(f"{self.what} is larger than {self.limit} bytes")
        return n

    def drain(self) -> None:
        while self.read(1 << 20):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class Archive:
    """An open image archive: its members by name, read without ever extracting them."""

    def __init__(self, path: Path, limits: ImageLimits):
        self.path, self.limits = Path(path), limits
        size = self.path.stat().st_size
        if size > limits.max_archive_bytes:
            raise ImageError(f"image archive is {size} bytes, more than the limit of {limits.max_archive_bytes}")
        try:
            self.tar = tarfile.open(self.path, "r:")
            infos = self.tar.getmembers()
        except (tarfile.TarError, EOFError) as e:
            raise ImageError(f"not an image archive (docker-archive or oci-archive tar): {e}") from None
        self.members: dict[str, tarfile.TarInfo] = {}
        for info in infos:
            name = info.name.removeprefix("./")
            if name in self.members and not info.isdir():
                raise ImageError(f"image archive holds {name!r} twice")
            self.members[name] = info

    def close(self) -> None:
        self.tar.close()

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self, name: str) -> IO[bytes]:
        info = self.members.get(name.removeprefix("./"))
        if info is None or not (info.isreg() or info.issym() or info.islnk()):
            raise ImageError(f"image archive has no file {name!r}")
        f = self.tar.extractfile(info)
        if f is None:
            raise ImageError(f"image archive has no file {name!r}")
        return f

    def json(self, name: str, digest: str = "") -> dict | list:
        f = self.open(name)
        data = f.read(self.limits.max_json_bytes + 1)
        if len(data) > self.limits.max_json_bytes:
            raise ImageError(f"{name} is larger than {self.limits.max_json_bytes} bytes")
        if digest and "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise ImageError(f"{name}: content does not match its digest {digest}")
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise ImageError(f"{name} is not JSON") from None

    def layer_stream(self, layer: Layer) -> tuple[_Hashing, _Hashing]:
        """(the blob as stored, the uncompressed tar), both hashing as they are read."""
        blob = _Hashing(self.open(layer.member), layer.size or self.limits.max_archive_bytes, layer.member)
        head = self.open(layer.member).read(2)
        if head == _GZIP_MAGIC:
            plain = _Hashing(gzip.GzipFile(fileobj=io.BufferedReader(blob), mode="rb"))
        else:
            plain = _Hashing(blob)
        return blob, plain


def _digest(value: object, what: str) -> str:
    if not is_digest(value):
        raise ImageError(f"{what}: {value!r} is not a sha256 digest")
    return value


def _blob(digest: str) -> str:
    return "blobs/sha256/" + digest.removeprefix("sha256:")


def _strings(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ImageError(f"image config: {what} is not a list of strings")
    return tuple(value)


def _read_docker(ar: Archive) -> tuple[dict, str, list[Layer], tuple[str, ...]]:
    manifest = ar.json("manifest.json")
    if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
        n = len(manifest) if isinstance(manifest, list) else 0
        raise ImageError(f"manifest.json describes {n} images; save exactly one")
    entry = manifest[0]
    config_name = entry.get("Config")
    if not isinstance(config_name, str):
        raise ImageError("manifest.json: no Config")
    # The config's name is its digest (<hex>.json, or blobs/sha256/<hex> since Docker 25).
    stem = config_name.removesuffix(".json").rsplit("/", 1)[-1]
    config_digest = f"sha256:{stem}" if re.fullmatch(r"[0-9a-f]{64}", stem) else ""
    config = ar.json(config_name, config_digest)
    if not isinstance(config, dict):
        raise ImageError(f"{config_name} is not an image config")
    if not config_digest:
        config_digest = "sha256:" + hashlib.sha256(ar.open(config_name).read()).hexdigest()
    names = _strings(entry.get("Layers"), "manifest Layers")
    diff_ids = [_digest(d, "rootfs.diff_ids") for d in (config.get("rootfs") or {}).get("diff_ids") or []]
    if len(diff_ids) != len(names):
        raise ImageError(f"manifest.json names {len(names)} layers, the config {len(diff_ids)}")
    layers = [Layer(name, "", diff, ar.members[name].size if name in ar.members else 0) for name, diff in zip(names, diff_ids)]
    return config, config_digest, layers, _strings(entry.get("RepoTags"), "RepoTags")


def _pick(index: dict, what: str) -> dict:
    manifests = index.get("manifests")
    if not isinstance(manifests, list) or not manifests:
        raise ImageError(f"{what} names no manifest")
    if len(manifests) == 1:
        return manifests[0]
    here = platforms.this_platform()
    for m in manifests:
        p = m.get("platform") or {}
        if platforms.normalize(str(p.get("os", "")), str(p.get("architecture", ""))) == here:
            return m
    raise ImageError(f"{what} names {len(manifests)} manifests and none for {here}; save one")


def _read_oci(ar: Archive) -> tuple[dict, str, list[Layer], tuple[str, ...]]:
    index = ar.json("index.json")
    if not isinstance(index, dict):
        raise ImageError("index.json is not an OCI index")
    desc = _pick(index, "index.json")
    for _ in range(2):  # an index may point at a nested index (a multi-platform image)
        if desc.get("mediaType") not in _INDEX_TYPES:
            break
        digest = _digest(desc.get("digest"), "index.json")
        desc = _pick(ar.json(_blob(digest), digest), digest)
    digest = _digest(desc.get("digest"), "index.json manifest")
    manifest = ar.json(_blob(digest), digest)
    if not isinstance(manifest, dict) or not isinstance(manifest.get("config"), dict):
        raise ImageError(f"manifest {digest} has no config")
    config_digest = _digest(manifest["config"].get("digest"), "manifest config")
    config = ar.json(_blob(config_digest), config_digest)
    if not isinstance(config, dict):
        raise ImageError("the image config is not a JSON object")
    descs = manifest.get("layers")
    if not isinstance(descs, list):
        raise ImageError(f"manifest {digest} has no layers")
    diff_ids = [_digest(d, "rootfs.diff_ids") for d in (config.get("rootfs") or {}).get("diff_ids") or []]
    if len(diff_ids) != len(descs):
        raise ImageError(f"the manifest names {len(descs)} layers, the config {len(diff_ids)}")
    layers = []
    for d, diff in zip(descs, diff_ids):
        media = str(d.get("mediaType", ""))
        if "zstd" in media:
            raise ImageError(f"layer {d.get('digest')}: zstd layers are not supported; save with gzip or uncompressed layers")
        size = d.get("size")
        if not isinstance(size, int) or size < 0:
            raise ImageError(f"layer {d.get('digest')}: no size")
        ld = _digest(d.get("digest"), "layer")
        layers.append(Layer(_blob(ld), ld, diff, size))
    tag = (desc.get("annotations") or {}).get("org.opencontainers.image.ref.name")
    return config, config_digest, layers, ((tag,) if isinstance(tag, str) else ())


def read(ar: Archive) -> Image:
    """The image an archive describes, from its JSON alone (layers not yet verified)."""
    if "manifest.json" in ar.members:
        fmt, (config, config_digest, layers, tags) = DOCKER, _read_docker(ar)
    elif "index.json" in ar.members:
        fmt, (config, config_digest, layers, tags) = OCI, _read_oci(ar)
    else:
        raise ImageError("not an image archive: no manifest.json (docker-archive) or index.json (oci-archive)")
    if not layers:
        raise ImageError("the image has no layers")
    for layer in layers:
        if layer.member not in ar.members:
            raise ImageError(f"image archive lacks layer {layer.member}")
    inner = config.get("config") or {}
    if not isinstance(inner, dict):
        raise ImageError("image config: config is not an object")
    os_name, arch = config.get("os"), config.get("architecture")
    platform = platforms.normalize(os_name, arch) if isinstance(os_name, str) and isinstance(arch, str) else platforms.ANY
    workdir = inner.get("WorkingDir") or ""
    if not isinstance(workdir, str) or (workdir and not workdir.startswith("/")):
        raise ImageError(f"image config: WorkingDir {workdir!r} is not an absolute path")
    return Image(fmt, config_digest, tuple(layers), platform, env=_strings(inner.get("Env"), "Env"),
                 workdir=workdir, entrypoint=_strings(inner.get("Entrypoint"), "Entrypoint"),
                 cmd=_strings(inner.get("Cmd"), "Cmd"), tags=tags)


def layer_entries(ar: Archive, layer: Layer) -> Iterator[tuple[tarfile.TarFile, tarfile.TarInfo]]:
    """A layer's entries in order, its digests checked once the last has been read."""
    blob, plain = ar.layer_stream(layer)
    try:
        tf = tarfile.open(fileobj=plain, mode="r|")
        for info in tf:
            yield tf, info
        plain.drain()
        blob.drain()
    except (tarfile.TarError, EOFError, OSError, gzip.BadGzipFile) as e:
        raise ImageError(f"layer {layer.member}: not a tar archive ({e})") from None
    if layer.digest and blob.digest != layer.digest:
        raise ImageError(f"layer {layer.member}: content does not match its digest {layer.digest}")
    if layer.size and blob.count != layer.size:
        raise ImageError(f"layer {layer.member}: {blob.count} bytes, its manifest says {layer.size}")
    if plain.digest != layer.diff_id:
        raise ImageError(f"layer {layer.member}: content does not match its diff_id {layer.diff_id}")


def inspect(path: Path, limits: ImageLimits = ImageLimits()) -> Image:
    """Read and verify a whole archive: every digest, size and layer entry. ImageError if not."""
    with Archive(path, limits) as ar:
        image = read(ar)
        files = size = 0
        for layer in image.layers:
            for _, info in layer_entries(ar, layer):
                entry = classify(info)
                files += 1
                size += entry.size if entry.kind == FILE else 0
                if files > limits.max_files:
                    raise ImageError(f"the image holds more than {limits.max_files} files")
                if size > limits.max_unpacked_bytes:
                    raise ImageError(f"the image unpacks to more than {limits.max_unpacked_bytes} bytes")
    return Image(**{**image.__dict__, "files": files, "unpacked_bytes": size})
