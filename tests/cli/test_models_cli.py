"""``spineps-dask models list/check``: a table for good folders, exit 1 and reasons for bad ones."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from spineps_dask.cli import app
from tests.models.conftest import write_tiny_instance, write_tiny_semantic

runner = CliRunner()


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


def test_train_demo_options_reach_the_config_and_the_recorded_command(monkeypatch) -> None:
    """``--train-phantoms``, ``--iterations`` and ``--budget-s`` set the training config, and the
    command recorded in a model folder repeats them (so the shipped models can be rebuilt)."""
    from spineps_dask.models import train_demo

    seen = {}
    monkeypatch.setattr(
        train_demo, "train_demo_models", lambda out, cfg, which: seen.update(cfg=cfg, which=which)
    )
    args = ["models", "train-demo", "OUT", "--which", "semantic", "--train-phantoms", "48"]
    result = runner.invoke(app, [*args, "--iterations", "7", "--budget-s", "9"])
    assert result.exit_code == 0, result.output
    cfg = seen["cfg"]
    assert (cfg.n_train, cfg.sem_iterations, cfg.sem_budget_s) == (48, 7, 9.0)

    class Result:
        iterations, seconds, final_loss = 7, 1.0, 0.5

    record = train_demo._training_record(cfg, Result(), "semantic")
    assert record["command"].endswith(
        "--which semantic --iterations 7 --budget-s 9 --train-phantoms 48"
    )
    assert record["train_phantom_seeds"] == "0..47"
