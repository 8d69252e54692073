"""Model archives: unsafe members are refused before anything is extracted, broken zips are
named as such, and the model folder is found inside wrapping folders."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from spineps_dask.config import DEMO_MODELS
from spineps_dask.errors import ModelError
from spineps_dask.models._archive import extract_archive, model_root
from tests.models.releases import corrupt, zip_folder


def _zip(path: Path, members: dict[str, bytes], *, links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    ("members", "links"),
    [
        ({"model/inference_config.json": b"{}", "../evil.txt": b"x"}, ()),
        ({"model/inference_config.json": b"{}", "model/../../evil.txt": b"x"}, ()),
        ({"/tmp/evil.txt": b"x"}, ()),
        ({"C:/evil.txt": b"x"}, ()),
        ({"model/inference_config.json": b"{}"}, ("model/weights.ckpt",)),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "drive", "symlink"],
)
def test_unsafe_members_are_refused_and_nothing_is_extracted(
    tmp_path: Path, members: dict[str, bytes], links: tuple[str, ...]
) -> None:
    """Zip-slip paths and symbolic links stop the whole extraction."""
    archive = _zip(tmp_path / "bad.zip", members, links=links)
    dest = tmp_path / "out"
    with pytest.raises(ModelError, match=r"refusing an archive with absolute paths, '\.\.'"):
        extract_archive(archive, dest)
    assert not dest.exists()
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("damage", ["truncated", "crc", "not-a-zip"])
def test_broken_archives_are_named(tmp_path: Path, damage: str) -> None:
    """A truncated file, a flipped byte (CRC) or an HTML error page all fail as incomplete zips."""
    good = zip_folder(DEMO_MODELS / "semantic")
    data = {
        "truncated": good[: len(good) // 2],
        "crc": corrupt(good),
        "not-a-zip": b"<html>rate limited</html>",
    }[damage]
    archive = tmp_path / "t2w.zip"
    archive.write_bytes(data)
    with pytest.raises(ModelError, match=r"t2w\.zip is not a complete zip archive.*download it"):
        extract_archive(archive, tmp_path / "out")


def test_model_root_unwraps_single_folders(tmp_path: Path) -> None:
    """t2w.zip -> T2w_semantic/ -> the model; a folder with siblings of the config's folder is
    the model itself (its config may sit deeper, as in nnU-Net plans folders)."""
    (tmp_path / "a" / "T2w_semantic" / "fold_0").mkdir(parents=True)
    (tmp_path / "a" / "T2w_semantic" / "inference_config.json").write_text("{}")
    assert model_root(tmp_path / "a") == tmp_path / "a" / "T2w_semantic"

    deep = tmp_path / "b" / "wrap" / "model" / "nnUNetTrainer__nnUNetPlans__3d_fullres"
    deep.mkdir(parents=True)
    (deep / "inference_config.json").write_text("{}")
    (tmp_path / "b" / "wrap" / "model" / "README.md").write_text("x")
    assert model_root(tmp_path / "b") == tmp_path / "b" / "wrap" / "model"


def test_macos_resource_forks_are_skipped(tmp_path: Path) -> None:
    """'__MACOSX/' beside the model folder neither extracts nor stops the unwrapping."""
    archive = _zip(
        tmp_path / "m.zip",
        {"m/inference_config.json": b"{}", "__MACOSX/m/._inference_config.json": b"x"},
    )
    extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "__MACOSX").exists()
    assert model_root(tmp_path / "out") == tmp_path / "out" / "m"


def test_archive_without_config_is_not_a_model(tmp_path: Path) -> None:
    """The error lists what the archive holds."""
    extract_archive(_zip(tmp_path / "x.zip", {"docs/readme.txt": b"x"}), tmp_path / "out")
    with pytest.raises(ModelError, match=r"holds no inference_config\.json.*docs/readme\.txt"):
        model_root(tmp_path / "out")


def test_corrupt_helper_breaks_a_member() -> None:
    """The test helper really damages member data (else the CRC test would prove nothing)."""
    bad = corrupt(zip_folder(DEMO_MODELS / "instance"))
    with zipfile.ZipFile(io.BytesIO(bad)) as zf:
        assert zf.testzip() is not None
