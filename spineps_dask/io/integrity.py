"""Is the store still what was written? Volumes against their checksums, damage into the manifest.

Every complete volume carries the checksums of its chunks (`CohortStore.verify_volume`).
`verify_store` checks a whole store; `export` and `run` check what they read or skip. A
damaged subject becomes a failed ``segment`` row (step ``verify``), so the next ``run``
segments it again; a damaged scan also fails its ``ingest`` row, so the next ``ingest`` (or
``run -i``) reads it again from the cohort folder.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from spineps_dask.errors import DamagedVolumeError, StoreError
from spineps_dask.io.lock import writer_lock
from spineps_dask.io.manifest import Manifest, make_row
from spineps_dask.io.names import IMAGE, OUTPUTS, REFERENCES
from spineps_dask.io.store import CohortStore

logger = logging.getLogger(__name__)

#: The volumes that outlive a run: the scan, the masks, the references (work arrays do not).
KEPT: tuple[str, ...] = (IMAGE, *OUTPUTS, *REFERENCES)
STEP = "verify"


@dataclass
class VerifyReport:
    """What `verify_store` found: volumes checked, volumes without checksums, damage."""

    checked: int = 0
    unchecked: list[str] = field(default_factory=list)
    damaged: dict[str, dict[str, str]] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"{self.checked} volumes checked, {len(self.damaged)} subjects damaged, "
            f"{len(self.unchecked)} volumes without checksums"
        ]
        lines += [f"{s} {v}: {msg}" for s, vols in self.damaged.items() for v, msg in vols.items()]
        return "\n".join(lines)


def verify_store(store: CohortStore, *, full: bool = True, mark: bool = True) -> VerifyReport:
    """Check every kept volume of every subject against its checksums.

    Parameters
    ----------
    full
        Read every voxel (finds any change, a flipped bit included); otherwise compare the
        stored chunk sizes only (deleted and truncated chunks, no voxel read).
    mark
        Record damaged subjects in the manifest (`damage_rows`), so the next run redoes them.

    With ``mark`` it holds the store's lock (a run writing meanwhile would look like damage);
    without, it only reads (a read-only store, say).
    """
    report = VerifyReport()
    with writer_lock(store, purpose="verify") if mark else contextlib.nullcontext():
        for subject in store.subjects():
            for name in KEPT:
                if not store.has_volume(subject, name):
                    continue
                try:
                    if not store.verify_volume(subject, name, full=full):
                        report.unchecked.append(f"{subject}/{name}")
                    report.checked += 1
                except DamagedVolumeError as exc:
                    report.checked += 1
                    report.damaged.setdefault(subject, {})[name] = str(exc)
                    logger.warning("%s", exc)
        rows = damage_rows(report.damaged) if mark else []
        if rows:
            store.manifest.upsert(rows)
    logger.info("verify: %s", str(report).splitlines()[0])
    return report


def intact(
    store: CohortStore, subject: str, names: Iterable[str], *, full: bool = False, then: str
) -> bool:
    """The subject's volumes ``names`` match their checksums: the stored chunk sizes (no
    voxel read), or with ``full`` every voxel. Damage is logged in one line that ends with
    what the caller does about it (``then``: "segmenting it again"), and gives False."""
    try:
        for name in names:
            store.verify_volume(subject, name, full=full)
    except DamagedVolumeError as exc:
        logger.warning("%s: %s; %s", subject, exc, then)
        return False
    return True


def damage_rows(damaged: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """Manifest rows for damaged subjects: ``{subject: {volume: message}}``.

    A failed ``segment`` row (the next run segments the subject again) for damaged masks or
    a damaged scan, and a failed ``ingest`` row for a damaged scan (the next ingest reads it
    again). Damaged references alone give no row: the masks are sound, the subject is only
    not scored until its references are ingested again (``--references``).
    """
    rows = []
    for subject, volumes in damaged.items():
        if not set(volumes) & {IMAGE, *OUTPUTS}:
            continue
        error = "; ".join(volumes.values())
        rows.append(make_row(subject, "failed", phase="segment", step=STEP, error=error))
        if IMAGE in volumes:
            again = f"{volumes[IMAGE]}; ingest the cohort again to replace it"
            rows.append(make_row(subject, "failed", phase="ingest", step=STEP, error=again))
    return rows


def mark_damaged(store: CohortStore, damaged: Mapping[str, Mapping[str, str]]) -> bool:
    """Record damage found by a reader (`export`) in the manifest; False when the store is
    locked by a writer or not writable (then the damage is only logged)."""
    try:
        with writer_lock(store, purpose="verify"):
            Manifest(store.manifest_url, storage_options=store.storage_options).upsert(
                damage_rows(damaged)
            )
    except (StoreError, OSError) as exc:  # locked, read-only, full: the reader's result stands
        logger.warning("damage not recorded in the manifest (%s); run `verify` later", exc)
        return False
    return True
