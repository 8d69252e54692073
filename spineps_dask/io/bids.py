"""BIDS-style names: parse entities from a scan name, build derivative names.

Reference outputs are named after the input, e.g. ``sub-001_ses-1_T2w.nii.gz`` ->
``sub-001_ses-1_mod-T2w_seg-spine_msk.nii.gz`` (semantic), ``..._seg-vert_msk.nii.gz``
(instance), ``..._ctd.json`` (centroids), ``..._snp.png`` (snapshot).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from spineps_dask.errors import InputError

_SAFE = re.compile(r"^[A-Za-z0-9]+$")
_ENTITY = re.compile(r"^([a-zA-Z]+)-(.+)$")


@dataclass(frozen=True)
class ScanName:
    """The BIDS entities of one scan: ``sub``, optional ``ses``, the rest, and the suffix."""

    sub: str
    ses: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    suffix: str = "T2w"

    @property
    def subject_key(self) -> str:
        """Unique id of the scan inside a cohort: ``sub-001`` or ``sub-001_ses-1``."""
        return f"sub-{self.sub}" + (f"_ses-{self.ses}" if self.ses else "")

    @property
    def stem(self) -> str:
        parts = [self.subject_key, *(f"{k}-{v}" for k, v in self.extra)]
        return "_".join(parts)

    def derivative(self, desc: str, ext: str) -> str:
        """Name of an output, e.g. ``derivative('seg-spine_msk', '.nii.gz')``."""
        return f"{self.stem}_mod-{self.suffix}_{desc}{ext}"


def parse_scan_name(path: str | Path) -> ScanName:
    """Entities of ``sub-X[_ses-Y][_key-val...]_SUFFIX.nii[.gz]``.

    Raises
    ------
    InputError
        The name is not BIDS-like, or an entity value has characters other than letters and
        digits (``../x`` and the like are refused, so a subject id can never escape a folder).
    """
    name = Path(path).name
    for ext in (".nii.gz", ".nii"):
        if name.endswith(ext):
            name = name[: -len(ext)]
            break
    else:
        raise InputError(f"{name!r} is not a NIfTI file name (.nii or .nii.gz)")
    parts = name.split("_")
    suffix = parts[-1]
    entities: list[tuple[str, str]] = []
    for part in parts[:-1]:
        m = _ENTITY.match(part)
        if not m or not _SAFE.match(m.group(2)):
            raise InputError(
                f"{Path(path).name!r}: {part!r} is not a BIDS entity (key-value with letters "
                "and digits only)"
            )
        entities.append((m.group(1), m.group(2)))
    if not entities or entities[0][0] != "sub":
        raise InputError(f"{Path(path).name!r} does not start with 'sub-<label>_'")
    ses = entities[1][1] if len(entities) > 1 and entities[1][0] == "ses" else None
    rest = tuple(entities[2:] if ses else entities[1:])
    return ScanName(sub=entities[0][1], ses=ses, extra=rest, suffix=suffix)


def validate_subject_key(key: str) -> str:
    """Refuse subject keys with path characters before they become folder or group names."""
    if not re.fullmatch(r"sub-[A-Za-z0-9]+(_ses-[A-Za-z0-9]+)?", key):
        raise InputError(f"subject id {key!r} is not of the form sub-<alnum>[_ses-<alnum>]")
    return key
