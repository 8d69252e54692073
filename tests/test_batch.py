"""The batch entry point: what it checks before any work, and ``run --report``'s HTML file
(its bokeh dependency is installed)."""

from __future__ import annotations

import pytest
from distributed import Client

from spineps_dask.batch import performance_report_to, run_batch
from spineps_dask.biomarkers.folders import biomarkers_folder
from spineps_dask.config import RunConfig
from spineps_dask.errors import ModelError, StoreError
from spineps_dask.explore import open_cohort
from spineps_dask.io.bids import ScanName
from spineps_dask.io.nifti import load_volume, save_volume
from spineps_dask.phantom.cohort import GROUNDTRUTH, subject_seed, write_phantom
from spineps_dask.phantom.generate import make_phantom


def test_a_missing_model_stops_before_the_store_or_a_cluster_is_made(tmp_path):
    """A wrong model folder is reported at once: no store is created, no cluster started."""
    cfg = RunConfig.from_dict({"semantic_model": str(tmp_path / "no-such-model")})
    with pytest.raises(ModelError, match="no-such-model"):
        run_batch(tmp_path / "cohort.zarr", cfg, cluster="yarn")
    assert not (tmp_path / "cohort.zarr").exists()


class _Payload:
    """Stands for any class a malicious checkpoint could smuggle in (code run on unpickling)."""


def test_a_malicious_model_stops_before_the_store_or_a_cluster_is_made(tmp_path):
    """An instance checkpoint carrying a pickled object is refused by the driver before the
    store is opened or a cluster started, not by every worker after every semantic step."""
    import shutil

    import torch

    from spineps_dask.config import DEMO_MODELS

    folder = tmp_path / "evil"
    shutil.copytree(DEMO_MODELS / "instance", folder)
    (ckpt_path,) = folder.glob("*.ckpt")
    ckpt = torch.load(ckpt_path, weights_only=True)
    ckpt["callbacks"] = _Payload()
    torch.save(ckpt, ckpt_path)
    cfg = RunConfig(instance_model=folder)
    with pytest.raises(ModelError, match=r"refusing to load .*evil.*pickled objects"):
        run_batch(tmp_path / "cohort.zarr", cfg, cluster="yarn")
    assert not (tmp_path / "cohort.zarr").exists()


def test_a_store_that_does_not_exist_without_input_is_an_error(tmp_path):
    """Issue 21 item 2: a mistyped store is an error before a store is created or a cluster
    started (``cluster="yarn"`` would fail if one were), not an empty run that exits 0."""
    with pytest.raises(StoreError, match=r"no cohort store at .*nostore\.zarr.*-i/--input"):
        run_batch(tmp_path / "nostore.zarr", RunConfig(), cluster="yarn")
    assert not (tmp_path / "nostore.zarr").exists()


def test_performance_report_is_written_as_html(tmp_path):
    """The report of a small computation is a non-empty HTML file: without bokeh, distributed
    fails only when the report is saved, after a whole cohort ran (seen in `spineps-dask demo`).
    """
    path = tmp_path / "report.html"
    client = Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0")
    with client, performance_report_to(path):
        assert client.submit(sum, [1, 2, 3]).result() == 6
    html = path.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") or "<html" in html.lower()
    assert len(html) > 1000


def test_no_report_path_means_no_report(tmp_path):
    """Without ``--report`` nothing is written."""
    with performance_report_to(None):
        pass
    assert list(tmp_path.iterdir()) == []


#: One person, two visits: a repeat (run-) of one acquisition (acq-), two stations (chunk-).
ENTITY_SCANS = (
    ScanName("01", "1", (("acq", "lumbar"), ("run", "1"))),
    ScanName("01", "1", (("acq", "lumbar"), ("run", "2"))),
    ScanName("01", "2", (("chunk", "1"),)),
    ScanName("01", "2", (("chunk", "2"),)),
)


@pytest.mark.slow
def test_a_cohort_with_sessions_acq_run_and_chunk_scans_runs_every_scan(tmp_path, model_workers):
    """Issue 21 item 1, end to end: scans that differ only by run- or chunk- (one of them an
    uncompressed .nii) are each ingested, segmented and scored under their own key; tables
    carry the person and the visit and the participants' columns; the biomarkers of the
    exported files have the keys of the store's tables."""
    bids = tmp_path / "bids"
    for i, name in enumerate(ENTITY_SCANS):
        # L2 to the sacrum: four vertebrae are enough for keys, and half a lumbar view's time.
        ph = make_phantom(subject_seed(21, i), region="lumbar", fov_levels=(20.3, 24.5))
        write_phantom(bids, ph, name)
    gz = bids / "sub-01/ses-1/anat/sub-01_ses-1_acq-lumbar_run-1_T2w.nii.gz"
    save_volume(load_volume(gz), gz.with_name(gz.name.removesuffix(".gz")))
    gz.unlink()
    (bids / "participants.tsv").write_text("participant_id\tage\nsub-01\t57\n")
    keys = sorted(n.key for n in ENTITY_SCANS)
    with model_workers(2) as client:
        summary = run_batch(
            tmp_path / "c.zarr",
            RunConfig(n4=False),
            bids=bids,
            references=bids / GROUNDTRUTH,
            client=client,
            export=tmp_path / "out",
        )
    assert sorted(o.subject for o in summary.done) == keys and not summary.failed
    cohort = open_cohort(tmp_path / "c.zarr")
    metrics = cohort.table("metrics")
    assert sorted(metrics.scan.unique()) == keys
    assert set(metrics.subject) == {"sub-01"} and set(metrics.session) == {"ses-1", "ses-2"}
    assert set(metrics.age) == {57}
    stored = cohort.table("biomarkers")
    exported, errors = biomarkers_folder(tmp_path / "out")
    assert not errors and sorted(exported.scan.unique()) == sorted(stored.scan.unique()) == keys
