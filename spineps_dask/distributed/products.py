"""What a finished subject leaves in the store: small writers, each chosen by a run setting.

`products_for` picks them from the `RunConfig`: the masks always (the instance mask carries
its centroids as an attribute, so they are written with it), the snapshot when
``cfg.snapshot``, per-level biomarkers always, metric rows when ``cfg.metrics`` and the subject
has reference masks. The run's reduce task assembles a subject and hands it to each writer in
turn, so a new product, or a late step, is one more writer here, not a branch in the task.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from spineps_dask.biomarkers.levels import level_biomarkers
from spineps_dask.config import RunConfig
from spineps_dask.distributed.outcomes import Guard
from spineps_dask.errors import DamagedVolumeError
from spineps_dask.geometry import Volume
from spineps_dask.io.names import (
    IMAGE,
    INSTANCE,
    REFERENCES,
    SEMANTIC,
    SNAPSHOT,
    TABLES,
)
from spineps_dask.io.references import reference_digest
from spineps_dask.io.store import CohortStore
from spineps_dask.io.tables import table_bytes
from spineps_dask.metrics.tables import evaluate_subject
from spineps_dask.viz.snapshot import render_snapshot

if TYPE_CHECKING:
    from spineps_dask.pipeline.segment import Segmentation

logger = logging.getLogger(__name__)


class Writer(Protocol):
    """Writes one product of an assembled subject; store I/O goes through ``g.store``.

    It may return what the subject's outcome records of it (`write_metrics`:
    ``{"references": digest}``, the references it scored against); most return None.
    """

    def __call__(
        self, g: Guard, store: CohortStore, subject: str, seg: Segmentation, cfg: RunConfig
    ) -> Mapping[str, Any] | None: ...


def write_masks(
    g: Guard, store: CohortStore, subject: str, seg: Segmentation, cfg: RunConfig
) -> None:
    """Semantic and instance masks, with the anchor, config fingerprint and model versions;
    the instance mask also with its centroids and how its vertebrae were named
    (`Naming.record`).

    Written whole, the instance mask last: both complete is what marks the subject done.
    """
    attrs = {"anchor": seg.anchor, "config": cfg.fingerprint(), "models": cfg.model_versions()}
    g.store(store.write_volume, subject, SEMANTIC, seg.semantic, **attrs)
    centroids = centroid_attr(seg.centroids)
    g.store(
        store.write_volume,
        subject,
        INSTANCE,
        seg.instance,
        centroids=centroids,
        naming=seg.naming.record() if seg.naming is not None else {},
        **attrs,
    )


def write_snapshot(
    g: Guard, store: CohortStore, subject: str, seg: Segmentation, cfg: RunConfig
) -> None:
    """A sagittal PNG of the scan with both masks (``snapshot.png`` beside the volumes)."""
    image = g.store(store.read_volume, subject, IMAGE)
    png = render_snapshot(image, seg.semantic, seg.instance, title=subject)
    g.store(store.write_blob, subject, SNAPSHOT, png)


def write_biomarkers(
    g: Guard, store: CohortStore, subject: str, seg: Segmentation, cfg: RunConfig
) -> None:
    """Per-level body, disc, canal and cord measures (``biomarkers.parquet``)."""
    table = level_biomarkers(seg.semantic, seg.instance, subject=subject)
    g.store(store.write_blob, subject, TABLES["biomarkers"], table_bytes(table))


def write_metrics(
    g: Guard, store: CohortStore, subject: str, seg: Segmentation, cfg: RunConfig
) -> dict[str, Any]:
    """Dice, ASSD and RQ/SQ/PQ against the ingested references (``metrics.parquet``), if any;
    returns ``{"references": digest}`` of the references scored against (None: not scored)."""
    return {"references": write_scores(g, store, subject, seg.semantic, seg.instance, cfg)}


def write_scores(
    g: Guard, store: CohortStore, subject: str, semantic: Volume, instance: Volume, cfg: RunConfig
) -> str | None:
    """The metric table of these masks against the subject's references, when it has both;
    returns the references' digest (`reference_digest`), None when nothing was scored.

    The reduce step scores the masks it made; the scoring-only task (`tasks.score`) the masks
    already in the store, when references came later. Damaged references (`DamagedVolumeError`)
    are one warning and no table: the masks are sound, the subject is only not scored. The
    digest, taken here on the worker, goes into the subject's ``score`` manifest row: the
    driver never reads a subject's references to know what was scored (issue 19).
    """
    if not all(g.store(store.has_volume, subject, r) for r in REFERENCES):
        return None
    try:
        table = score_masks(
            store,
            subject,
            semantic,
            instance,
            config=cfg.fingerprint(),
            models=cfg.model_versions(),
            postprocess=cfg.postprocess,
            n4=cfg.n4,
        )
    except DamagedVolumeError as exc:  # the masks are sound: segmented, just not scored
        logger.warning("%s not scored, its references are damaged: %s", subject, exc)
        return None
    g.store(store.write_blob, subject, TABLES["metrics"], table_bytes(table))
    return g.store(reference_digest, store, subject)


def products_for(cfg: RunConfig) -> tuple[Writer, ...]:
    """The writers a run with ``cfg`` calls for each finished subject, in order."""
    chosen: list[Writer] = [write_masks]
    if cfg.snapshot:
        chosen.append(write_snapshot)
    chosen.append(write_biomarkers)
    if cfg.metrics:
        chosen.append(write_metrics)
    return tuple(chosen)


def score_masks(
    store: CohortStore, subject: str, semantic: Volume, instance: Volume, **context: Any
) -> pd.DataFrame:
    """The metric rows of these masks against the subject's ingested references; ``context``
    adds columns."""
    ref_semantic, ref_instance = (store.read_volume(subject, r).data for r in REFERENCES)
    return evaluate_subject(
        np.asarray(semantic.data),
        np.asarray(instance.data),
        np.asarray(ref_semantic),
        np.asarray(ref_instance),
        spacing=semantic.spacing,
        subject=subject,
        **context,
    )


def score_against_references(
    store: CohortStore, subject: str, seg: Segmentation, **context: Any
) -> pd.DataFrame:
    """`score_masks` of an assembled segmentation (the sweep scores each setting's)."""
    return score_masks(store, subject, seg.semantic, seg.instance, **context)


def centroid_attr(ctd: dict[int, tuple[float, float, float]]) -> dict[str, list[float]]:
    """Centroids as a JSON-able attribute: ``{"20": [x, y, z], ...}`` in voxel indices."""
    return {str(k): [round(float(c), 3) for c in v] for k, v in sorted(ctd.items())}
