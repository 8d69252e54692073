"""Per-subject output files with BIDS derivative names, as the reference writes them.

``sub-X_mod-T2w_seg-spine_msk.nii.gz`` (semantic), ``..._seg-vert_msk.nii.gz`` (instance),
``..._ctd.json`` (centroids), ``..._snp.png`` (snapshot).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

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
) -> list[dict]:
    """VerSe-style centroid list: a header with the axis directions, then one entry per label.

    Coordinates are voxel indices along the mask's own array axes.
    """
    out: list[dict] = [{"direction": list(orientation), "zoom": [float(s) for s in spacing]}]
    for label in sorted(centroids):
        x, y, z = (round(float(c), 3) for c in centroids[label])
        out.append({"label": int(label), "X": x, "Y": y, "Z": z})
    return out


def write_subject_outputs(
    out_dir: str | Path,
    name: ScanName,
    *,
    semantic: Volume,
    instance: Volume,
    centroids: Mapping[int, Sequence[float]],
    snapshot_png: bytes | None = None,
) -> dict[str, Path]:
    """Write one subject's derivative files; returns the paths written."""
    paths = output_paths(out_dir, name)
    save_volume(semantic, paths["semantic"])
    save_volume(instance, paths["instance"])
    write_json(
        centroids_json(centroids, orientation=instance.orientation, spacing=instance.spacing),
        paths["centroids"],
    )
    if snapshot_png is not None:
        write_file(snapshot_png, paths["snapshot"])
    else:
        del paths["snapshot"]
    return paths
