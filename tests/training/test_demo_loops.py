"""Semantic training batches: the field-of-view normalisation of issue 17."""

import numpy as np
import pytest
import torch

from spineps_dask.training.demo_data import Case
from spineps_dask.training.demo_loops import run_loop, semantic_batches


def _case(offset: float) -> Case:
    rng = np.random.default_rng(0)
    data = (offset + rng.normal(0, 2.0, (1, 20, 24, 16))).astype(np.float32)
    seg = np.zeros((1, 20, 24, 16), np.int8)
    seg[0, 5:15, 6:18, 4:12] = 1
    return Case(data, seg, np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 4), np.uint16))


def test_patch_norm_z_scores_patches_on_their_own():
    """With patch_norm=1 every patch is z-scored before the brightness jitter (mean near 0,
    spread 0.8-1.25 sd), so the network sees tissues where a tight crop puts them; with 0 the
    case's own normalisation is kept (a patch of a case at +5 stays near +5)."""
    cases = [_case(5.0)]
    rng = np.random.default_rng(1)
    normed = semantic_batches(cases, (8, 8, 8), 4, seed=0, patch_norm=1.0)
    kept = semantic_batches(cases, (8, 8, 8), 4, seed=0, patch_norm=0.0)
    for _ in range(5):
        x, y = normed(rng)
        assert x.shape == (4, 1, 8, 8, 8) and y.shape == (4, 8, 8, 8)
        per_patch = x.flatten(1)
        assert per_patch.mean(1).abs().max() < 0.5
        assert ((per_patch.std(1) > 0.7) & (per_patch.std(1) < 1.4)).all()
        x, _ = kept(rng)
        assert x.flatten(1).mean(1).min() > 3.0


def test_fov_cut_pads_the_image_with_zeros_and_the_target_with_background():
    """With fov_cut=1 each patch shows a scan that ends inside it: outside, the image is the
    sliding window's zero padding and the target background, inside both are the case's (the
    target's foreground stays where the case has it); patch normalisation then uses only the
    voxels inside."""
    cases = [_case(5.0)]
    make = semantic_batches(cases, (8, 8, 8), 8, seed=0, patch_norm=1.0, fov_cut=1.0)
    rng = np.random.default_rng(2)
    padded = 0
    for _ in range(5):
        x, y = make(rng)
        outside = x[:, 0] == 0
        padded += int(outside.sum())
        assert (y[outside] == 0).all()
        inside = ~outside
        for k in range(len(x)):
            seen = x[k, 0][inside[k]]
            assert abs(float(seen.mean())) < 0.5
    assert padded > 0


def test_fov_cut_off_draws_the_same_patches_as_before():
    """fov_cut=0 makes no extra random draw: a training command without it gives the patches
    it gave before the option existed (the shipped model cards' commands stay reproducible)."""
    cases = [_case(5.0)]
    a = semantic_batches(cases, (8, 8, 8), 4, seed=0, patch_norm=0.3)
    b = semantic_batches(cases, (8, 8, 8), 4, seed=0, patch_norm=0.3, fov_cut=0.0)
    cut = semantic_batches(cases, (8, 8, 8), 4, seed=0, patch_norm=0.3, fov_cut=0.5)
    ra, rb, rc = (np.random.default_rng(3) for _ in range(3))
    xa, ya = a(ra)
    xb, yb = b(rb)
    assert (xa == xb).all() and (ya == yb).all()
    xc, _ = cut(rc)
    assert not (xa == xc).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_run_loop_trains_on_cuda_and_hands_the_network_back_on_the_cpu():
    """``device="cuda"``: the steps run on the GPU (weights change) and the network ends on the
    CPU, so the trainer writes its folder as after a CPU run."""
    net = torch.nn.Conv3d(1, 2, 1)
    before = net.weight.detach().clone()

    def batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(rng.normal(size=(2, 1, 4, 4, 4)).astype(np.float32))
        return x, torch.from_numpy(rng.integers(0, 2, size=(2, 4, 4, 4)))

    result = run_loop(
        net, batch, iterations=5, budget_s=60, lr=0.1, seed=0, name="t", device="cuda"
    )
    assert result.iterations == 5
    assert net.weight.device.type == "cpu"
    assert not torch.equal(before, net.weight.detach())


def test_relook_off_draws_the_same_patches_and_on_gives_new_looks():
    """relook=0 makes no extra draw (earlier commands give the patches they gave); with
    relook=1 every patch gets a new look: the labelled block, brighter than the rest in the
    case, comes out darker than the rest in some patches."""
    cases = [_case(5.0)]
    a = semantic_batches(cases, (8, 8, 8), 4, seed=0, patch_norm=0.3, fov_cut=0.3)
    b = semantic_batches(cases, (8, 8, 8), 4, seed=0, patch_norm=0.3, fov_cut=0.3, relook=0.0)
    xa, ya = a(np.random.default_rng(3))
    xb, yb = b(np.random.default_rng(3))
    assert (xa == xb).all() and (ya == yb).all()

    data = np.where(cases[0].seg == 1, 8.0, 2.0).astype(np.float32)
    bright = [Case(data, cases[0].seg, cases[0].semantic, cases[0].instance)]
    relooked = semantic_batches(bright, (8, 8, 8), 8, seed=0, relook=1.0)
    rng = np.random.default_rng(4)
    signs = set()
    for _ in range(6):
        x, y = relooked(rng)
        for k in range(len(x)):
            inside, outside = x[k, 0][y[k] == 1], x[k, 0][y[k] == 0]
            if len(inside) and len(outside):
                signs.add(bool(inside.mean() > outside.mean()))
    assert signs == {True, False}
