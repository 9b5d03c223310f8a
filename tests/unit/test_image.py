"""Image archives: read in both formats, verified, unpacked with whiteouts, hostile ones refused,
and — whatever a layer holds — nothing written outside the unpack directory."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xwpy.image import ImageError, ImageLimits, build, inspect
from xwpy.image.archive import DOCKER, OCI
from xwpy.image.unpack import unpack


def entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644, link: str = "") -> tuple:
    return (name, kind, data, mode, link)


def layer(*entries: tuple) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, data, mode, link in entries:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.linkname = kind, mode, link
            ti.size = len(data) if kind == tarfile.REGTYPE else 0
            if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                ti.devmajor, ti.devminor = 1, 3
            tf.addfile(ti, io.BytesIO(data) if kind == tarfile.REGTYPE else None)
    return buf.getvalue()


def image(tmp_path: Path, *layers: bytes, fmt: str = OCI, compress: bool = False, **config) -> Path:
    out = tmp_path / f"image-{len(list(tmp_path.glob('image-*')))}.tar"
    build.write(out, list(layers), fmt=fmt, compress=compress, **config)
    return out


def tree(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = "-> " + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = p.read_bytes().decode(errors="replace")
    return out


@pytest.mark.parametrize("fmt,compress", [(OCI, False), (OCI, True), (DOCKER, False)])
def test_both_formats_read_and_unpack_alike(tmp_path, fmt, compress):
    base = layer(entry("bin/", tarfile.DIRTYPE, mode=0o755), entry("bin/tool", data=b"#!x", mode=0o755),
                 entry("bin/alias", tarfile.SYMTYPE, link="tool"), entry("etc/hard", tarfile.LNKTYPE, link="bin/tool"))
    path = image(tmp_path, base, fmt=fmt, compress=compress, entrypoint=["/bin/tool"], cmd=["--help"],
                 env=["A=1", "PATH=/bin"], workdir="/work")
    img = inspect(path)
    assert img.format == fmt and img.files == 4 and img.unpacked_bytes == 3
    assert img.argv([]) == ["/bin/tool", "--help"] and img.argv(["x"]) == ["/bin/tool", "x"]
    assert img.environment() == {"A": "1", "PATH": "/bin"} and img.workdir == "/work"
    unpack(path, tmp_path / "root")
    assert tree(tmp_path / "root") == {"bin": "dir", "bin/tool": "#!x", "bin/alias": "-> tool", "etc": "dir", "etc/hard": "#!x"}
    assert os.stat(tmp_path / "root/etc/hard").st_ino == os.stat(tmp_path / "root/bin/tool").st_ino


def test_same_image_in_both_formats_has_one_id(tmp_path):
    one = layer(entry("f", data=b"1"))
    assert inspect(image(tmp_path, one, fmt=OCI)).id == inspect(image(tmp_path, one, fmt=DOCKER)).id


def test_whiteouts_hide_lower_layers_only(tmp_path):
    lower = layer(entry("a/x", data=b"x"), entry("a/y", data=b"y"), entry("b/old", data=b"o"), entry("b/sub/deep", data=b"d"))
    upper = layer(entry("a/.wh.x"), entry("b/new", data=b"n"), entry("b/.wh..wh..opq"),
                  entry("c/mine", data=b"m"), entry("c/.wh.mine"))  # the same layer's own file stays
    unpack(image(tmp_path, lower, upper), tmp_path / "root")
    assert tree(tmp_path / "root") == {"a": "dir", "a/y": "y", "b": "dir", "b/new": "n", "c": "dir", "c/mine": "m"}


def test_setuid_and_setgid_bits_are_dropped_and_files_made_readable(tmp_path):
    unpack(image(tmp_path, layer(entry("su", data=b"s", mode=0o6750), entry("secret", data=b"k", mode=0o600))), tmp_path / "r")
    assert stat.S_IMODE(os.stat(tmp_path / "r/su").st_mode) == 0o755
    assert stat.S_IMODE(os.stat(tmp_path / "r/secret").st_mode) == 0o644


HOSTILE = {
    "absolute path": (layer(entry("/etc/evil", data=b"x")), "absolute path"),
    "dot-dot": (layer(entry("a/../../evil", data=b"x")), "'..'"),
    "escaping symlink": (layer(entry("l", tarfile.SYMTYPE, link="../../etc")), "leaves the image"),
    "escaping nested symlink": (layer(entry("a/b/l", tarfile.SYMTYPE, link="../../../x")), "leaves the image"),
    "hard link outside": (layer(entry("h", tarfile.LNKTYPE, link="../../etc/passwd")), "hard link"),
    "hard link to nothing": (layer(entry("h", tarfile.LNKTYPE, link="etc/passwd")), "not a file of the image"),
    "char device": (layer(entry("dev/mem", tarfile.CHRTYPE)), "device node"),
    "block device": (layer(entry("dev/sda", tarfile.BLKTYPE)), "device node"),
    "fifo": (layer(entry("p", tarfile.FIFOTYPE)), "FIFO"),
    "write through a symlink": (layer(entry("etc", tarfile.SYMTYPE, link="/etc"), entry("etc/passwd", data=b"x")),
                                "is not a directory"),
    "hard link through a symlink": (layer(entry("d", tarfile.SYMTYPE, link="/etc"), entry("h", tarfile.LNKTYPE, link="d/passwd")),
                                    "is not a directory"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_layer_entries_are_refused(tmp_path, name):
    data, why = HOSTILE[name]
    path = image(tmp_path, data)
    with pytest.raises(ImageError, match=why):
        unpack(path, tmp_path / "root")
    # Entries refused by their header alone are refused at upload already.
    if name not in ("hard link to nothing", "write through a symlink", "hard link through a symlink"):
        with pytest.raises(ImageError, match=why):
            inspect(path)
    assert not (tmp_path / "evil").exists()


def test_bombs_are_bounded(tmp_path):
    many = image(tmp_path, layer(*(entry(f"f{i}") for i in range(50))))
    with pytest.raises(ImageError, match="more than 20 files"):
        inspect(many, ImageLimits(max_files=20))
    with pytest.raises(ImageError, match="more than 20 files"):
        unpack(many, tmp_path / "r1", ImageLimits(max_files=20))
    big = image(tmp_path, layer(entry("big", data=b"\0" * 100_000)), compress=True)
    with pytest.raises(ImageError, match="unpacks to more than 1000 bytes"):
        inspect(big, ImageLimits(max_unpacked_bytes=1000))
    with pytest.raises(ImageError, match="is .* bytes, more than the limit"):
        inspect(big, ImageLimits(max_archive_bytes=100))


def _rewrite(path: Path, member_suffix: str, change) -> None:
    """Rewrite one member of an archive (the first whose name ends so)."""
    with tarfile.open(path) as tf:
        members = [(m, tf.extractfile(m).read() if m.isreg() else None) for m in tf.getmembers()]
    done = False
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        for m, data in members:
            if not done and data is not None and m.name.endswith(member_suffix):
                data, done = change(data), True
                m.size = len(data)
            tf.addfile(m, io.BytesIO(data) if data is not None else None)
    assert done


@pytest.mark.parametrize("fmt", [OCI, DOCKER])
def test_a_layer_that_does_not_match_its_digest_is_refused(tmp_path, fmt):
    path = image(tmp_path, layer(entry("f", data=b"good")), fmt=fmt)
    suffix = "layer.tar" if fmt == DOCKER else inspect(path).layers[0].member.rsplit("/", 1)[1]
    _rewrite(path, suffix, lambda data: data.replace(b"good", b"evil"))
    with pytest.raises(ImageError, match="does not match its"):
        inspect(path)
    with pytest.raises(ImageError, match="does not match its"):
        unpack(path, tmp_path / "root")


@pytest.mark.parametrize("content,why", [
    (b"not a tar at all" * 100, "not an image archive"),
    (None, "no manifest.json .* or index.json"),
])
def test_not_an_image(tmp_path, content, why):
    path = tmp_path / "x.tar"
    if content is None:
        with tarfile.open(path, "w") as tf:
            ti = tarfile.TarInfo("hello.txt")
            tf.addfile(ti, io.BytesIO(b""))
    else:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=why):
        inspect(path)


def test_two_images_in_one_docker_archive_are_refused(tmp_path):
    path = image(tmp_path, layer(entry("f")), fmt=DOCKER)
    _rewrite(path, "manifest.json", lambda data: data.replace(b"[{", b"[{}, {"))
    with pytest.raises(ImageError, match="describes 2 images"):
        inspect(path)


# Fuzz: whatever the layers hold, nothing outside the unpack directory is ever created or changed.
_names = st.lists(st.sampled_from(["a", "b", "..", ".", "", "etc", "outside", ".wh.a", ".wh..wh..opq", "x"]),
                  min_size=1, max_size=4).map("/".join)
_targets = st.sampled_from(["a", "../outside", "../../outside", "../..", "../../outside/f", "/etc", "/", "..", "a/../..", "x", "outside/f", "b/x"])
_entries = st.one_of(
    st.tuples(_names, st.just(tarfile.REGTYPE), st.binary(max_size=8), st.sampled_from([0o644, 0o4755, 0o777]), st.just("")),
    st.tuples(_names, st.just(tarfile.DIRTYPE), st.just(b""), st.just(0o755), st.just("")),
    st.tuples(_names, st.just(tarfile.SYMTYPE), st.just(b""), st.just(0o777), _targets),
    st.tuples(_names, st.just(tarfile.LNKTYPE), st.just(b""), st.just(0o644), _targets),
    st.tuples(_names, st.sampled_from([tarfile.CHRTYPE, tarfile.FIFOTYPE]), st.just(b""), st.just(0o644), st.just("")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(layers=st.lists(st.lists(_entries, max_size=8), min_size=1, max_size=3))
def test_fuzz_nothing_is_written_outside_the_cache(tmp_path_factory, layers):
    base = tmp_path_factory.mktemp("fuzz")
    outside = base / "outside"
    outside.mkdir()
    (outside / "f").write_text("keep")
    cache = base / "cache"
    cache.mkdir()
    path = base / "image.tar"
    build.write(path, [layer(*entries) for entries in layers])
    before = tree(base)
    try:
        unpack(path, cache / "root", ImageLimits(max_files=30))
    except ImageError:
        pass
    after = {k: v for k, v in tree(base).items() if not k.startswith("cache/")}
    assert after == {k: v for k, v in before.items() if not k.startswith("cache/")}
    for dirpath, dirnames, filenames in os.walk(cache):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st_ = p.lstat()
            assert not st_.st_mode & (stat.S_ISUID | stat.S_ISGID)
            assert stat.S_ISDIR(st_.st_mode) or stat.S_ISREG(st_.st_mode) or stat.S_ISLNK(st_.st_mode)
            if not p.is_symlink():
                assert os.path.realpath(p).startswith(str(cache.resolve()) + os.sep)


def test_worker_cache_unpacks_once_and_never_keeps_half_an_image(tmp_path):
    from xwpy.worker.images import ImageCache

    good = image(tmp_path, layer(entry("bin/tool", data=b"t", mode=0o755)))
    img = inspect(good)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / ".tmp-crashed").mkdir()
    cache = ImageCache(tmp_path / "cache")
    assert not (tmp_path / "cache" / ".tmp-crashed").exists()
    assert cache.lookup(img.id) is None
    root = cache.unpack(img.id, good)
    assert (root / "bin/tool").read_bytes() == b"t"
    assert cache.unpack(img.id, good) == root and cache.lookup(img.id) == root
    assert (cache.stats.unpacks, cache.stats.hits) == (1, 2)
    # An archive that is not the image announced, and one damaged on disk: refused, nothing kept.
    other = image(tmp_path, layer(entry("f", data=b"ONE")))
    other_id = inspect(other).id
    with pytest.raises(ImageError, match="not sha256:0000"):
        cache.unpack("sha256:" + "0" * 64, other)
    _rewrite(other, inspect(other).layers[0].member.rsplit("/", 1)[1], lambda data: data.replace(b"ONE", b"TWO"))
    with pytest.raises(ImageError, match="does not match"):
        cache.unpack(other_id, other)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [root.name]
