"""Canonical archives: same files, same bytes — whatever the order, times or owners."""

import io
import os
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xwpy import archive

names = st.text(alphabet="abcxyz_.-", min_size=1, max_size=8).filter(lambda n: n not in (".", ".."))


def write(root, files, mtime):
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.lists(names, min_size=1, max_size=2).map("/".join), st.binary(max_size=64), max_size=6),
       st.integers(0, 2**31))
def test_digest_ignores_time_and_order(tmp_path_factory, files, mtime):
    a, b = tmp_path_factory.mktemp("a"), tmp_path_factory.mktemp("b")
    try:
        write(a, files, 1_000_000)
        write(b, dict(reversed(list(files.items()))), mtime)
    except (NotADirectoryError, FileExistsError, IsADirectoryError):
        return  # "x" and "x/y" both as files: not a possible directory
    ba, bb = io.BytesIO(), io.BytesIO()
    archive.write_dir(a, ba)
    archive.write_dir(b, bb)
    assert ba.getvalue() == bb.getvalue()
    assert archive.read_files(ba.getvalue()) == {k: v for k, v in files.items()}


def test_content_changes_the_digest(tmp_path):
    (tmp_path / "x").write_bytes(b"1")
    one = io.BytesIO()
    archive.write_dir(tmp_path, one)
    (tmp_path / "x").write_bytes(b"2")
    two = io.BytesIO()
    archive.write_dir(tmp_path, two)
    assert one.getvalue() != two.getvalue()


def test_links_and_excluded_names_are_left_out(tmp_path):
    (tmp_path / "keep").write_text("k")
    (tmp_path / "input").write_text("i")
    os.symlink("/etc/passwd", tmp_path / "link")
    buf = io.BytesIO()
    archive.write_dir(tmp_path, buf, exclude={"input"})
    assert set(archive.read_files(buf.getvalue())) == {"keep"}


@pytest.mark.parametrize("name", ["../evil", "/abs", "a/../../b"])
def test_unsafe_names_are_refused(tmp_path, name):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        ti = tarfile.TarInfo(name)
        ti.size = 1
        tar.addfile(ti, io.BytesIO(b"x"))
    with pytest.raises(archive.ArchiveError):
        archive.read_files(buf.getvalue())
    (tmp_path / "a.tar").write_bytes(buf.getvalue())
    with pytest.raises(archive.ArchiveError):
        archive.extract(tmp_path / "a.tar", tmp_path / "out")


def test_garbage_is_an_archive_error():
    with pytest.raises(archive.ArchiveError):
        archive.read_files(b"not a tar at all" * 40)


def test_copy_member_streams_one_file_and_says_when_it_is_absent(tmp_path):
    import io

    from xwpy import archive as arc

    big = bytes(range(256)) * 20_000  # several blocks of the copy
    path = tmp_path / "r.tar"
    path.write_bytes(arc.from_files({"stdout": big, "other": b"x"}))
    out = io.BytesIO()
    assert arc.copy_member(path, "stdout", out, chunk=4096) and out.getvalue() == big
    assert not arc.copy_member(path, "missing", io.BytesIO())


def test_an_excluded_directory_leaves_out_all_it_holds(tmp_path):
    (tmp_path / "checkpoint" / "deep").mkdir(parents=True)
    (tmp_path / "checkpoint" / "deep" / "state").write_text("s")
    (tmp_path / "out.txt").write_text("o")
    assert [rel for rel, _ in archive.walk(tmp_path, {"checkpoint"})] == ["out.txt"]
