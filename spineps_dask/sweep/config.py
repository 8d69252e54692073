"""The sweep YAML: cohort, cluster and a grid of settings, checked before any work starts.

A bad file fails at once with the key, the value and what is allowed, never an hour into a
cluster run. Layout (every key but ``cohort`` and ``grid`` optional)::

    cohort:                       # exactly one of phantom / bids / store
      phantom: {subjects: 3, seed: 7, region: lumbar}   # + any PhantomSpec field
      references: path            # reference masks (default: the phantoms' / BIDS ground truth)
      subjects: [sub-001]         # a subset
    out: sweep-out                # default ./sweep-<file stem>; relative paths are relative
                                  # to the YAML file
    cluster: local                # as ``run --cluster``
    workers: 2
    threads: 1
    models: {semantic: null, instance: null, labeling: null}   # labeling: none = no model
    fixed: {n4: false}            # held for every grid point
    grid:                         # cartesian product of the lists
      postprocess: [true, false]
      merge.couple_dice: [0.3, 0.5]
      naming: [rule, model]       # rule-based vs model naming on the same instance masks
    baseline: {postprocess: true} # the grid point the others are compared to (default: first)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from spineps_dask.config import NAMING_METHODS, RECIPES
from spineps_dask.errors import InputError
from spineps_dask.phantom.spec import REGIONS, PhantomSpec
from spineps_dask.sweep.settings import MERGE_FIELDS, Setting, make_setting

TOP_KEYS = (
    "cohort",
    "out",
    "cluster",
    "workers",
    "threads",
    "max_in_flight",
    "models",
    "device",
    "fixed",
    "grid",
    "baseline",
)
COHORT_KEYS = ("phantom", "bids", "store", "references", "subjects")
#: ``subjects``, ``seed`` and any PhantomSpec field (fixed for every subject, e.g. ``region``).
PHANTOM_KEYS = ("subjects", "seed", *(f.name for f in fields(PhantomSpec) if f.name != "seed"))
SETTING_KEYS = (
    "n4",
    "recipe",
    "reference_mode",
    "step_size",
    "folds",
    "postprocess",
    "naming",
    *(f"merge.{m}" for m in MERGE_FIELDS),
)


class SweepConfigError(InputError):
    """The sweep YAML names an unknown key or a value that is not allowed."""


def _fail(where: str, message: str) -> SweepConfigError:
    return SweepConfigError(f"{where}: {message}", step="sweep config")


def _unknown(where: str, raw: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    bad = sorted(set(raw) - set(allowed))
    if bad:
        raise _fail(where, f"unknown key {bad[0]!r}; allowed: {', '.join(allowed)}")


def _fraction(where: str, v: Any, *, low_open: bool = False) -> float:
    ok = isinstance(v, int | float) and not isinstance(v, bool)
    if not ok or not (0 < v <= 1 if low_open else 0 <= v <= 1):
        span = "(0, 1]" if low_open else "[0, 1]"
        raise _fail(where, f"{v!r} is not allowed; use a number in {span}")
    return float(v)


def _count(where: str, v: Any, *, minimum: int) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        raise _fail(where, f"{v!r} is not allowed; use a whole number >= {minimum}")
    return v


def check_value(where: str, key: str, v: Any) -> Any:
    """One setting value, checked and normalised (``where`` names it in errors)."""
    if key in ("n4", "postprocess", "reference_mode"):
        if not isinstance(v, bool):
            raise _fail(where, f"{v!r} is not allowed; use true or false")
        return v
    if key == "recipe":
        if v not in RECIPES:
            raise _fail(where, f"{v!r} is not allowed; use one of {', '.join(RECIPES)}")
        return v
    if key == "naming":
        if v not in NAMING_METHODS:
            raise _fail(where, f"{v!r} is not allowed; use one of {', '.join(NAMING_METHODS)}")
        return v
    if key == "step_size":
        return _fraction(where, v, low_open=True)
    if key == "folds":
        folds = v if isinstance(v, list) else [v]
        if not folds or not all(
            (isinstance(f, int) and not isinstance(f, bool) and f >= 0) or isinstance(f, str)
            for f in folds
        ):
            raise _fail(where, f"{v!r} is not allowed; use a fold or a list of folds, e.g. [0, 1]")
        return tuple(folds)
    if key == "merge.neighbour_range":
        return _count(where, v, minimum=1)
    if key == "merge.vert_size_threshold":
        return _count(where, v, minimum=0)
    if key in SETTING_KEYS:
        return _fraction(where, v)
    raise _fail(where, f"unknown setting {key!r}; allowed: {', '.join(SETTING_KEYS)}")


@dataclass(frozen=True)
class CohortSpec:
    """Where the subjects come from (exactly one of phantom / bids / store)."""

    phantom: dict[str, Any] | None = None
    bids: Path | None = None
    store: str | None = None
    references: Path | None = None
    subjects: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SweepConfig:
    """A checked sweep file: the cohort, where to write, the cluster, and the grid points."""

    cohort: CohortSpec
    out: Path
    grid: dict[str, tuple[Any, ...]]
    fixed: dict[str, Any] = field(default_factory=dict)
    baseline: dict[str, Any] = field(default_factory=dict)
    cluster: str = "local"
    workers: int | None = None
    threads: int | None = None
    max_in_flight: int | None = None
    models: dict[str, str | None] = field(default_factory=dict)
    device: str = "auto"

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> SweepConfig:
        """Read and check a sweep YAML; ``overrides`` (e.g. ``out``, ``cluster``) win."""
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SweepConfigError(f"cannot read sweep config {path}: {exc}") from exc
        except yaml.YAMLError as exc:
            raise SweepConfigError(f"{path} is not valid YAML: {exc}") from exc
        if not isinstance(raw, dict):
            raise SweepConfigError(f"{path}: expected a mapping with 'cohort' and 'grid' keys")
        raw.setdefault("out", Path.cwd() / f"sweep-{path.stem}")
        if overrides.get("out") is not None:  # a command-line path: relative to the cwd
            overrides["out"] = Path(overrides["out"]).resolve()
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(raw, base=path.parent)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, base: Path | None = None) -> SweepConfig:
        """Check a parsed sweep config; relative paths resolve against ``base``."""
        base = base or Path.cwd()
        _unknown("sweep config", raw, TOP_KEYS)
        for key in ("cohort", "grid"):
            if key not in raw:
                raise _fail(
                    "sweep config", f"missing {key!r}; see the example in benchmarks/sweeps/"
                )
        grid = _parse_grid(raw["grid"])
        fixed = _parse_settings("fixed", raw.get("fixed") or {})
        both = sorted(set(grid) & set(fixed))
        if both:
            raise _fail("fixed", f"{both[0]!r} is also in grid; give it in one place")
        baseline = _parse_settings("baseline", raw.get("baseline") or {})
        for key in baseline:
            if key not in grid:
                raise _fail("baseline", f"{key!r} is not swept; baseline keys: {', '.join(grid)}")
            if baseline[key] not in grid[key]:
                raise _fail(f"baseline.{key}", f"{baseline[key]!r} is not one of {list(grid[key])}")
        models = raw.get("models") or {}
        if not isinstance(models, dict):
            raise _fail(
                "models", "use a mapping such as {semantic: PATH, instance: PATH, labeling: PATH}"
            )
        _unknown("models", models, ("semantic", "instance", "labeling"))
        for key in ("workers", "threads", "max_in_flight"):
            if raw.get(key) is not None:
                _count(key, raw[key], minimum=1)
        return cls(
            cohort=_parse_cohort(raw["cohort"], base),
            out=_path(raw["out"], base) if raw.get("out") else base / "sweep-out",
            grid=grid,
            fixed=fixed,
            baseline=baseline,
            cluster=str(raw.get("cluster") or "local"),
            workers=raw.get("workers"),
            threads=raw.get("threads"),
            max_in_flight=raw.get("max_in_flight"),
            models={k: _model_value(v, base) for k, v in models.items()},
            device=str(raw.get("device") or "auto"),
        )

    def settings(self, defaults: Setting) -> list[Setting]:
        """Every grid point (cartesian product, in file order) over ``defaults`` + ``fixed``."""
        start = make_setting(self.fixed, defaults=defaults)
        keys = list(self.grid)
        return [
            make_setting(dict(zip(keys, combo, strict=True)), defaults=start)
            for combo in itertools.product(*(self.grid[k] for k in keys))
        ]

    def baseline_index(self) -> int:
        """Index of the baseline grid point: the first one matching ``baseline``."""
        keys = list(self.grid)
        for i, combo in enumerate(itertools.product(*(self.grid[k] for k in keys))):
            point = dict(zip(keys, combo, strict=True))
            if all(point[k] == v for k, v in self.baseline.items()):
                return i
        return 0  # from_dict checked each baseline value; unreachable in practice


def _model_value(value: Any, base: Path) -> str | None:
    """A models entry: a path (relative to the YAML) or ``none`` (no labelling model)."""
    if not value:
        return None
    if str(value).lower() == "none":
        return "none"
    return str(_path(value, base))


def _path(value: Any, base: Path) -> Path:
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else base / p


def _parse_settings(where: str, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _fail(where, "use a mapping of settings, e.g. {n4: false}")
    out = {}
    for key, value in _flatten(raw).items():
        out[key] = check_value(f"{where}.{key}", key, value)
    return out


def _flatten(raw: Mapping[str, Any]) -> dict[str, Any]:
    """``{merge: {couple_dice: [..]}}`` and ``{merge.couple_dice: [..]}`` mean the same."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "merge" and isinstance(value, dict):
            out.update({f"merge.{k}": v for k, v in value.items()})
        else:
            out[str(key)] = value
    return out


def _parse_grid(raw: Any) -> dict[str, tuple[Any, ...]]:
    if not isinstance(raw, dict) or not raw:
        raise _fail(
            "grid", "use a mapping of setting -> list of values, e.g. {postprocess: [true, false]}"
        )
    grid = {}
    for key, values in _flatten(raw).items():
        where = f"grid.{key}"
        if key not in SETTING_KEYS:
            check_value(where, key, None)  # raises: unknown setting, with the allowed keys
        if not isinstance(values, list) or not values:
            raise _fail(
                where, f"{values!r} is not allowed; give a list of values, e.g. [true, false]"
            )
        checked = tuple(check_value(f"{where}[{i}]", key, v) for i, v in enumerate(values))
        if len(set(checked)) != len(checked):
            raise _fail(where, f"{values!r} repeats a value")
        grid[key] = checked
    return grid


def _parse_cohort(raw: Any, base: Path) -> CohortSpec:
    if not isinstance(raw, dict):
        raise _fail("cohort", "use a mapping with one of: phantom, bids, store")
    _unknown("cohort", raw, COHORT_KEYS)
    sources = [k for k in ("phantom", "bids", "store") if raw.get(k) is not None]
    if len(sources) != 1:
        raise _fail("cohort", f"give exactly one of phantom, bids, store (got {sources or 'none'})")
    phantom = raw.get("phantom")
    if phantom is not None:
        if not isinstance(phantom, dict):
            raise _fail("cohort.phantom", "use a mapping such as {subjects: 3, seed: 0}")
        _unknown("cohort.phantom", phantom, PHANTOM_KEYS)
        _count("cohort.phantom.subjects", phantom.get("subjects", 0), minimum=1)
        _count("cohort.phantom.seed", phantom.get("seed", 0), minimum=0)
        if phantom.get("region") not in (None, *REGIONS):
            raise _fail(
                "cohort.phantom.region",
                f"{phantom['region']!r} is not allowed; use one of {', '.join(REGIONS)}",
            )
    subjects = raw.get("subjects")
    if subjects is not None and (
        not isinstance(subjects, list) or not all(isinstance(s, str) for s in subjects)
    ):
        raise _fail("cohort.subjects", f"{subjects!r} is not allowed; give a list of subject keys")
    store = raw.get("store")
    return CohortSpec(
        phantom=dict(phantom) if phantom is not None else None,
        bids=_path(raw["bids"], base) if raw.get("bids") else None,
        store=str(store if "://" in str(store) else _path(store, base)) if store else None,
        references=_path(raw["references"], base) if raw.get("references") else None,
        subjects=tuple(subjects) if subjects is not None else None,
    )
