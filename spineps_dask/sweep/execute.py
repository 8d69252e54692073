"""A sweep from its config to its output folder: cohort, grid, cluster, tables, plot.

Layer above `driver.run_grid` (style rule 1): this one knows about files and clusters. Work
arrays go to ``<out>/work.zarr`` (deleted per subject when done), so the cohort store is only
read; finished parts stay in ``<out>/parts/`` and a rerun of the same config computes only
what is missing.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from spineps_dask.config import RunConfig
from spineps_dask.distributed.cluster import cluster_client
from spineps_dask.io.lock import run_lock
from spineps_dask.io.store import CohortStore
from spineps_dask.models.folders import load_model_folder
from spineps_dask.sweep.cohort import open_sweep_cohort, plan_sweep_cohort
from spineps_dask.sweep.config import SweepConfig, SweepConfigError
from spineps_dask.sweep.driver import SweepEvents, run_grid
from spineps_dask.sweep.results import SweepResult
from spineps_dask.sweep.settings import Setting
from spineps_dask.sweep.tables import done_parts, grid_table, write_part

logger = logging.getLogger(__name__)


def resolve_grid(config: SweepConfig) -> tuple[RunConfig, list[Setting], list[str]]:
    """The models, the grid points (model defaults filled in) and their labels.

    Raises
    ------
    ModelError
        A model folder is missing or broken.
    SweepConfigError
        A grid point asks for a fold the semantic model does not have.
    """
    names = {
        "semantic": "semantic_model",
        "instance": "instance_model",
        "labeling": "labeling_model",
    }
    models = RunConfig.from_dict(
        {names[k]: v for k, v in config.models.items() if v} | {"device": config.device}
    )
    semantic = load_model_folder(models.semantic_model, kind="semantic")
    load_model_folder(models.instance_model, kind="instance")
    if models.labeling_model is not None:
        load_model_folder(models.labeling_model, kind="labeling")
    defaults = Setting(
        step_size=semantic.config.default_step_size,
        folds=tuple(semantic.config.available_folds),
        naming=models.naming if models.labeling_model is not None else "rule",
        models=models.model_versions(),
    )
    settings = config.settings(defaults)
    if models.labeling_model is None and any(s.uses_model for s in settings):
        raise SweepConfigError(
            "naming: a grid point names by the model but models.labeling is none; "
            "give a labelling model or use naming: rule",
            step="sweep config",
        )
    for s in settings:
        missing = [f for f in s.folds if not (semantic.weights / f"fold_{f}").is_dir()]
        if missing:
            have = sorted(p.name for p in semantic.weights.glob("fold_*"))
            raise SweepConfigError(
                f"folds: {missing} not in the semantic model {semantic.path} (it has {have})",
                step="sweep config",
            )
    return models, settings, [s.label(tuple(config.grid)) for s in settings]


def run_sweep(
    config: SweepConfig, *, client: Any = None, events: SweepEvents | None = None
) -> SweepResult:
    """Run ``config``'s grid over its cohort and write the outputs to ``config.out``.

    ``client``: an existing Dask client (its workers should have `WorkerSetup` registered);
    without one, the config's cluster is started and closed again. Failed subject x setting
    pairs end up in ``failures``; nothing else stops.
    """
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    models, settings, labels = resolve_grid(config)
    baseline = labels[config.baseline_index()]
    plan = plan_sweep_cohort(config.cohort, out)
    work = CohortStore(str(out / "work.zarr"), mode="a")
    cluster = cluster_client(
        config.cluster, client=client, workers=config.workers, threads=config.threads
    )
    with run_lock(work), cluster as c:
        cohort = open_sweep_cohort(plan, config.cohort.subjects, c)
        grid = run_grid(
            c,
            cohort.store,
            work,
            cohort.subjects,
            settings,
            models,
            done=done_parts(out, settings),
            max_in_flight=config.max_in_flight,
            events=events,
            on_part=lambda p: write_part(out, p.setting, p.subject, p.table),
        )
    label_of = {s.id: lab for s, lab in zip(settings, labels, strict=True)}
    failures = pd.DataFrame(
        [
            *({**f, "setting": label_of[f["setting"]]} for f in grid.failures),
            *(
                {"subject": s, "setting": "all", "step": "cohort", "error": why}
                for s, why in cohort.left_out.items()
            ),
        ],
        columns=["subject", "setting", "step", "error"],
    )
    result = SweepResult(
        metrics=grid_table(out, settings, labels, cohort.subjects),
        stages=pd.DataFrame(grid.stages, columns=["subject", "stage", "key", "seconds", "worker"]),
        failures=failures,
        settings=pd.DataFrame(
            [
                {"setting": lab, "setting_id": s.id, **s.columns()}
                for s, lab in zip(settings, labels, strict=True)
            ]
        ),
        baseline=baseline,
    )
    result.write(out)
    return result
