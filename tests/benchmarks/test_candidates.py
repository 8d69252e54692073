"""Trained models kept in the repository but not shipped (benchmarks/candidates/): each stays
a loadable semantic folder whose record says how it was trained and what it scored, so a later
session can continue it (`--init-from`) or ship it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spineps_dask.models.folders import check_model_folder

CANDIDATES = sorted((Path(__file__).parents[2] / "benchmarks" / "candidates").glob("*/semantic"))


def test_there_are_candidates():
    """The folder is where the issue-17 trials' models are kept; it is not empty."""
    assert CANDIDATES


@pytest.mark.parametrize("folder", CANDIDATES, ids=lambda p: p.parent.name)
def test_candidate_loads_and_records_its_training(folder):
    """Weights fit the network its plans describe; the record holds the command, the held-out
    T2w and T1w scores and the real-crop scores of the card."""
    check_model_folder(folder, kind="semantic", load=True)
    training = json.loads((folder / "inference_config.json").read_text())["training"]
    assert training["command"].startswith("spineps-dask models train-demo")
    assert {"heldout", "heldout_t1w"} <= set(training)
    assert "both phases on the real T2w image" in (folder / "MODEL_CARD.md").read_text()
