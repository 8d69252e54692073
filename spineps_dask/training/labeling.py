"""Train the shipped demo labelling model on phantom views, on a CPU (issue 20, item 3).

``spineps-dask models train-demo OUT --which labeling`` writes ``OUT/labeling``: a SPINEPS
labelling folder (``inference_config.json`` with ``modeltype`` ``classifier`` and a
``*val_f1=*valf1-weights.ckpt`` in the reference's ``PLClassifier`` layout) that this project
and `spineps` 2.1.3 (``-ml OUT/labeling``) both run, plus ``MODEL_CARD.md``.

Choices (why):
- Backbone MONAI DenseNet121 (our `_densenet.DenseNet3d`, same parameter names): the smallest
  backbone the reference's ``PLClassifier`` builds that works (its ``RESNET2`` option fails in
  MONAI), so `spineps` can load the checkpoint unchanged.
- Patches 32 x 64 x 32 voxels (P, I, R) at 3 mm: 96 x 192 x 96 mm, two to five vertebrae
  along the column, the smallest edge (32) the DenseNet's five halvings allow.
- Heads VERTEXACT (26 classes, T13 and L6 their own), REGION (3) and VERTREL (6, the
  reference's region boundaries): the reference's solver reads all three, ours the first two.
- Views (`labeling_data.VIEW_MIX`) include crops with neither C2 nor the sacrum, and T13 / L6
  spines drawn at 25 % / 20 % instead of the population's few per cent.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from spineps_dask.models.config import ModelConfig, write_config
from spineps_dask.models.labeling import LabelingNetwork, save_labeling_checkpoint
from spineps_dask.pipeline.patches import PatchSettings
from spineps_dask.pipeline.sequence import CLASS_IDS
from spineps_dask.training.config import TrainConfig, init_record, versions
from spineps_dask.training.labeling_data import HEADS, ViewSample, draw_kind, view_sample

logger = logging.getLogger(__name__)

PIR = ("P", "I", "R")
#: Training views use seeds TRAIN_OFFSET + k; held-out tests use other seeds (`HELDOUT_OFFSET`).
TRAIN_OFFSET = 300_000
HELDOUT_OFFSET = 100_000
_CL = torch.channels_last_3d
_LOSS_WEIGHTS = {"VERTEXACT": 1.0, "REGION": 0.5, "VERTREL": 0.5}


@dataclass(frozen=True)
class LabelingTrainConfig(TrainConfig):
    """Everything that decides the demo labelling model; recorded in its config."""

    n_train: int = 600
    iterations: int = 2500
    batch: int = 12
    lr: float = 1e-3
    budget_s: float = 2400.0
    spacing: tuple[float, float, float] = (3.0, 3.0, 3.0)
    size: tuple[int, int, int] = (32, 64, 32)
    rotate: bool = True
    heldout_per_kind: int = 6
    #: A labelling folder whose weights the network starts from (fine-tuning); None: random.
    init_from: str | None = None

    OPTION_FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        k: (k,) for k in ("n_train", "iterations", "budget_s", "lr", "init_from")
    }

    @property
    def patch_settings(self) -> PatchSettings:
        return PatchSettings(
            orientation=PIR, spacing=self.spacing, size=self.size, rotate=self.rotate
        )

    def train_seeds(self) -> list[int]:
        return self.seeds(TRAIN_OFFSET, self.n_train)


def training_views(cfg: LabelingTrainConfig, cache: Path | None = None) -> list[ViewSample]:
    """The training views' patches and targets, cached in ``cache`` (an ``.npz`` per view)."""
    out = []
    t0 = time.perf_counter()
    for k, seed in enumerate(cfg.train_seeds()):
        out.append(_cached_view(seed, draw_kind(seed), cfg.patch_settings, cache))
        if (k + 1) % 40 == 0:
            logger.info(
                "labelling data: %d/%d views, %.0f s", k + 1, cfg.n_train, time.perf_counter() - t0
            )
    return out


def _cached_view(seed: int, kind: str, settings: PatchSettings, cache: Path | None) -> ViewSample:
    path = (
        None if cache is None else cache / f"labeling-{seed}-{kind}-{_settings_key(settings)}.npz"
    )
    if path is not None and path.is_file():
        z = np.load(path)
        targets = {h: z[f"t_{h}"] for h in HEADS}
        return ViewSample(seed, kind, tuple(int(v) for v in z["ids"]), z["patches"], targets)
    sample = view_sample(seed, kind, settings)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        t = sample.targets
        np.savez(
            path,
            ids=np.array(sample.ids),
            patches=sample.patches,
            t_VERTEXACT=t["VERTEXACT"],
            t_REGION=t["REGION"],
            t_VERTREL=t["VERTREL"],
        )
    return sample


def _settings_key(s: PatchSettings) -> str:
    from spineps_dask.config import fingerprint

    return fingerprint(asdict(s), length=8)


def augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Left-right mirror, a shift of up to 2 voxels, intensity gain / offset and noise on the
    non-zero voxels of ``(B, X, Y, Z)`` z-scored patches (P, I, R)."""
    out = np.array(batch, dtype=np.float32)
    for b in range(len(out)):
        x = out[b]
        if rng.random() < 0.5:
            x = x[:, :, ::-1]
        x = np.roll(x, tuple(int(v) for v in rng.integers(-2, 3, size=2)), axis=(0, 1))
        mask = x != 0
        gain, offset = rng.uniform(0.8, 1.2), rng.uniform(-0.2, 0.2)
        noise = rng.normal(0.0, rng.uniform(0.0, 0.15), size=x.shape).astype(np.float32)
        out[b] = np.where(mask, x * gain + offset + noise, 0.0)
    return out


def train_network(
    views: list[ViewSample], cfg: LabelingTrainConfig
) -> tuple[LabelingNetwork, dict[str, Any]]:
    """AdamW with warm-up and cosine decay over ``cfg.iterations`` or ``cfg.budget_s``.

    The budget counts this process's CPU seconds (with ``threads=1``: seconds of one core), so
    a run on a busy machine does the same work as on an idle one; the schedule follows
    whichever limit is nearer, so a run cut by the budget still ends at the low rate.
    """
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, 17])
    patches = np.concatenate([v.patches for v in views])
    targets = {h: torch.from_numpy(np.concatenate([v.targets[h] for v in views])) for h in HEADS}
    net = LabelingNetwork(HEADS)
    if cfg.init_from is not None:
        net.load_state_dict(_folder_weights(Path(cfg.init_from)))
    net = net.to(memory_format=_CL)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    ce = nn.CrossEntropyLoss(label_smoothing=0.05)
    t0, cpu0, step, losses = time.perf_counter(), time.process_time(), 0, []
    net.train()
    while step < cfg.iterations and time.process_time() - cpu0 < cfg.budget_s:
        done = max(step / cfg.iterations, (time.process_time() - cpu0) / cfg.budget_s)
        warm = min(1.0, (step + 1) / 50)
        for group in opt.param_groups:
            group["lr"] = cfg.lr * warm * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(done, 1.0))))
        idx = rng.choice(len(patches), size=cfg.batch, replace=False)
        x = torch.from_numpy(augment(patches[idx], rng))[:, None].contiguous(memory_format=_CL)
        logits = net(x)
        loss = sum(_LOSS_WEIGHTS[h] * ce(logits[h], targets[h][idx]) for h in HEADS)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 50 == 0:
            logger.info(
                "labelling step %d: loss %.3f, %.0f s (%.0f CPU s)",
                step,
                np.mean(losses[-50:]),
                time.perf_counter() - t0,
                time.process_time() - cpu0,
            )
    net.eval()
    record = {
        "iterations": step,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "train_cpu_seconds": round(time.process_time() - cpu0, 1),
        "final_loss": round(float(np.mean(losses[-50:])), 4) if losses else None,
        "train_patches": len(patches),
    }
    return net, record


def _folder_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The weights of a labelling folder, checked against this trainer's heads."""
    from spineps_dask.models.labeling import LabelingModel

    net = LabelingModel.from_folder(folder, device="cpu").network
    if net.heads != HEADS:
        raise ValueError(f"{folder}: heads {net.heads} differ from the trainer's {HEADS}")
    return net.state_dict()


def labeling_config(cfg: LabelingTrainConfig, training: dict[str, Any]) -> ModelConfig:
    """The folder's ``inference_config.json``: a T2w sagittal classifier in P-I-R at 3 mm."""
    return ModelConfig(
        log_name="demo-labeling-phantom",
        modality=("T2w",),
        acquisition="sag",
        modeltype="classifier",
        model_expected_orientation=PIR,
        available_folds=(0,),
        inference_augmentation=False,
        resolution_range=cfg.spacing,
        default_step_size=0.5,
        labels=dict(enumerate(CLASS_IDS)),
        expected_inputs=("img",),
        training=training,
    )


def train_labeling(out: str | Path, cfg: LabelingTrainConfig, *, cache: Path | None = None) -> Path:
    """Make the views, train, score on held-out views, write ``out`` (the model folder)."""
    from spineps_dask.training.labeling_eval import heldout_views, naming_scores, write_card

    torch.set_num_threads(cfg.threads)
    out = Path(out)
    t0 = time.perf_counter()
    views = training_views(cfg, cache)
    data_s = time.perf_counter() - t0
    net, record = train_network(views, cfg)
    training = {
        "trained_by": "spineps_dask.training.labeling",
        "command": f"spineps-dask models train-demo OUT --which labeling --seed {cfg.seed} "
        f"--threads {cfg.threads} --iterations {cfg.iterations} --budget-s {cfg.budget_s:g} "
        f"--train-phantoms {cfg.n_train} --lr {cfg.lr:g}"
        + (f" --init-from {cfg.init_from}" if cfg.init_from else ""),
        "seed": cfg.seed,
        **(init_record(cfg.init_from) if cfg.init_from else {}),
        "train_view_seeds": f"{cfg.train_seeds()[0]}..{cfg.train_seeds()[-1]}",
        "data_seconds": round(data_s, 1),
        **record,
        "settings": {k: v for k, v in asdict(cfg).items()},
        **versions(),
    }
    scores = naming_scores(net, heldout_views(cfg, cfg.heldout_per_kind), cfg.patch_settings)
    training["heldout"] = scores
    f1 = float(scores["patch_f1_macro"])
    for old in out.glob("*.ckpt"):
        old.unlink()
    save_labeling_checkpoint(
        out / f"demo-labeling_val_f1={f1:.4f}valf1-weights.ckpt",
        net,
        final_size=cfg.size,
        rotate=cfg.rotate,
        training={"steps": record["iterations"], "seed": cfg.seed},
    )
    write_config(out, labeling_config(cfg, training))
    write_card(out)
    return out
