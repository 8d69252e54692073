"""Cluster specs: names, YAML files, defaults that suit the machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from spineps_dask.distributed.cluster import (
    ClusterSpec,
    default_local_layout,
    load_cluster_spec,
    make_cluster,
)

CLUSTER_DIR = Path(__file__).resolve().parents[2] / "cluster"


@pytest.mark.parametrize("name", ["local", "cuda", "slurm", "gateway", "kubernetes"])
def test_shipped_configs_parse(name):
    """Every config in cluster/ loads and names its kind."""
    spec = load_cluster_spec(name, config_dir=CLUSTER_DIR)
    assert spec.kind == name


def test_dashboard_binds_localhost_by_default():
    assert load_cluster_spec("local", config_dir=CLUSTER_DIR).dashboard_address.startswith(
        "127.0.0.1"
    )
    assert ClusterSpec().dashboard_address.startswith("127.0.0.1")


def test_local_layout_uses_every_core_once():
    for cores in (1, 2, 4, 8, 16):
        workers, threads = default_local_layout(cores)
        assert workers * threads == cores


def test_slurm_job_script_carries_model_resource():
    """The SLURM YAML becomes a job script whose workers offer the MODEL resource."""
    pytest.importorskip("dask_jobqueue")
    spec = load_cluster_spec("slurm", config_dir=CLUSTER_DIR)
    spec = ClusterSpec(kind=spec.kind, options=spec.options)  # no scale: submit nothing
    cluster = make_cluster(spec)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p gpu" in script
    assert "MODEL=1" in script


def test_unknown_kind_says_what_is_allowed():
    with pytest.raises(ValueError, match="unknown cluster kind 'yarn'"):
        make_cluster(ClusterSpec(kind="yarn"))
