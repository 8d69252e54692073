"""The store's vocabulary: every name a cohort store holds, defined once.

Per subject group: the scan, the two output masks, the ingested reference masks, work arrays
parked between a subject's tasks (deleted when it is done), and small files beside the volumes
(the snapshot and per-subject tables). At the store root: the manifest and the run lock.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass

#: The ingested scan.
IMAGE = "image"
#: The run's output masks; both present and complete means the subject is done.
SEMANTIC, INSTANCE = "semantic", "instance"
OUTPUTS: tuple[str, ...] = (SEMANTIC, INSTANCE)
#: Reference masks ingested beside the scan; a subject with both is scored.
REF_SEMANTIC, REF_INSTANCE = "ref_semantic", "ref_instance"
REFERENCES: tuple[str, ...] = (REF_SEMANTIC, REF_INSTANCE)
#: The label images: kept in the image's NGFF ``labels/`` group (``sub-001/image/labels/...``).
LABELS: tuple[str, ...] = (*OUTPUTS, *REFERENCES)
#: Files beside a subject's volumes (`CohortStore.write_blob`).
SNAPSHOT = "snapshot.png"
TABLES: dict[str, str] = {"metrics": "metrics.parquet", "biomarkers": "biomarkers.parquet"}
#: Files at the store root, beside the subject groups (zarr ignores them).
MANIFEST = "manifest.parquet"
#: The cohort's ``participants.tsv`` (BIDS), copied at ingest; tables are joined to it.
PARTICIPANTS = "participants.tsv"
RUN_LOCK = ".run.lock"


@dataclass(frozen=True)
class WorkNames:
    """Where one subject's tasks park their intermediate arrays in a store.

    ``prepared``: the preprocessed scan; ``semantic``: the cleaned semantic mask on the
    prepared grid; ``instance_input``: that mask on the instance model's grid, read in
    cutout windows; ``final_semantic`` / ``final_instance``: the assembled masks on the scan's
    grid, which the labelling step names (issue 20). A sweep gives each stage key its own
    names so settings share work.
    """

    prepared: str
    semantic: str
    instance_input: str
    final_semantic: str = "work_final_semantic"
    final_instance: str = "work_final_instance"

    def all(self) -> tuple[str, ...]:
        """Every name, for deleting them once the subject is done."""
        return astuple(self)


#: The run's work arrays (one set per subject, deleted by its reduce task).
RUN_WORK = WorkNames("work_prepared", "work_semantic", "work_instance_input")
