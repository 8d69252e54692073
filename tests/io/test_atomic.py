"""Atomic writes: a reader sees the old file or the new one, never half, and no temporary
file outlives a failed write."""

from __future__ import annotations

import pytest

from spineps_dask.io.atomic import atomic_write, write_file, write_json


def test_write_replaces_the_whole_file_and_creates_folders(tmp_path):
    path = tmp_path / "a" / "b" / "note.txt"
    write_file("old", path)
    assert write_file(b"new", path) == path
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["note.txt"]


def test_a_failing_writer_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "table.parquet"
    write_file(b"whole", path)

    def half_then_fail(tmp):
        tmp.write_bytes(b"ha")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        atomic_write(path, half_then_fail)
    assert path.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"]


def test_the_temporary_name_keeps_the_suffixes_writers_choose_formats_by(tmp_path):
    """nibabel gzips a file whose name ends in .nii.gz; the temporary name must end so too."""
    seen = []
    atomic_write(tmp_path / "sub-1_T2w.nii.gz", lambda tmp: seen.append(tmp.name) or tmp.touch())
    assert seen[0].startswith(".sub-1_T2w.nii.gz.") and seen[0].endswith(".tmp.nii.gz")


def test_json_is_indented_text(tmp_path):
    path = write_json([{"label": 20}], tmp_path / "ctd.json")
    assert path.read_text() == '[\n {\n  "label": 20\n }\n]'
