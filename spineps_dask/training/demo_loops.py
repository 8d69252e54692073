"""Training loops for the demo models (CPU, minutes): cross-entropy + soft Dice, AdamW.

Both loops stop at ``iterations`` or at ``budget_s`` seconds, whichever comes first, and return
what they did so the model card can report it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from spineps_dask.pipeline.cutouts import crop_padded, cutout_targets, make_cutouts
from spineps_dask.training.demo_data import (
    Case,
    body_centres,
    class_coords,
    field_of_view,
    sample_patch,
)
from spineps_dask.training.patch_looks import redraw_look

logger = logging.getLogger(__name__)
_CL = torch.channels_last_3d  # ~2x faster 3D convolutions on CPU here


@dataclass(frozen=True)
class LoopResult:
    iterations: int
    seconds: float
    final_loss: float


def ce_dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus 1 - mean soft Dice over foreground classes present in the batch."""
    ce = nn.functional.cross_entropy(logits, target)
    probs = logits.softmax(1)
    onehot = nn.functional.one_hot(target, logits.shape[1]).permute(0, 4, 1, 2, 3).float()
    dims = (0, 2, 3, 4)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    present = onehot.sum(dims)[1:] > 0
    dice = (2 * inter[1:] + 1e-5) / (denom[1:] + 1e-5)
    soft = dice[present].mean() if present.any() else dice.mean()
    return ce + (1 - soft)


def run_loop(
    net: nn.Module,
    batch_fn: Callable[[np.random.Generator], tuple[torch.Tensor, torch.Tensor]],
    *,
    iterations: int,
    budget_s: float,
    lr: float,
    seed: int,
    name: str,
    device: str = "cpu",
) -> LoopResult:
    """Generic loop: AdamW with a linear decay to 5% of ``lr``, logs every 25 steps.

    ``device``: where the network trains (``"cuda"`` on a GPU machine); batches are drawn on
    the CPU and moved there, and the network comes back to the CPU at the end.

    ``budget_s`` counts this process's CPU seconds, so a run on a busy shared machine does the
    work it would do on an idle one. The decay follows whichever limit is nearer (steps done /
    ``iterations`` or CPU seconds / ``budget_s``), so a run cut by its budget still ends at the
    low learning rate instead of stopping part way down the schedule.
    """
    rng = np.random.default_rng(seed)
    net.to(device=device, memory_format=_CL).train()
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-5)
    t0, cpu0, losses, it = time.time(), time.process_time(), [], 0
    while it < iterations and time.process_time() - cpu0 < budget_s:
        progress = min(1.0, max(it / iterations, (time.process_time() - cpu0) / budget_s))
        for group in opt.param_groups:
            group["lr"] = lr * (1.0 - 0.95 * progress)
        x, y = batch_fn(rng)
        loss = ce_dice_loss(net(x.to(device=device, memory_format=_CL)), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        it += 1
        if it % 25 == 0:
            logger.info(
                "%s it %d loss %.4f (%.0f s, %.0f CPU s)",
                name,
                it,
                np.mean(losses[-25:]),
                time.time() - t0,
                time.process_time() - cpu0,
            )
    net.eval()
    net.to(device="cpu", memory_format=torch.contiguous_format)
    return LoopResult(
        it, time.time() - t0, float(np.mean(losses[-25:])) if losses else float("nan")
    )


def semantic_batches(
    cases: Sequence[Case],
    patch: Sequence[int],
    batch: int,
    seed: int,
    *,
    patch_norm: float = 0.0,
    fov_cut: float = 0.0,
    relook: float = 0.0,
) -> Callable[[np.random.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """Batches of nnU-Net-preprocessed patches with light intensity augmentation.

    ``patch_norm``: the share of patches z-scored on their own, as a scan whose field of view
    is the patch would be (`DemoTrainConfig.sem_patch_norm`). ``fov_cut``: the share of
    patches whose scan ends inside them (`demo_data.field_of_view`): outside it the image is
    the sliding window's zero padding and the target background. ``relook``: the share of
    patches given a new appearance drawn from their labels (`patch_looks.redraw_look`). At 0
    neither makes a draw, so earlier training commands give the same patches.
    """
    rng0 = np.random.default_rng(seed)
    coords = [class_coords(c.seg, rng0) for c in cases]

    def make(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for _ in range(batch):
            k = int(rng.integers(len(cases)))
            x, y = sample_patch(cases[k], coords[k], patch, rng)
            keep = field_of_view(x.shape[1:], rng) if fov_cut and rng.random() < fov_cut else None
            if relook and rng.random() < relook:
                x = redraw_look(x, y, rng)
            if rng.random() < patch_norm:
                seen = x if keep is None else x[:, keep]
                x = (x - seen.mean()) / max(float(seen.std()), 1e-6)
            # Contrast/brightness jitter on top of the phantoms' own SNR/bias variation.
            x = x * rng.uniform(0.8, 1.25) + rng.normal(0, 0.1)
            if keep is not None:
                x, y = np.where(keep, x, 0.0).astype(x.dtype), np.where(keep, y, 0).astype(y.dtype)
            xs.append(x)
            ys.append(y[0])
        return (
            torch.from_numpy(np.stack(xs)).float(),
            torch.from_numpy(np.stack(ys).astype(np.int64)).clamp_min(0),
        )

    return make


def instance_batches(
    cases: Sequence[Case],
    cutout: Sequence[int],
    n_channels: int,
    batch: int,
    *,
    mapping: dict[int, int],
    jitter: int = 3,
    min_body_voxels: int = 20,
) -> Callable[[np.random.Generator], tuple[torch.Tensor, torch.Tensor]]:
    """Cutouts of the GT semantic mask around GT body centres (jittered by up to ``jitter``
    voxels, as inference centres come from eroded, possibly split bodies) with 4-class targets."""
    items = [
        (k, v, c)
        for k, case in enumerate(cases)
        for v, c in body_centres(case.semantic, case.instance, min_voxels=min_body_voxels).items()
    ]
    if not items:
        raise ValueError("no vertebral bodies in the training phantoms")

    def make(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = [], []
        for _ in range(batch):
            k, v, centre = items[int(rng.integers(len(items)))]
            case = cases[k]
            c = np.asarray(centre) + rng.integers(-jitter, jitter + 1, 3)
            cut = make_cutouts(case.semantic, [c], size=cutout, mapping=mapping)[0]
            gt = crop_padded(case.instance, cut.origin, cutout)
            xs.append(cut.array)
            ys.append(cutout_targets(gt, v))
        ids = torch.from_numpy(np.stack(xs).astype(np.int64))
        x = nn.functional.one_hot(ids, n_channels).permute(0, 4, 1, 2, 3).float()
        return x, torch.from_numpy(np.stack(ys).astype(np.int64))

    return make
