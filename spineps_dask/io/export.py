"""Results out of the store: NIfTI, centroid JSON and snapshot per subject, BIDS derivative names.

``out_dir/sub-X[/ses-Y]/anat/`` mirrors the input cohort; file names are those of the reference
SPINEPS outputs (``io/outputs.py``), so downstream tools read our results like theirs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from spineps_dask.errors import StoreError
from spineps_dask.io import outputs
from spineps_dask.io.atomic import write_file, write_json
from spineps_dask.io.bids import ScanName, parse_scan_name
from spineps_dask.io.names import IMAGE, INSTANCE, OUTPUTS, SEMANTIC, SNAPSHOT
from spineps_dask.io.nifti import save_volume
from spineps_dask.io.store import CohortStore

logger = logging.getLogger(__name__)


def export(
    store_url: str | os.PathLike | CohortStore,
    out_dir: str | os.PathLike,
    *,
    arrays: Iterable[str] = OUTPUTS,
    storage_options: dict | None = None,
) -> list[Path]:
    """Write the named volumes of every subject as NIfTI with BIDS derivative names.

    ``semantic`` -> ``..._mod-T2w_seg-spine_msk.nii.gz``, ``instance`` -> ``..._seg-vert_msk``
    plus ``..._ctd.json`` (from its ``centroids`` attribute) and ``..._snp.png`` when the
    runner stored a snapshot; ``image`` goes under its source name; any other name ``x`` ->
    ``..._seg-x_msk.nii.gz``. Subjects lacking a volume are skipped. Voxels, dtype and affine
    are exactly those in the store. Returns the files written. ``store_url`` may be an open
    `CohortStore`.
    """
    store = (
        store_url
        if isinstance(store_url, CohortStore)
        else CohortStore(store_url, mode="r", storage_options=storage_options)
    )
    arrays = tuple(arrays)
    written: list[Path] = []
    for subject in store.subjects():
        present = [n for n in arrays if store.has_volume(subject, n)]
        if not present:
            continue
        scan = scan_name_of(store, subject)
        folder = Path(
            out_dir, f"sub-{scan.sub}", *([f"ses-{scan.ses}"] if scan.ses else []), "anat"
        )
        for name in present:
            vol = store.read_volume(subject, name)
            written.append(save_volume(vol, folder / _file_name(scan, name)))
            if name == INSTANCE:
                written += _instance_extras(store, subject, scan, folder)
    logger.info("export: wrote %d files to %s", len(written), out_dir)
    return written


def _instance_extras(store: CohortStore, subject: str, scan: ScanName, folder: Path) -> list[Path]:
    """Centroid JSON and snapshot PNG next to the instance mask, where the store has them."""
    paths = outputs.output_paths(folder, scan)
    out = []
    attrs = store.read_attrs(subject, INSTANCE)
    if "centroids" in attrs:
        ctd = {int(k): v for k, v in attrs["centroids"].items()}
        doc = outputs.centroids_json(
            ctd,
            orientation=tuple(attrs["orientation"]),
            spacing=attrs["spacing"],
            naming=attrs.get("naming"),
        )
        out.append(write_json(doc, paths["centroids"]))
    try:
        png = store.read_blob(subject, SNAPSHOT)
    except StoreError:
        return out
    return [*out, write_file(png, paths["snapshot"])]


def scan_name_of(store: CohortStore, subject: str) -> ScanName:
    """The BIDS entities of a subject's source scan (falls back to the subject key)."""
    source = None
    if store.has_volume(subject, IMAGE):
        source = store.read_attrs(subject, IMAGE).get("source")
    if source:
        return parse_scan_name(Path(source).name)
    return parse_scan_name(f"{subject}_T2w.nii.gz")


def _file_name(scan: ScanName, name: str) -> str:
    if name == IMAGE:
        return f"{scan.stem}_{scan.suffix}.nii.gz"
    desc = {SEMANTIC: outputs.SEMANTIC[0], INSTANCE: outputs.INSTANCE[0]}.get(name)
    return scan.derivative(desc or f"seg-{name}_msk", ".nii.gz")
