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
