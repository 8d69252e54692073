"""BIDS names: a scan's entities and key from its file name, derivative names back out.

Names are split by `bids2table` (``parse_bids_entities``) and checked against the entity rules
of the BIDS schema (`bidsschematools`: which entities exist, their order, which take an index),
so every BIDS entity is understood, not only ``sub-`` and ``ses-``. A scan's key is all its
entities in BIDS order (`spineps_dask.keys`), so scans that differ only by ``acq-``, ``run-``
or ``chunk-`` are separate scans. Measured on a 10 000-scan tree (2 500 subjects x 2 sessions x
2 chunks, with JSON sidecars; ``benchmarks/bids_discovery.py``, RESULTS.md), `discover_scans`
takes ~1.1 s (0.1 ms a scan, a third of it resolving symlinks), bids2table's whole-dataset
``index_dataset`` ~3.4 s, on this 2-core machine: parsing is not what a cohort waits for.

Reference outputs are named after the input, e.g. ``sub-001_ses-1_T2w.nii.gz`` ->
``sub-001_ses-1_mod-T2w_seg-spine_msk.nii.gz`` (semantic), ``..._seg-vert_msk.nii.gz``
(instance), ``..._ctd.json`` (centroids), ``..._snp.png`` (snapshot).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from bids2table import parse_bids_entities

from spineps_dask.errors import InputError
from spineps_dask.keys import is_key

_LABEL = re.compile(r"^[A-Za-z0-9]+$")
_INDEX = re.compile(r"^[0-9]+$")
#: Entities SPINEPS adds to derivative names; they name the output, not the scan.
DERIVATIVE_ENTITIES = ("mod", "seg")
_EXTENSIONS = (".nii.gz", ".nii")


@functools.cache
def entity_rules() -> dict[str, str]:
    """``{short name: format}`` of every BIDS entity, in BIDS order (``{"sub": "label", ...}``).

    From the BIDS schema that `bidsschematools` ships; ``format`` is ``label`` (letters and
    digits) or ``index`` (digits).
    """
    from bidsschematools import schema

    bids = schema.load_schema()
    entities = bids.objects.entities
    return {entities[e].name: entities[e].format for e in bids.rules.entities}


@functools.cache
def _rank() -> dict[str, int]:
    return {entity: i for i, entity in enumerate(entity_rules())}


def _order(entity: str) -> int:
    return _rank()[entity]


@dataclass(frozen=True)
class ScanName:
    """The BIDS entities of one scan: ``sub``, optional ``ses``, the others, and the suffix.

    ``extra`` holds every entity besides ``sub`` and ``ses`` (``acq``, ``run``, ``chunk``, and
    in derivative names ``mod`` and ``seg``), in BIDS order.
    """

    sub: str
    ses: str | None = None
    extra: tuple[tuple[str, str], ...] = ()
    suffix: str = "T2w"

    @property
    def key(self) -> str:
        """The scan's key: every entity that tells scans apart (``sub-001_ses-1_run-2``)."""
        rest = sorted(
            ((k, v) for k, v in self.extra if k not in DERIVATIVE_ENTITIES),
            key=lambda kv: _order(kv[0]),
        )
        head = [("sub", self.sub), *([("ses", self.ses)] if self.ses else [])]
        return "_".join(f"{k}-{v}" for k, v in [*head, *rest])

    @property
    def subject_key(self) -> str:
        """The scan's key (`key`); the name from when keys held only ``sub-`` and ``ses-``."""
        return self.key

    @property
    def stem(self) -> str:
        """The name before the suffix: the key (derivative entities of a parsed name dropped)."""
        return self.key

    def derivative(self, desc: str, ext: str) -> str:
        """Name of an output, e.g. ``derivative('seg-spine_msk', '.nii.gz')``."""
        return f"{self.stem}_mod-{self.suffix}_{desc}{ext}"


def parse_scan_name(path: str | Path) -> ScanName:
    """Entities of ``sub-X[_ses-Y][_key-val...]_SUFFIX.nii[.gz]``.

    Raises
    ------
    InputError
        The name is not BIDS: not NIfTI, not starting with ``sub-``, a part that is not a
        BIDS entity (unknown key, characters other than letters and digits, a ``run-`` that is
        not a number), an entity given twice, or a suffix with other characters. ``../x`` and
        the like are refused, so a key can never escape a folder.
    """
    fname = Path(path).name
    ext = next((e for e in _EXTENSIONS if fname.endswith(e)), None)
    if ext is None:
        raise InputError(f"{fname!r} is not a NIfTI file name (.nii or .nii.gz)")
    parts = fname[: -len(ext)].split("_")
    parsed = parse_bids_entities(fname)  # what bids2table reads; checked part by part below
    suffix = parts[-1]
    if not _LABEL.match(suffix) or parsed.get("suffix") != suffix:
        raise InputError(f"{fname!r}: suffix {suffix!r} is not letters and digits (e.g. T2w)")
    rules = entity_rules()
    keys = [part.partition("-")[0] for part in parts[:-1]]
    twice = next((k for k in keys if keys.count(k) > 1), None)
    if twice is not None:
        raise InputError(f"{fname!r}: entity {twice!r} appears twice")
    entities: dict[str, str] = {}
    for part in parts[:-1]:
        key, _, value = part.partition("-")
        if key not in rules or parsed.get(key) != value or not _LABEL.match(value):
            raise InputError(
                f"{fname!r}: {part!r} is not a BIDS entity (key-value with letters and digits "
                f"only; keys: {', '.join(rules)})"
            )
        if rules[key] == "index" and not _INDEX.match(value):
            raise InputError(f"{fname!r}: {part!r} needs a number ({key}-<index>, e.g. {key}-1)")
        entities[key] = value
    if next(iter(entities), None) != "sub":
        raise InputError(f"{fname!r} does not start with 'sub-<label>_'")
    extra = tuple(
        sorted(
            ((k, v) for k, v in entities.items() if k not in ("sub", "ses")),
            key=lambda kv: _order(kv[0]),
        )
    )
    return ScanName(sub=entities["sub"], ses=entities.get("ses"), extra=extra, suffix=suffix)


def validate_subject_key(key: str) -> str:
    """Refuse scan keys with path characters before they become folder or group names."""
    if not is_key(key):
        raise InputError(
            f"subject id {key!r} is not of the form sub-<alnum>[_ses-<alnum>][_<entity>-<alnum>...]"
        )
    return key
