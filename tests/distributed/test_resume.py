"""Which subjects a run takes: done ones are skipped only while the models and settings, known
by content, are those that made them."""

from __future__ import annotations

import shutil

import numpy as np

from spineps_dask.config import DEMO_MODELS, RunConfig
from spineps_dask.distributed.outcomes import SubjectOutcome
from spineps_dask.distributed.resume import outcome_rows, plan_subjects, select_subjects
from spineps_dask.geometry import Volume
from spineps_dask.io.manifest import make_row
from spineps_dask.io.store import CohortStore

AFFINE = np.diag([1.2, 1.2, 4.0, 1.0])


def _done_store(tmp_path, cfg: RunConfig) -> CohortStore:
    """A store with one subject finished by ``cfg``: image, both masks, ok rows."""
    store = CohortStore(tmp_path / "store.zarr")
    vol = Volume(np.ones((16, 12, 8), np.uint8), AFFINE)
    for name in ("image", "semantic", "instance"):
        store.write_volume("sub-001", name, vol)
    common = {"run_id": "r1", "config": cfg.fingerprint(), "models": cfg.model_versions()}
    outcome = SubjectOutcome("sub-001", "done", timings={"wall": 1.0})
    store.manifest.upsert(
        [make_row("sub-001", "ok"), *outcome_rows(outcome, common=common)],
    )
    return store


def test_a_model_edited_in_place_reprocesses_the_subjects_it_made(tmp_path):
    """A subject done with the instance model is skipped; after the model's weights are
    edited in place (same file name and size, new content) the same command takes it again."""
    folder = tmp_path / "instance"
    shutil.copytree(DEMO_MODELS / "instance", folder)
    cfg = RunConfig(instance_model=folder)
    store = _done_store(tmp_path, cfg)
    assert select_subjects(store, store.manifest, cfg) == ([], ["sub-001"])
    (ckpt,) = folder.glob("*.ckpt")
    blob = bytearray(ckpt.read_bytes())
    blob[-100] ^= 0x01  # one bit of one weight: retrained, as far as the files tell
    ckpt.write_bytes(bytes(blob))
    assert select_subjects(store, store.manifest, cfg) == (["sub-001"], [])


def _manifest_rows(cfg: RunConfig) -> list[dict]:
    """sub-001 done with ``cfg``, sub-002 done with other settings, sub-003 not segmented,
    sub-004 failed at ingest."""
    common = {"run_id": "r1", "config": cfg.fingerprint(), "models": cfg.model_versions()}
    done = SubjectOutcome("sub-001", "done", timings={"wall": 1.0})
    other = SubjectOutcome("sub-002", "done", timings={"wall": 1.0})
    return [
        *(make_row(s, "ok") for s in ("sub-001", "sub-002", "sub-003")),
        make_row("sub-004", "failed", error="bad scan"),
        *outcome_rows(done, common=common),
        *outcome_rows(other, common={**common, "config": "older"}),
    ]


def test_the_plan_comes_from_one_manifest_read_without_touching_a_subject(tmp_path, monkeypatch):
    """What a run waits for before its first task at 100 000 subjects: the manifest alone,
    no call to the store per subject (issue 19); the outputs are checked later, elsewhere."""
    cfg = RunConfig()
    store = CohortStore(tmp_path / "store.zarr")
    store.manifest.upsert(_manifest_rows(cfg))

    def refused(*_args, **_kwargs):
        raise AssertionError("the plan read the store")

    monkeypatch.setattr(CohortStore, "has_volume", refused)
    monkeypatch.setattr(CohortStore, "verify_volume", refused)
    assert plan_subjects(store.manifest, cfg) == (["sub-002", "sub-003"], ["sub-001"])
    asked = ["sub-003", "sub-004", "sub-001", "sub-009"]
    assert plan_subjects(store.manifest, cfg, subjects=asked) == (["sub-003"], ["sub-001"])
    assert plan_subjects(store.manifest, cfg, force=True)[1] == []


def test_done_subjects_are_checked_on_the_cluster_and_the_damaged_run_after_the_rest(
    tmp_path, monkeypatch, caplog
):
    """run_store starts the others at once, checks the done subjects' outputs in tasks, and
    runs the one whose mask went missing afterwards. ``run_cohort`` is a stand-in that only
    records what it was given: this test is about what is scheduled, not the pipeline."""
    from distributed import Client, LocalCluster

    from spineps_dask.distributed import resume

    cfg = RunConfig()
    store = CohortStore(tmp_path / "store.zarr")
    vol = Volume(np.ones((16, 12, 8), np.uint8), AFFINE)
    for subject in ("sub-001", "sub-002"):
        for name in ("image", "semantic", "instance"):
            store.write_volume(subject, name, vol)
    rows = _manifest_rows(cfg)
    common = {"run_id": "r1", "config": cfg.fingerprint(), "models": cfg.model_versions()}
    rows += outcome_rows(SubjectOutcome("sub-002", "done"), common=common)
    store.manifest.upsert(rows)
    store.delete_volume("sub-002", "instance")
    given: list[list[str]] = []

    def run_cohort(client, store, subjects, cfg, **kwargs):
        given.append(list(subjects))
        return [SubjectOutcome(s, "done") for s in subjects]

    monkeypatch.setattr(resume, "run_cohort", run_cohort)
    cluster = LocalCluster(n_workers=1, processes=False, dashboard_address=":0")
    with cluster, Client(cluster) as client:
        summary = resume.run_store(client, store, cfg)
    assert given == [["sub-003"], ["sub-002"]]
    assert summary.skipped == ["sub-001"] and len(summary.done) == 2
    assert "failed on the cluster" not in caplog.text  # the tasks checked, not the driver


def test_late_references_are_found_by_the_cluster_checks_and_scored_after_the_rest(
    tmp_path, monkeypatch, caplog
):
    """Issue 21's late references at issue 19's scale: the driver reads no reference at
    start-up; the check tasks compare each done subject's reference digest with the one its
    ``score`` row recorded, and the new or changed ones get a scoring-only task after the
    rest. The digest recorded is the one the scoring task reports (`SubjectOutcome.references`)."""
    from distributed import Client, LocalCluster

    from spineps_dask.distributed import resume
    from spineps_dask.io.references import reference_digest

    cfg = RunConfig()
    store = CohortStore(tmp_path / "store.zarr")
    vol = Volume(np.ones((16, 12, 8), np.uint8), AFFINE)
    for subject in ("sub-001", "sub-002"):
        for name in ("image", "semantic", "instance"):
            store.write_volume(subject, name, vol)
        for name in ("ref_semantic", "ref_instance"):
            store.write_volume(subject, name, vol, label=True, digest=f"{subject}-{name}")
    rows = _manifest_rows(cfg)
    common = {"run_id": "r1", "config": cfg.fingerprint(), "models": cfg.model_versions()}
    rows += outcome_rows(SubjectOutcome("sub-002", "done"), common=common)
    scored = SubjectOutcome("sub-002", "done", task="score")
    scored.references = reference_digest(store, "sub-002")
    rows += outcome_rows(scored, common=common)  # sub-002: scored against these very ones
    store.manifest.upsert(rows)
    given: list[tuple[list[str], list[str]]] = []

    def run_cohort(client, store, subjects, cfg, *, score=(), on_outcome=None, **kwargs):
        given.append((list(subjects), list(score)))
        out = [SubjectOutcome(s, "done") for s in subjects]
        out += [SubjectOutcome(s, "done", task="score", references="d-" + s) for s in score]
        for o in out:
            on_outcome(o)
        return out

    monkeypatch.setattr(resume, "run_cohort", run_cohort)
    cluster = LocalCluster(n_workers=1, processes=False, dashboard_address=":0")
    with cluster, Client(cluster) as client:
        summary = resume.run_store(client, store, cfg)
    assert given == [(["sub-003"], []), ([], ["sub-001"])]
    assert [o.subject for o in summary.scored] == ["sub-001"]
    assert summary.skipped == ["sub-001", "sub-002"]
    assert store.manifest.rows(phase="score")["sub-001"]["sha256"] == "d-sub-001"
    assert "failed on the cluster" not in caplog.text
