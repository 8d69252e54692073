"""``spineps-dask models list/check/download/install``: tables for good folders, exit 1 and
reasons for bad ones, and the published models installed from a server or a copied zip."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import spineps_dask
from spineps_dask.cli import app
from spineps_dask.config import DEMO_MODELS
from spineps_dask.models.install import install_model
from tests.models.conftest import write_tiny_instance, write_tiny_semantic
from tests.models.releases import ReleaseServer, corrupt, labeling_folder

runner = CliRunner(env={"COLUMNS": "250"})  # rich wraps tables and messages at COLUMNS


@pytest.fixture
def trained(monkeypatch) -> dict:
    """``train-demo`` stops at the trainer: the config and ``which`` it would train with."""
    from spineps_dask.training import demo as train_demo

    seen: dict = {}
    monkeypatch.setattr(
        train_demo, "train_demo_models", lambda out, cfg, which: seen.update(cfg=cfg, which=which)
    )
    return seen


def _semantic_record(cfg) -> dict:
    """The training record a semantic folder trained with ``cfg`` (7 steps) would hold."""
    from spineps_dask.training import demo as train_demo

    class Result:
        iterations, seconds, final_loss = 7, 1.0, 0.5

    return train_demo._training_record(cfg, Result(), "semantic")


def test_list_and_check(tmp_path: Path) -> None:
    """list shows each model's kind; check passes good folders and fails a broken one (exit 1)."""
    write_tiny_semantic(tmp_path / "sem")
    inst = write_tiny_instance(tmp_path / "inst")
    result = runner.invoke(app, ["models", "list", "--models", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "semantic" in result.output and "instance" in result.output

    result = runner.invoke(app, ["models", "check", str(tmp_path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert result.output.count("ok") >= 2

    (inst / "instance_weights.ckpt").unlink()
    result = runner.invoke(app, ["models", "check", str(inst)], terminal_width=200)
    assert result.exit_code == 1
    assert "FAIL" in result.output and "found 0" in result.output


def test_train_demo_options_reach_the_config_and_the_recorded_command(trained) -> None:
    """``--train-phantoms``, ``--iterations`` and ``--budget-s`` set the training config, and the
    command recorded in a model folder repeats them (so the shipped models can be rebuilt)."""

    args = ["models", "train-demo", "OUT", "--which", "semantic", "--train-phantoms", "48"]
    result = runner.invoke(app, [*args, "--iterations", "7", "--budget-s", "9"])
    assert result.exit_code == 0, result.output
    cfg = trained["cfg"]
    assert (cfg.n_train, cfg.sem_iterations, cfg.sem_budget_s) == (48, 7, 9.0)
    record = _semantic_record(cfg)
    assert record["command"].endswith(
        "--which semantic --iterations 7 --budget-s 9 --train-phantoms 48 --random-looks 0"
    )
    assert record["train_phantom_seeds"] == "0..47"


def test_fine_tuning_options_reach_the_config_and_the_recorded_command(trained) -> None:
    """``--init-from`` and ``--lr`` (issue 17's fine-tuning) set the config, the recorded
    command repeats them and the record names the starting weights' content version; a folder
    without weights is refused before any work."""
    from spineps_dask.config import folder_version
    from spineps_dask.models.folders import demo_model
    from spineps_dask.training import demo as train_demo

    start = demo_model("semantic")
    args = ["models", "train-demo", "OUT", "--which", "semantic", "--random-looks", "4"]
    result = runner.invoke(app, [*args, "--init-from", str(start), "--lr", "0.001"])
    assert result.exit_code == 0, result.output
    cfg = trained["cfg"]
    assert (cfg.sem_init, cfg.sem_lr, cfg.n_random_looks) == (str(start), 1e-3, 4)
    record = _semantic_record(cfg)
    assert record["command"].endswith(f"--random-looks 4 --lr 0.001 --init-from {start}")
    assert record["initialised_from_version"] == folder_version(start)
    weights = train_demo.fold0_weights(start)
    assert any(k.endswith("weight") for k in weights)

    bad = runner.invoke(app, [*args, "--init-from", str(start.parent)])
    assert bad.exit_code == 2
    assert "fold_0/checkpoint_final.pth" in bad.output


@pytest.mark.parametrize(
    ("options", "field", "ending"),
    [
        (["--patch-norm", "0.3"], "sem_patch_norm", "--random-looks 4 --patch-norm 0.3"),
        (
            ["--patch-norm", "0.3", "--fov-cut", "0.3"],
            "sem_fov_cut",
            "--random-looks 4 --patch-norm 0.3 --fov-cut 0.3",
        ),
        (["--relook", "0.3"], "sem_relook", "--random-looks 4 --relook 0.3"),
        (["--textbook-sac", "0.3"], "sem_textbook_sac", "--random-looks 4 --textbook-sac 0.3"),
        (["--t2w-drawn-sac", "0.3"], "sem_t2w_drawn_sac", "--random-looks 4 --t2w-drawn-sac 0.3"),
    ],
)
def test_patch_options_reach_the_config_and_the_recorded_command(
    trained, options, field, ending
) -> None:
    """``--patch-norm`` (issue 17's field-of-view normalisation), ``--fov-cut`` (scans
    smaller than the network's window), ``--relook`` (per-patch looks) and ``--textbook-sac``
    (random looks with the T2w sac) set the semantic config, and the card's command repeats
    them so the training can be rerun as it was."""

    args = ["models", "train-demo", "OUT", "--which", "semantic", "--random-looks", "4"]
    result = runner.invoke(app, [*args, *options])
    assert result.exit_code == 0, result.output
    cfg = trained["cfg"]
    assert getattr(cfg, field) == 0.3
    record = _semantic_record(cfg)
    assert record["command"].endswith(ending)
    assert record["settings"][field] == 0.3


@pytest.mark.parametrize(
    "option", ["--patch-norm", "--fov-cut", "--relook", "--textbook-sac", "--t2w-drawn-sac"]
)
def test_patch_option_outside_a_share_is_refused(monkeypatch, option) -> None:
    """``--patch-norm``, ``--fov-cut``, ``--relook``, ``--textbook-sac`` and ``--t2w-drawn-sac``
    are shares: 1.5 or -0.2 would silently act as 1 or 0, so the CLI refuses them before any
    phantom is made."""
    from spineps_dask.training import demo as train_demo

    called = []
    monkeypatch.setattr(train_demo, "train_demo_models", lambda *a, **k: called.append(a))
    args = ["models", "train-demo", "OUT", "--which", "semantic"]
    for value in ("1.5", "-0.2"):
        result = runner.invoke(app, [*args, option, value])
        assert result.exit_code == 2, result.output
        assert option in result.output
    assert called == []


def test_list_on_a_fresh_install(tmp_path: Path) -> None:
    """The console script, with no models variable and an empty home: the demo models are
    listed, the missing default models directory is explained, exit code 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPINEPS_", "XDG_"))}
    env.update(
        HOME=str(tmp_path), COLUMNS="200", PYTHONPATH=str(Path(spineps_dask.__file__).parents[1])
    )
    done = subprocess.run(
        [sys.executable, "-m", "spineps_dask.cli", "models", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "shipped demo models" in done.stdout
    assert "│ semantic │ semantic │ T2w" in done.stdout
    assert "│ instance │ instance │ SEG" in done.stdout
    default = tmp_path / ".local" / "share" / "spineps-dask" / "models"
    assert f"{default} (default; $SPINEPS_SEGMENTOR_MODELS is unset) does not exist yet" in (
        done.stdout
    )


def test_list_shows_kind_version_and_status(
    tmp_path: Path, release_archives: dict[str, bytes]
) -> None:
    """Installed published models show their release version, a labelling folder its kind, a
    broken folder its problem; staging folders are not listed; exit code 0."""
    models = tmp_path / "models"
    (tmp_path / "t2w.zip").write_bytes(release_archives["v1.0.9/t2w.zip"])
    install_model(tmp_path / "t2w.zip", models=models)
    labeling_folder(models / "CT_labeling_v1.4.0")
    (models / "broken").mkdir()
    shutil.copytree(DEMO_MODELS / "instance", models / ".instance_sagittal_v1.2.0.partial-x")
    result = runner.invoke(app, ["models", "list", "--models", str(models)])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "semantic" in rows["T2w_semantic_v1.0.9"] and "v1.0.9" in rows["T2w_semantic_v1.0.9"]
    assert "labeling" in rows["CT_labeling_v1.4.0"] and "v1.4.0" in rows["CT_labeling_v1.4.0"]
    assert "found 0" in rows["broken"]
    assert "partial" not in result.output
    assert "published, not installed: t1w, vibe, ct, instance, ct_instance, t2w_labeling (" in (
        result.output
    )


def test_list_with_a_missing_models_option(tmp_path: Path) -> None:
    """A --models folder that does not exist is an error (exit 1), the demo models still show."""
    result = runner.invoke(app, ["models", "list", "--models", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "shipped demo models" in result.output and "does not exist yet" in result.output


def test_download_command(tmp_path: Path, release_server: ReleaseServer) -> None:
    """download installs each name with a progress bar and says how to use it; again it only
    checks; an unknown name is a usage error listing the names; offline it exits 1 with the
    steps to install by hand."""
    models = tmp_path / "models"
    args = ["models", "download", "--models", str(models), "--url", release_server.url()]
    result = runner.invoke(app, [*args, "t2w", "instance"])
    assert result.exit_code == 0, result.output
    assert "t2w.zip" in result.output  # the progress bar's label
    assert f"t2w: installed at {models / 'T2w_semantic_v1.0.9'}" in result.output
    assert f"--semantic-model {models / 'T2w_semantic_v1.0.9'}" in result.output
    assert f"--instance-model {models / 'instance_sagittal_v1.2.0'}" in result.output
    result = runner.invoke(app, [*args, "t2w"])
    assert result.exit_code == 0 and "t2w: already installed" in result.output

    result = runner.invoke(app, [*args, "t2w", "t3w"])
    assert result.exit_code == 2 and "no published model 't3w'" in result.output

    offline = ["models", "download", "--models", str(models), "--url", "http://127.0.0.1:9/"]
    result = runner.invoke(app, [*offline, "t1w"])
    assert result.exit_code == 1
    assert "FAIL t1w: cannot reach" in result.output
    assert "spineps-dask models install t1w.zip" in result.output
    assert not (models / "T1w_semantic_v1.0.9").exists()


def test_install_command(tmp_path: Path, release_archives: dict[str, bytes]) -> None:
    """install takes a copied zip (exit 0) and refuses a corrupt one (exit 1, nothing there)."""
    models = tmp_path / "models"
    archive = tmp_path / "instance.zip"
    archive.write_bytes(corrupt(release_archives["v1.2.0/instance.zip"]))
    result = runner.invoke(app, ["models", "install", str(archive), "--models", str(models)])
    assert result.exit_code == 1 and "not a complete zip archive" in result.output
    assert not (models / "instance_sagittal_v1.2.0").exists()

    archive.write_bytes(release_archives["v1.2.0/instance.zip"])
    result = runner.invoke(app, ["models", "install", str(archive), "--models", str(models)])
    assert result.exit_code == 0, result.output
    assert f"installed at {models / 'instance_sagittal_v1.2.0'}" in result.output


def test_width_and_device_options_reach_the_config_and_the_record(trained) -> None:
    """``--features`` (a wider semantic network) and ``--device`` set the config; the card's
    command repeats the widths and its settings name the device."""

    args = ["models", "train-demo", "OUT", "--which", "semantic", "--random-looks", "4"]
    result = runner.invoke(app, [*args, "--features", "16,32,64,128", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    cfg = trained["cfg"]
    assert (cfg.sem_features, cfg.device) == ((16, 32, 64, 128), "cpu")
    record = _semantic_record(cfg)
    assert record["command"].endswith("--random-looks 4 --features 16,32,64,128")
    assert record["settings"]["device"] == "cpu"


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--features", "8,x,32"], "positive widths"),
        (["--features", "8,16"], "positive widths"),
        (["--device", "tpu"], "not a torch device"),
        (["--features", "16,32,64,128", "--init-from", "DEMO"], "widths 8,16,32,64"),
        (["--init-from", "BROKEN"], "plans.json"),
        (["--which", "labeling", "--features", "16,32,64"], "labelling"),
    ],
)
def test_bad_width_or_device_is_refused_before_any_work(
    monkeypatch, tmp_path, options, words
) -> None:
    """A malformed ``--features``, an unknown ``--device``, starting weights of other widths
    or with a broken ``plans.json``, or either option for the labelling classifier: refused
    (exit 2) with the reason, not a traceback, nothing trained."""
    from spineps_dask.models.folders import demo_model
    from spineps_dask.training import demo as train_demo

    monkeypatch.setattr(train_demo, "train_demo_models", lambda *a, **k: pytest.fail("ran"))
    (tmp_path / "fold_0").mkdir()
    (tmp_path / "fold_0" / "checkpoint_final.pth").write_bytes(b"")
    (tmp_path / "plans.json").write_text("{not json")
    folders = {"DEMO": str(demo_model("semantic")), "BROKEN": str(tmp_path)}
    options = [folders.get(o, o) for o in options]
    args = ["models", "train-demo", "OUT", *options]
    if "--which" not in options:
        args += ["--which", "semantic"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert words in " ".join(result.output.split())


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_cuda_device_without_cuda_is_refused(monkeypatch) -> None:
    """``--device cuda`` on a machine without CUDA stops before preparing any phantom."""
    from spineps_dask.training import demo as train_demo

    monkeypatch.setattr(train_demo, "train_demo_models", lambda *a, **k: pytest.fail("ran"))
    result = runner.invoke(app, ["models", "train-demo", "OUT", "--device", "cuda"])
    assert result.exit_code == 2
    assert "CUDA is not available" in " ".join(result.output.split())
