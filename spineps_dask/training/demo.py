"""Train the shipped demo models on synthetic phantoms, on a CPU, in minutes (issue 4, item 4).

``spineps-dask models train-demo OUT`` writes ``OUT/semantic`` (an nnU-Net v2 results folder,
PlainConvUNet 8..64 features) and ``OUT/instance`` (the reference Unet3D at width 8), each a
SPINEPS model folder whose ``inference_config.json`` records seed, command, iterations and the
accuracy measured on held-out phantoms, plus a ``MODEL_CARD.md``.

Choices (why):
- Semantic resolution 1.5 x 1.5 x 3.0 mm (P, I, R): coarse enough to train on a CPU, and one
  axis > 1.2 mm so the reference never runs its (downloaded) auto-crop model.
- Instance grid 2.0 x 2.0 x 3.0 mm, cutout (48, 72, 32) voxels = 96 x 144 x 96 mm: the centre
  vertebra and both neighbours fit for lumbar levels; every size divisible by 8 as the U-Net
  needs. At 1.5 mm a training step took ~4 s on one core (the 7³ first convolution at full
  resolution), at 2.0 mm about half.
- Body-size thresholds: the reference's 100 / 250 are kept in the config; the pipeline converts
  them to voxels of this grid exactly as the reference code does (``InstanceSpace``).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import torch

from spineps_dask.models import nnunet_folder as nf
from spineps_dask.models.config import DEFAULT_MAPPING, ModelConfig, write_config
from spineps_dask.models.instance import save_checkpoint
from spineps_dask.models.unet3d import Unet3D
from spineps_dask.training.config import TrainConfig, init_record, lineage_lines, versions
from spineps_dask.training.demo_data import PIR, SEMANTIC_CLASSES, load_cases
from spineps_dask.training.demo_loops import instance_batches, run_loop, semantic_batches

logger = logging.getLogger(__name__)

SPACING = (1.5, 1.5, 3.0)
#: The instance model sees the mask on a coarser grid: its 7³ first convolution at full
#: resolution dominates the cost, and separating vertebrae needs no fine detail.
INSTANCE_SPACING = (2.0, 2.0, 3.0)
#: The semantic network trains on P-I-R arrays; nnU-Net arrays are the NIfTI axes reversed
#: (SimpleITK order, which the reference and `SemanticModel` follow), so its folder declares
#: R-I-P, with the resolution in that order.
SEMANTIC_ORIENTATION = PIR[::-1]
CUTOUT = (48, 72, 32)
HELD_OUT_OFFSET = 100_000  # held-out phantoms use seeds HELD_OUT_OFFSET + k, never trained on


DEMO_SEM_LR = 3e-3


@dataclass(frozen=True)
class DemoTrainConfig(TrainConfig):
    """Everything that decides the demo models; recorded in their ``inference_config.json``.

    Training phantoms: seeds ``SEED*1000 + 0..n_train-1``.
    """

    threads: int = 2
    n_train: int = 32
    #: Where both networks train: ``"cpu"`` or a torch CUDA device (``"cuda"``, ``"cuda:1"``).
    device: str = "cpu"
    #: Extra semantic-training phantoms with a randomised look (issue 17, SynthSeg-style),
    #: seeds SEED*1000 + 500 + k; the instance model sees labels only and does not use them.
    n_random_looks: int = 0
    n_heldout: int = 20
    sem_features: tuple[int, ...] = (8, 16, 32, 64)
    # 144 mm along I-S: at 96 mm (1451 steps) the model scattered sacrum over vertebrae and
    # held-out sacrum Dice was 0.84; at 144 mm and 4000 steps 0.96 (issue 10).
    sem_patch: tuple[int, int, int] = (48, 96, 32)
    sem_iterations: int = 4000
    sem_batch: int = 2
    sem_lr: float = DEMO_SEM_LR
    sem_budget_s: float = 1500.0
    #: A semantic results folder whose fold-0 weights start the training (fine-tuning, e.g.
    #: the T2w demo model on random looks, issue 17); None trains from a random init.
    sem_init: str | None = None
    #: Share of semantic training patches z-scored on their own (issue 17): nnU-Net z-scores a
    #: scan over its whole field of view, and a tight crop shifts every tissue (the tptbox
    #: real crop, 78 x 102 x 100 mm, puts its bodies at 0.5 sd where a whole phantom's sit at
    #: 1.0). A patch is about that size, so a patch z-scored on itself is such a crop.
    sem_patch_norm: float = 0.0
    #: Share of semantic training patches whose scan ends inside them (issue 17): a scan
    #: smaller than the 144 mm window is padded with zeros at inference, which patches cut from
    #: inside a phantom never show (`demo_loops.semantic_batches`).
    sem_fov_cut: float = 0.0
    #: Share of semantic training patches given a fresh appearance drawn from their labels as
    #: they are sampled (issue 17, SynthSeg's per-sample looks; `training.patch_looks`).
    sem_relook: float = 0.0
    #: Share of the random-look phantoms that keep the T2w phantoms' sac and cord place
    #: (issue 17; `phantom.sample_spec`'s ``textbook_sac``): without it a look other than
    #: T2w comes with an inset sac four times in five (a T2w look never), and the network
    #: learns the one as a sign of the other.
    sem_textbook_sac: float = 0.0
    #: Share of the T2w training phantoms of the semantic model that draw their sac and cord
    #: place as random looks do (`phantom.sample_spec`'s ``drawn_sac``; session 25): without
    #: it the T2w look always comes with the textbook sac and cord place, and the network
    #: assumes them on T2w scans (`benchmarks/heldout_anatomy.py`). The instance model trains
    #: on the T2w phantoms as they were.
    sem_t2w_drawn_sac: float = 0.0
    inst_dim: int = 8
    inst_iterations: int = 3000
    inst_batch: int = 1
    inst_lr: float = 2e-3
    inst_budget_s: float = 1500.0
    # Reference values; `pipeline.segment.InstanceSpace` converts them to voxels of the model
    # grid as the reference does (count x 2.42 mm³ / voxel volume, at least 40).
    corpus_size_cleaning: int = 100
    vert_size_threshold: int = 250

    OPTION_FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "n_train": ("n_train",),
        "n_random_looks": ("n_random_looks",),
        "iterations": ("sem_iterations", "inst_iterations"),
        "budget_s": ("sem_budget_s", "inst_budget_s"),
        "lr": ("sem_lr",),
        "init_from": ("sem_init",),
        "patch_norm": ("sem_patch_norm",),
        "fov_cut": ("sem_fov_cut",),
        "relook": ("sem_relook",),
        "textbook_sac": ("sem_textbook_sac",),
        "t2w_drawn_sac": ("sem_t2w_drawn_sac",),
        "device": ("device",),
        "features": ("sem_features",),
    }


def semantic_spec(cfg: DemoTrainConfig) -> nf.PlainUNetSpec:
    n = len(cfg.sem_features)
    strides = ((1, 1, 1), *(((2, 2, 2),) * (n - 2)), (2, 2, 1))
    return nf.PlainUNetSpec(cfg.sem_features, strides, cfg.sem_patch, SPACING)


def train_demo_models(out: str | Path, cfg: DemoTrainConfig, *, which: str = "both") -> None:
    """Prepare phantoms (cached in ``out/.cache``), train, evaluate and write the model folders.

    ``which``: ``'data'`` (only prepare), ``'semantic'``, ``'instance'``, ``'both'``, or
    ``'cards'`` (only rewrite the model cards of the folders in ``out``).
    """
    torch.set_num_threads(cfg.threads)
    if which == "cards":
        write_cards(Path(out))
        return
    if which == "data" and cfg.n_random_looks:
        logger.info("random-look phantoms are prepared with --which semantic")
    torch.manual_seed(cfg.seed)
    out = Path(out)
    plans = nf.make_plans(semantic_spec(cfg), dataset_name="Dataset900_SpinepsDaskPhantom")
    dataset = nf.make_dataset_json([f"label_{lab}" for lab in SEMANTIC_CLASSES])
    prepare = partial(
        load_cases,
        cache=out / ".cache",
        plans=plans,
        semantic_grid=(SEMANTIC_ORIENTATION, SPACING[::-1]),
        instance_spacing=INSTANCE_SPACING,
        workers=cfg.threads,
    )
    t2w_seeds = cfg.seeds(0, cfg.n_train)
    # The instance model (and --which data) take the T2w phantoms as they are, the semantic
    # model with --t2w-drawn-sac its own set: each set is prepared and loaded only if used.
    drawn = cfg.sem_t2w_drawn_sac if which in ("semantic", "both") else 0.0
    cases = prepare(t2w_seeds) if which != "semantic" or not drawn else []
    if which in ("semantic", "both"):
        cases_sem = prepare(t2w_seeds, drawn_sac=drawn) if drawn else cases
        looks = prepare(
            cfg.seeds(500, cfg.n_random_looks),
            appearance="random",
            textbook_sac=cfg.sem_textbook_sac,
        )
        train_semantic(out / "semantic", cases_sem + looks, plans, dataset, cfg)
    if which in ("instance", "both"):
        train_instance(out / "instance", cases, cfg)
    if which != "data":
        write_cards(out, heldout=False)  # just measured


def train_semantic(
    out: Path, cases: list, plans: dict[str, Any], dataset: dict[str, Any], cfg: DemoTrainConfig
) -> dict[str, Any]:
    """Train the PlainConvUNet, write the folder, measure held-out Dice, write the card."""
    from spineps_dask.training.demo_eval import evaluate_semantic

    net = nf.build_network(plans, len(SEMANTIC_CLASSES) + 1)
    if cfg.sem_init is not None:
        net.load_state_dict(fold0_weights(Path(cfg.sem_init)))
    batches = semantic_batches(
        cases,
        cfg.sem_patch,
        cfg.sem_batch,
        cfg.seed,
        patch_norm=cfg.sem_patch_norm,
        fov_cut=cfg.sem_fov_cut,
        relook=cfg.sem_relook,
    )
    result = run_loop(
        net,
        batches,
        iterations=cfg.sem_iterations,
        budget_s=cfg.sem_budget_s,
        lr=cfg.sem_lr,
        seed=cfg.seed,
        name="semantic",
        device=cfg.device,
    )
    # Results files beside inference_config.json: the reference hands nnU-Net the folder itself.
    nf.write_results_folder(out, plans, dataset, [net.state_dict()])
    config = ModelConfig(
        log_name="demo-semantic-phantom",
        modality=("T2w",),
        acquisition="sag",
        modeltype="nnunet",
        model_expected_orientation=SEMANTIC_ORIENTATION,
        available_folds=(0,),
        inference_augmentation=False,
        resolution_range=SPACING[::-1],
        default_step_size=0.5,
        labels={i: lab for i, lab in enumerate(SEMANTIC_CLASSES, start=1)},
        training=_training_record(cfg, result, "semantic"),
    )
    write_config(out, config)
    scores = evaluate_semantic(out, _heldout(cfg), threads=cfg.threads)
    t1w = evaluate_semantic(out, _heldout(cfg), threads=cfg.threads, appearance="t1w")
    training = {**config.training, "heldout": scores, "heldout_t1w": t1w}
    write_config(out, replace(config, training=training))
    return scores


def fold0_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The fold-0 network weights of a semantic results folder, loaded safely."""
    from spineps_dask.models.checkpoint import load_checkpoint

    return load_checkpoint(folder / "fold_0" / "checkpoint_final.pth")["network_weights"]


def train_instance(out: Path, cases: list, cfg: DemoTrainConfig) -> dict[str, Any]:
    """Train the Unet3D on GT cutouts, write the folder, measure held-out Dice and counts."""
    from spineps_dask.training.demo_eval import evaluate_instance

    mapping = dict(DEFAULT_MAPPING)
    n_channels = max(mapping.values()) + 1
    net = Unet3D(cfg.inst_dim, channels=n_channels)
    batches = instance_batches(cases, CUTOUT, n_channels, cfg.inst_batch, mapping=mapping)
    result = run_loop(
        net,
        batches,
        iterations=cfg.inst_iterations,
        budget_s=cfg.inst_budget_s,
        lr=cfg.inst_lr,
        seed=cfg.seed + 1,
        name="instance",
        device=cfg.device,
    )
    save_checkpoint(
        out / "demo_instance_weights.ckpt",
        net,
        n_epoch=result.iterations,
        lr=cfg.inst_lr,
        lr_end_factor=0.05,
        l2_reg_w=1e-5,
        dsc_loss_w=1.0,
    )
    config = ModelConfig(
        log_name="demo-instance-phantom",
        modality=("SEG",),
        acquisition="sag",
        modeltype="unet",
        model_expected_orientation=PIR,
        available_folds=(0,),
        inference_augmentation=False,
        resolution_range=INSTANCE_SPACING,
        default_step_size=0.5,
        labels={0: 0, 1: 1, 2: 2, 3: 3},
        expected_inputs=("seg",),
        cutout_size=CUTOUT,
        corpus_size_cleaning=cfg.corpus_size_cleaning,
        vert_size_threshold=cfg.vert_size_threshold,
        mapping=mapping,
        training=_training_record(cfg, result, "instance"),
    )
    write_config(out, config)
    scores = evaluate_instance(out, _heldout(cfg), threads=cfg.threads)
    write_config(out, replace(config, training={**config.training, "heldout": scores}))
    return scores


def _heldout(cfg: DemoTrainConfig) -> list[int]:
    return cfg.seeds(HELD_OUT_OFFSET, cfg.n_heldout)


# Each phase's fields in `DemoTrainConfig` start with its prefix.
_PREFIX = {"semantic": "sem_", "instance": "inst_"}

# Semantic options a card's command names only when they differ from their defaults.
_SEM_FLAGS = (
    ("--features", "sem_features"),
    ("--lr", "sem_lr"),
    ("--init-from", "sem_init"),
    ("--patch-norm", "sem_patch_norm"),
    ("--fov-cut", "sem_fov_cut"),
    ("--relook", "sem_relook"),
    ("--textbook-sac", "sem_textbook_sac"),
    ("--t2w-drawn-sac", "sem_t2w_drawn_sac"),
)


def _command(cfg: DemoTrainConfig, which: str) -> str:
    """The ``models train-demo`` command that trains this model again."""
    prefix = _PREFIX[which]
    parts = [
        f"spineps-dask models train-demo OUT --seed {cfg.seed} --threads {cfg.threads}",
        f"--which {which} --iterations {getattr(cfg, prefix + 'iterations')}",
        f"--budget-s {getattr(cfg, prefix + 'budget_s'):g} --train-phantoms {cfg.n_train}",
    ]
    if which == "semantic":
        parts.append(f"--random-looks {cfg.n_random_looks}")
        defaults = {f.name: f.default for f in fields(DemoTrainConfig)}
        for flag, name in _SEM_FLAGS:
            value = getattr(cfg, name)
            if value != defaults[name]:
                if isinstance(value, tuple):
                    value = ",".join(map(str, value))
                parts.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    return " ".join(parts)


def _training_record(cfg: DemoTrainConfig, result: Any, which: str) -> dict[str, Any]:
    prefix = _PREFIX[which]
    return {
        "trained_by": "spineps_dask.training.demo",
        "command": _command(cfg, which),
        **(init_record(cfg.sem_init) if which == "semantic" and cfg.sem_init else {}),
        "seed": cfg.seed,
        "train_phantom_seeds": f"{cfg.seed * 1000}..{cfg.seed * 1000 + cfg.n_train - 1}",
        "heldout_phantom_seeds": f"{_heldout(cfg)[0]}..{_heldout(cfg)[-1]}",
        "iterations": result.iterations,
        "train_seconds": round(result.seconds, 1),
        "final_loss": round(result.final_loss, 4),
        "settings": {
            k: v
            for k, v in asdict(cfg).items()
            if k.startswith(prefix)
            or k in ("n_train", "n_heldout", "threads", "n_random_looks", "device")
        },
        **versions(),
    }


_HELDOUT_LEGEND = {
    "semantic": [
        "Global Dice per structure over all held-out voxels, predicted from each phantom's image "
        "in its stored orientation (`demo_eval.evaluate_semantic`).",
        "",
    ],
    "instance": [
        "On each phantom's ground-truth semantic mask (`demo_eval.evaluate_instance`): "
        "`vertebra_dice_mean` / `count_correct_fraction` for the model's cutouts merged; "
        "`pipeline` for the whole instance phase as `segment --semantic` runs it (merge, "
        "post-processing, labelling), with the share of vertebrae named right in views where "
        "the pipeline found its C2 or sacrum anchor.",
        "",
    ],
}


def write_cards(out: str | Path, *, heldout: bool = True) -> None:
    """(Re)write ``MODEL_CARD.md`` of ``out/semantic`` and ``out/instance`` from their configs.

    Held-out scores are measured again (``heldout``) on the phantoms each
    ``inference_config.json`` names and written back there, so the cards follow pipeline
    changes made after training; the real-data section is measured now on the tptbox crops
    (issue 4, item 5), with the sibling model, or the shipped demo model where ``out`` has none.
    """
    from spineps_dask.models.config import CONFIG_NAME, load_config
    from spineps_dask.models.folders import demo_model
    from spineps_dask.training.demo_eval import (
        evaluate_instance,
        evaluate_real_samples,
        evaluate_semantic,
    )

    out = Path(out)
    folders = {
        w: out / w if (out / w / CONFIG_NAME).exists() else Path(demo_model(w))
        for w in ("semantic", "instance")
    }
    for which in ("semantic", "instance"):
        if not (out / which / CONFIG_NAME).exists():
            continue
        config = load_config(out / which / CONFIG_NAME)
        if heldout:
            first, last = (int(x) for x in config.training["heldout_phantom_seeds"].split(".."))
            evaluate = evaluate_semantic if which == "semantic" else evaluate_instance
            seeds = list(range(first, last + 1))
            scores = evaluate(out / which, seeds, threads=torch.get_num_threads())
            training = {**config.training, "heldout": scores}
            if which == "semantic":  # a contrast never trained on as such (issue 17)
                training["heldout_t1w"] = evaluate_semantic(
                    out / which, seeds, threads=torch.get_num_threads(), appearance="t1w"
                )
            config = replace(config, training=training)
            write_config(out / which, config)
        real = evaluate_real_samples(
            folders["semantic"] if which == "semantic" else None, folders["instance"]
        )
        _write_card(out / which, which, config, real)


def _write_card(out: Path, which: str, config: ModelConfig, real: dict[str, Any] | None) -> None:
    t = config.training
    lines = [
        f"# Demo {which} model (synthetic phantoms only)",
        "",
        "Trained by `spineps_dask.training.demo` on seeded synthetic phantoms "
        "(`spineps_dask.phantom`); **not for real MRI**. It exists so that the pipeline, the "
        "tests and the benchmarks run real inference on a CPU in seconds.",
        "",
        f"- command: `{t['command']}`",
        *lineage_lines(t),
        f"- seed: {t['seed']}; training phantoms {t['train_phantom_seeds']}; "
        f"held-out phantoms {t['heldout_phantom_seeds']}",
        f"- iterations: {t['iterations']} in {t['train_seconds']} s (final loss {t['final_loss']})",
        f"- resolution ({', '.join(config.model_expected_orientation)}): "
        f"{config.resolution_range} mm",
        "",
        "## Held-out accuracy (phantoms never trained on)",
        "",
        *_HELDOUT_LEGEND[which],
        "```json",
        json.dumps(t.get("heldout"), indent=2),
        "```",
        "",
        *(
            [
                "The same phantoms rendered with a T1w-like contrast (CSF dark, marrow and fat "
                "bright; `make_phantom(seed, appearance='t1w')`), never trained on as such:",
                "",
                "```json",
                json.dumps(t["heldout_t1w"], indent=2),
                "```",
                "",
            ]
            if "heldout_t1w" in t
            else []
        ),
        "## Real data (the crops the `tptbox` wheel ships)",
        "",
    ]
    if real is None:
        lines.append("Not measured: tptbox (a test extra) was not installed.")
    else:
        lines += [
            "Measured by `spineps_dask.training.demo_eval.evaluate_real_samples` against the "
            "crops' own `seg-subreg` / `seg-vert` masks. A phantom-trained semantic model is "
            "expected to do poorly on real T2w contrast; the figure says how far it carries.",
            "",
            "```json",
            json.dumps(real, indent=2),
            "```",
        ]
    lines += [
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with Python "
        f"{sys.version.split()[0]}, torch {torch.__version__}.",
    ]
    (out / "MODEL_CARD.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
