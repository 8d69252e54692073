"""Scan keys: the id of one scan in a cohort, and the identity columns every table carries.

A key is the scan's BIDS entities in BIDS order, its suffix and extension left out:
``sub-001``, ``sub-001_ses-1``, ``sub-001_ses-1_acq-lumbar_run-2_chunk-1``. Every entity that
tells two scans of one person apart (session, acquisition, run, chunk, ...) is part of it, so
the whole-spine stations of one visit (``chunk-1``, ``chunk-2``) are separate scans. The store
names a scan's group by its key, the manifest's ``subject`` column holds it (the name it had
before scans carried more than ``sub-`` and ``ses-``), and tables carry it as ``scan`` beside
the person (``subject``) and the visit (``session``), so a cohort counts people, not scans.

Pure string logic: the layers that may not touch files (metrics, biomarkers, viz) use it too.
"""

from __future__ import annotations

import re
from typing import Any

#: A scan key: ``sub-<label>`` then any ``_<entity>-<label>``; letters and digits only, so a
#: key never holds a path character.
KEY_PATTERN = r"sub-[A-Za-z0-9]+(?:_[a-z]+-[A-Za-z0-9]+)*"
_KEY = re.compile(KEY_PATTERN)
#: Columns naming the scan a table row belongs to: the key, the person and the visit.
ID_COLUMNS: tuple[str, ...] = ("scan", "subject", "session")


def is_key(key: str) -> bool:
    """True when ``key`` is a scan key (``sub-001``, ``sub-001_ses-1_run-2``, ...)."""
    return isinstance(key, str) and _KEY.fullmatch(key) is not None


def key_entities(key: str) -> dict[str, str]:
    """``{"sub": "001", "ses": "1", ...}`` of a key, in its order.

    Examples
    --------
    >>> key_entities("sub-001_ses-1_chunk-2")
    {'sub': '001', 'ses': '1', 'chunk': '2'}
    """
    if not is_key(key):
        raise ValueError(f"{key!r} is not a scan key (sub-<label>[_<entity>-<label>...])")
    out: dict[str, str] = {}
    for part in key.split("_"):
        entity, label = part.split("-", 1)
        out[entity] = label
    return out


def identity(key: str) -> dict[str, Any]:
    """The identity columns of one scan: its key, its person and its visit (or None).

    A name that is not a key (a folder name in a benchmark) is its own scan and subject.

    Examples
    --------
    >>> identity("sub-001_ses-1_acq-lumbar")
    {'scan': 'sub-001_ses-1_acq-lumbar', 'subject': 'sub-001', 'session': 'ses-1'}
    >>> identity("sub-002")["session"] is None
    True
    """
    if not is_key(key):
        return {"scan": key, "subject": key, "session": None}
    entities = key_entities(key)
    ses = entities.get("ses")
    return {
        "scan": key,
        "subject": f"sub-{entities['sub']}",
        "session": f"ses-{ses}" if ses else None,
    }
