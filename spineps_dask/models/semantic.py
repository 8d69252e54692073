"""The semantic model: an nnU-Net v2 results folder run step by step on NumPy volumes.

``nnUNetPredictor.predict_from_files`` starts process pools, which fail inside daemonic Dask
workers (``shared/docs/distributed-notes.md``), so :class:`SemanticModel` uses nnU-Net's public
pieces one at a time: ``predict_logits_from_preprocessed_data`` (sliding window, fold averaging,
optional mirroring, float16 autocast on CUDA) between an input and an output step.

Two ways in (issue 22):

- :meth:`SemanticModel.predict_model_grid`, the reference recipe: the image is rescaled to the
  model's ``resolution_range`` by a cubic spline on TPTBox's grid, cast to float16 and
  normalised as `spineps` 2.1.3 does (`nnunet_input`); the labels come back at model
  resolution (argmax there). This is what published SPINEPS weights were validated with.
- :meth:`SemanticModel.predict`, the native recipe: the image at its own spacing goes through
  nnU-Net's ``DefaultPreprocessor`` (nnU-Net resamples it), the logits are resampled back by
  nnU-Net's torch path (~100x faster than the scipy path, nnU-Net issue 2912) and the argmax is
  taken on the scan's grid.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spineps_dask.errors import ModelError
from spineps_dask.geometry import Volume, reference_zoom, rescale
from spineps_dask.models.checkpoint import load_checkpoint, resolve_device
from spineps_dask.models.config import ModelConfig
from spineps_dask.models.folders import load_model_folder
from spineps_dask.models.nnunet_input import reference_network_input
from spineps_dask.models.sliding_window import reference_logits

logger = logging.getLogger(__name__)


class SemanticModel:
    """A loaded semantic model; ``predict`` maps an image Volume to a SPINEPS label Volume.

    Build it once per process (or Dask worker) with :meth:`from_folder` and call
    :meth:`predict` for every scan; nothing is reloaded between calls.
    """

    def __init__(self, predictor: Any, config: ModelConfig, *, threads: int) -> None:
        self.predictor = predictor
        self.config = config
        self.threads = threads
        lut = np.zeros(max(config.labels) + 1, dtype=np.uint8)
        for index, label in config.labels.items():
            lut[index] = label
        self._lut = lut

    @classmethod
    def from_folder(
        cls,
        folder: str | Path,
        *,
        device: str = "auto",
        threads: int | None = None,
        folds: tuple[int | str, ...] | None = None,
        step_size: float | None = None,
        mirroring: bool | None = None,
    ) -> SemanticModel:
        """Load a semantic model folder (``inference_config.json`` + nnU-Net results).

        Parameters
        ----------
        folder
            Model folder; checked with :func:`~spineps_dask.models.folders.load_model_folder`.
        device
            ``'auto'`` (CUDA when available), ``'cpu'`` or ``'cuda[:N]'``.
        threads
            Torch CPU threads for this process; ``None`` keeps torch's setting. Also caps
            nnU-Net's own thread use (``nnUNet_def_n_proc``) so Dask workers do not oversubscribe.
        folds, step_size, mirroring
            Override the config's ``available_folds``, ``default_step_size`` and
            ``inference_augmentation``.
        """
        if threads is not None:
            torch.set_num_threads(threads)
        n_threads = threads or torch.get_num_threads()
        # Read by nnunetv2 at import time; only effective before its first import.
        os.environ.setdefault("nnUNet_def_n_proc", str(n_threads))
        model_folder = load_model_folder(folder, kind="semantic")
        config = model_folder.config
        use_folds = folds if folds is not None else config.available_folds
        use_mirroring = config.inference_augmentation if mirroring is None else mirroring
        predictor = _build_predictor(
            model_folder.weights,
            use_folds,
            device=resolve_device(device),
            step_size=step_size if step_size is not None else config.default_step_size,
            mirroring=use_mirroring,
        )
        logger.info(
            "semantic model %s: folds %s, device %s, mirroring %s",
            model_folder.name,
            list(use_folds),
            predictor.device,
            use_mirroring,
        )
        return cls(predictor, config, threads=n_threads)

    @property
    def device(self) -> torch.device:
        return self.predictor.device

    def predict(self, image: Volume) -> Volume:
        """Segment one scan with the native recipe (nnU-Net resamples; labels on its grid).

        Parameters
        ----------
        image
            The scan, any orientation; ``data`` (X, Y, Z) numeric.

        Returns
        -------
        Volume
            uint8 SPINEPS semantic labels (``labels.Semantic``) with the input's shape and affine.
        """
        oriented = image.reorient(self.config.model_expected_orientation)
        # nnU-Net networks see the NIfTI axes reversed (SimpleITK order); the reference feeds
        # published models that way too (TPTBox ``inference_api``), so we do the same.
        indices = self.predict_indices(oriented.data.transpose(2, 1, 0), oriented.spacing[::-1])
        labels = self._lut[np.clip(indices.transpose(2, 1, 0), 0, len(self._lut) - 1)]
        back = Volume(labels, oriented.affine).reorient(image.orientation)
        if back.shape != image.shape:  # an exact axis permutation cannot change the voxel count
            raise ModelError(f"internal: output shape {back.shape} != input shape {image.shape}")
        return Volume(back.data, image.affine)

    def model_grid_input(self, image: Volume) -> Volume:
        """The image on the model's grid: reoriented to ``model_expected_orientation`` and
        rescaled to ``resolution_range`` by TPTBox's cubic spline (its dtype kept)."""
        oriented = image.reorient(self.config.model_expected_orientation)
        return rescale(oriented, self.config.resolution_range, order=3)

    def predict_model_grid(self, image: Volume) -> Volume:
        """Segment one scan with the reference recipe; labels stay at model resolution.

        Parameters
        ----------
        image
            The prepared scan (reference preprocessing), any orientation.

        Returns
        -------
        Volume
            uint8 SPINEPS labels on the model's grid, in ``model_expected_orientation``; put
            them on another grid with `geometry.resample_to` (nearest neighbour), as the
            reference does.
        """
        grid = self.model_grid_input(image)
        spacing = tuple(float(z) for z in reference_zoom(grid.affine)[::-1])
        x, props = reference_network_input(
            np.asarray(grid.data).transpose(2, 1, 0)[None],
            spacing,
            self.predictor.plans_manager,
            self.predictor.configuration_manager,
        )
        indices = self._indices_from_input(x, props, reference=True)
        labels = self._lut[np.clip(indices.transpose(2, 1, 0), 0, len(self._lut) - 1)]
        return Volume(labels, grid.affine)

    def predict_indices(self, data: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
        """nnU-Net class indices uint8 for an array in nnU-Net axis order: the model
        orientation's axes reversed (``predict`` does that), ``spacing`` in the same order."""
        p = self.predictor
        plans, conf = p.plans_manager, p.configuration_manager
        props: dict[str, Any] = {"spacing": [float(s) for s in spacing]}
        preprocessor = conf.preprocessor_class(verbose=False)
        x, _, props = preprocessor.run_case_npy(
            np.asarray(data, dtype=np.float32)[None], None, props, plans, conf, p.dataset_json
        )
        return self._indices_from_input(x, props)

    def network_logits(self, x: np.ndarray, *, reference: bool = False) -> torch.Tensor:
        """Sliding-window logits (all folds) for a preprocessed ``(C, X, Y, Z)`` input.

        ``reference``: windows summed as `spineps` sums them (`sliding_window`); otherwise by
        nnU-Net's own predictor.
        """
        p = self.predictor
        if not reference:
            return p.predict_logits_from_preprocessed_data(
                torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            )
        return reference_logits(
            p.network,
            p.list_of_parameters,
            torch.from_numpy(np.ascontiguousarray(x)),
            patch_size=p.configuration_manager.patch_size,
            step_size=p.tile_step_size,
            n_heads=p.label_manager.num_segmentation_heads,
            mirror_axes=p.allowed_mirroring_axes if p.use_mirroring else None,
            device=p.device,
        )

    def _indices_from_input(
        self, x: np.ndarray, props: dict[str, Any], *, reference: bool = False
    ) -> np.ndarray:
        """Logits, back to the pre-resampling spacing (a no-op when nnU-Net did not resample),
        argmax, uncrop, undo nnU-Net's transpose: class indices uint8."""
        from acvl_utils.cropping_and_padding.bounding_boxes import insert_crop_into_image
        from nnunetv2.preprocessing.resampling.resample_torch import resample_torch_fornnunet

        p = self.predictor
        plans, conf = p.plans_manager, p.configuration_manager
        logits = self.network_logits(x, reference=reference)
        original = [props["spacing"][i] for i in plans.transpose_forward]
        shape = tuple(props["shape_after_cropping_and_before_resampling"])
        if tuple(logits.shape[1:]) != shape:
            logits = resample_torch_fornnunet(
                logits.float(),
                shape,
                conf.spacing,
                original,
                is_seg=False,
                num_threads=self.threads,
                device=p.device,
            )
        if reference and not p.label_manager.has_regions:
            # TPTBox takes the argmax of the float16 logits directly; nnU-Net's softmax first
            # can break float16 ties the other way.
            seg = torch.argmax(logits, dim=0)
        else:
            seg = p.label_manager.convert_logits_to_segmentation(logits)
        if isinstance(seg, torch.Tensor):
            seg = seg.cpu().numpy()
        full = np.zeros(props["shape_before_cropping"], dtype=np.uint8)
        full = insert_crop_into_image(full, seg.astype(np.uint8), props["bbox_used_for_cropping"])
        return np.ascontiguousarray(full.transpose(plans.transpose_backward))


def _build_predictor(
    results: Path,
    folds: tuple[int | str, ...],
    *,
    device: torch.device,
    step_size: float,
    mirroring: bool,
) -> Any:
    """An ``nnUNetPredictor`` set up by ``manual_initialization`` from safely loaded folds."""
    from nnunetv2.inference.predict_from_raw_data import nnUNetPredictor
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    plans = _read_json(results / "plans.json")
    dataset_json = _read_json(results / "dataset.json")
    ckpts = [load_checkpoint(results / f"fold_{f}" / "checkpoint_final.pth") for f in folds]
    first = ckpts[0]
    try:
        configuration = first["init_args"]["configuration"]
        params = [c["network_weights"] for c in ckpts]
    except (KeyError, TypeError) as err:
        raise ModelError(
            f"{results}: checkpoint lacks {err}; nnU-Net checkpoints hold 'network_weights' "
            "and 'init_args.configuration'"
        ) from err
    plans_manager = PlansManager(plans)
    if configuration not in plans["configurations"]:
        raise ModelError(f"{results}: plans.json has no configuration {configuration!r}")
    conf = plans_manager.get_configuration(configuration)
    axes = first.get("inference_allowed_mirroring_axes")
    if mirroring and axes is None:
        axes = (0, 1, 2)
    network = _build_network(
        first.get("trainer_name", "nnUNetTrainer"),
        plans_manager,
        conf,
        dataset_json,
        params[0],
        source=str(results),
    )
    with contextlib.redirect_stdout(io.StringIO()):  # its CPU notice is printed, not logged
        predictor = nnUNetPredictor(
            tile_step_size=step_size,
            use_gaussian=True,
            use_mirroring=mirroring,
            perform_everything_on_device=device.type == "cuda",
            device=device,
            verbose=False,
            allow_tqdm=False,
        )
    predictor.manual_initialization(
        network,
        plans_manager,
        conf,
        params,
        dataset_json,
        first.get("trainer_name", "nnUNetTrainer"),
        tuple(axes) if axes is not None else None,
    )
    return predictor


def _build_network(
    trainer_name: str,
    plans_manager: Any,
    conf: Any,
    dataset_json: dict[str, Any],
    weights: dict[str, torch.Tensor],
    *,
    source: str,
) -> torch.nn.Module:
    """Build the network the trainer class defines, as nnU-Net's own loader does."""
    from nnunetv2.utilities.find_objects import recursive_find_trainer_class_by_name
    from nnunetv2.utilities.label_handling.label_handling import determine_num_input_channels

    trainer = recursive_find_trainer_class_by_name(trainer_name)
    if trainer is None:
        raise ModelError(f"{source}: unknown nnU-Net trainer {trainer_name!r}")
    n_in = determine_num_input_channels(plans_manager, conf, dataset_json)
    n_out = plans_manager.get_label_manager(dataset_json).num_segmentation_heads
    network = trainer.build_network_architecture(
        plans_manager, conf, n_in, n_out, enable_deep_supervision=False
    )
    try:
        network.load_state_dict(weights)
    except RuntimeError as err:
        raise ModelError(
            f"{source}: weights do not fit the network in plans.json: {str(err).splitlines()[0]}"
        ) from err
    return network


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"cannot read {path}: {err}") from err
