"""``inference_config.json``: the per-model settings of a SPINEPS model folder.

The file format is the reference one (``shared/docs/spineps-reference.md``, "Model folders"), so
published SPINEPS model folders load unchanged. Unlike the reference, which ignores unknown keys
and crashes late on a ``[min, max]`` resolution pair, :func:`parse_config` rejects both with a
message that names the key, the value and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spineps_dask.config import MODELS_ENV, models_dir, models_dir_from_env
from spineps_dask.errors import ModelError
from spineps_dask.labels import INSTANCE_INPUT_MAPPING, SEMANTIC_NAMES, VERTEBRA_IDS

CONFIG_NAME = "inference_config.json"

#: Keys the reference reads (spineps ``Segmentation_Inference_Config``) plus ``training``, where
#: models trained by this project record seed, command and held-out accuracy.
REQUIRED_KEYS: tuple[str, ...] = (
    "log_name",
    "modality",
    "acquisition",
    "modeltype",
    "model_expected_orientation",
    "available_folds",
    "inference_augmentation",
    "resolution_range",
    "default_step_size",
    "labels",
)
OPTIONAL_KEYS: tuple[str, ...] = (
    "expected_inputs",
    "has_c1",
    "needs_corp",
    "sacrum_ids",
    "cutout_size",
    "corpus_size_cleaning",
    "corpus_border_threshold",
    "vert_size_threshold",
    "metal",
    "mapping",
    "training",
)

MODALITIES: tuple[str, ...] = ("T2w", "T1w", "CT", "SEG", "MPR", "PD", "Vibe", "T2star", "T1c")
ACQUISITIONS: tuple[str, ...] = ("sag", "ax", "iso", "cor")
# "classifier" is the reference's vertebra-labelling model (VERIDAH), which has no loader here yet.
MODELTYPES: tuple[str, ...] = ("nnunet", "unet", "classifier")
#: The kind of model each model type is.
KINDS: dict[str, str] = {"nnunet": "semantic", "unet": "instance", "classifier": "labeling"}

# Reference defaults (spineps seg_modelconfig): cutout (248, 304, 64) voxels, bodies >= 100
# voxels, vertebrae >= 250 voxels, and the instance-input mapping 41..48 -> 1..8, 49/50/51 -> 9,
# sacrum 26 -> 0 (background).
DEFAULT_CUTOUT_SIZE: tuple[int, int, int] = (248, 304, 64)
DEFAULT_CORPUS_SIZE_CLEANING = 100
DEFAULT_VERT_SIZE_THRESHOLD = 250
DEFAULT_MAPPING: Mapping[int, int] = INSTANCE_INPUT_MAPPING
#: Semantic labels the reference's post-processing turns into S1 (``DEFAULT_SACRUM_IDS``).
DEFAULT_SACRUM_IDS: tuple[int, ...] = (26,)

# Location names as the reference's model configs spell them. The reference (tptbox
# ``Location``) calls 49 ``Vertebra_Corpus_border`` and 50 ``Vertebra_Corpus``; the numbers are
# what matter, so configs written for the published models map to the same label ids here.
LOCATION_IDS: dict[str, int] = {
    **{name: label for label, name in SEMANTIC_NAMES.items()},
    "Vertebra_Corpus_border": 49,
    "Vertebra_Corpus": 50,
    "Dens_axis": 51,
    **VERTEBRA_IDS,
}


@dataclass(frozen=True)
class ModelConfig:
    """One model's ``inference_config.json``, validated and typed.

    ``labels`` maps the network's output index to a SPINEPS label id (``labels.py``);
    ``mapping`` maps a semantic label id to the instance model's input channel. ``has_c1``
    and ``sacrum_ids`` (semantic models): the model segments C1 (CT models; the reference
    then numbers from C1), and which of its labels are sacrum.
    """

    log_name: str
    modality: tuple[str, ...]
    acquisition: str
    modeltype: str
    model_expected_orientation: tuple[str, str, str]
    available_folds: tuple[int | str, ...]
    inference_augmentation: bool
    resolution_range: tuple[float, float, float]
    default_step_size: float
    labels: dict[int, int]
    expected_inputs: tuple[str, ...] = ("img",)
    has_c1: bool = False
    sacrum_ids: tuple[int, ...] = DEFAULT_SACRUM_IDS
    cutout_size: tuple[int, int, int] = DEFAULT_CUTOUT_SIZE
    corpus_size_cleaning: int = DEFAULT_CORPUS_SIZE_CLEANING
    vert_size_threshold: int = DEFAULT_VERT_SIZE_THRESHOLD
    mapping: dict[int, int] = field(default_factory=lambda: dict(DEFAULT_MAPPING))
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """``'semantic'`` (nnU-Net), ``'instance'`` (cutout U-Net), ``'labeling'`` (classifier)."""
        return KINDS[self.modeltype]

    @property
    def n_input_channels(self) -> int:
        """Channels of the instance model's one-hot input: background + mapped labels."""
        return max(self.mapping.values()) + 1


def load_config(path: str | Path) -> ModelConfig:
    """Read and validate one ``inference_config.json``.

    Raises
    ------
    ModelError
        When the file is missing, is not JSON, or fails :func:`parse_config`.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"no {CONFIG_NAME} at {path}; every model folder needs one")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"{path} is not valid JSON ({err}); fix or re-export the file") from err
    return parse_config(raw, source=str(path))


def parse_config(raw: Mapping[str, Any], *, source: str = CONFIG_NAME) -> ModelConfig:
    """Turn the JSON dict into a :class:`ModelConfig`, checking every key.

    Raises
    ------
    ModelError
        Missing or unknown keys, a wrong modality / model type, a ``[min, max]`` resolution
        pair, cutout sizes not divisible by 8, or labels that resolve to no label id.
    """
    if not isinstance(raw, Mapping):
        raise ModelError(f"{source}: expected a JSON object, got {type(raw).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise ModelError(f"{source}: missing required keys {missing}")
    unknown = sorted(set(raw) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ModelError(
            f"{source}: unknown keys {unknown}; allowed are {[*REQUIRED_KEYS, *OPTIONAL_KEYS]}"
        )
    modality = _as_tuple(raw["modality"])
    bad = [m for m in modality if m not in MODALITIES]
    if bad:
        raise ModelError(f"{source}: unknown modality {bad}; expected one of {list(MODALITIES)}")
    modeltype = _choice(raw["modeltype"], MODELTYPES, "modeltype", source)
    _check_modality_fits(modality, modeltype, source)
    orientation = tuple(str(a) for a in raw["model_expected_orientation"])
    if len(orientation) != 3 or {a for a in orientation} - set("LRAPSI"):
        raise ModelError(
            f"{source}: model_expected_orientation {raw['model_expected_orientation']!r} is not "
            "three axis codes such as ['P', 'I', 'R']"
        )
    return ModelConfig(
        log_name=str(raw["log_name"]),
        modality=modality,
        acquisition=_choice(raw["acquisition"], ACQUISITIONS, "acquisition", source),
        modeltype=modeltype,
        model_expected_orientation=orientation,
        available_folds=_folds(raw["available_folds"], source),
        inference_augmentation=bool(raw["inference_augmentation"]),
        resolution_range=_resolution(raw["resolution_range"], source),
        default_step_size=float(raw["default_step_size"]),
        labels=_labels(raw["labels"], source),
        expected_inputs=_as_tuple(raw.get("expected_inputs", ["img"])),
        has_c1=bool(raw.get("has_c1", False)),
        sacrum_ids=_ids(raw.get("sacrum_ids", DEFAULT_SACRUM_IDS), "sacrum_ids", source),
        cutout_size=_cutout(raw.get("cutout_size", DEFAULT_CUTOUT_SIZE), source),
        corpus_size_cleaning=int(raw.get("corpus_size_cleaning", DEFAULT_CORPUS_SIZE_CLEANING)),
        vert_size_threshold=int(raw.get("vert_size_threshold", DEFAULT_VERT_SIZE_THRESHOLD)),
        mapping=_int_map(raw.get("mapping") or DEFAULT_MAPPING, "mapping", source),
        training=dict(raw.get("training") or {}),
    )


def config_to_json(config: ModelConfig) -> dict[str, Any]:
    """The JSON form of a config (inverse of :func:`parse_config`), for writing model folders.

    ``sacrum_ids`` is written only when it is not the default (folders written before it was
    read keep their bytes, and so their version).
    """
    out = {
        "log_name": config.log_name,
        "modality": list(config.modality) if len(config.modality) > 1 else config.modality[0],
        "acquisition": config.acquisition,
        "modeltype": config.modeltype,
        "model_expected_orientation": list(config.model_expected_orientation),
        "available_folds": list(config.available_folds),
        "inference_augmentation": config.inference_augmentation,
        "resolution_range": list(config.resolution_range),
        "default_step_size": config.default_step_size,
        "labels": {str(k): v for k, v in config.labels.items()},
        "expected_inputs": list(config.expected_inputs),
        "has_c1": config.has_c1,
        "cutout_size": list(config.cutout_size),
        "corpus_size_cleaning": config.corpus_size_cleaning,
        "vert_size_threshold": config.vert_size_threshold,
        "mapping": {str(k): v for k, v in config.mapping.items()},
        "training": config.training,
    }
    if config.sacrum_ids != DEFAULT_SACRUM_IDS:
        out["sacrum_ids"] = list(config.sacrum_ids)
    return out


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else (str(value),)


def _choice(value: Any, allowed: tuple[str, ...], key: str, source: str) -> str:
    if value not in allowed:
        raise ModelError(f"{source}: {key} {value!r} is not one of {list(allowed)}")
    return str(value)


def _check_modality_fits(modality: tuple[str, ...], modeltype: str, source: str) -> None:
    # The instance model reads the semantic mask, so the reference marks it modality SEG.
    if modeltype == "unet" and modality != ("SEG",):
        raise ModelError(
            f"{source}: an instance model (modeltype 'unet') must have modality 'SEG', got "
            f"{list(modality)}"
        )
    if modeltype == "nnunet" and "SEG" in modality:
        raise ModelError(
            f"{source}: a semantic model (modeltype 'nnunet') reads images, not 'SEG'; "
            "set modality to e.g. 'T2w'"
        )


def _folds(value: Any, source: str) -> tuple[int | str, ...]:
    # Reference: an int N means folds 0..N-1; a name such as "all" is one fold folder.
    if isinstance(value, bool):
        raise ModelError(f"{source}: available_folds {value!r} must be an int, a name or a list")
    if isinstance(value, int):
        if value < 1:
            raise ModelError(f"{source}: available_folds must be >= 1, got {value}")
        return tuple(range(value))
    items = value if isinstance(value, list | tuple) else [value]
    return tuple(int(v) if str(v).isdigit() else str(v) for v in items)


def _resolution(value: Any, source: str) -> tuple[float, float, float]:
    flat = isinstance(value, list | tuple) and len(value) == 3
    if not flat or any(isinstance(v, list | tuple) for v in value):
        raise ModelError(
            f"{source}: resolution_range {value!r} must be a flat 3-vector of mm, e.g. "
            "[0.75, 0.75, 1.65]; [min, max] pairs are not supported (the reference crashes on them)"
        )
    return (float(value[0]), float(value[1]), float(value[2]))


def _cutout(value: Any, source: str) -> tuple[int, int, int]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ModelError(f"{source}: cutout_size {value!r} must be three voxel counts")
    size = tuple(int(v) for v in value)
    # The instance U-Net down-samples three times by 2 (reference: divisible by 8).
    if any(s <= 0 or s % 8 for s in size):
        raise ModelError(
            f"{source}: cutout_size {list(size)} must be positive and divisible by 8 "
            f"(the U-Net halves each axis three times); e.g. {[-(-s // 8) * 8 for s in size]}"
        )
    return size  # type: ignore[return-value]


def _labels(value: Any, source: str) -> dict[int, int]:
    if not isinstance(value, Mapping) or not value:
        raise ModelError(
            f"{source}: labels must be a non-empty object index -> name, got {value!r}"
        )
    out: dict[int, int] = {}
    for key, name in value.items():
        if isinstance(name, int) or str(name).isdigit():
            out[int(key)] = int(name)
        elif name in LOCATION_IDS:
            out[int(key)] = LOCATION_IDS[name]
        else:
            raise ModelError(
                f"{source}: label {key!r} -> {name!r} is neither a label id nor a known location "
                f"name (e.g. {sorted(LOCATION_IDS)[:4]}...)"
            )
    return out


def _ids(value: Any, key: str, source: str) -> tuple[int, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    try:
        return tuple(int(v) for v in items)
    except (TypeError, ValueError) as err:
        raise ModelError(f"{source}: {key} must be label ids, got {value!r}") from err


def _int_map(value: Any, key: str, source: str) -> dict[int, int]:
    try:
        return {int(k): int(v) for k, v in dict(value).items()}
    except (TypeError, ValueError) as err:
        raise ModelError(f"{source}: {key} must map label ids to ints, got {value!r}") from err


def models_root(models: str | Path | None = None) -> Path:
    """The models directory: ``models`` when given, else :func:`spineps_dask.config.models_dir`
    (``$SPINEPS_SEGMENTOR_MODELS``, or the default user data directory when that is unset).

    Raises
    ------
    ModelError
        When the directory does not exist.
    """
    if models is not None:
        root, origin = Path(models), "given"
    else:
        root = models_dir()
        from_env = models_dir_from_env() is not None
        origin = f"from ${MODELS_ENV}" if from_env else f"the default; ${MODELS_ENV} is unset"
    if not root.is_dir():
        raise ModelError(
            f"models directory {root} ({origin}) does not exist; install a model into it with "
            f"'spineps-dask models download t2w' or 'spineps-dask models install ZIP', or set "
            f"${MODELS_ENV} to a folder of model folders"
        )
    return root


def write_config(folder: str | Path, config: ModelConfig) -> Path:
    """Write ``config`` as ``folder/inference_config.json`` (inverse of :func:`load_config`)."""
    path = Path(folder) / CONFIG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config_to_json(config), indent=2) + "\n", encoding="utf-8")
    return path
