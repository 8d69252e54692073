"""Per-subject output files with BIDS derivative names, as the reference writes them.

``sub-X_mod-T2w_seg-spine_msk.nii.gz`` (semantic), ``..._seg-vert_msk.nii.gz`` (instance),
``..._ctd.json`` (centroids), ``..._snp.png`` (snapshot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spineps_dask.geometry import Volume
from spineps_dask.io.atomic import write_file, write_json
from spineps_dask.io.bids import ScanName
from spineps_dask.io.nifti import save_volume

SEMANTIC = ("seg-spine_msk", ".nii.gz")
INSTANCE = ("seg-vert_msk", ".nii.gz")
CENTROIDS = ("ctd", ".json")
SNAPSHOT = ("snp", ".png")


def output_paths(out_dir: str | Path, name: ScanName) -> dict[str, Path]:
    """Where each output of one scan goes (the files need not exist)."""
    out_dir = Path(out_dir)
    return {
        key: out_dir / name.derivative(desc, ext)
        for key, (desc, ext) in {
            "semantic": SEMANTIC,
            "instance": INSTANCE,
            "centroids": CENTROIDS,
            "snapshot": SNAPSHOT,
        }.items()
    }


def centroids_json(
    centroids: Mapping[int, Sequence[float]],
    *,
    orientation: Sequence[str],
    spacing: Sequence[float],
    naming: Mapping[str, Any] | None = None,
) -> list[dict]:
    """VerSe-style centroid list: a header with the axis directions, then one entry per label.

    Coordinates are voxel indices along the mask's own array axes. ``naming`` (the instance
    mask's ``naming`` attribute): how the vertebrae were named goes into the header
    (``"naming": {"naming": "model+anchors", "naming_confidence": 0.97, ...}``) and each
    vertebra's own confidence, where the model gave one, into its entry (``"confidence"``).
    """
    header: dict[str, Any] = {"direction": list(orientation), "zoom": [float(s) for s in spacing]}
    per: Mapping[str, float] = {}
    if naming:
        per = naming.get("vertebra_confidence") or {}
        header["naming"] = {k: v for k, v in naming.items() if k != "vertebra_confidence"}
    out: list[dict] = [header]
    for label in sorted(centroids):
        x, y, z = (round(float(c), 3) for c in centroids[label])
        entry: dict[str, Any] = {"label": int(label), "X": x, "Y": y, "Z": z}
        if str(label) in per:
            entry["confidence"] = per[str(label)]
        out.append(entry)
    return out


def write_subject_outputs(
    out_dir: str | Path,
    name: ScanName,
    *,
    semantic: Volume,
    instance: Volume,
    centroids: Mapping[int, Sequence[float]],
    snapshot_png: bytes | None = None,
    naming: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write one subject's derivative files; returns the paths written.

    ``naming``: how the vertebrae were named (see `centroids_json`), into the centroid file.
    """
    paths = output_paths(out_dir, name)
    save_volume(semantic, paths["semantic"])
    save_volume(instance, paths["instance"])
    ctd = centroids_json(
        centroids, orientation=instance.orientation, spacing=instance.spacing, naming=naming
    )
    write_json(ctd, paths["centroids"])
    if snapshot_png is not None:
        write_file(snapshot_png, paths["snapshot"])
    else:
        del paths["snapshot"]
    return paths
