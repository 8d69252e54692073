"""Run settings as frozen dataclasses, loaded once and passed in explicitly.

The only module that reads environment variables: ``SPINEPS_SEGMENTOR_MODELS`` (the reference's
models directory), ``SPINEPS_DASK_MODELS_URL`` (a mirror of the published model releases),
``SPINEPS_DASK_CLUSTER_DIR`` (a folder of site cluster YAML files), and the platform's user-data
variables (``XDG_DATA_HOME``, ``LOCALAPPDATA``) for the default models directory.
`fingerprint` is the one hash of settings: a run's manifest rows and a sweep's stage keys both
use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

#: Folders of the demo models shipped inside the package (trained on phantoms).
DEMO_MODELS = Path(str(resources.files("spineps_dask") / "demo_models"))
#: How the semantic network is fed and where the masks are made (`pipeline.segment`, issue 22).
RECIPES = ("reference", "native")
#: How vertebrae are named (`pipeline.naming`, issue 20): the counting rule, the labelling
#: model, or the model with the rule's cues as evidence.
NAMING_METHODS = ("rule", "model", "model+anchors")
#: A ``labeling_model`` value that means: none, name by the rule.
NO_MODEL = "none"
#: The file every model folder holds (`models.config.CONFIG_NAME`; config.py imports no model
#: code).
_MODEL_CONFIG = "inference_config.json"
#: Environment variable naming the directory with one sub-folder per model (reference name).
MODELS_ENV = "SPINEPS_SEGMENTOR_MODELS"
#: Environment variable overriding the base URL of the published model releases (a mirror).
MODELS_URL_ENV = "SPINEPS_DASK_MODELS_URL"
#: Where the reference publishes its weights: ``<base>/<version>/<archive>.zip``.
PUBLISHED_MODELS_URL = "https://github.com/Hendrik-code/spineps/releases/download/"
#: Environment variable naming a folder of site cluster YAML files, looked in before the
#: configs shipped in the package.
CLUSTER_DIR_ENV = "SPINEPS_DASK_CLUSTER_DIR"
#: The named cluster configs shipped with the package (``--cluster slurm`` -> ``slurm.yaml``).
CLUSTER_CONFIGS = Path(str(resources.files("spineps_dask") / "clusters"))


def models_dir_from_env() -> Path | None:
    """The directory named by ``SPINEPS_SEGMENTOR_MODELS`` (as the reference uses it), if set."""
    value = os.environ.get(MODELS_ENV)
    return Path(value).expanduser() if value else None


def default_models_dir() -> Path:
    """The models directory used when ``SPINEPS_SEGMENTOR_MODELS`` is unset.

    The user data directory, as platformdirs would pick it: ``$XDG_DATA_HOME/spineps-dask/models``
    (``~/.local/share/spineps-dask/models``) on Linux, ``~/Library/Application Support/
    spineps-dask/models`` on macOS, ``%LOCALAPPDATA%\\spineps-dask\\models`` on Windows. Not
    created here; ``models download`` creates it.
    """
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        xdg = os.environ.get("XDG_DATA_HOME")
        # The XDG spec says to ignore a relative value.
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "spineps-dask" / "models"


def models_dir() -> Path:
    """The models directory: ``$SPINEPS_SEGMENTOR_MODELS``, else :func:`default_models_dir`."""
    return models_dir_from_env() or default_models_dir()


def models_url() -> str:
    """Base URL of the published model releases: ``$SPINEPS_DASK_MODELS_URL`` or the reference's."""
    return os.environ.get(MODELS_URL_ENV) or PUBLISHED_MODELS_URL


def cluster_dir() -> Path:
    """Where ``--cluster NAME`` looks first: ``$SPINEPS_DASK_CLUSTER_DIR``, else the configs
    shipped in the package (`CLUSTER_CONFIGS`), whatever the working folder."""
    value = os.environ.get(CLUSTER_DIR_ENV)
    return Path(value).expanduser() if value else CLUSTER_CONFIGS


def fingerprint(values: Mapping[str, Any], *, length: int = 12) -> str:
    """Short, stable hash of a flat mapping of settings (key order does not matter).

    Parameters
    ----------
    values
        JSON-able settings (anything else is hashed by its ``str``).
    length
        Hex digits kept: 12 for a run's config, 10 for a sweep's stage keys (the lengths
        stores and sweep folders already carry, so their results stay valid).
    """
    blob = json.dumps(dict(values), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def default_labeling_model() -> Path | None:
    """The shipped demo labelling model, or None where the package holds none (a trimmed
    install): a run without ``labeling_model`` then names vertebrae by the counting rule (issue
    20). A demo folder counts as shipped when it holds its ``inference_config.json``."""
    folder = DEMO_MODELS / "labeling"
    return folder if (folder / _MODEL_CONFIG).is_file() else None


def _is_demo(folder: Path) -> bool:
    return Path(folder).resolve() == (DEMO_MODELS / "semantic").resolve()


#: `RunConfig.labeling_model` when the caller gave none (known by identity: a path a caller
#: builds is another object), so the default can follow the semantic model it is given with.
_LABELING_NOT_GIVEN = DEMO_MODELS / "labeling"


def resolve_model(name_or_path: str | Path | None, *, default: str) -> Path:
    """A model folder from a path, a name under ``SPINEPS_SEGMENTOR_MODELS``, or the demo model.

    ``name_or_path`` containing a path separator (or existing) is a folder; a bare name is looked
    up in the models directory (:func:`models_dir`) and then among the shipped demo models.
    """
    if name_or_path is None:
        return DEMO_MODELS / default
    path = Path(name_or_path)
    if "/" in str(name_or_path) or path.exists():
        return path
    for base in (models_dir(), DEMO_MODELS):
        if (base / str(name_or_path)).is_dir():
            return base / str(name_or_path)
    return path  # validation reports it missing, with the places searched


#: Files that decide what a model folder computes: weights and the JSON configs beside them.
MODEL_FILE_SUFFIXES = (".pth", ".ckpt", ".pt", ".safetensors", ".json")
_DIGESTS: dict[tuple[str, int, int], str] = {}
_DIGESTS_LOCK = threading.Lock()


def file_digest(path: str | Path) -> str:
    """Hex SHA-256 of a file's content, computed once per (path, size, mtime) in this process.

    Weights retrained or edited in place keep their names and often their sizes; their
    content is what tells them apart. Reading a few hundred MB of weights takes about a
    second, so the digest is kept until the file's size or modification time changes.
    """
    path = Path(path).resolve()
    info = path.stat()
    key = (str(path), info.st_size, info.st_mtime_ns)
    with _DIGESTS_LOCK:
        known = _DIGESTS.get(key)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    with _DIGESTS_LOCK:
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


def folder_version(folder: str | Path) -> str:
    """``name@hash`` of a model folder: the content of its weights and JSON configs.

    Files are known by content (`file_digest`, cached by size and modification time), so
    weights retrained or edited in place are a new version even with the same names and
    sizes. Hidden files (an install record) are left out: copies of one folder, installed or
    copied by hand, have one version.
    """
    folder = Path(folder)
    h = hashlib.sha256()
    if folder.is_dir():
        for f in sorted(folder.rglob("*")):
            rel = f.relative_to(folder)
            if f.suffix not in MODEL_FILE_SUFFIXES or any(p.startswith(".") for p in rel.parts):
                continue
            if f.is_file():
                h.update(f"{rel.as_posix()}:{file_digest(f)}\n".encode())
    return f"{folder.name}@{h.hexdigest()[:8]}"


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides a run's result (and so goes into its manifest rows).

    ``n4``: SimpleITK N4 bias-field correction before the semantic model (the paper trains with
    it). ``recipe``: how the semantic network is fed and where masks are made, ``reference``
    (as `spineps` 2.1.3, for published weights; issue 22) or ``native`` (nnU-Net resamples).
    ``reference_mode``: spineps 2.1.3's cleaning, instance phase and post-processing, without
    this project's rules beyond them (fidelity checks; the project's rules are the default).
    ``postprocess``: the post-processing of the paper's table 2. ``cutouts_per_task``:
    instance-model cutouts batched into one Dask task. ``metrics``: score subjects that have
    reference masks in the store (``ingest --references``) in the reduce step.
    ``labeling_model``: the vertebra labelling classifier (default: the shipped demo model,
    `default_labeling_model`, beside the demo semantic model and none beside another; None:
    the counting rule names the vertebrae, and asking for model naming is an error, see
    `from_request`); ``naming``: how names are chosen, one of `NAMING_METHODS`.
    """

    semantic_model: Path = field(default_factory=lambda: DEMO_MODELS / "semantic")
    instance_model: Path = field(default_factory=lambda: DEMO_MODELS / "instance")
    labeling_model: Path | None = _LABELING_NOT_GIVEN
    naming: str = "model+anchors"
    device: str = "auto"
    n4: bool = True
    recipe: str = "reference"
    reference_mode: bool = False
    step_size: float | None = None
    postprocess: bool = True
    cutouts_per_task: int = 4
    snapshot: bool = True
    metrics: bool = True

    def __post_init__(self) -> None:
        if self.labeling_model is _LABELING_NOT_GIVEN:
            # The demo labelling model knows phantoms only: beside a user's own (e.g. published)
            # semantic model it would name real vertebrae with a confidence nothing backs (on
            # the one real crop at hand its names cannot be checked), so none is assumed there.
            default = default_labeling_model() if _is_demo(self.semantic_model) else None
            object.__setattr__(self, "labeling_model", default)
        if self.recipe not in RECIPES:
            raise ValueError(f"unknown recipe {self.recipe!r}; use one of {', '.join(RECIPES)}")
        if self.reference_mode and self.recipe != "reference":
            raise ValueError("reference_mode needs recipe 'reference' (spineps' own grids)")
        if self.naming not in NAMING_METHODS:
            raise ValueError(
                f"unknown naming {self.naming!r}; use one of {', '.join(NAMING_METHODS)}"
            )

    @property
    def labeling_folder(self) -> Path | None:
        """The labelling model this run uses: None for rule naming and in reference mode,
        which names as ``spineps -ml none`` does (its labelling step is not ported)."""
        if self.reference_mode or self.naming == "rule":
            return None
        return self.labeling_model

    #: Fields that cannot change a result; left out of the fingerprint.
    _RESULT_NEUTRAL = ("device", "cutouts_per_task", "snapshot", "metrics")

    def fingerprint(self) -> str:
        """Short hash of every setting and model version that decides the masks.

        Resume skips a subject only when its finished row carries the same fingerprint, so a
        run with other models or settings recomputes instead of silently mixing results.
        """
        d = {k: v for k, v in self.to_dict().items() if k not in self._RESULT_NEUTRAL}
        d.pop("semantic_model"), d.pop("instance_model"), d.pop("labeling_model")
        if self.labeling_folder is None:
            d["naming"] = "rule"
        d["models"] = self.model_versions()
        return fingerprint(d)

    def model_versions(self) -> str:
        """``semantic=<name>@<hash>,instance=<name>@<hash>[,labeling=<name>@<hash>]`` from the
        folders' files (the labelling model when the run uses one)."""
        kinds = [("semantic", self.semantic_model), ("instance", self.instance_model)]
        if self.labeling_folder is not None:
            kinds.append(("labeling", self.labeling_folder))
        return ",".join(f"{kind}={folder_version(path)}" for kind, path in kinds)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> RunConfig:
        """Settings from a YAML file; unknown keys are an error, not silently ignored."""
        raw = yaml.safe_load(Path(path).read_text()) or {}
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_request(raw)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RunConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - names)
        if unknown:
            raise ValueError(f"unknown run settings {unknown}; known: {sorted(names)}")
        values = dict(raw)
        for key in ("semantic_model", "instance_model", "labeling_model"):
            if key not in values:
                continue
            if key == "labeling_model" and str(values[key]).lower() in (NO_MODEL, "null"):
                values[key] = None
            else:
                values[key] = resolve_model(values[key], default=key.split("_")[0])
        return cls(**values)

    @classmethod
    def from_request(cls, raw: dict[str, Any]) -> RunConfig:
        """Settings a user asked for (options, a YAML file): as `from_dict`, and model naming
        asked for without a labelling model is an error rather than a quiet fall-back to the
        rule. (A stored config keeps the default naming with no model: read it with
        `from_dict`.)"""
        cfg = cls.from_dict(raw)
        asked = raw.get("naming")
        if asked not in (None, "rule") and cfg.labeling_folder is None and not cfg.reference_mode:
            raise ValueError(
                f"naming {asked!r} needs a labelling model: give one (labeling_model, "
                "--labeling-model FOLDER) or use naming 'rule'"
            )
        return cfg
