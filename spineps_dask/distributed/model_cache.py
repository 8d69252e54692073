"""Models loaded once per worker process, never once per task.

cellpose's distributed mode rebuilds its model inside every block task and pays for it
(distributed-notes). Here each process keeps one instance per (folder, device); tasks ask
the cache. ``load_counts()`` lets tests check that a cohort run loaded each model once per
worker.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed.diagnostics.plugin import WorkerPlugin

if TYPE_CHECKING:
    from spineps_dask.models.instance import InstanceModel
    from spineps_dask.models.labeling import LabelingModel
    from spineps_dask.models.semantic import SemanticModel

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_cache: dict[tuple[str, str, str, str], Any] = {}
_loads: Counter[str] = Counter()


def _get(kind: str, folder: str | Path, device: str, loader: Any, variant: str = "") -> Any:
    key = (kind, str(Path(folder).resolve()), device, variant)
    with _lock:
        model = _cache.get(key)
        if model is None:
            model = loader()
            _cache[key] = model
            _loads[kind] += 1
            logger.info("loaded %s model from %s on %s (pid %d)", kind, folder, device, os.getpid())
    return model


def semantic_model(
    folder: str | Path,
    *,
    device: str = "auto",
    threads: int | None = None,
    folds: tuple[int | str, ...] | None = None,
    step_size: float | None = None,
) -> SemanticModel:
    """The process-wide SemanticModel for ``folder`` (one per folds / step-size variant)."""
    from spineps_dask.models.semantic import SemanticModel

    return _get(
        "semantic",
        folder,
        device,
        lambda: SemanticModel.from_folder(
            folder, device=device, threads=threads, folds=folds, step_size=step_size
        ),
        variant=f"folds={folds},step={step_size}",
    )


def instance_model(folder: str | Path, *, device: str = "auto") -> InstanceModel:
    """The process-wide InstanceModel for ``folder``."""
    from spineps_dask.models.instance import InstanceModel

    return _get(
        "instance", folder, device, lambda: InstanceModel.from_folder(folder, device=device)
    )


def labeling_model(folder: str | Path, *, device: str = "auto") -> LabelingModel:
    """The process-wide LabelingModel for ``folder``."""
    from spineps_dask.models.labeling import LabelingModel

    return _get(
        "labeling", folder, device, lambda: LabelingModel.from_folder(folder, device=device)
    )


def load_counts() -> dict[str, int]:
    """How many times each kind of model was loaded in this process."""
    return dict(_loads)


def clear() -> None:
    """Forget cached models (tests; freeing GPU memory)."""
    with _lock:
        _cache.clear()
        _loads.clear()


def worker_log_level() -> int:
    """The level for the package's loggers on workers: errors only, unless this process logs
    info or more (``-v``). What a worker would warn about per subject (an anchor missing, a
    scan refused) is in that subject's manifest row and the run's summary already."""
    level = logging.getLogger("spineps_dask").getEffectiveLevel()
    return level if level <= logging.INFO else logging.ERROR


def set_threads(threads: int) -> None:
    """Give torch and nnU-Net a deliberate thread count.

    The nanny sets OMP_NUM_THREADS=1, and nnU-Net raises torch to 8 threads while converting
    logits; on a small machine two workers would then oversubscribe (distributed-notes).
    """
    os.environ["nnUNet_def_n_proc"] = str(threads)  # noqa: SIM112 (nnU-Net reads this name)
    import torch

    torch.set_num_threads(threads)


class WorkerSetup(WorkerPlugin):
    """Set torch threads on every worker, and optionally load the models before the first task.

    ``log_level``: of the package's loggers on the worker (`worker_log_level`).
    """

    name = "spineps-dask-setup"

    def __init__(
        self,
        *,
        threads: int,
        semantic: str | None = None,
        instance: str | None = None,
        labeling: str | None = None,
        device: str = "auto",
        log_level: int | None = None,
    ):
        self.threads = threads
        self.semantic = semantic
        self.instance = instance
        self.labeling = labeling
        self.device = device
        self.log_level = log_level

    def setup(self, worker: Any) -> None:
        if self.log_level is not None:
            logging.getLogger("spineps_dask").setLevel(self.log_level)
        set_threads(self.threads)
        if self.semantic:
            semantic_model(self.semantic, device=self.device, threads=self.threads)
        if self.instance:
            instance_model(self.instance, device=self.device)
        if self.labeling:
            labeling_model(self.labeling, device=self.device)
