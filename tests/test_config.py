"""RunConfig: settings files, unknown keys, fingerprints that follow what changes results."""

from __future__ import annotations

from pathlib import Path

import pytest

from spineps_dask.config import (
    CLUSTER_DIR_ENV,
    MODELS_ENV,
    RunConfig,
    cluster_dir,
    fingerprint,
    models_dir,
)
from spineps_dask.sweep.settings import Setting


def test_unknown_setting_is_an_error(tmp_path):
    """A typo in a run YAML must not be silently ignored."""
    path = tmp_path / "run.yaml"
    path.write_text("n4: false\npostprocesss: true\n")
    with pytest.raises(ValueError, match="unknown run settings \\['postprocesss'\\]"):
        RunConfig.from_file(path)


def test_file_and_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("n4: false\ncutouts_per_task: 2\n")
    cfg = RunConfig.from_file(path, cutouts_per_task=8)
    assert cfg.n4 is False
    assert cfg.cutouts_per_task == 8


def test_fingerprint_tracks_result_settings_only():
    """Resume compares fingerprints: batching must not force a recompute, N4 must."""
    base = RunConfig()
    assert RunConfig(cutouts_per_task=1).fingerprint() == base.fingerprint()
    assert RunConfig(device="cpu").fingerprint() == base.fingerprint()
    assert RunConfig(n4=not base.n4).fingerprint() != base.fingerprint()
    assert RunConfig(postprocess=False).fingerprint() != base.fingerprint()


def test_model_folder_change_changes_fingerprint(tmp_path):
    """Other weights (here: another config file) are another model version."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "inference_config.json").write_text(f'{{"log_name": "{name}"}}')
    a = RunConfig(semantic_model=tmp_path / "a")
    b = RunConfig(semantic_model=tmp_path / "b")
    assert a.fingerprint() != b.fingerprint()
    assert "semantic=a@" in a.model_versions()


def test_models_directory_from_the_environment_or_the_default(tmp_path, monkeypatch):
    """$SPINEPS_SEGMENTOR_MODELS wins; unset, the XDG user data folder; a relative
    $XDG_DATA_HOME is ignored, as the XDG spec says."""
    from spineps_dask.config import MODELS_ENV, default_models_dir, models_dir

    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "shared"))
    assert models_dir() == tmp_path / "shared"
    monkeypatch.delenv(MODELS_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert models_dir() == default_models_dir() == tmp_path / "xdg" / "spineps-dask" / "models"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    assert (
        default_models_dir() == tmp_path / "home" / ".local" / "share" / "spineps-dask" / "models"
    )


def test_models_url_mirror_variable(monkeypatch):
    """$SPINEPS_DASK_MODELS_URL replaces the reference's release URL (an institution's mirror)."""
    from spineps_dask.config import MODELS_URL_ENV, PUBLISHED_MODELS_URL, models_url

    monkeypatch.delenv(MODELS_URL_ENV, raising=False)
    assert models_url() == PUBLISHED_MODELS_URL
    monkeypatch.setenv(MODELS_URL_ENV, "http://mirror.example/spineps/")
    assert models_url() == "http://mirror.example/spineps/"


def test_model_names_resolve_in_the_models_directory(tmp_path, monkeypatch):
    """A bare model name is looked up in the models directory (here the default one, as after
    'models download' without $SPINEPS_SEGMENTOR_MODELS), then among the demo models."""
    from spineps_dask.config import DEMO_MODELS, MODELS_ENV, default_models_dir, resolve_model

    monkeypatch.delenv(MODELS_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    (default_models_dir() / "T2w_semantic_v1.0.9").mkdir(parents=True)
    assert resolve_model("T2w_semantic_v1.0.9", default="semantic").parent == default_models_dir()
    assert resolve_model("instance", default="semantic") == DEMO_MODELS / "instance"


def test_one_fingerprint_is_stable_across_versions_and_key_order():
    """Run fingerprints and sweep stage keys share `fingerprint`; its values are pinned, because
    stores and sweep folders written earlier must keep matching (resume, reused parts). The
    stage keys changed on purpose when the recipe and the reference mode became settings
    (issue 22), and the whole-setting key when the naming did (issue 20; prepare and semantic
    keys kept): results made the old way must not be reused."""
    assert fingerprint({"n4": False, "models": "x"}) == "2fd5a8091ec6"
    assert fingerprint({"models": "x", "n4": False}) == "2fd5a8091ec6"
    s = Setting(models="semantic=a@1,instance=b@2", merge=(("vote_base", 0.5),))
    assert (s.key("prepare"), s.key("semantic"), s.id) == ("58c03085f0", "673e0b93ce", "a7fb0368db")


def test_environment_is_read_here(monkeypatch, tmp_path):
    """The models directory and the cluster folder come from their variables, else defaults."""
    from spineps_dask.config import default_models_dir

    monkeypatch.delenv(MODELS_ENV, raising=False)
    monkeypatch.delenv(CLUSTER_DIR_ENV, raising=False)
    assert models_dir() == default_models_dir() and cluster_dir() == Path("cluster")
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    monkeypatch.setenv(CLUSTER_DIR_ENV, str(tmp_path / "site"))
    assert models_dir() == tmp_path and cluster_dir() == tmp_path / "site"
