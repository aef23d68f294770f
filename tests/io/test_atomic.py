"""Atomic replacement: the new content, or the old file untouched, never half and no leftovers."""

import os

import pytest

from toolkit.io.atomic import replace_atomically


def test_writes_the_content_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    assert replace_atomically(path, lambda t: t.write_text("new")) == path
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["a.txt"]


def test_a_failing_write_keeps_the_old_file_byte_identical(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old \x00 bytes")

    def half_then_fail(temporary):
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        replace_atomically(path, half_then_fail)
    assert path.read_bytes() == b"old \x00 bytes" and os.listdir(tmp_path) == ["a.bin"]


def test_refuses_an_existing_file_without_overwrite_and_writes_nothing(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("mine")
    calls = []
    with pytest.raises(FileExistsError, match="a.txt: already exists"):
        replace_atomically(path, calls.append, overwrite=False)
    assert calls == [] and path.read_text() == "mine"


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .*missing does not exist"):
        replace_atomically(tmp_path / "missing" / "a.txt", lambda t: t.write_text("x"))


def test_permissions_follow_the_umask_as_a_plain_open_does(tmp_path):
    old = os.umask(0o027)
    try:
        (tmp_path / "plain").write_text("x")
        replace_atomically(tmp_path / "atomic", lambda t: t.write_text("x"))
    finally:
        os.umask(old)
    assert (tmp_path / "atomic").stat().st_mode == (tmp_path / "plain").stat().st_mode
