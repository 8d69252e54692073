"""RunConfig: settings files, unknown keys, fingerprints that follow what changes results."""

from __future__ import annotations

from pathlib import Path

import pytest

from spineps_dask.config import (
    CLUSTER_CONFIGS,
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


def _flip_one_byte(path: Path) -> None:
    """Edit a file in place: same name, same size, one byte of content changed."""
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))


def test_weights_edited_in_place_are_a_new_model_version(tmp_path, monkeypatch):
    """Weights retrained or edited in place (same names and sizes) change the model version
    and the fingerprint: the version hashes file content, not names and sizes. Copies of one
    folder share a version (install records, hidden files, are left out); an unchanged file
    is read once per process (its digest is cached by size and modification time)."""
    import shutil

    from spineps_dask import config
    from spineps_dask.config import DEMO_MODELS, folder_version

    folder = tmp_path / "instance"
    shutil.copytree(DEMO_MODELS / "instance", folder)
    (folder / ".spineps-dask-install.json").write_text('{"source": "here"}')
    cfg = RunConfig(instance_model=folder)
    before, fp = folder_version(folder), cfg.fingerprint()
    assert before == folder_version(DEMO_MODELS / "instance")
    (ckpt,) = folder.glob("*.ckpt")
    size = ckpt.stat().st_size
    _flip_one_byte(ckpt)
    assert ckpt.stat().st_size == size
    assert folder_version(folder) != before
    assert cfg.fingerprint() != fp
    opened: list[str] = []
    real_open = open

    def counting_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(config, "open", counting_open, raising=False)
    cfg.fingerprint(), cfg.fingerprint()
    assert opened == [], "unchanged files were read again"
    (folder / "inference_config.json").touch()  # a new modification time: read once more
    cfg.fingerprint(), cfg.fingerprint()
    assert opened == [str((folder / "inference_config.json").resolve())]


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
    assert models_dir() == default_models_dir() and cluster_dir() == CLUSTER_CONFIGS
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    monkeypatch.setenv(CLUSTER_DIR_ENV, str(tmp_path / "site"))
    assert models_dir() == tmp_path and cluster_dir() == tmp_path / "site"


def test_without_a_shipped_demo_labelling_model_the_default_names_by_the_rule(
    tmp_path, monkeypatch
):
    """Issue 20 where the package holds no demo labelling model (a trimmed install): the
    default run has no labelling model (no label task, nothing to load or check), the rule in its
    fingerprint and no labelling version, and its settings round-trip; once a demo folder is
    shipped (its inference_config.json), it is the default."""
    from spineps_dask import config

    demo = tmp_path / "demo_models"
    demo.mkdir()
    for kind in ("semantic", "instance"):
        (demo / kind).symlink_to(config.DEMO_MODELS / kind)
    monkeypatch.setattr(config, "DEMO_MODELS", demo)
    cfg = RunConfig()
    assert cfg.labeling_model is None and cfg.labeling_folder is None
    assert "labeling" not in cfg.model_versions()
    assert cfg.fingerprint() == RunConfig(naming="rule").fingerprint()
    assert RunConfig.from_dict(cfg.to_dict()) == cfg
    (demo / "labeling").mkdir()
    assert RunConfig().labeling_model is None  # an empty folder is not a shipped model
    (demo / "labeling" / "inference_config.json").write_text("{}")
    assert RunConfig().labeling_folder == demo / "labeling"
    assert RunConfig(labeling_model=None).labeling_folder is None


def test_the_demo_labelling_model_goes_with_the_demo_semantic_model(tmp_path):
    """The phantom-trained labelling model is the default only beside the demo semantic
    model: beside a user's own semantic model (published weights, real scans) no labelling
    model is assumed, so vertebrae are named by the rule (flagged without anchors) instead of
    confidently wrong; a labelling model given by name or path is kept."""
    from spineps_dask.config import DEMO_MODELS, default_labeling_model

    other = tmp_path / "T2w_semantic"
    other.mkdir()
    assert RunConfig.from_dict({}).labeling_model == default_labeling_model()
    demo = RunConfig.from_dict({"semantic_model": str(DEMO_MODELS / "semantic")})
    assert demo.labeling_model == default_labeling_model()
    assert RunConfig.from_dict({"semantic_model": str(other)}).labeling_model is None
    given = RunConfig.from_dict({"semantic_model": str(other), "labeling_model": str(tmp_path)})
    assert given.labeling_model == tmp_path
    # The same from Python (notebooks build RunConfig directly), and the demo labelling model
    # given on purpose beside another semantic model is kept.
    assert RunConfig().labeling_model == default_labeling_model()
    assert RunConfig(semantic_model=other).labeling_model is None
    chosen = RunConfig(semantic_model=other, labeling_model=DEMO_MODELS / "labeling")
    assert chosen.labeling_model == DEMO_MODELS / "labeling"
    assert RunConfig(semantic_model=other, labeling_model=None).labeling_model is None
    with pytest.raises(ValueError, match="needs a labelling model"):
        RunConfig.from_request({"semantic_model": str(other), "naming": "model"})
