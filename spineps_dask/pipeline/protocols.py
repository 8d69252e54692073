"""What the pipeline calls on a model: the semantic, instance and labelling models as protocols.

`segment` runs models it is handed; it never loads one (that is `spineps_dask.models`, which
needs torch). These protocols name the few attributes and methods it uses, so any object that
has them segments: `models.semantic.SemanticModel`, `models.instance.InstanceModel` and
`models.labeling.LabelingModel` do (mypy checks it where `distributed.steps` hands them over), and
so does a test's stand-in. Attributes are read-only properties here, so a model may hold a
narrower type (a `ModelConfig`, a ``tuple``) than the protocol names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from spineps_dask.geometry import Volume
from spineps_dask.pipeline.patches import PatchSettings


class SemanticConfig(Protocol):
    """What the pipeline reads from a semantic model's ``inference_config.json``."""

    @property
    def log_name(self) -> str:
        """The model's name in messages."""
        ...

    @property
    def modality(self) -> Sequence[str]:
        """The contrasts it was trained on (``"CT"`` among them: no normalisation, no N4)."""
        ...


class InstanceConfig(Protocol):
    """What the pipeline reads from an instance model's config (`segment.InstanceSpace`)."""

    @property
    def model_expected_orientation(self) -> Sequence[str]: ...

    @property
    def resolution_range(self) -> Sequence[float]: ...

    @property
    def cutout_size(self) -> Sequence[int]: ...

    @property
    def mapping(self) -> Mapping[int, int]: ...

    @property
    def corpus_size_cleaning(self) -> int: ...

    @property
    def vert_size_threshold(self) -> int: ...


class SemanticSegmenter(Protocol):
    """A semantic model: an image Volume in, a SPINEPS label Volume out."""

    @property
    def config(self) -> SemanticConfig: ...

    def predict(self, image: Volume, /) -> Volume:
        """Labels on the image's own grid (the native recipe)."""
        ...

    def predict_model_grid(self, image: Volume, /) -> Volume:
        """Labels on the model's grid and orientation (the reference recipe)."""
        ...


class InstanceSegmenter(Protocol):
    """An instance model: a batch of cutouts (B, X, Y, Z) of channel ids in, 4-class masks out."""

    @property
    def config(self) -> InstanceConfig | None: ...

    def predict(self, batch: np.ndarray, /) -> np.ndarray: ...


class LabelingConfig(Protocol):
    """What the pipeline reads from a labelling model's ``inference_config.json``."""

    @property
    def log_name(self) -> str:
        """The model's name in messages."""
        ...

    @property
    def modality(self) -> Sequence[str]:
        """The contrasts it names (``"CT"`` for ``ct_labeling``; checked against the semantic
        model's by `segment.check_model_set`)."""
        ...


class VertebraClassifier(Protocol):
    """A labelling model: a vertebra's patch in, per-head posteriors (N, classes) out."""

    @property
    def config(self) -> LabelingConfig | None: ...

    @property
    def patch_settings(self) -> PatchSettings:
        """How its patches are cut (`patches.vertebra_patches`)."""
        ...

    @property
    def vertebra_head(self) -> str:
        """The head whose 26 classes name vertebrae (read by `naming.model_naming`)."""
        ...

    def predict(self, patches: np.ndarray, /) -> Mapping[str, np.ndarray]: ...
