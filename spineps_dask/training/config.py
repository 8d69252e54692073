"""What every demo training run shares: its base settings and what its record says about them.

`TrainConfig` holds the settings both trainers have under the same name (seed, CPU threads,
number of training phantoms or views) and the seed blocks drawn from them; each trainer's config
adds its own fields after these three (so a recorded ``settings`` dict keeps its key order).
`TrainConfig.with_options` maps the options of ``models train-demo`` that both accept
(``--iterations``, ``--budget-s``, ``--train-phantoms``, ``--lr``, ``--init-from``) onto each
config's own fields. `init_record` and `versions` are the record's parts both trainers write;
`lineage_lines` is how a card tells the runs a model continued.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Self


@dataclass(frozen=True)
class TrainConfig:
    """Settings every demo trainer has: its seed, torch CPU threads and training set size."""

    seed: int = 0
    threads: int = 1
    #: Training phantoms (or phantom views), seeds `seeds` (``offset``, ``n_train``).
    n_train: int = 32

    #: The fields each shared ``train-demo`` option sets in this config (its own names: the
    #: demo config sets the step and time limits of both its models, its learning rate and
    #: starting weights only for the semantic one).
    OPTION_FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {"n_train": ("n_train",)}

    def seeds(self, offset: int, n: int) -> list[int]:
        """``n`` phantom seeds of this run's block: ``offset + seed * 1000 + 0..n-1``."""
        return [offset + self.seed * 1000 + k for k in range(n)]

    def with_options(self, **options: Any) -> Self:
        """The same settings with each option given (not None) set on its fields
        (`OPTION_FIELDS`); an option the config has no field for raises ``ValueError``."""
        changes: dict[str, Any] = {}
        for option, value in options.items():
            if value is None:
                continue
            if option not in self.OPTION_FIELDS:
                raise ValueError(f"{type(self).__name__} takes no {option!r}")
            changes |= dict.fromkeys(self.OPTION_FIELDS[option], value)
        return replace(self, **changes)


def init_record(folder: str) -> dict[str, Any]:
    """Which weights a fine-tuned model started from: its folder and content version, and
    ``lineage``, every run that led to those weights, oldest first (a chained model's own
    command names only the last start; issue 17 asks for the command in the model card)."""
    from spineps_dask.config import folder_version

    version = folder_version(folder)
    record = {"initialised_from": folder, "initialised_from_version": version}
    lineage = _lineage(folder, version)
    return record | ({"lineage": lineage} if lineage else {})


def _lineage(folder: str, version: str) -> list[dict[str, Any]]:
    """The start's own lineage plus the run that trained it (nothing for a folder this project
    did not train, such as published weights, or whose config cannot be read: the record is
    written after training, which a damaged start folder must not throw away)."""
    from spineps_dask.errors import ModelError
    from spineps_dask.models.config import CONFIG_NAME, load_config

    try:
        training = load_config(Path(folder) / CONFIG_NAME).training
    except ModelError:
        return []
    if "command" not in training:
        return []
    run = {"command": training["command"], "iterations": training.get("iterations")}
    return [*training.get("lineage", []), run | {"version": version}]


def lineage_lines(training: dict[str, Any]) -> list[str]:
    """A model card's account of the runs before this one (`init_record`'s ``lineage``)."""
    runs = training.get("lineage") or []
    if not runs:
        return []
    lines = ["- continued from these runs, oldest first (each started from the one before):"]
    for run in runs:
        lines.append(
            f"  - `{run['command']}` ({run.get('iterations')} steps; gave `{run.get('version')}`)"
        )
    return lines


def versions() -> dict[str, str]:
    """The torch and Python versions a model was trained with (the end of every record)."""
    import torch

    return {"torch": torch.__version__, "python": platform.python_version()}
