"""One subject through the whole method, as a chain of stages the cluster can also run apart.

``prepare`` -> ``semantic_phase`` -> ``instance_input`` -> ``plan_cutouts`` -> ``cutouts_at``
-> (instance model) -> ``assemble`` -> ``name_vertebrae`` (labelling model, issue 20) ->
``apply_naming``. `segment` runs them in one process; the distributed
runner runs each stage as its own task with the arrays parked in the store between them.
Both call these same functions, so their outputs are identical voxel for voxel.

Grids follow the recipe (issue 22). ``reference`` (default), as `spineps` 2.1.3: the semantic
mask is made and cleaned at the model's resolution, the instance grid is made from it by
nearest neighbour (exactly the instance folder's resolution), and both masks go back to the
scan's grid by nearest neighbour before post-processing. ``native``: the semantic mask comes
back on the prepared (cropped) scan grid, the instance grid is derived from that, and
post-processing runs there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from spineps_dask.config import RECIPES
from spineps_dask.errors import ModelError
from spineps_dask.geometry import Volume, resample, resample_to, rescale
from spineps_dask.pipeline.check import check_scan
from spineps_dask.pipeline.cutouts import (
    DEFAULT_MAPPING,
    CentreSettings,
    Cutout,
    crop_padded,
    find_centres,
    map_labels,
)
from spineps_dask.pipeline.labeling import Labeling, LabelingSettings, centroids
from spineps_dask.pipeline.merge import CutoutPrediction, MergeSettings, merge_predictions
from spineps_dask.pipeline.naming import (
    Naming,
    NamingSettings,
    model_naming,
    rename,
    rule_anchors,
    rule_naming,
)
from spineps_dask.pipeline.patches import vertebra_patches
from spineps_dask.pipeline.postprocess import postprocess_instances
from spineps_dask.pipeline.preprocess import (
    CropRecord,
    PreprocessSettings,
    crop_pad,
    preprocess,
    undo_crop_pad,
)
from spineps_dask.pipeline.protocols import (
    InstanceConfig,
    InstanceSegmenter,
    LabelingConfig,
    SemanticConfig,
    SemanticSegmenter,
    VertebraClassifier,
)
from spineps_dask.pipeline.reference import instance_phase, postprocess_like_reference
from spineps_dask.pipeline.reference.instance_phase import ReferenceSizes
from spineps_dask.pipeline.semantic_cleaning import CleaningSettings, clean_semantic

logger = logging.getLogger(__name__)

#: Orientation of the post-processing and labelling steps (axis 1 points inferior).
PIR = ("P", "I", "R")

#: Reference body / vertebra size limits were tuned at NAKO resolution: voxel counts x 2.42 mm³
#: per voxel, floored at 40 voxels (spineps ``phase_instance.predict_instance_mask``).
_REFERENCE_VOXEL_MM3 = 2.42
_MIN_VOXELS = 40
#: The reference's floor is 40 voxels of its own instance grid (0.75 x 0.75 x 1.65 mm). Kept as
#: that volume, not as a voxel count: on a coarser grid (the 2 x 2 x 3 mm demo model) 40 voxels
#: are 480 mm³, more than an eroded cervical body, and whole vertebrae lost their cutout.
_REFERENCE_GRID_MM3 = 0.75 * 0.75 * 1.65


@dataclass(frozen=True)
class InstanceSpace:
    """How the instance model sees a semantic mask: grid, cutout size, label mapping, limits."""

    orientation: tuple[str, str, str] = PIR
    spacing: tuple[float, float, float] = (0.75, 0.75, 1.65)
    cutout_size: tuple[int, int, int] = (248, 304, 64)
    mapping: Mapping[int, int] | None = None
    corpus_size_cleaning: int = 100
    vert_size_threshold: int = 250

    @classmethod
    def from_config(cls, config: InstanceConfig) -> InstanceSpace:
        """From an instance model's config (a `ModelConfig`)."""
        return cls(
            orientation=tuple(config.model_expected_orientation),
            spacing=tuple(float(s) for s in config.resolution_range),
            cutout_size=tuple(int(s) for s in config.cutout_size),
            mapping=dict(config.mapping),
            corpus_size_cleaning=int(config.corpus_size_cleaning),
            vert_size_threshold=int(config.vert_size_threshold),
        )

    def _voxels(self, reference_count: int) -> int:
        voxel_mm3 = float(np.prod(self.spacing))
        floor = max(1, round(_MIN_VOXELS * _REFERENCE_GRID_MM3 / voxel_mm3))
        return max(int(reference_count * _REFERENCE_VOXEL_MM3 / voxel_mm3), floor)

    @property
    def centre_settings(self) -> CentreSettings:
        # The reference erodes bodies by 2 voxels at 0.75 mm; keep that 1.5 mm on coarser grids
        # or small cervical bodies vanish before their centre is found.
        erosion = max(1, round(2 * 0.75 / min(self.spacing)))
        return CentreSettings(
            erosion=erosion, corpus_size_cleaning=self._voxels(self.corpus_size_cleaning)
        )

    def reference_sizes(self, zoom: tuple[float, float, float]) -> ReferenceSizes:
        """The reference's corpus and vertebra size limits on a grid of voxel size ``zoom``."""
        return ReferenceSizes.from_config(
            self.corpus_size_cleaning,
            self.vert_size_threshold,
            resolution=self.spacing,
            zoom=zoom,
        )

    @property
    def merge_settings(self) -> MergeSettings:
        return MergeSettings(vert_size_threshold=self._voxels(self.vert_size_threshold))


@dataclass(frozen=True)
class Segmentation:
    """One subject's result, in the input scan's geometry."""

    semantic: Volume
    instance: Volume
    centroids: dict[int, tuple[float, float, float]]
    anchor: str
    n_cutouts: int
    timings: dict[str, float] = field(default_factory=dict)
    naming: Naming | None = None


@dataclass(frozen=True)
class ReferenceNumbering:
    """How `spineps` 2.1.3 numbers vertebrae when it names them from the top (reference mode).

    ``labeling_offset``: the top vertebra is ``1 + labeling_offset``: C2 (1), or C1 (0) for a
    CT semantic model with ``has_c1`` (``seg_run.segment_image`` sets
    ``vertebra_instance_labeling_offset = 1`` then). ``sacrum_ids``: the semantic model's
    labels that become S1.
    """

    labeling_offset: int = 1
    sacrum_ids: tuple[int, ...] = (26,)

    @classmethod
    def from_config(cls, config: SemanticConfig | None) -> ReferenceNumbering:
        """From the semantic model's `ModelConfig` (None: the defaults)."""
        if config is None:
            return cls()
        c1 = model_modality(config) == "CT" and bool(getattr(config, "has_c1", False))
        sacrum = tuple(int(v) for v in getattr(config, "sacrum_ids", (26,)))
        return cls(labeling_offset=0 if c1 else 1, sacrum_ids=sacrum)


def model_modality(config: SemanticConfig) -> str:
    """``"CT"`` for a semantic model trained on CT (the reference then neither normalises nor
    runs N4), else ``"MR"``."""
    return "CT" if "CT" in tuple(config.modality) else "MR"


def check_model_set(
    semantic_config: SemanticConfig | None, labeling_config: LabelingConfig | None
) -> None:
    """Refuse a labelling model made for the other kind of scan than the semantic model.

    `spineps` 2.1.3 checks the scan against both models' modalities and skips the subject
    when either does not fit (``check_input_model_compatibility``): a CT labelling model
    (``ct_labeling``) names CT scans, the MR one (``t2w_labeling``) MR scans. Here the two
    configs are compared once, before any scan is read. MR sequences are not told apart
    (T1w / Vibe semantic models with the T2w labelling model run).

    Raises
    ------
    ModelError
        The semantic model is for CT and the labelling model for MR, or the other way round.
    """
    if semantic_config is None or labeling_config is None:
        return
    sem, lab = model_modality(semantic_config), model_modality(labeling_config)
    if sem != lab:
        raise ModelError(
            f"the labelling model {labeling_config.log_name!r} is for "
            f"{'/'.join(labeling_config.modality)} scans but the semantic model "
            f"{semantic_config.log_name!r} for {'/'.join(semantic_config.modality)}: use the "
            f"{'ct_labeling' if sem == 'CT' else 't2w_labeling'} model with it, or name by the "
            "rule (labelling model 'none')"
        )


def _check_recipe(recipe: str) -> None:
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; use one of {', '.join(RECIPES)}")


def prepare(
    image: Volume,
    *,
    n4: bool,
    subject: str = "",
    recipe: str = "reference",
    modality: str = "MR",
) -> tuple[Volume, CropRecord]:
    """Check the scan, then normalise / (crop) / (N4) / pad it for the semantic model.

    ``modality="CT"`` (a CT semantic model): as the reference, no intensity normalisation and
    no N4 (reference recipe only).
    """
    _check_recipe(recipe)
    check_scan(image, subject=subject)
    ct = modality == "CT" and recipe == "reference"
    settings = PreprocessSettings(n4=n4 and not ct, recipe=recipe, normalize=not ct)
    return preprocess(image, settings=settings)


def raw_semantic(
    prepared: Volume, model: SemanticSegmenter, *, recipe: str = "reference"
) -> Volume:
    """The semantic model's labels before cleaning: on the model grid in P-I-R (reference) or
    on the prepared grid (native)."""
    _check_recipe(recipe)
    if recipe == "reference":
        return model.predict_model_grid(prepared).reorient(PIR)
    return model.predict(prepared)


def semantic_phase(
    prepared: Volume,
    model: SemanticSegmenter,
    *,
    recipe: str = "reference",
    reference_mode: bool = False,
) -> Volume:
    """Semantic model on the prepared image, then the cleaning (uint8 labels).

    ``reference_mode``: `spineps` 2.1.3's cleaning at the mask's zoom, without this project's
    rules beyond it (`CleaningSettings.reference`).
    """
    raw = raw_semantic(prepared, model, recipe=recipe)
    codes = raw.orientation
    axis = next(k for k, c in enumerate(codes) if c in "IS")
    down = (axis, 1 if codes[axis] == "I" else -1)
    settings = CleaningSettings.reference(raw.spacing) if reference_mode else None
    cleaned = clean_semantic(np.asarray(raw.data, dtype=np.uint8), settings=settings, down=down)
    return raw.with_data(cleaned)


def instance_input(semantic: Volume, space: InstanceSpace, *, recipe: str = "reference") -> Volume:
    """The semantic mask on the instance model's grid (reoriented exactly, nearest neighbour).

    Reference: TPTBox's grid, exactly ``space.spacing`` (``phase_instance``); native: the field
    of view's edges kept, the spacing as near as a whole number of voxels allows.
    """
    _check_recipe(recipe)
    oriented = semantic.reorient(space.orientation)
    if recipe == "reference":
        return rescale(oriented, space.spacing, order=0)
    return resample(oriented, space.spacing, order=0)


def plan_cutouts(
    instance_in: Volume, space: InstanceSpace, *, reference_mode: bool = False
) -> np.ndarray:
    """Vertebral-body centres (N, 3), bottom -> top, on the instance grid.

    ``reference_mode``: `spineps` 2.1.3's centres (`instance_phase.plan`).
    """
    data = np.asarray(instance_in.data)
    if reference_mode:
        return instance_phase.plan(
            data,
            mapping=space.mapping or DEFAULT_MAPPING,
            sizes=space.reference_sizes(instance_in.spacing),
            zoom=instance_in.spacing,
        )
    return find_centres(data, settings=space.centre_settings)


def cutouts_at(
    volume: Any,
    centres: np.ndarray,
    indices: Sequence[int],
    space: InstanceSpace,
    *,
    subject: str = "",
) -> list[Cutout]:
    """The cutouts ``indices`` of ``centres``, read from any array-like (numpy or Zarr).

    Only each cutout's window is read, so a worker holding a store key fetches a few chunks,
    not the volume.
    """
    half = np.asarray(space.cutout_size) // 2
    out = []
    for i in indices:
        centre = tuple(int(v) for v in np.round(centres[i]))
        origin = tuple(int(v) for v in np.asarray(centre) - half)
        window = crop_padded(volume, origin, space.cutout_size)
        out.append(Cutout(subject, int(i), centre, origin, map_labels(window, space.mapping)))
    return out


def predict_cutouts(cutouts: Sequence[Cutout], model: InstanceSegmenter) -> list[CutoutPrediction]:
    """One instance-model forward over a batch of cutouts."""
    if not cutouts:
        return []
    classes = model.predict(np.stack([c.array for c in cutouts]))
    return [CutoutPrediction.from_cutout(c, k) for c, k in zip(cutouts, classes, strict=True)]


def assemble(
    semantic: Volume,
    instance_in: Volume,
    predictions: Sequence[CutoutPrediction],
    record: CropRecord,
    space: InstanceSpace,
    *,
    postprocess_on: bool = True,
    merge: MergeSettings | None = None,
    reference_mode: bool = False,
    numbering: ReferenceNumbering | None = None,
) -> tuple[Volume, Volume, Labeling, dict[int, tuple[float, float, float]]]:
    """Merge, post-process and label; return semantic and instance in the input geometry.

    ``merge``: merge constants (parameter sweeps); default ``space.merge_settings``.
    ``reference_mode``: `spineps` 2.1.3's merge (`instance_phase.merge`) and post-processing,
    numbering as ``numbering`` says (the semantic model's `ReferenceNumbering`).

    The merge runs on the instance grid; post-processing and labelling in P-I-R orientation
    (reorientation is exact) on the scan's grid (reference: both masks mapped there by nearest
    neighbour, as `spineps` does) or on the prepared grid (native), so thin structures keep
    their full resolution.
    """
    if reference_mode:
        sizes = space.reference_sizes(instance_in.spacing)
        merged = instance_phase.merge(predictions, instance_in.shape, vertebra_size=sizes.vertebra)
    else:
        merged = merge_predictions(
            predictions, instance_in.shape, settings=merge or space.merge_settings
        ).astype(np.uint16)
    if record.recipe == "reference":
        scan_sem = resample_to(semantic, record.shape, record.affine, order=0)
        scan_inst = resample_to(
            Volume(merged, instance_in.affine), record.shape, record.affine, order=0
        )
        if reference_mode and postprocess_on:
            scan_sem, inst_out, labeling = _postprocess_like_reference(
                scan_sem, scan_inst, numbering or ReferenceNumbering()
            )
        else:
            inst_out, labeling = _postprocess_on(scan_sem, scan_inst, postprocess_on)
        return scan_sem, inst_out, labeling, centroids(np.asarray(inst_out.data))
    pir_shape = semantic.reorient(PIR).shape
    merged_vol = resample(Volume(merged, instance_in.affine), shape=pir_shape, order=0)
    inst_vol, labeling = _postprocess_on(semantic, merged_vol, postprocess_on)
    sem_out = undo_crop_pad(semantic, record)
    inst_out = undo_crop_pad(inst_vol, record)
    ctd = centroids(np.asarray(inst_out.data))
    return sem_out, inst_out, labeling, ctd


def _postprocess_like_reference(
    semantic: Volume, merged: Volume, numbering: ReferenceNumbering
) -> tuple[Volume, Volume, Labeling]:
    """`spineps` 2.1.3's post-processing (`reference.postprocess_like_reference`): vertebrae
    named from the top as C2 (C1 for CT models with C1) downwards, as ``spineps sample -ml
    none`` names them."""
    sem_pir, inst_pir = semantic.reorient(PIR), merged.reorient(PIR)
    sem, inst = postprocess_like_reference(
        np.asarray(sem_pir.data),
        np.asarray(inst_pir.data),
        zoom=sem_pir.spacing,
        scan_orientation="".join(semantic.orientation),
        labeling_offset=numbering.labeling_offset,
        sacrum_ids=numbering.sacrum_ids,
    )
    sem_out, inst_out = (sem_pir.with_data(a).reorient(semantic.orientation) for a in (sem, inst))
    return sem_out, inst_out, Labeling(mapping={}, anchor="none")


def _postprocess_on(
    semantic: Volume, merged: Volume, postprocess_on: bool
) -> tuple[Volume, Labeling]:
    """Post-process and label ``merged`` against ``semantic`` (same grid) in P-I-R; the instance
    mask comes back in the grid's own orientation."""
    sem_pir = semantic.reorient(PIR)
    inst, labeling = postprocess_instances(
        np.asarray(merged.reorient(PIR).data, dtype=np.uint16),
        np.asarray(sem_pir.data),
        clean=postprocess_on,
        settings=_labeling_settings(sem_pir),
    )
    return sem_pir.with_data(inst).reorient(semantic.orientation), labeling


def _labeling_settings(pir: Volume) -> LabelingSettings:
    # A disc above the top vertebra can hide just outside the view: 8 mm of margin before a
    # missing disc counts as the C2 cue.
    return LabelingSettings(top_margin=int(np.ceil(8.0 / pir.spacing[1])))


def name_vertebrae(
    image: Volume,
    semantic: Volume,
    instance: Volume,
    anchor: str,
    model: VertebraClassifier | None,
    *,
    settings: NamingSettings | None = None,
) -> Naming:
    """Name the vertebrae of a final instance mask (the scan's grid) with a labelling model.

    ``anchor``: the rule's anchor from `assemble` (the rule naming is already in the mask).
    Without a model, or with ``settings.method == 'rule'``, the rule's naming is kept. With
    one: a patch per vertebra (`patches.vertebra_patches`), the model's posteriors, the rule's
    cues as anchors (``model+anchors``), one consistent naming (`naming.model_naming`).
    """
    s = settings or NamingSettings()
    if model is None or not s.uses_model:
        return rule_naming(anchor)
    patches = vertebra_patches(image, instance, semantic, settings=model.patch_settings)
    posteriors = model.predict(patches.patches) if patches.ids else {}
    sem_pir, inst_pir = semantic.reorient(PIR), instance.reorient(PIR)
    anchors, found = rule_anchors(
        np.asarray(inst_pir.data),
        np.asarray(sem_pir.data),
        patches.ids,
        settings=_labeling_settings(sem_pir),
        voxel_mm3=float(np.prod(sem_pir.spacing)),
    )
    return model_naming(
        patches.ids,
        posteriors,
        vertebra_head=model.vertebra_head,
        anchors=anchors,
        anchor=found,
        settings=s,
    )


def apply_naming(
    instance: Volume, naming: Naming
) -> tuple[Volume, dict[int, tuple[float, float, float]]]:
    """The instance mask renamed by ``naming`` (unchanged for the rule) and its centroids."""
    if naming.method != "rule" and naming.mapping:
        instance = instance.with_data(rename(np.asarray(instance.data), naming.mapping))
    return instance, centroids(np.asarray(instance.data))


def segment(
    image: Volume,
    semantic_model: SemanticSegmenter | None,
    instance_model: InstanceSegmenter,
    *,
    n4: bool = True,
    postprocess_on: bool = True,
    merge: MergeSettings | None = None,
    subject: str = "",
    semantic: Volume | None = None,
    on_stage: Callable[[str], None] | None = None,
    recipe: str = "reference",
    reference_mode: bool = False,
    labeling_model: VertebraClassifier | None = None,
    naming: NamingSettings | None = None,
) -> Segmentation:
    """The whole method for one scan, in one process.

    ``semantic``: a semantic mask in the scan's geometry (e.g. corrected by a radiologist); the
    semantic model is then skipped (it may be None) and only the instance phase runs on it.
    ``recipe``: see the module docstring. ``reference_mode``: `spineps` 2.1.3's cleaning,
    instance phase and post-processing, without this project's rules beyond them (for fidelity
    checks); it names vertebrae as ``spineps -ml none`` does, so ``labeling_model`` is not used
    there (the reference's labelling step is not ported). ``labeling_model``: names the
    vertebrae (`name_vertebrae`, ``naming`` says how); None keeps the rule's naming. The models
    are anything with the methods `pipeline.protocols` names (the loaded `spineps_dask.models`).
    """
    timings: dict[str, float] = {}
    if instance_model.config is None:
        raise ValueError("the instance model has no config (load it with from_folder)")
    space = InstanceSpace.from_config(instance_model.config)
    if reference_mode:
        labeling_model = None
    if labeling_model is not None and semantic_model is not None:
        check_model_set(semantic_model.config, labeling_model.config)

    def stage(name: str, fn: Callable[[], Any]) -> Any:
        if on_stage is not None:
            on_stage(name)
        t0 = time.perf_counter()
        out = fn()
        timings[name] = time.perf_counter() - t0
        return out

    sem_config = semantic_model.config if semantic_model is not None else None
    modality = model_modality(sem_config) if sem_config is not None else "MR"
    numbering = ReferenceNumbering.from_config(sem_config)
    prepared, record = stage(
        "prepare",
        lambda: prepare(image, n4=n4, subject=subject, recipe=recipe, modality=modality),
    )
    if semantic is None:
        if semantic_model is None:
            raise ValueError("segment needs a semantic model or a semantic mask")
        model = semantic_model
        sem = stage(
            "semantic",
            lambda: semantic_phase(prepared, model, recipe=recipe, reference_mode=reference_mode),
        )
    else:
        sem = stage("semantic", lambda: crop_pad(semantic, record))
    inst_in = stage("instance_input", lambda: instance_input(sem, space, recipe=recipe))
    centres = stage("cutouts", lambda: plan_cutouts(inst_in, space, reference_mode=reference_mode))
    cutouts = cutouts_at(
        np.asarray(inst_in.data), centres, range(len(centres)), space, subject=subject
    )
    preds = stage("instance", lambda: predict_cutouts(cutouts, instance_model))
    sem_out, inst_out, labeling, ctd = stage(
        "reduce",
        lambda: assemble(
            sem,
            inst_in,
            preds,
            record,
            space,
            postprocess_on=postprocess_on,
            merge=merge,
            reference_mode=reference_mode,
            numbering=numbering,
        ),
    )
    named = stage(
        "label",
        lambda: name_vertebrae(
            image, sem_out, inst_out, labeling.anchor, labeling_model, settings=naming
        ),
    )
    inst_out, ctd = apply_naming(inst_out, named)
    return Segmentation(
        sem_out, inst_out, ctd, labeling.anchor, len(cutouts), timings, naming=named
    )
