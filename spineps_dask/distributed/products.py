"""What a finished subject leaves in the store: small writers, each chosen by a run setting.

`products_for` picks them from the `RunConfig`: the masks always (the instance mask carries
its centroids as an attribute, so they are written with it), the snapshot when
``cfg.snapshot``, per-level biomarkers always, metric rows when ``cfg.metrics`` and the subject
has reference masks. The run's reduce task assembles a subject and hands it to each writer in
turn, so a new product, or a late step, is one more writer here, not a branch in the task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from spineps_dask.biomarkers.levels import level_biomarkers
from spineps_dask.config import RunConfig
from spineps_dask.distributed.outcomes import Guard
from spineps_dask.io.names import (
    IMAGE,
    INSTANCE,
    REF_INSTANCE,
    REF_SEMANTIC,
    REFERENCES,
    SEMANTIC,
    SNAPSHOT,
    TABLES,
)
from spineps_dask.io.store import CohortStore
from spineps_dask.io.tables import table_bytes
from spineps_dask.metrics.tables import evaluate_subject
from spineps_dask.viz.snapshot import render_snapshot

if TYPE_CHECKING:
    from spineps_dask.pipeline.segment import Segmentation


class Writer(Protocol):
    """Writes one product of an assembled subject; store I/O goes through ``g.store``."""

    def __call__(
        self, g: Guard, store: CohortStore, subject: str, seg: Segmentation, cfg: RunConfig
    ) -> None: ...


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
) -> None:
    """Dice, ASSD and RQ/SQ/PQ against the ingested references (``metrics.parquet``), if any."""
    if not all(store.has_volume(subject, r) for r in REFERENCES):
        return
    table = score_against_references(
        store,
        subject,
        seg,
        config=cfg.fingerprint(),
        models=cfg.model_versions(),
        postprocess=cfg.postprocess,
        n4=cfg.n4,
    )
    g.store(store.write_blob, subject, TABLES["metrics"], table_bytes(table))


def products_for(cfg: RunConfig) -> tuple[Writer, ...]:
    """The writers a run with ``cfg`` calls for each finished subject, in order."""
    chosen: list[Writer] = [write_masks]
    if cfg.snapshot:
        chosen.append(write_snapshot)
    chosen.append(write_biomarkers)
    if cfg.metrics:
        chosen.append(write_metrics)
    return tuple(chosen)


def score_against_references(
    store: CohortStore, subject: str, seg: Segmentation, **context: Any
) -> pd.DataFrame:
    """The subject's metric rows against its ingested references; ``context`` adds columns."""
    return evaluate_subject(
        np.asarray(seg.semantic.data),
        np.asarray(seg.instance.data),
        np.asarray(store.read_volume(subject, REF_SEMANTIC).data),
        np.asarray(store.read_volume(subject, REF_INSTANCE).data),
        spacing=seg.semantic.spacing,
        subject=subject,
        **context,
    )


def centroid_attr(ctd: dict[int, tuple[float, float, float]]) -> dict[str, list[float]]:
    """Centroids as a JSON-able attribute: ``{"20": [x, y, z], ...}`` in voxel indices."""
    return {str(k): [round(float(c), 3) for c in v] for k, v in sorted(ctd.items())}
