"""The batch entry point: what it checks before any work, and ``run --report``'s HTML file
(its bokeh dependency is installed)."""

from __future__ import annotations

import pytest
from distributed import Client

from spineps_dask.batch import performance_report_to, run_batch
from spineps_dask.config import RunConfig
from spineps_dask.errors import ModelError


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
