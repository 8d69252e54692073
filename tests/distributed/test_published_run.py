"""The published model sets through ``run`` (issue 16, items 4 and 5), on an in-process cluster.

A BIDS cohort of one CT scan (``sub-001_ct.nii.gz``, ingested by ``run -i`` because the
semantic model is a CT model) with ``CT_semantic`` + ``CT_instance`` + ``CT_labeling``, and one
of a T2w scan with ``T2w_semantic`` + ``instance_sagittal`` + ``T2w_labeling``, all in their
published layouts (`tests/models/published.py`): each subject is segmented and named by the
labelling model, with the masks `segment` makes in one process, and its manifest row says which
model folders and versions made them. Run again with other weights in the instance folder (same
name, as when a folder is replaced by a retrained one), the subject is segmented again and its
row's ``models`` column tells the two apart.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from spineps_dask.batch import run_batch
from spineps_dask.config import RunConfig
from spineps_dask.distributed import model_cache
from spineps_dask.io.manifest import Manifest
from spineps_dask.io.nifti import load_volume, save_volume
from spineps_dask.io.store import CohortStore
from spineps_dask.models.registry import published_model
from spineps_dask.pipeline.naming import NamingSettings
from spineps_dask.pipeline.segment import segment
from tests.clusters import in_process_client
from tests.models import published as pub

#: The published sets: semantic, instance and labelling model, the scan, its BIDS suffix.
SETS = {
    "ct": ("ct", "ct_instance", "ct_labeling", pub.ct_scan, "ct"),
    "t2w": ("t2w", "instance", "t2w_labeling", pub.t2w_scan, "T2w"),
}
SUBJECT = "sub-001"


@pytest.fixture(scope="module")
def client():
    with in_process_client() as c:
        yield c


def _config(models: Path, kind: str, **folders: Path) -> RunConfig:
    semantic, instance, labeling, _, _ = SETS[kind]
    return RunConfig(
        semantic_model=folders.get("semantic", pub.folder_of(models, semantic)),
        instance_model=folders.get("instance", pub.folder_of(models, instance)),
        labeling_model=folders.get("labeling", pub.folder_of(models, labeling)),
        n4=False,
        snapshot=False,
    )


def _bids(root: Path, kind: str) -> Path:
    *_, make_scan, suffix = SETS[kind]
    save_volume(make_scan(), root / SUBJECT / "anat" / f"{SUBJECT}_{suffix}.nii.gz")
    return root


@pytest.mark.parametrize("kind", sorted(SETS))
def test_a_published_model_set_runs_through_run(published_models_dir, client, tmp_path, kind):
    cfg = _config(published_models_dir, kind)
    bids = _bids(tmp_path / "bids", kind)
    store_url = tmp_path / "store.zarr"
    summary = run_batch(store_url, cfg, bids=bids, client=client)
    assert [o.subject for o in summary.done] == [SUBJECT], summary.outcomes
    (outcome,) = summary.done
    assert outcome.n_cutouts > 0 and "label" in outcome.timings
    store = CohortStore(str(store_url))
    row = Manifest(store.manifest_url).rows(phase="segment")[SUBJECT]
    assert row["status"] == "ok" and row["naming"] == "model+anchors"
    semantic, instance, labeling, _, _ = SETS[kind]
    names = [published_model(n).installed_name for n in (semantic, instance, labeling)]
    pattern = ",".join(
        f"{k}={re.escape(n)}@[0-9a-f]{{8}}"
        for k, n in zip(("semantic", "instance", "labeling"), names, strict=True)
    )
    assert re.fullmatch(pattern, row["models"]), row["models"]
    # The cluster's masks are the ones `segment` makes in one process, from the scan as the
    # file holds it (its affine in float32), on the worker's thread (CPU convolutions sum in a
    # thread-count dependent order, and random weights tie).
    image = load_volume(next((bids / SUBJECT / "anat").iterdir()))

    def in_one_process():
        return segment(
            image,
            model_cache.semantic_model(cfg.semantic_model),
            model_cache.instance_model(cfg.instance_model),
            n4=False,
            subject=SUBJECT,
            labeling_model=model_cache.labeling_model(cfg.labeling_model),
            naming=NamingSettings(method=cfg.naming),
        )

    ref = client.submit(in_one_process, pure=False).result()
    for name, vol in (("semantic", ref.semantic), ("instance", ref.instance)):
        np.testing.assert_array_equal(store.read_volume(SUBJECT, name).data, vol.data, name)
    assert any(0 < v < 100 for v in np.unique(ref.instance.data))


def test_a_cohort_reprocessed_with_other_weights_is_told_apart(
    published_models_dir, client, tmp_path
):
    """Item 5: the second run, with the CT instance folder replaced by other weights under the
    same name, segments the subject again (not skipped as done) and its manifest row's
    ``models`` column differs from the first run's in that model's version only."""
    bids = _bids(tmp_path / "bids", "ct")
    store_url = tmp_path / "store.zarr"
    first_cfg = _config(published_models_dir, "ct")
    run_batch(store_url, first_cfg, bids=bids, client=client)
    manifest = Manifest(CohortStore(str(store_url)).manifest_url)
    first = manifest.rows(phase="segment")[SUBJECT]
    again = run_batch(store_url, first_cfg, client=client)
    assert again.skipped == [SUBJECT] and not again.done  # same weights: nothing to do

    newer = tmp_path / "newer"
    pub.instance(newer, "ct_instance", seed=1)  # retrained: same name and config, other weights
    second_cfg = _config(published_models_dir, "ct", instance=pub.folder_of(newer, "ct_instance"))
    second = run_batch(store_url, second_cfg, client=client)
    assert [o.subject for o in second.done] == [SUBJECT] and not second.skipped
    row = manifest.rows(phase="segment")[SUBJECT]
    assert row["run_id"] != first["run_id"] and row["config"] != first["config"]
    before, after = (dict(p.split("=") for p in r["models"].split(",")) for r in (first, row))
    assert before["semantic"] == after["semantic"] and before["labeling"] == after["labeling"]
    assert before["instance"] != after["instance"]
    assert (
        before["instance"].split("@")[0]
        == after["instance"].split("@")[0]
        == ("CT_instance_v2.0.0")
    )
    assert row["models"] == second_cfg.model_versions()
