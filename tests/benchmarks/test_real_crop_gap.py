"""`benchmarks/real_crop_gap.py`: the real crop's anatomy painted in the phantom look (with and
without the real surroundings), and a network fitted on the crop as the yardstick."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks.real_crop_gap import crop_half, crop_images, fit_on_crop, painted, sac_profile


def test_painted_carries_each_label_signal_and_the_real_image_only_where_unlabelled():
    labels = np.zeros((12, 12, 12), np.uint8)
    labels[2:10, 2:10, 2:6] = 60
    labels[2:10, 2:10, 6:10] = 61
    signal = np.zeros(256, np.float32)
    signal[[0, 60, 61]] = 0.15, 0.4, 1.0
    around = np.full(labels.shape, 0.7, np.float32)
    flat = painted(labels, signal, noise=0.0)
    real = painted(labels, signal, around=around, noise=0.0)
    # Inside a structure, away from its edges, its signal; outside, the muscle's or the scan's.
    assert np.isclose(flat[5, 5, 3], 0.4) and np.isclose(flat[5, 5, 8], 1.0)
    assert np.isclose(flat[0, 0, 0], 0.15) and np.isclose(real[0, 0, 0], 0.7)
    assert np.isclose(real[5, 5, 3], 0.4)
    noisy = painted(labels, signal, noise=0.03, seed=1)
    assert 0.025 < float(np.std(noisy[3:9, 3:9, 3:5])) < 0.035 and (noisy >= 0).all()


def test_the_real_crop_images_keep_the_scan_and_its_scale():
    scan = np.random.default_rng(0).uniform(0, 100, (10, 10, 10)).astype(np.float32)
    truth = np.zeros((10, 10, 10), np.uint8)
    truth[3:7, 3:7, 3:7] = 61  # CSF: the T2w look's brightest tissue, 1 on the scan's scale
    images = crop_images(scan, truth)
    assert set(images) == {"painted", "real around", "sac painted", "real"}
    assert np.array_equal(images["real"], scan)
    top = np.percentile(scan, 99)
    assert abs(images["painted"][5, 5, 5] / top - 1.0) < 0.15
    # Where nothing is labelled, "real around" follows the scan and "painted" does not.
    outside = np.ones(scan.shape, bool)
    outside[2:8, 2:8, 2:8] = False
    corr = {k: np.corrcoef(images[k][outside], scan[outside])[0, 1] for k in images}
    assert corr["real around"] > 0.8 and abs(corr["painted"]) < 0.2


def test_sac_profile_runs_front_to_back_and_top_down_whatever_the_axis_letters():
    """A sac 4 planes deep whose back plane is at a third of the CSF signal (the canal's
    median) reads 1, 1, 1, 1/3 from front to back in P-I-R and in the same volume stored
    A-S-R."""
    scan = np.zeros((8, 12, 6), np.float32)
    truth = np.zeros(scan.shape, np.uint8)
    truth[2:6, :, 1:5] = 61  # P planes 2-5, all rows
    scan[2:5], scan[5] = 3.0, 1.0  # front (low P index) bright, back dark
    pir = sac_profile(scan, truth, ("P", "I", "R"), rows=6)
    asr = sac_profile(scan[::-1, ::-1], truth[::-1, ::-1], ("A", "S", "R"), rows=6)
    assert [t for t, _ in pir] == [0, 6]
    for (_, a), (_, b) in zip(pir, asr, strict=True):
        np.testing.assert_allclose(a, [1.0, 1.0, 1.0, 1 / 3], rtol=1e-6)
        np.testing.assert_allclose(b, a)


def test_crop_half_keeps_each_voxels_place_in_the_world_whichever_way_the_rows_run():
    """The upper half is the superior rows, in I- and in S-ordered storage of one volume, and
    each half's affine puts its voxels where they were (so a fit on one half never sees the
    other's labels, and a prediction on a half is scored against the same anatomy); a half
    that is neither is refused."""
    from spineps_dask.geometry import Volume

    pir = np.zeros((4, 4))  # P-I-R: the row index (axis 1) runs down
    pir[1, 0], pir[2, 1], pir[0, 2], pir[3, 3] = -1.5, -1.5, 1.5, 1.0
    pir[:3, 3] = (10.0, 40.0, -5.0)
    for rows in (6, 7):  # an odd count too: the upper half is the superior rows // 2
        data = np.arange(4 * rows * 3, dtype=np.float32).reshape(4, rows, 3)
        vol = Volume(data, pir)
        psr = Volume(data[:, ::-1].copy(), pir @ _flip_rows(rows))
        for half in ("upper", "lower"):
            a, b = crop_half(vol, half), crop_half(psr, half)
            assert a.shape == b.shape
            # The I-ordered half's last row is the S-ordered half's first: the same voxel in
            # the same place.
            last = a.shape[1] - 1
            assert a.data[1, last, 1] == b.data[1, 0, 1]
            np.testing.assert_allclose(a.affine @ [1, last, 1, 1], b.affine @ [1, 0, 1, 1])
        top, bottom = crop_half(vol, "upper"), crop_half(vol, "lower")
        assert top.shape[1] == rows // 2
        assert (top.affine @ [0, 0, 0, 1])[2] > (bottom.affine @ [0, 0, 0, 1])[2]
        assert np.array_equal(np.concatenate([top.data, bottom.data], axis=1), data)
    with pytest.raises(ValueError, match="half must be one of"):
        crop_half(vol, "middle")


def _flip_rows(n: int) -> np.ndarray:
    """The index map that stores a volume's rows (axis 1) the other way round."""
    flip = np.eye(4)
    flip[1, 1], flip[1, 3] = -1.0, n - 1
    return flip


def test_fitting_on_the_crop_trains_the_folders_network_and_writes_a_folder(tmp_path):
    """A few steps change the network's weights and leave a folder the pipeline loads, with
    the source folder's plans and inference config."""
    from spineps_dask.config import DEMO_MODELS
    from spineps_dask.models.semantic import SemanticModel
    from spineps_dask.training.demo import fold0_weights

    src = DEMO_MODELS / "semantic"
    torch.set_num_threads(1)
    out = fit_on_crop(src, tmp_path / "fit", 2)
    assert json.loads((out / "plans.json").read_text()) == json.loads(
        (src / "plans.json").read_text()
    )
    before, after = fold0_weights(src), fold0_weights(out)
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    SemanticModel.from_folder(out, device="cpu")
