"""Exact answers on a synthetic box spine, and no crash / no rows for empty or missing levels.

The boxes' faces sit on multiples of the 0.25 mm sampling step from each centroid, so lengths
and areas are exact (up to float rounding), whatever the spacing or in-plane rotation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spineps_dask.biomarkers import COLUMNS, level_biomarkers
from spineps_dask.errors import InputError
from spineps_dask.geometry import Volume
from spineps_dask.labels import ENDPLATE_OFFSET, IVD_OFFSET, VERTEBRA_IDS, Semantic

SPACING = (1.0, 0.5, 2.0)  # mm along x (R), y (A), z (S): deliberately anisotropic
L2, L3, L4 = VERTEBRA_IDS["L2"], VERTEBRA_IDS["L3"], VERTEBRA_IDS["L4"]
# Body footprint: x 10..40 (30 mm), y 40..80 (20 mm); bodies 20 mm high, discs 8 mm.
_Z_BODIES = {L4: (3, 13), L3: (17, 27), L2: (31, 41)}
_Z_DISCS = {L4: (13, 17), L3: (27, 31)}


def _box_spine(rotation_deg: float = 0.0) -> tuple[Volume, Volume]:
    """Three box vertebrae with discs, endplates, an arch behind each and a canal + cord column."""
    sem = np.zeros((50, 100, 45), np.uint8)
    inst = np.zeros(sem.shape, np.uint16)
    for vid, (z0, z1) in _Z_BODIES.items():
        sem[10:40, 40:80, z0:z1] = Semantic.CORPUS
        inst[10:40, 40:80, z0:z1] = vid
        for z in (z0, z1 - 1):  # one-voxel endplates belong to the body
            sem[10:40, 40:80, z] = Semantic.ENDPLATE
            inst[10:40, 40:80, z] = ENDPLATE_OFFSET + vid
        sem[20:30, 5:15, z0:z1] = Semantic.ARCUS  # behind the canal: sets "anterior" = +y
        inst[20:30, 5:15, z0:z1] = vid
    for vid, (z0, z1) in _Z_DISCS.items():
        sem[10:40, 40:80, z0:z1] = Semantic.DISC
        inst[10:40, 40:80, z0:z1] = IVD_OFFSET + vid
    sem[18:32, 22:38, :] = Semantic.CANAL  # 14 mm x 8 mm
    sem[22:28, 26:34, :] = Semantic.CORD  # 6 mm x 4 mm
    t = np.deg2rad(rotation_deg)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    affine = np.eye(4)
    affine[:3, :3] = rot @ np.diag(SPACING)
    affine[:3, 3] = (-12.0, 30.0, 5.0)
    return Volume(sem, affine), Volume(inst, affine)


def _value(df: pd.DataFrame, level: str, structure: str, measure: str) -> float:
    hit = df[(df.level == level) & (df.structure == structure) & (df.measure == measure)]
    assert len(hit) == 1, f"expected one {level} {structure} {measure} row, got {len(hit)}"
    return float(hit.value.iloc[0])


@pytest.mark.parametrize("rotation_deg", [0.0, 30.0])
def test_box_spine_gives_exact_sizes(rotation_deg: float) -> None:
    """Box L3: volume 12000 mm³, heights 20 mm, disc 8 mm, canal 112 mm², cord 24 mm²."""
    sem, inst = _box_spine(rotation_deg)
    df = level_biomarkers(sem, inst, subject="box")
    assert list(df.columns) == list(COLUMNS)
    assert set(df.subject) == {"box"}
    assert _value(df, "L3", "body", "volume_mm3") == pytest.approx(30 * 20 * 20)
    for which in ("anterior", "middle", "posterior"):
        assert _value(df, "L3", "body", f"height_{which}_mm") == pytest.approx(20.0, abs=1e-6)
    assert _value(df, "IVD L3", "disc", "volume_mm3") == pytest.approx(30 * 20 * 8)
    assert _value(df, "IVD L3", "disc", "height_mm") == pytest.approx(8.0, abs=1e-6)
    for level in ("L3", "IVD L3"):
        assert _value(df, level, "canal", "area_mm2") == pytest.approx(14 * 8, abs=1e-6)
        assert _value(df, level, "cord", "area_mm2") == pytest.approx(6 * 4, abs=1e-6)


def test_wedge_body_heights_follow_the_slope() -> None:
    """A body whose top slopes from 24 mm (front) to 16 mm (back): thirds read 22.67/20/17.33."""
    sem, inst = _box_spine()
    s, i = sem.data.copy(), inst.data.copy()
    z0 = _Z_BODIES[L3][0]
    body = np.isin(i, (L3, ENDPLATE_OFFSET + L3)) & (s != Semantic.ARCUS)
    s[body], i[body] = 0, 0
    ys = np.arange(40, 80)
    top = z0 + np.round((16 + 8 * (ys - 40 + 0.5) / 40) / SPACING[2]).astype(int)
    for y, z1 in zip(ys, top, strict=True):
        s[10:40, y, z0:z1], i[10:40, y, z0:z1] = Semantic.CORPUS, L3
    df = level_biomarkers(sem.with_data(s), inst.with_data(i))
    # Heights are quantised to the 2 mm slices; each third's centre is 1/6 of the depth in.
    expected = {"anterior": 16 + 8 * 5 / 6, "middle": 20.0, "posterior": 16 + 8 / 6}
    for which, value in expected.items():
        assert _value(df, "L3", "body", f"height_{which}_mm") == pytest.approx(value, abs=1.0)


def test_empty_masks_give_an_empty_table() -> None:
    """No labels at all: an empty table with the standard columns, no exception."""
    sem, inst = _box_spine()
    df = level_biomarkers(sem.with_data(np.zeros_like(sem.data)), inst.with_data(inst.data * 0))
    assert df.empty
    assert list(df.columns) == list(COLUMNS)


def test_missing_levels_and_structures_give_no_rows() -> None:
    """A body without endplates or canal, a disc without bodies: rows only for what exists."""
    sem, inst = _box_spine()
    s, i = sem.data.copy(), inst.data.copy()
    s[np.isin(s, (Semantic.CANAL, Semantic.CORD))] = 0
    gone = np.isin(i, (L2, L4, ENDPLATE_OFFSET + L2, ENDPLATE_OFFSET + L4))
    s[gone], i[gone] = 0, 0
    df = level_biomarkers(sem.with_data(s), inst.with_data(i))
    assert set(df.level) == {"L3", "IVD L4", "IVD L3"}
    assert set(df.structure) == {"body", "disc"}
    assert _value(df, "L3", "body", "height_middle_mm") == pytest.approx(20.0, abs=1e-6)
    assert _value(df, "IVD L4", "disc", "height_mm") == pytest.approx(8.0, abs=1e-6)


def test_structure_cut_by_the_field_of_view_is_left_out() -> None:
    """A body touching the array edge is not measured (its size is the field of view's)."""
    sem, inst = _box_spine()
    s, i = sem.data.copy(), inst.data.copy()
    z0 = _Z_BODIES[L4][0]
    s[..., :z0], i[..., :z0] = s[..., z0 : z0 + 1], i[..., z0 : z0 + 1]  # extend L4 to slice 0
    df = level_biomarkers(sem.with_data(s), inst.with_data(i))
    assert "L4" not in set(df.level)
    assert "L3" in set(df.level)


def test_masks_on_different_grids_are_rejected() -> None:
    """Semantic and instance masks must share the grid; the message names the fix."""
    sem, inst = _box_spine()
    moved = Volume(inst.data, inst.affine @ np.diag([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(InputError, match="same voxel grid"):
        level_biomarkers(sem, moved)


def test_instance_mask_in_another_orientation_is_reoriented() -> None:
    """The same grid stored P-I-R for the instance mask and R-A-S for the semantic: same table."""
    sem, inst = _box_spine(30.0)
    expected = level_biomarkers(sem, inst)
    got = level_biomarkers(sem, inst.reorient(("P", "I", "R")))
    pd.testing.assert_frame_equal(got, expected)
