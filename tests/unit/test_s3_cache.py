"""The S3 blob store's local copies (blobs it reads or serves itself) stay within [blobs]
cache_bytes, least recently used out first; the copy just fetched always stays."""

from __future__ import annotations

import os
from pathlib import Path

from xwpy.server.blobstore_s3 import S3BlobStore

SIZE = 100


class Store(S3BlobStore):
    """The store with its one download replaced: a blob named "aaa..." is SIZE bytes of 'a'."""

    def __init__(self, root: Path, cache_bytes: int):
        super().__init__(root, None, None, "bucket", cache_bytes=cache_bytes)
        self._cache.mkdir(parents=True)
        self.downloads: list[str] = []

    def _get_to(self, sha256: str, dest: Path) -> None:
        self.downloads.append(sha256[0])
        dest.write_bytes(sha256[0].encode() * SIZE)


def name(c: str) -> str:
    return c * 64


def test_the_least_recently_used_copies_go_past_the_cache_size(tmp_path):
    s = Store(tmp_path, cache_bytes=2 * SIZE + SIZE // 2)
    a, b = s.fetch(name("a")), s.fetch(name("b"))
    os.utime(a, ns=(1_000, 1_000))  # times set, not slept for: a is older than b...
    os.utime(b, ns=(2_000, 2_000))
    assert s.fetch(name("a")) == a  # ...until it is read again (a hit: no download)
    c = s.fetch(name("c"))  # three copies do not fit: the least recently used, b, goes
    assert sorted(p.name[0] for p in s._cache.iterdir()) == ["a", "c"]
    assert a.read_bytes() == b"a" * SIZE and c.exists() and not b.exists()
    assert s.downloads == ["a", "b", "c"]
    assert s.fetch(name("b")).read_bytes() == b"b" * SIZE  # fetched again when needed
    assert s.downloads == ["a", "b", "c", "b"]
    assert sum(p.stat().st_size for p in s._cache.iterdir()) <= s.cache_bytes


def test_a_copy_larger_than_the_cache_stays_for_its_reader(tmp_path):
    s = Store(tmp_path, cache_bytes=SIZE // 2)
    s.fetch(name("a"))
    big = s.fetch(name("b"))
    assert [p.name[0] for p in s._cache.iterdir()] == ["b"] and big.exists()
