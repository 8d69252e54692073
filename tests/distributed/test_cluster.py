"""Cluster specs: names, YAML files, defaults that suit the machine."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

from spineps_dask.config import CLUSTER_CONFIGS
from spineps_dask.distributed.cluster import (
    ClusterSpec,
    _quiet_workers,
    _silence_distributed,
    check_cluster,
    close_quietly,
    default_local_layout,
    load_cluster_spec,
    make_cluster,
)
from spineps_dask.errors import ClusterError

#: The repository's cluster/ folder: README, Dockerfile and the workers' dask.yaml.
CLUSTER_DIR = Path(__file__).resolve().parents[2] / "cluster"


@pytest.mark.parametrize("name", ["local", "cuda", "slurm", "gateway", "kubernetes"])
def test_shipped_configs_parse_from_any_folder(name, tmp_path, monkeypatch):
    """Issue 21 item 8: the named configs ship in the package, so ``--cluster slurm`` reads
    slurm.yaml wherever it is run, not only from the repository root; a site folder in
    $SPINEPS_DASK_CLUSTER_DIR is looked in first."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SPINEPS_DASK_CLUSTER_DIR", raising=False)
    spec = load_cluster_spec(name)
    assert spec.kind == name and (spec.options or spec.dashboard_address != "127.0.0.1:0")
    site = tmp_path / "site"
    site.mkdir()
    (site / f"{name}.yaml").write_text(f"kind: {name}\nscale: 7\n")
    monkeypatch.setenv("SPINEPS_DASK_CLUSTER_DIR", str(site))
    assert load_cluster_spec(name).scale == 7


def test_the_configs_are_package_data():
    """The wheel carries them: pyproject lists them as package data."""
    import tomllib

    meta = tomllib.loads((CLUSTER_DIR.parent / "pyproject.toml").read_text())
    assert "clusters/*.yaml" in meta["tool"]["setuptools"]["package-data"]["spineps_dask"]
    assert (CLUSTER_CONFIGS / "slurm.yaml").is_file()


def test_dashboard_binds_localhost_by_default():
    assert load_cluster_spec("local").dashboard_address.startswith("127.0.0.1")
    assert ClusterSpec().dashboard_address.startswith("127.0.0.1")


def test_local_layout_uses_every_core_once():
    for cores in (1, 2, 4, 8, 16):
        workers, threads = default_local_layout(cores)
        assert workers * threads == cores


def test_slurm_job_script_carries_model_resource():
    """The SLURM YAML becomes a job script whose workers offer the MODEL resource."""
    pytest.importorskip("dask_jobqueue")
    spec = load_cluster_spec("slurm")
    spec = ClusterSpec(kind=spec.kind, options=spec.options)  # no scale: submit nothing
    cluster = make_cluster(spec)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p gpu" in script
    assert "MODEL=1" in script


def test_unknown_kind_says_what_is_allowed():
    with pytest.raises(ClusterError, match=r"unknown cluster 'yarn'.*local, cuda"):
        make_cluster(ClusterSpec(kind="yarn"))


def test_a_misspelt_cluster_is_one_clear_error_with_the_nearest_name():
    """Issue 21 item 7: ``--cluster lcoal`` was a 60-line traceback."""
    with pytest.raises(ClusterError, match=r"unknown cluster 'lcoal': did you mean 'local'\?"):
        check_cluster("lcoal")
    with pytest.raises(ClusterError, match=r"cluster config .*nope\.yaml not found"):
        check_cluster("nope.yaml")


def test_a_cluster_whose_backend_is_missing_names_the_extra_to_install(monkeypatch):
    """Issue 21 item 7: ``--cluster cuda`` without dask-cuda was a raw ModuleNotFoundError."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "dask_cuda" else real(name, *a),
    )
    with pytest.raises(ClusterError, match=r'needs dask_cuda.*pip install "spineps-dask\[cuda\]"'):
        check_cluster("cuda")


def _worker_env(client) -> dict[str, str | None]:
    import os

    names = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")
    return client.run(lambda: {k: os.environ.get(k) for k in names}).popitem()[1]


def test_local_workers_run_without_the_nannys_malloc_trim_threshold():
    """The nanny's MALLOC_TRIM_THRESHOLD_ made every task ~1.6x slower (page faults on each
    large array); workers started here go without it and keep one OpenMP thread."""
    from distributed import Client

    cluster = make_cluster(ClusterSpec(n_workers=1, threads_per_worker=1))
    try:
        with Client(cluster) as client:
            env = _worker_env(client)
    finally:
        cluster.close()
    assert env == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1"}


def test_worker_machine_config_unsets_the_malloc_trim_threshold():
    """cluster/dask.yaml, put in a worker machine's Dask config, does the same for nannies
    that spineps-dask does not start (SLURM nodes, the Docker image)."""
    import os

    import dask
    import yaml
    from distributed import Client, LocalCluster

    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)  # left by any nanny started before
    config = yaml.safe_load((CLUSTER_DIR / "dask.yaml").read_text())
    with dask.config.set(dask.config.merge(dask.config.config, config)):  # as a config file
        cluster = LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None)
    try:
        with Client(cluster) as client:
            assert _worker_env(client)["MALLOC_TRIM_THRESHOLD_"] is None
    finally:
        cluster.close()


class _StandInClosing:
    """A client or cluster whose close fails as a comm closing under it does."""

    def __init__(self, log_on_close: bool = False) -> None:
        self.closed = False
        self.log_on_close = log_on_close

    def close(self) -> None:
        from distributed.comm.core import CommClosedError

        self.closed = True
        if self.log_on_close:
            logging.getLogger("distributed.core").error(
                "Exception while handling op", exc_info=CommClosedError("in <TCP (closed)>")
            )
        raise CommClosedError("in <TCP (closed)>: Stream is closed")


def test_shutdown_noise_stays_off_the_console(caplog):
    """Closing a client and cluster after a stopped run: a CommClosedError raised or logged
    by distributed while closing neither escapes nor reaches the console (at the default
    level); both are still closed, and distributed's own level is restored."""
    client, cluster = _StandInClosing(), _StandInClosing(log_on_close=True)
    before = logging.getLogger("distributed").level
    with caplog.at_level(logging.INFO):
        close_quietly(client, cluster)
    assert client.closed and cluster.closed
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []
    assert logging.getLogger("distributed").level == before


def _distributed_level() -> int:
    return logging.getLogger("distributed").level


@pytest.mark.slow
def test_quieting_reaches_the_worker_processes():
    """A run stopped by a full disk printed a worker's heartbeat ``OSError`` traceback: the
    worker processes log on their own console, so `_quiet_workers` sets ``distributed`` to
    CRITICAL in each of them, not only in the client's process."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        (before,) = client.run(_distributed_level).values()
        _quiet_workers(client)
        (after,) = client.run(_distributed_level).values()
    assert before != logging.CRITICAL
    assert after == logging.CRITICAL


class _RecordingClient(_StandInClosing):
    def __init__(self) -> None:
        super().__init__()
        self.synced: list[object] = []

    def sync(self, func, *args, **kwargs):
        self.synced.append(args[0])

    def _run(self, *args, **kwargs):
        raise AssertionError("reached only through sync")


def test_only_a_started_clusters_workers_are_quieted():
    """Closing a client of a joined cluster (``cluster`` None) leaves its workers' logging as
    the cluster's owner set it; closing one started here quiets them before closing."""
    joined = _RecordingClient()
    close_quietly(joined, None)
    started = _RecordingClient()
    close_quietly(started, _StandInClosing())
    assert joined.synced == []
    assert started.synced == [_silence_distributed]
