"""inference_config.json parsing: valid configs load, broken ones say exactly what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from spineps_dask.errors import ModelError
from spineps_dask.models.config import config_to_json, parse_config

from .conftest import INSTANCE_CONFIG, SEMANTIC_CONFIG


def _raw(**changes: Any) -> dict[str, Any]:
    raw = config_to_json(SEMANTIC_CONFIG)
    raw.update(changes)
    return {k: v for k, v in raw.items() if v is not None}


def test_round_trip_keeps_every_field() -> None:
    """Writing and parsing a config gives the same dataclass back."""
    assert parse_config(config_to_json(SEMANTIC_CONFIG)) == SEMANTIC_CONFIG
    assert parse_config(config_to_json(INSTANCE_CONFIG)) == INSTANCE_CONFIG


def test_reference_style_values_are_understood() -> None:
    """Int fold counts, modality strings and reference location names resolve as upstream."""
    cfg = parse_config(
        _raw(
            available_folds=3,
            labels={"1": "Vertebra_Corpus_border", "2": "Vertebra_Disc", "3": 61, "4": "L3"},
        )
    )
    assert cfg.available_folds == (0, 1, 2)
    assert cfg.labels == {1: 49, 2: 100, 3: 61, 4: 22}
    assert cfg.modality == ("T2w",)
    assert cfg.mapping[49] == 9 and cfg.mapping[26] == 0
    assert parse_config(_raw(available_folds="all")).available_folds == ("all",)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"resolution_range": [[0.7, 0.7, 1.5], [1.0, 1.0, 4.0]]}, r"flat 3-vector.*\[min, max\]"),
        ({"resolution_range": [0.75, 0.75]}, "flat 3-vector"),
        ({"cutout_size": [248, 300, 64]}, r"divisible by 8.*\[248, 304, 64\]"),
        ({"modality": "T3w"}, "unknown modality"),
        ({"modality": "SEG"}, "semantic model .* reads images"),
        ({"modeltype": "resnet"}, "modeltype 'resnet'"),
        ({"colour": "blue"}, r"unknown keys \['colour'\]"),
        ({"labels": {"1": "Vertebra_Bone"}}, "neither a label id nor a known location"),
        ({"model_expected_orientation": ["P", "I"]}, "three axis codes"),
        ({"available_folds": 0}, "must be >= 1"),
    ],
)
def test_broken_configs_are_rejected_with_the_reason(changes: dict, message: str) -> None:
    """Each kind of broken config raises ModelError naming the key and the problem."""
    with pytest.raises(ModelError, match=message):
        parse_config(_raw(**changes))


def test_missing_required_key_is_named() -> None:
    """A config without labels says which key is missing."""
    raw = _raw()
    del raw["labels"]
    with pytest.raises(ModelError, match=r"missing required keys \['labels'\]"):
        parse_config(raw)


def test_instance_model_must_read_segmentations() -> None:
    """modeltype unet with an image modality is the wrong-modality error."""
    raw = config_to_json(INSTANCE_CONFIG)
    raw["modality"] = "T2w"
    with pytest.raises(ModelError, match=r"instance model .* modality 'SEG'"):
        parse_config(raw)
