"""Results out of the store: NIfTI, centroid JSON and snapshot per subject, BIDS derivative names.

``out_dir/sub-X[/ses-Y]/anat/`` mirrors the input cohort; file names are those of the reference
SPINEPS outputs (``io/outputs.py``), so downstream tools read our results like theirs. The folder
is a BIDS derivatives dataset: ``dataset_description.json`` (``DatasetType`` derivative,
``GeneratedBy`` this package with its version and the models that made the masks) and the
cohort's ``participants.tsv`` where the store has one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from spineps_dask._version import __version__
from spineps_dask.errors import DamagedVolumeError, StoreError
from spineps_dask.io import outputs
from spineps_dask.io._urls import redact_url
from spineps_dask.io.atomic import write_file, write_json
from spineps_dask.io.bids import ScanName, parse_scan_name
from spineps_dask.io.integrity import mark_damaged
from spineps_dask.io.names import IMAGE, INSTANCE, OUTPUTS, PARTICIPANTS, SEMANTIC, SNAPSHOT
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
    are exactly those in the store, checked against the checksums written with them.
    ``out_dir`` gets ``dataset_description.json`` (BIDS derivatives) and the cohort's
    ``participants.tsv``. Returns the files written. ``store_url`` may be an open
    `CohortStore`.

    Raises
    ------
    DamagedVolumeError
        After every other subject is written: the subjects whose volumes are damaged (a
        chunk deleted, truncated or changed). None of their files is written; they are
        marked failed in the manifest, so the next run segments them again.
    """
    store = (
        store_url
        if isinstance(store_url, CohortStore)
        else CohortStore(store_url, mode="r", storage_options=storage_options)
    )
    arrays = tuple(arrays)
    written: list[Path] = []
    damaged: dict[str, dict[str, str]] = {}
    models: set[str] = set()
    for subject in store.subjects():
        present = [n for n in arrays if store.has_volume(subject, n)]
        if not present:
            continue
        try:
            written += _export_subject(store, subject, present, Path(out_dir))
        except DamagedVolumeError as exc:
            logger.warning("export: %s not written: %s", subject, exc)
            damaged[subject] = {exc.volume or "volume": str(exc)}
            continue
        for name in present:
            if name in OUTPUTS:
                models.add(str(store.read_attrs(subject, name).get("models", "")))
    if written:
        written.append(write_json(dataset_description(models - {""}), Path(out_dir, DESCRIPTION)))
        people = store.read_root_file(PARTICIPANTS)
        if people is not None:
            written.append(write_file(people, Path(out_dir, PARTICIPANTS)))
    logger.info("export: wrote %d files to %s", len(written), out_dir)
    if damaged:
        marked = mark_damaged(store, damaged)
        names = ", ".join(sorted(damaged))
        raise DamagedVolumeError(
            f"{len(damaged)} subject(s) of {redact_url(store.url)} are damaged and were not "
            f"exported ({names}; the log says which chunks); the other {len(written)} files "
            "were written. "
            + (
                "They are marked failed: `spineps-dask run` on the store segments them again."
                if marked
                else "Run `spineps-dask verify` on the store, then `run`, to redo them."
            )
        )
    return written


def _export_subject(
    store: CohortStore, subject: str, present: list[str], out_dir: Path
) -> list[Path]:
    """One subject's files; every volume is read (and checked) before any file is written,
    so a damaged subject leaves nothing half-exported."""
    scan = scan_name_of(store, subject)
    folder = Path(out_dir, f"sub-{scan.sub}", *([f"ses-{scan.ses}"] if scan.ses else []), "anat")
    volumes = {name: store.read_volume(subject, name) for name in present}
    written = []
    for name, vol in volumes.items():
        written.append(save_volume(vol, folder / _file_name(scan, name)))
        if name == INSTANCE:
            written += _instance_extras(store, subject, scan, folder)
    return written


#: The BIDS file that makes the export folder a derivatives dataset.
DESCRIPTION = "dataset_description.json"


def dataset_description(models: Iterable[str] = ()) -> dict:
    """BIDS derivatives ``dataset_description.json``: what made these files.

    ``models``: the model versions recorded with the exported masks
    (``semantic=<name>@<hash>,instance=<name>@<hash>``).
    """
    generated = {
        "Name": "spineps-dask",
        "Version": __version__,
        "Description": "SPINEPS whole-spine segmentation (Möller et al.), distributed with Dask",
    }
    if models:
        generated["Description"] += "; models: " + "; ".join(sorted(models))
    return {
        "Name": "spineps-dask segmentations",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated],
    }


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
