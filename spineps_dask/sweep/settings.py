"""One point of a sweep grid, and the hash of what each pipeline stage depends on.

A stage's work is shared by every setting whose stage key is equal: ``prepare`` depends on
N4 only, ``semantic`` on that plus the sliding-window step and the folds, the instance model's
cutout answers on the semantic mask alone (same key as ``semantic``), ``assemble`` (merge,
post-processing, the rule's naming) on all but the naming, and ``label`` (the labelling model)
and ``reduce`` (metrics) on everything. So a grid of merge / post-processing settings runs the
semantic model once per subject, and a grid of namings names the same instance masks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from spineps_dask.config import fingerprint
from spineps_dask.pipeline.merge import MergeSettings

#: The stages of one subject, in order, and the setting fields each one reads.
STAGE_FIELDS: dict[str, tuple[str, ...]] = {
    "prepare": ("n4", "recipe"),
    "semantic": ("n4", "recipe", "reference_mode", "step_size", "folds", "models"),
    "instance": ("n4", "recipe", "reference_mode", "step_size", "folds", "models"),
    "assemble": (
        "n4",
        "recipe",
        "reference_mode",
        "step_size",
        "folds",
        "models",
        "postprocess",
        "merge",
    ),
}
STAGE_FIELDS["label"] = (*STAGE_FIELDS["assemble"], "naming")
STAGE_FIELDS["reduce"] = STAGE_FIELDS["label"]
#: MergeSettings fields a sweep may set (``inferior_axis`` is geometry, not a threshold).
MERGE_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(MergeSettings) if f.name != "inferior_axis"
)


@dataclass(frozen=True)
class Setting:
    """One grid point: everything a sweep varies, with the model defaults filled in.

    ``merge`` holds MergeSettings overrides as sorted ``(field, value)`` pairs;
    ``vert_size_threshold`` is in voxels of the instance model's grid, the others are fractions.
    ``naming``: how vertebrae are named (`config.NAMING_METHODS`; ``rule`` needs no labelling
    model). ``models``: the model versions (`RunConfig.model_versions`), so results kept from
    a sweep with other models are never reused.
    """

    n4: bool = True
    recipe: str = "reference"
    reference_mode: bool = False
    step_size: float = 0.5
    folds: tuple[int | str, ...] = (0,)
    postprocess: bool = True
    merge: tuple[tuple[str, float], ...] = field(default=())
    naming: str = "model+anchors"
    models: str = ""

    def key(self, stage: str) -> str:
        """Short hash of the fields ``stage`` depends on (equal key = shared work)."""
        d = {**self.columns(), "models": self.models}
        wanted = STAGE_FIELDS[stage]
        part = {k: v for k, v in d.items() if k in wanted or k.split(".")[0] in wanted}
        return fingerprint(part, length=10)

    @property
    def uses_model(self) -> bool:
        """Whether this setting runs the labelling model (not for the rule, nor in reference
        mode, which names as ``spineps -ml none``)."""
        return self.naming != "rule" and not self.reference_mode

    @property
    def id(self) -> str:
        """The whole setting's hash (the ``reduce`` key)."""
        return self.key("reduce")

    def merge_settings(self, base: MergeSettings) -> MergeSettings:
        """``base`` (the instance model's merge constants) with this setting's overrides."""
        overrides: dict[str, Any] = dict(self.merge)  # field types vary (int and float)
        return replace(base, **overrides)

    def columns(self) -> dict[str, Any]:
        """Flat columns for the result tables: ``n4, recipe, step_size, folds, postprocess,
        naming, merge.*``."""
        return {
            "n4": self.n4,
            "recipe": self.recipe,
            "reference_mode": self.reference_mode,
            "step_size": float(self.step_size),
            "folds": ",".join(str(f) for f in self.folds),
            "postprocess": self.postprocess,
            "naming": self.naming,
            **{f"merge.{k}": float(v) for k, v in self.merge},
        }

    def label(self, swept: Mapping[str, Any] | tuple[str, ...]) -> str:
        """``'postprocess=off, merge.couple_dice=0.5'`` from the swept keys only."""
        cols = self.columns()
        parts = []
        for k in swept:
            v = cols[k]
            parts.append(f"{k}={'on' if v is True else 'off' if v is False else v}")
        return ", ".join(parts) or "baseline"


def make_setting(values: Mapping[str, Any], *, defaults: Setting) -> Setting:
    """A Setting from flat keys (``n4``, ``merge.couple_dice``, ...) over ``defaults``."""
    merge = dict(defaults.merge)
    plain: dict[str, Any] = {}
    for key, value in values.items():
        if key.startswith("merge."):
            merge[key.split(".", 1)[1]] = value
        elif key == "folds":
            plain[key] = tuple(value)
        else:
            plain[key] = value
    return replace(defaults, **plain, merge=tuple(sorted(merge.items())))
