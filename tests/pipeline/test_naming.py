"""How a subject's vertebrae are named: rule, model, model with the rule's anchors.

Protects: a renaming carries each vertebra's discs and endplates with it and leaves the
sacrum alone, and the disc above the top vertebra follows the new top; the rule's cues
become solver anchors (C2 from the disc pattern, L5/L6 above the sacrum); a model naming
records its confidence and flags a low one; the rule's naming is flagged without an anchor;
an unknown method is refused with the choices.
"""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.phantom import make_phantom
from spineps_dask.pipeline.labeling import LabelingSettings
from spineps_dask.pipeline.naming import (
    Naming,
    NamingSettings,
    model_naming,
    rename,
    rule_anchors,
    rule_naming,
)
from spineps_dask.pipeline.patches import vertebra_ids
from spineps_dask.pipeline.sequence import C2, L5, L6, N_CLASSES, class_of

PIR = ("P", "I", "R")


def test_rename_carries_discs_and_endplates():
    m = np.array([[[2, 3, 103, 203, 4, 104, 204, 26]]], np.uint16)
    out = rename(m, {2: 5, 3: 6, 4: 7})
    assert out.tolist() == [[[5, 6, 106, 206, 7, 107, 207, 26]]]


def test_rename_moves_the_disc_above_the_top():
    m = np.array([[[119, 219, 20, 120, 21]]], np.uint16)  # disc T12/L1 above L1
    assert rename(m, {20: 21, 21: 22}).tolist() == [[[120, 220, 21, 121, 22]]]


def test_rename_leaves_the_sacrum_with_an_endplate_alone():
    """A sacrum with an endplate (226; seen where the segmentation took L5 for the sacrum)
    stays 26: it was renamed to the vertebra above the top (an L5 shown as T11)."""
    m = np.array([[[119, 20, 120, 24, 124, 26, 226]]], np.uint16)
    out = rename(m, {20: 19, 24: 23})
    assert out.tolist() == [[[118, 19, 119, 23, 123, 26, 226]]]


def _pir(ph):
    return np.asarray(ph.instance.reorient(PIR).data), np.asarray(ph.semantic.reorient(PIR).data)


def _settings(ph):
    """As the pipeline runs it: 8 mm of margin before a missing top disc means C2."""
    spacing = ph.semantic.reorient(PIR).spacing[1]
    return LabelingSettings(top_margin=int(np.ceil(8.0 / spacing)))


def test_rule_anchors_from_truth():
    """A lumbar view: the lowest vertebra sits on the sacrum; a whole spine: C2 found."""
    lumbar = make_phantom(3, region="lumbar")
    inst, sem = _pir(lumbar)
    ids = vertebra_ids(inst)
    anchors, name = rule_anchors(inst, sem, ids, settings=_settings(lumbar))
    assert name == "sacrum" and anchors == {len(ids) - 1: (L5, L6)}
    whole = make_phantom(4, region="whole", c1_in_view=True)
    inst, sem = _pir(whole)
    ids = vertebra_ids(inst)
    anchors, name = rule_anchors(inst, sem, ids, settings=_settings(whole))
    assert name == "C2"
    assert anchors[ids.index(2)] == (C2,)


def test_model_naming_records_confidence():
    ids = [40, 41, 42]  # instance ids as the mask has them
    true = [20, 21, 22]
    p = np.full((3, N_CLASSES), 1e-3)
    for i, v in enumerate(true):
        p[i, class_of(v)] = 1.0
    sure = model_naming(ids, {"VERTEXACT": p}, settings=NamingSettings(method="model"))
    assert sure.mapping == dict(zip(ids, true, strict=True))
    assert sure.confidence > 0.99 and not sure.low_confidence
    assert set(sure.vertebra_confidence) == set(true)
    half = np.full((3, N_CLASSES), 1e-3)
    for i, v in enumerate(true):
        half[i, class_of(v)] = half[i, class_of(v) + 1] = 0.5
    unsure = model_naming(ids, {"VERTEXACT": half}, settings=NamingSettings(method="model"))
    assert unsure.low_confidence
    record = unsure.record()
    assert record["naming"] == "model" and record["naming_low_confidence"] is True
    assert set(record["vertebra_confidence"]) == {str(v) for v in unsure.mapping.values()}


def test_anchors_count_only_for_model_plus_anchors():
    ids = [1, 2, 3]
    half = np.full((3, N_CLASSES), 1e-3)
    for i, v in enumerate([21, 22, 23]):
        half[i, class_of(v)] = half[i, class_of(v) + 1] = 0.5
    post = {"VERTEXACT": half}
    anchors = {2: (L5, L6)}
    plain = model_naming(ids, post, anchors=anchors, settings=NamingSettings(method="model"))
    both = model_naming(ids, post, anchors=anchors, settings=NamingSettings())
    assert both.method == "model+anchors" and both.mapping[3] == 24
    assert plain.mapping != both.mapping


def test_rule_naming_flags_no_anchor():
    assert rule_naming("none").low_confidence and not rule_naming("C2").low_confidence
    assert isinstance(rule_naming("sacrum"), Naming) and rule_naming("sacrum").confidence is None


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="rule, model, model\\+anchors"):
        NamingSettings(method="guess")


def test_dens_makes_c2():
    """A vertebra holding over 250 mm³ of dens (51) is the C2 anchor, as in the reference."""
    inst = np.zeros((4, 12, 4), np.uint16)
    sem = np.zeros_like(inst, np.uint8)
    for k, v in enumerate((7, 8, 9)):
        inst[:, 4 * k : 4 * k + 3] = v
        sem[:, 4 * k : 4 * k + 3] = 49
    sem[:, 4:6] = 51  # dens inside the second vertebra
    anchors, name = rule_anchors(inst, sem, [7, 8, 9], voxel_mm3=10.0)
    assert name == "C2" and anchors == {1: (C2,)}
    assert rule_anchors(inst, sem, [7, 8, 9], voxel_mm3=1.0)[1] == "none"  # 32 mm³: too small
