"""Start or join a Dask cluster from a short name, a YAML file, or a scheduler address.

``local`` (default) builds a ``LocalCluster`` of worker processes; ``cuda`` a
``dask_cuda.LocalCUDACluster`` (one worker per GPU); ``slurm``/``pbs`` a dask-jobqueue
cluster; ``gateway`` a dask-gateway cluster; ``kubernetes`` a dask-kubernetes ``KubeCluster``;
anything with ``://`` is a scheduler address. Site values (queues, memory, images) live in the
YAML files, never in code (style guide: cellpose hard-codes ``/scratch/{user}``). The named
configs ship in the package (``spineps_dask/clusters/``), so ``--cluster slurm`` works from any
folder; ``$SPINEPS_DASK_CLUSTER_DIR`` holds a site's own versions, looked in first.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from spineps_dask.config import CLUSTER_CONFIGS, cluster_dir
from spineps_dask.errors import ClusterError

logger = logging.getLogger(__name__)

#: Resource every model task asks for; each worker offers as many as it may run at once.
MODEL_RESOURCE = "MODEL"
GPU_RESOURCE = "GPU"
#: distributed's nanny sets MALLOC_TRIM_THRESHOLD_=65536 for its workers, and setting it turns
#: off glibc's dynamic mmap threshold: every large numpy/torch temporary is then mmap'ed and
#: page-faulted afresh. Measured here (2 one-thread workers, `segment` on lumbar phantoms):
#: ~10x the minor page faults, up to 40 % of task time in the kernel, tasks 1.6x slower than
#: in a plain process. Unset (None) for the workers this module starts; `cluster/dask.yaml`
#: does the same for workers started elsewhere.
WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


#: Each cluster kind, the module that starts it and how to install that module.
BACKENDS: dict[str, tuple[str, str]] = {
    "local": ("distributed", "pip install distributed"),
    "cuda": ("dask_cuda", 'pip install "spineps-dask[cuda]"'),
    **{
        k: ("dask_jobqueue", 'pip install "spineps-dask[slurm]"')
        for k in ("slurm", "pbs", "lsf", "sge")
    },
    "gateway": ("dask_gateway", 'pip install "spineps-dask[gateway]"'),
    "kubernetes": ("dask_kubernetes", "pip install dask-kubernetes"),
}


@dataclass(frozen=True)
class ClusterSpec:
    """What cluster to start: ``kind`` plus keyword arguments for its constructor."""

    kind: str = "local"
    n_workers: int | None = None
    threads_per_worker: int | None = None
    dashboard_address: str = "127.0.0.1:0"
    options: dict[str, Any] = field(default_factory=dict)
    scale: int | None = None


def load_cluster_spec(name_or_path: str, *, config_dir: Path | None = None) -> ClusterSpec:
    """Resolve ``local``/``cuda``/``slurm``/... or a YAML path into a ClusterSpec.

    A bare name looks for ``<config_dir>/<name>.yaml`` (``config_dir`` defaults to
    ``$SPINEPS_DASK_CLUSTER_DIR``), then among the configs shipped in the package; without
    one, defaults for that kind apply.
    """
    path = Path(name_or_path)
    if not path.suffix:
        bases = [config_dir or cluster_dir(), CLUSTER_CONFIGS]
        found = [
            b / f"{name_or_path}.yaml" for b in bases if (b / f"{name_or_path}.yaml").is_file()
        ]
        if not found:
            return ClusterSpec(kind=name_or_path)
        path = found[0]
    if not path.is_file():
        raise ClusterError(f"cluster config {path} not found")
    raw = yaml.safe_load(path.read_text()) or {}
    known = {"kind", "n_workers", "threads_per_worker", "dashboard_address", "scale"}
    options = {k: v for k, v in raw.items() if k not in known}
    return ClusterSpec(
        kind=raw.get("kind", path.stem),
        n_workers=raw.get("n_workers"),
        threads_per_worker=raw.get("threads_per_worker"),
        dashboard_address=str(raw.get("dashboard_address", "127.0.0.1:0")),
        options=options,
        scale=raw.get("scale"),
    )


def check_cluster(name_or_path: str) -> None:
    """Refuse a cluster that cannot start, before anything else happens (a run's ingest).

    A scheduler address (``tcp://...``) is checked when joined. A name or YAML file must give
    a known kind whose backend is installed.

    Raises
    ------
    ClusterError
        Unknown kind (with the nearest known name), a YAML file that does not exist, or the
        backend's package missing (with the install command).
    """
    if "://" in name_or_path:
        return
    kind = load_cluster_spec(name_or_path).kind
    if kind not in BACKENDS:
        near = difflib.get_close_matches(kind, BACKENDS, n=1)
        hint = f"did you mean {near[0]!r}? " if near else ""
        raise ClusterError(
            f"unknown cluster {name_or_path!r}: {hint}use {', '.join(BACKENDS)}, a YAML file, "
            "or a scheduler address such as tcp://host:8786"
        )
    module, install = BACKENDS[kind]
    if importlib.util.find_spec(module) is None:
        raise ClusterError(f"--cluster {kind} needs {module}, which is not installed: {install}")


def default_local_layout(cores: int | None = None) -> tuple[int, int]:
    """(workers, threads per worker) for a CPU machine: one thread per core, 1-2 per worker.

    Torch forward passes and N4 both use threads, so a worker gets 2 threads on bigger machines
    and one model slot; on 2 cores two single-thread workers let one subject's preprocessing run
    beside another's model work.
    """
    cores = cores or os.cpu_count() or 1
    if cores <= 4:
        return cores, 1
    return cores // 2, 2


def make_cluster(spec: ClusterSpec) -> Any:
    """Build the cluster object (not the client). Imports the backend lazily."""
    with worker_environment():
        return _make_cluster(spec)


@contextlib.contextmanager
def worker_environment() -> Iterator[None]:
    """Start nannies in here so their workers go without ``WORKER_CONFIG``'s variables.

    It also drops MALLOC_TRIM_THRESHOLD_ from this process's environment, even one a user set.
    """
    import dask

    # A nanny also writes its pre-spawn variables into this process's environment, which
    # every later worker inherits: drop what an earlier cluster left there.
    os.environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set(WORKER_CONFIG):  # read by each nanny as it is made
        yield


def _make_cluster(spec: ClusterSpec) -> Any:
    kind = spec.kind
    if kind == "local":
        from distributed import LocalCluster

        workers, threads = default_local_layout()
        threads = spec.threads_per_worker or threads
        return LocalCluster(
            n_workers=spec.n_workers or workers,
            threads_per_worker=threads,
            processes=True,
            dashboard_address=spec.dashboard_address,
            host="127.0.0.1",
            resources={MODEL_RESOURCE: 1},
            **spec.options,
        )
    if kind == "cuda":
        from dask_cuda import LocalCUDACluster

        return LocalCUDACluster(
            dashboard_address=spec.dashboard_address,
            ip="127.0.0.1",
            resources={GPU_RESOURCE: 1, MODEL_RESOURCE: 1},
            threads_per_worker=spec.threads_per_worker or 2,
            **spec.options,
        )
    if kind in ("slurm", "pbs", "lsf", "sge"):
        import dask_jobqueue

        cls = getattr(dask_jobqueue, f"{kind.upper()}Cluster")
        options = dict(spec.options)
        options.setdefault("worker_extra_args", ["--resources", f"{MODEL_RESOURCE}=1"])
        cluster = cls(**options)
        if spec.scale:
            cluster.scale(jobs=spec.scale)
        return cluster
    if kind == "gateway":
        from dask_gateway import Gateway

        gateway = Gateway(**spec.options.get("gateway", {}))
        cluster = gateway.new_cluster(**spec.options.get("cluster", {}))
        if spec.scale:
            cluster.scale(spec.scale)
        return cluster
    if kind == "kubernetes":
        from dask_kubernetes.operator import KubeCluster

        cluster = KubeCluster(**spec.options)
        if spec.scale:
            cluster.scale(spec.scale)
        return cluster
    check_cluster(kind)  # raises ClusterError for a kind no branch above knows
    raise ClusterError(f"cluster kind {kind!r} cannot be started")


@contextlib.contextmanager
def cluster_client(
    cluster: str = "local",
    *,
    client: Any = None,
    workers: int | None = None,
    threads: int | None = None,
    setup: bool = True,
) -> Iterator[Any]:
    """A client to run on, inside the ``with`` block: ``client`` as given, or a new one.

    A new client starts (or joins, for an address) ``cluster`` as `connect` does, registers
    `WorkerSetup` so every worker sets its torch threads (``threads``, else the workers' own
    count), and is closed with its cluster afterwards. A given client is used as it is: its
    workers should have `WorkerSetup` registered already. ``setup=False``: no `WorkerSetup`
    (a cluster that runs no model, an ingest's: its workers need not import torch).
    """
    if client is not None:
        yield client
        return
    from spineps_dask.distributed.model_cache import WorkerSetup, worker_log_level

    client, cluster_obj = connect(cluster, n_workers=workers, threads_per_worker=threads)
    try:
        if setup:
            nthreads = threads or max(client.nthreads().values(), default=1)
            client.register_plugin(WorkerSetup(threads=nthreads, log_level=worker_log_level()))
        yield client
    finally:
        close_quietly(client, cluster_obj)


def close_quietly(client: Any, cluster: Any) -> None:
    """Close the client, then the cluster, without distributed's shutdown noise on the console.

    When a run stops with workers still busy (Ctrl-C, a full disk, a failure), their nannies
    kill them and the comms closing under the scheduler and the client log warnings and
    ``CommClosedError`` tracebacks that say nothing about the run. Below debug level they are
    held back while closing, and an error closing is one debug line: the run's own outcome
    (its summary, or the error that stopped it) is what the console shows. The workers of a
    cluster started here are quieted too: a heartbeat in flight as the scheduler goes logs
    an ``OSError`` traceback from the worker's own process (seen on a run stopped by a full
    disk). A joined cluster's workers (``cluster`` None) are someone else's and keep theirs.
    """
    noisy = logging.getLogger("distributed")
    level = noisy.level
    if noisy.getEffectiveLevel() > logging.DEBUG:
        noisy.setLevel(logging.CRITICAL)
        if client is not None and cluster is not None:
            _quiet_workers(client)
    try:
        for closing in (client, cluster):
            if closing is None:
                continue
            try:
                closing.close()
            except Exception as exc:  # CommClosedError, a timeout: it is going away anyway
                logger.debug("closing %s: %s: %s", type(closing).__name__, type(exc).__name__, exc)
    finally:
        noisy.setLevel(level)


def _silence_distributed() -> None:
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def _quiet_workers(client: Any, timeout_s: float = 5.0) -> None:
    """Silence ``distributed`` in each worker process; a worker that does not answer within
    ``timeout_s`` (busy, or already gone) is left as it is: closing must not wait on it."""
    try:  # `Client.run` takes no timeout; `_run` is the coroutine behind it
        client.sync(
            client._run, _silence_distributed, on_error="ignore", callback_timeout=timeout_s
        )
    except Exception as exc:  # a timeout, a closed comm: closing goes on regardless
        logger.debug("quieting workers: %s: %s", type(exc).__name__, exc)


def connect(name_or_path: str = "local", **overrides: Any) -> tuple[Any, Any]:
    """Return ``(client, cluster)``; ``cluster`` is None when joining an existing scheduler.

    Raises
    ------
    ClusterError
        The cluster is unknown or its backend is not installed (`check_cluster`), or the
        scheduler at an address does not answer.
    """
    from distributed import Client

    if "://" in name_or_path:
        try:
            return Client(name_or_path, timeout="30s"), None
        except OSError as exc:
            raise ClusterError(
                f"no scheduler answers at {name_or_path} ({exc}); start one with "
                "`dask scheduler`, or check the address"
            ) from exc
    check_cluster(name_or_path)
    spec = load_cluster_spec(name_or_path)
    if overrides:
        spec = ClusterSpec(**{**spec.__dict__, **{k: v for k, v in overrides.items() if v}})
    cluster = make_cluster(spec)
    client = Client(cluster)
    logger.info("dashboard: %s", client.dashboard_link)
    return client, cluster


def use_model_slots(client: Any) -> bool:
    """Whether model tasks may ask for the ``MODEL`` resource on this cluster, checked once
    at the start of a run so that none waits forever for a worker that does not offer it.

    True when a worker offers ``MODEL`` (the clusters this module starts all do), or no worker
    has joined yet (job-queue workers come later, started with it). Workers started by hand
    without it: with one thread each, a worker runs one task at a time anyway, so model tasks
    run without the resource (a warning says so); with more threads that would put several
    models in one worker's memory at once, so it is an error that says what to add.

    Raises
    ------
    ClusterError
        No worker offers ``MODEL`` and some have more than one thread.
    """
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    if not workers or any(MODEL_RESOURCE in (w.get("resources") or {}) for w in workers.values()):
        return True
    address = client.scheduler.address
    if all(w.get("nthreads", 1) == 1 for w in workers.values()):
        logger.warning(
            "no worker of %s offers the %s resource; each has one thread, so model tasks run "
            "without it (start workers with --resources %s=1 to let them use more threads)",
            address,
            MODEL_RESOURCE,
            MODEL_RESOURCE,
        )
        return False
    raise ClusterError(
        f"no worker of {address} offers the {MODEL_RESOURCE} resource that model tasks ask "
        f"for, so they would wait forever; start each worker with `dask worker {address} "
        f"--resources {MODEL_RESOURCE}=1` (one model at a time, other threads preprocess), "
        "or with `--nthreads 1`"
    )
