"""``install_model``: a zip or folder copied to an offline machine installs like a download:
validated before it is moved into place, under the reference's folder name, and nothing
half-installed when anything goes wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from spineps_dask.config import DEMO_MODELS
from spineps_dask.errors import ModelError
from spineps_dask.models.catalog import catalog
from spineps_dask.models.install import RECORD_NAME, install_model, model_version
from tests.models.releases import corrupt, labeling_folder


def _visible(models: Path) -> list[str]:
    return sorted(p.name for p in models.iterdir() if not p.name.startswith("."))


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "copied" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def test_published_zip_installs_under_the_reference_name(
    tmp_path: Path, release_archives: dict[str, bytes]
) -> None:
    """t2w.zip (model wrapped in one folder) -> T2w_semantic_v1.0.9 with its install record;
    installing again only checks it."""
    archive = _write(tmp_path, "t2w.zip", release_archives["v1.0.9/t2w.zip"])
    models = tmp_path / "models"
    result = install_model(archive, models=models)
    assert result.path == models / "T2w_semantic_v1.0.9" and not result.already
    assert result.model.kind == "semantic" and (result.path / "plans.json").is_file()
    record = json.loads((result.path / RECORD_NAME).read_text())
    assert record["name"] == "t2w" and record["version"] == "v1.0.9"
    assert record["source"] == str(archive) and len(record["sha256"]) == 64
    assert model_version(result.path) == "v1.0.9"
    assert _visible(models) == ["T2w_semantic_v1.0.9"]
    assert install_model(archive, models=models).already


def test_folder_and_custom_names(tmp_path: Path) -> None:
    """A model folder installs under its own name, or --as; unpublished ones have a content
    version (@hash); the demo folders load their weights with load=True (as models check)."""
    models = tmp_path / "models"
    result = install_model(DEMO_MODELS / "instance", models=models, load=True)
    assert result.path == models / "instance" and result.published is None
    assert model_version(result.path).startswith("@")
    other = install_model(DEMO_MODELS / "semantic", models=models, folder_name="my_t2w")
    assert other.path == models / "my_t2w" and other.model.kind == "semantic"
    assert (DEMO_MODELS / "semantic" / "inference_config.json").is_file()  # source untouched


def test_name_overrides_a_renamed_archive_and_checks_the_kind(
    tmp_path: Path, release_archives: dict[str, bytes]
) -> None:
    """--name maps a renamed download to the published model; the wrong kind is refused and
    nothing is installed."""
    renamed = _write(tmp_path, "download (1).zip", release_archives["v1.2.0/instance.zip"])
    models = tmp_path / "models"
    with pytest.raises(ModelError, match=r"is a instance model.*but a semantic model is needed"):
        install_model(renamed, models=models, name="t2w")
    assert _visible(models) == []
    result = install_model(renamed, models=models, name="instance")
    assert result.path.name == "instance_sagittal_v1.2.0"


def test_labeling_zip_installs_as_kind_labeling(
    tmp_path: Path, release_archives: dict[str, bytes]
) -> None:
    """labeling.zip -> T2w_labeling_v1.4.0, listed as kind 'labeling'."""
    archive = _write(tmp_path, "labeling.zip", release_archives["v1.4.0/labeling.zip"])
    result = install_model(archive, models=tmp_path / "models")
    assert result.path.name == "T2w_labeling_v1.4.0" and result.model.kind == "labeling"
    (entry,) = catalog(tmp_path / "models").installed or []
    assert entry.ok and entry.version == "v1.4.0"


@pytest.mark.parametrize("damage", ["corrupt", "no-config", "bad-config"])
def test_broken_archives_install_nothing(
    tmp_path: Path, release_archives: dict[str, bytes], damage: str
) -> None:
    """A corrupt zip, one without a model, or a model that fails validation leave the models
    directory without a model folder and without staging folders."""
    good = release_archives["v1.0.9/t2w.zip"]
    if damage == "corrupt":
        archive = _write(tmp_path, "t2w.zip", corrupt(good))
        match = r"not a complete zip archive"
    elif damage == "no-config":
        shutil.make_archive(
            str(tmp_path / "copied" / "t2w"), "zip", DEMO_MODELS / "semantic" / "fold_0"
        )
        archive = tmp_path / "copied" / "t2w.zip"
        match = r"holds no inference_config\.json"
    else:
        folder = tmp_path / "src" / "T2w_semantic"
        shutil.copytree(DEMO_MODELS / "semantic", folder)
        (folder / "fold_0" / "checkpoint_final.pth").unlink()
        archive = Path(shutil.make_archive(str(tmp_path / "copied" / "t2w"), "zip", folder.parent))
        match = r"missing fold_0/checkpoint_final\.pth"
    models = tmp_path / "models"
    with pytest.raises(ModelError, match=match):
        install_model(archive, models=models)
    assert [p.name for p in models.iterdir() if not p.name.endswith(".lock")] == []


def test_existing_broken_folder_is_not_overwritten(tmp_path: Path) -> None:
    """A target folder that does not validate is reported with the fix, not replaced."""
    models = tmp_path / "models"
    (models / "instance").mkdir(parents=True)
    with pytest.raises(ModelError, match=r"instance exists but is not a valid model folder.*rm -r"):
        install_model(DEMO_MODELS / "instance", models=models)
    assert list((models / "instance").iterdir()) == []


def test_stale_staging_from_a_killed_install_is_removed(tmp_path: Path) -> None:
    """A staging folder left by a killed process is hidden from listings and cleared by the
    next install of that model."""
    models = tmp_path / "models"
    stale = models / ".instance.partial-dead1"
    shutil.copytree(DEMO_MODELS / "instance", stale / "extracted")
    assert catalog(models).installed == []
    install_model(DEMO_MODELS / "instance", models=models)
    assert not stale.exists()


def test_interrupted_copy_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in the middle of an install removes the staging folder; nothing is installed."""
    import spineps_dask.models.install as install

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(install, "check_model_folder", interrupt)
    models = tmp_path / "models"
    with pytest.raises(KeyboardInterrupt):
        install_model(DEMO_MODELS / "instance", models=models)
    assert [p.name for p in models.iterdir()] == [".instance.lock"]


@pytest.mark.parametrize("bad", ["nothing-here", "notes.txt"])
def test_source_must_be_a_zip_or_folder(tmp_path: Path, bad: str) -> None:
    """A missing path or a file that is not a zip is named as such."""
    source = tmp_path / bad
    if bad.endswith(".txt"):
        source.write_text("x")
    with pytest.raises(ModelError, match=r"(does not exist|not a zip archive).*model zip"):
        install_model(source, models=tmp_path / "models")


def test_read_only_models_directory(tmp_path: Path, small_disk) -> None:
    """A models directory that cannot be written gives one clear error, not a traceback."""
    small_disk.read_only()
    try:
        with pytest.raises(ModelError, match=r"not installed.*writable and has space"):
            install_model(DEMO_MODELS / "instance", models=small_disk.path / "models")
    finally:
        small_disk.read_only(False)


def test_labeling_folder_source(tmp_path: Path) -> None:
    """A labelling folder named as installed by the reference is recognised by its name."""
    folder = labeling_folder(tmp_path / "CT_labeling_v1.4.0")
    result = install_model(folder, models=tmp_path / "models")
    assert result.published is not None and result.published.name == "ct_labeling"
    assert result.path.name == "CT_labeling_v1.4.0"
