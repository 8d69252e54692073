"""Stage keys: settings share a stage's work exactly when that stage's inputs are equal."""

from __future__ import annotations

from dataclasses import replace

import pytest

from spineps_dask.pipeline.merge import MergeSettings
from spineps_dask.sweep.settings import Setting, make_setting

BASE = Setting(n4=False, step_size=0.5, folds=(0,), postprocess=True)


@pytest.mark.parametrize(
    ("change", "shared"),
    [
        ({"postprocess": False}, ("prepare", "semantic", "instance")),
        ({"merge.couple_dice": 0.5}, ("prepare", "semantic", "instance")),
        ({"step_size": 0.75}, ("prepare",)),
        ({"folds": [0, 1]}, ("prepare",)),
        ({"n4": True}, ()),
        ({"models": "semantic=other@1234"}, ("prepare",)),
    ],
)
def test_a_change_reruns_only_the_stages_that_read_it(change, shared):
    """Changing one setting changes exactly the keys of the stages that depend on it."""
    other = make_setting(change, defaults=BASE)
    for stage in ("prepare", "semantic", "instance", "reduce"):
        same = BASE.key(stage) == other.key(stage)
        assert same == (stage in shared), (change, stage)


def test_equal_settings_have_equal_keys_and_merge_overrides_apply():
    """Override order does not matter; overrides replace only their fields of the base."""
    a = make_setting({"merge.vote_base": 0.4, "merge.couple_dice": 0.2}, defaults=BASE)
    b = make_setting({"merge.couple_dice": 0.2, "merge.vote_base": 0.4}, defaults=BASE)
    assert a == b and a.id == b.id
    base = MergeSettings(vert_size_threshold=77)
    merged = a.merge_settings(base)
    assert merged == replace(base, vote_base=0.4, couple_dice=0.2)
    assert BASE.merge_settings(base) == base
    assert a.columns()["merge.vote_base"] == 0.4 and a.columns()["folds"] == "0"
