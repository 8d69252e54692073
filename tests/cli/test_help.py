"""Every command's ``--help`` reads well in an 80-column terminal (issue 21 item 9): paragraphs
re-wrapped rather than broken where the docstring's lines end, no word cut short, no type
label on flags; and ``-v``/``-q`` work before or after the subcommand (item 6)."""

from __future__ import annotations

import itertools
import logging

import pytest
import typer
from typer.testing import CliRunner

from spineps_dask.cli import app, main

runner = CliRunner()


def _commands() -> list[list[str]]:
    group = typer.main.get_command(app)
    out = []
    for name, cmd in group.commands.items():  # type: ignore[attr-defined]
        out += [[name, sub] for sub in getattr(cmd, "commands", {})]
        out.append([name])
    return out


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_help_fits_80_columns_without_broken_sentences(command):
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), [ln for ln in lines if len(ln) > 80]
    assert "<bool>" not in result.output and "…" not in result.output
    description = lines[1 : next(i for i, ln in enumerate(lines) if ln.endswith(":") and i)]
    for line, after in itertools.pairwise(description):
        # A short line followed by more of the same paragraph: a sentence broken mid-line.
        assert not (line.strip() and after.strip() and len(line) < 50), (line, after)


def test_run_help_keeps_the_models_variable_whole():
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "80"}, terminal_width=80)
    # --semantic-model, --instance-model and --labeling-model (issue 20) each name it whole
    assert result.output.count("$SPINEPS_SEGMENTOR_MODELS") == 3


@pytest.mark.parametrize(
    ("args", "level"),
    [
        (["-v", "phantom", "--help"], logging.INFO),
        (["phantom", "--help", "-v"], logging.INFO),
        (["phantom", "-vv", "--help"], logging.DEBUG),
        (["phantom", "--help", "-q"], logging.ERROR),
        (["phantom", "--help"], logging.WARNING),
    ],
)
def test_verbosity_flags_work_before_or_after_the_subcommand(args, level):
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 0
    assert logging.getLogger("spineps_dask").level == level
    quiet = logging.getLogger("distributed").level
    assert quiet == (logging.ERROR if level >= logging.WARNING else quiet)
