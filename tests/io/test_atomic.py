"""Atomic replacement: the new content, or the old file untouched, never half and no leftovers."""

import os
import re

import numpy as np
import pytest

from toolkit.io import atomic
from toolkit.io.atomic import replace_atomically, write_text_atomically
from toolkit.io.mrc import write_stack
from toolkit.io.star import write_star


def test_writes_the_content_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.txt"
    assert replace_atomically(path, lambda t: t.write_text("new")) == path
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["a.txt"]
    assert replace_atomically(str(path), lambda t: t.write_bytes(b"\x00newer")) == path  # a str path too
    assert path.read_bytes() == b"\x00newer" and os.listdir(tmp_path) == ["a.txt"]


def test_write_text_atomically_writes_utf8_with_the_line_ends_given(tmp_path):
    path = tmp_path / "a.json"
    assert write_text_atomically(path, '{"å": 1}\r\n\n') == path
    assert path.read_bytes() == '{"å": 1}\r\n\n'.encode() and os.listdir(tmp_path) == ["a.json"]


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError, ValueError])
def test_a_failing_write_keeps_the_old_file_byte_identical(tmp_path, error):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old \x00 bytes")

    def half_then_fail(temporary):
        temporary.write_bytes(b"half")
        raise error("midway")

    with pytest.raises(error, match="midway"):
        replace_atomically(path, half_then_fail)
    assert path.read_bytes() == b"old \x00 bytes" and os.listdir(tmp_path) == ["a.bin"]


def test_a_failing_rename_leaves_no_temporary(tmp_path):
    (tmp_path / "a").mkdir()  # a folder cannot be replaced by a file
    with pytest.raises(OSError):
        replace_atomically(tmp_path / "a", lambda t: t.write_text("x"))
    assert os.listdir(tmp_path) == ["a"] and os.listdir(tmp_path / "a") == []


def test_refuses_an_existing_file_without_overwrite_and_writes_nothing(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("mine")
    calls = []
    with pytest.raises(FileExistsError, match=f"{re.escape(str(path))}: already exists"):
        replace_atomically(path, calls.append, overwrite=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_text_atomically(path, "theirs", overwrite=False)
    assert calls == [] and path.read_text() == "mine" and os.listdir(tmp_path) == ["a.txt"]
    assert write_text_atomically(tmp_path / "b.txt", "new", overwrite=False).read_text() == "new"


def test_a_missing_folder_is_named_and_nothing_is_written(tmp_path):
    calls = []
    folder = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match=f"folder {re.escape(str(folder))} does not exist"):
        replace_atomically(folder / "a.txt", calls.append)
    assert calls == [] and os.listdir(tmp_path) == []


def test_the_temporary_is_a_unique_hidden_sibling_synced_before_the_rename(tmp_path, monkeypatch):
    events, names = [], []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1])

    def write(temporary):
        names.append(temporary)
        temporary.write_text("x")

    for _ in range(2):
        replace_atomically(tmp_path / "a.txt", write)
    assert events == ["fsync", "replace"] * 2
    assert all(name.parent == tmp_path and re.fullmatch(r"\.a\.txt\.\w+\.tmp", name.name) for name in names)
    assert names[0] != names[1]  # two writers of one file never share a temporary
    assert os.listdir(tmp_path) == ["a.txt"]


def _write_under_umask(umask, write):
    old = os.umask(umask)
    try:
        return write()
    finally:
        os.umask(old)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_permissions_follow_the_umask_as_a_plain_open_does(tmp_path, umask):
    def write_all():
        with open(tmp_path / "plain", "w") as handle:  # the truth: what a plain open creates
            handle.write("x")
        replace_atomically(tmp_path / "callback", lambda t: t.write_text("x"))
        write_text_atomically(tmp_path / "text", "x")
        write_star(tmp_path / "table.star", {"x": {"a": [1]}})  # STAR once used os.open 0o666 for this
        write_stack(tmp_path / "stack.mrcs", np.zeros((1, 2, 2)), pixel_size=1.0)

    _write_under_umask(umask, write_all)
    expected = (tmp_path / "plain").stat().st_mode
    assert expected & 0o777 == 0o666 & ~umask
    for name in ("callback", "text", "table.star", "stack.mrcs"):
        assert (tmp_path / name).stat().st_mode == expected, name


def test_a_file_created_read_only_is_still_synced_and_renamed(tmp_path):
    path = tmp_path / "a.txt"
    _write_under_umask(0o222, lambda: write_text_atomically(path, "read-only"))
    assert path.read_text() == "read-only" and path.stat().st_mode & 0o777 == 0o444
    assert os.listdir(tmp_path) == ["a.txt"]
