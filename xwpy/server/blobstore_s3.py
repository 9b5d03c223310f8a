"""The blob store in an object store speaking the S3 API ([blobs] backend = "s3"): SeaweedFS here,
MinIO or AWS S3 alike. The same methods as :class:`xwpy.server.blobstore.BlobStore`, plus the
presigned URLs with which workers move their inputs and results directly, not through the
coordinator (:meth:`presign_get`, :meth:`presign_put`).

What holds the hash check when the bytes never pass through the coordinator: the store's own
SHA-256 checksum (S3's ``x-amz-checksum-sha256``). Every object is written with it — by the
coordinator, and by a worker through a presigned PUT whose signature covers that header, so the
worker can send neither another checksum nor none — and the store computes the body's SHA-256
and refuses (400 BadDigest) a body that does not match it. Checked on SeaweedFS 4.48: a wrong
body is refused, a missing or changed header fails the signature, an expired URL is refused,
HeadObject (ChecksumMode ENABLED) answers the checksum recorded. The signed
``x-amz-content-sha256`` of a presigned request is NOT checked by SeaweedFS, so it is not used.

Before a result counts, :meth:`size` asks the store (HeadObject) for the object's recorded
checksum and accepts it only if it is the sha256 the blob is named by: an object overwritten
in the store with another body (by anyone holding the store's keys) has another checksum, or
none, and is refused and set aside. The coordinator trusts the store's record of what it
received: someone able to forge the store's metadata itself (its filer, its disks) is not
stopped here. Blobs read whole through the coordinator (verifiers, comparators, clients'
downloads, image checks) are hashed again as they are read, as on disk.

A local directory (``root``) holds what passes through the coordinator on its way in (``tmp/``,
the resumable upload sessions) and a cache of blobs it serves itself (``cache/``). Everything
here blocks: call it from a thread. Constructors do no I/O; :func:`open_store` does.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
import tomllib
from pathlib import Path
from typing import BinaryIO

from xwpy.server import blobstore
from xwpy.server.blobstore import Corrupt, DigestMismatch, StoreFull, StoreUnavailable, TooLarge

MAX_PUT = 5 << 30  # S3's largest single PUT (a bigger blob needs a multipart upload: not done)
_HEX = frozenset("0123456789abcdef")


def b64_of(sha256: str) -> str:
    """A hex sha256 as S3 writes checksums: base64 of the 32 bytes."""
    return base64.b64encode(bytes.fromhex(sha256)).decode()


def read_credentials(path: str) -> tuple[str, str]:
    """(access key, secret key) from a TOML file ``access_key = "..."``, ``secret_key = "..."``."""
    with open(path, "rb") as f:
        raw = tomllib.load(f)
    try:
        return str(raw["access_key"]), str(raw["secret_key"])
    except KeyError as e:
        raise ValueError(f"{path}: no {e.args[0]}") from None


def client(endpoint: str, region: str, access_key: str | None, secret_key: str | None):
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, connect_timeout=10,
                      read_timeout=60, retries={"max_attempts": 3, "mode": "standard"},
                      max_pool_connections=16),
    )


def open_store(cfg) -> "S3BlobStore":
    """The site's S3 blob store (blocking): its clients, its bucket (created if missing)."""
    b = cfg.blob_store
    keys = read_credentials(str(cfg.path(b.credentials_file))) if b.credentials_file else (None, None)
    main = client(b.endpoint, b.region, *keys)
    public = client(b.public_endpoint, b.region, *keys) if b.public_endpoint else main
    store = S3BlobStore(cfg.blobs, main, public, b.bucket, b.prefix, cache_bytes=b.cache_bytes)
    store.start()
    return store


def _status(e: Exception) -> int | None:
    return getattr(e, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")


class S3BlobStore:
    remote = True  # its methods talk to a server: never call them on the reactor

    def __init__(self, root: Path, s3, public, bucket: str, prefix: str = "blobs/", *, cache_bytes: int = 1 << 30):
        self.root = Path(root)
        self.s3, self.public, self.bucket, self.prefix = s3, public, bucket, prefix
        self.cache_bytes = cache_bytes
        self._tmp = self.root / "tmp"
        self._cache = self.root / "cache"

    def start(self) -> None:
        """Make the local directories (emptied of what a crash left) and the bucket (blocking)."""
        from botocore.exceptions import BotoCoreError, ClientError

        for d in (self._tmp, self._cache):
            d.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():
            leftover.unlink(missing_ok=True)
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            if _status(e) != 404:
                raise StoreUnavailable(f"bucket {self.bucket}: {e}") from None
            self.s3.create_bucket(Bucket=self.bucket)
        except BotoCoreError as e:
            raise StoreUnavailable(f"the object store does not answer: {e}") from None

    # -- names -------------------------------------------------------------------------------------

    def key(self, sha256: str) -> str:
        return self.prefix + sha256

    def _touched(self, sha256: str) -> str:
        return f"{self.prefix}touched/{sha256}"

    def _corrupt(self, sha256: str) -> str:
        return f"{self.prefix}corrupt/{sha256}"

    def path(self, sha256: str) -> Path:
        """Where :meth:`fetch` keeps a local copy."""
        return self._cache / sha256

    # -- what is stored ----------------------------------------------------------------------------

    def _head(self, key: str, checksum: bool = False) -> dict | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            if checksum:
                return self.s3.head_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
            return self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if _status(e) == 404:
                return None
            raise StoreUnavailable(f"{key}: {e}") from None
        except BotoCoreError as e:
            raise StoreUnavailable(f"the object store does not answer: {e}") from None

    def size(self, sha256: str) -> int | None:
        """The size of the blob if the store holds it AND the store's recorded SHA-256 of what it
        received is its name; None if absent. One whose checksum differs or is missing (written
        around the coordinator, or damaged) is set aside (:meth:`quarantine`) and counts as absent."""
        head = self._head(self.key(sha256), checksum=True)
        if head is None:
            return None
        if head.get("ChecksumSHA256") != b64_of(sha256):
            self.quarantine(sha256)
            return None
        return int(head["ContentLength"])

    def verify(self, sha256: str) -> tuple[int | None, str]:
        """(size, "") of a blob stored as named; (None, why) when absent or refused (set aside)."""
        head = self._head(self.key(sha256), checksum=True)
        if head is None:
            return None, "missing"
        got = head.get("ChecksumSHA256")
        if got != b64_of(sha256):
            self.quarantine(sha256)
            return None, f"the store's checksum is {got or 'missing'}, not that of {sha256}"
        return int(head["ContentLength"]), ""

    def quarantined(self, sha256: str) -> bool:
        return self._head(self._corrupt(sha256)) is not None

    def quarantine(self, sha256: str) -> None:
        """Move a refused object to PREFIX/corrupt/ (kept for inspection): no longer served."""
        from botocore.exceptions import BotoCoreError, ClientError

        key = self.key(sha256)
        try:
            self.s3.copy_object(Bucket=self.bucket, Key=self._corrupt(sha256),
                                CopySource={"Bucket": self.bucket, "Key": key})
        except (BotoCoreError, ClientError):
            pass  # set aside or not, it goes
        try:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError):
            pass
        self.path(sha256).unlink(missing_ok=True)

    # -- writing -----------------------------------------------------------------------------------

    def _put_file(self, path: Path | str, sha256: str, size: int) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        if size > MAX_PUT:
            raise TooLarge(f"{size} bytes: more than the {MAX_PUT} an object store takes in one PUT")
        try:
            with open(path, "rb") as f:
                self.s3.put_object(Bucket=self.bucket, Key=self.key(sha256), Body=f, ContentLength=size,
                                   ChecksumSHA256=b64_of(sha256))
        except ClientError as e:
            if _status(e) == 400 and "BadDigest" in str(e):
                raise DigestMismatch(f"the store found the content does not hash to {sha256}") from None
            if _status(e) in (507, 413):
                raise StoreFull(f"the object store is full: {e}") from None
            raise StoreUnavailable(f"storing {sha256}: {e}") from None
        except BotoCoreError as e:
            raise StoreUnavailable(f"the object store does not answer: {e}") from None

    def put_stream(self, src: BinaryIO, expected: str | None, max_size: int) -> tuple[str, int]:
        """Spool what ``src`` yields (hashed as it is written), check it, send it to the store."""
        try:
            tmp, digest, size = blobstore.spool(src, self._tmp, max_size)
        except OSError as e:
            raise StoreFull(f"no room to spool the data: {e.strerror}") from None
        try:
            if expected is not None and digest != expected:
                raise DigestMismatch(f"content hashes to {digest}, not {expected}")
            self._put_file(tmp, digest, size)
            return digest, size
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def put_bytes(self, data: bytes, expected: str | None = None) -> tuple[str, int]:
        from botocore.exceptions import BotoCoreError, ClientError

        digest = hashlib.sha256(data).hexdigest()
        if expected is not None and digest != expected:
            raise DigestMismatch(f"content hashes to {digest}, not {expected}")
        if self.size(digest) is not None:
            self.touch(digest)
            return digest, len(data)
        try:
            self.s3.put_object(Bucket=self.bucket, Key=self.key(digest), Body=data, ChecksumSHA256=b64_of(digest))
        except (BotoCoreError, ClientError) as e:
            raise StoreUnavailable(f"storing {digest}: {e}") from None
        return digest, len(data)

    def install(self, tmp: str, digest: str) -> None:
        """Send a verified file (an upload session's) to the store; then the file goes."""
        self._put_file(tmp, digest, os.path.getsize(tmp))
        os.unlink(tmp)  # (kept when the store refused it: an upload session finishes later)

    # -- reading -----------------------------------------------------------------------------------

    def _get_to(self, sha256: str, dest: Path) -> None:
        """Download the blob to ``dest`` (via a temporary name), hashed: Corrupt if it differs."""
        from botocore.exceptions import BotoCoreError, ClientError

        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    body = self.s3.get_object(Bucket=self.bucket, Key=self.key(sha256))["Body"]
                    while block := body.read(1 << 20):
                        h.update(block)
                        out.write(block)
                except ClientError as e:
                    if _status(e) == 404:
                        raise FileNotFoundError(sha256) from None
                    raise StoreUnavailable(f"reading {sha256}: {e}") from None
                except BotoCoreError as e:
                    raise StoreUnavailable(f"the object store does not answer: {e}") from None
            if h.hexdigest() != sha256:
                self.quarantine(sha256)
                raise Corrupt(f"stored blob {sha256} is damaged (its content hashes to {h.hexdigest()})")
            os.chmod(tmp, 0o644)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def fetch(self, sha256: str) -> Path | None:
        """A local copy of the blob (cached; checked when fetched), or None if not stored."""
        path = self.path(sha256)
        try:
            os.utime(path)  # a hit: the most recently used now
        except FileNotFoundError:
            try:
                self._get_to(sha256, path)
            except FileNotFoundError:
                return None
            self._trim_cache(path)
        return path

    def _trim_cache(self, keep: Path) -> None:
        """Remove the least recently used local copies until the cache holds at most cache_bytes
        (the copy just fetched stays, whatever its size: its caller is about to read it)."""
        entries = []
        for p in self._cache.iterdir():
            try:
                st = p.stat()
            except FileNotFoundError:  # (removed by another thread meanwhile)
                continue
            entries.append((st.st_mtime_ns, st.st_size, p))
        total = sum(size for _, size, _ in entries)
        for _, size, p in sorted(entries):
            if total <= self.cache_bytes:
                break
            if p != keep:
                p.unlink(missing_ok=True)
                total -= size

    def read(self, sha256: str) -> bytes:
        path = self.fetch(sha256)
        if path is None:
            raise FileNotFoundError(sha256)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:  # the cached copy, damaged since
            path.unlink(missing_ok=True)
            raise Corrupt(f"the cached copy of {sha256} is damaged")
        return data

    def copy_to(self, sha256: str, dest: Path) -> None:
        self._get_to(sha256, Path(dest))

    # -- presigned URLs: a worker's transfers, directly with the store -----------------------------

    def presign_get(self, sha256: str, seconds: float) -> str:
        """A URL that GETs this blob (and nothing else) for ``seconds``."""
        return self.public.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self.key(sha256)}, ExpiresIn=max(1, int(seconds)))

    def presign_put(self, sha256: str, size: int, seconds: float) -> tuple[str, dict[str, str]]:
        """A URL that PUTs this blob for ``seconds``, and the headers to send with it: the store
        refuses a body whose SHA-256 is not ``sha256`` (the checksum header is signed)."""
        b64 = b64_of(sha256)
        url = self.public.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": self.key(sha256), "ChecksumSHA256": b64},
            ExpiresIn=max(1, int(seconds)))
        return url, {"x-amz-checksum-sha256": b64}

    # -- retention (xwpy.server.retention) and health ------------------------------------------------

    def touch(self, sha256: str) -> None:
        """Mark a blob as just stored: an empty PREFIX/touched/SHA object, whose time counts."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.s3.put_object(Bucket=self.bucket, Key=self._touched(sha256), Body=b"")
        except (BotoCoreError, ClientError) as e:
            raise StoreUnavailable(f"touching {sha256}: {e}") from None

    def listing(self) -> dict[str, float]:
        """Every stored blob: sha256 -> when it was last stored (or touched)."""
        out: dict[str, float] = {}
        touched: dict[str, float] = {}
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for obj in page.get("Contents", ()):
                rest = obj["Key"][len(self.prefix):]
                when = obj["LastModified"].timestamp()
                if len(rest) == 64 and _HEX.issuperset(rest):
                    out[rest] = when
                elif rest.startswith("touched/"):
                    touched[rest[8:]] = when
        return {sha: max(when, touched.get(sha, 0.0)) for sha, when in out.items()}

    def remove(self, shas: list[str], stored_before: float | None = None) -> list[str]:
        gone = []
        for sha in shas:
            head = self._head(self.key(sha))
            if head is None:
                continue
            if stored_before is not None:
                mark = self._head(self._touched(sha))
                when = max(head["LastModified"].timestamp(), mark["LastModified"].timestamp() if mark else 0.0)
                if when >= stored_before:
                    continue
            self.s3.delete_object(Bucket=self.bucket, Key=self.key(sha))
            self.s3.delete_object(Bucket=self.bucket, Key=self._touched(sha))
            self.path(sha).unlink(missing_ok=True)
            gone.append(sha)
        return gone

    def probe(self) -> None:
        """Write a small object, read it back, remove it (and the local spool, as on disk)."""
        from botocore.exceptions import BotoCoreError, ClientError

        blobstore.probe(self._tmp)
        data = os.urandom(4096)
        key = f"{self.prefix}probe/{secrets.token_hex(8)}"
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)
            back = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as e:
            raise StoreUnavailable(f"the object store: {e}") from None
        if back != data:
            raise Corrupt("the object store's probe read back differs from what was written")

    def free_bytes(self) -> int:
        """Room on the local spool (the store's own room is its operator's to watch)."""
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize


__all__ = ["S3BlobStore", "StoreUnavailable", "b64_of", "open_store", "read_credentials"]
