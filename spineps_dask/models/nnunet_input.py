"""What an nnU-Net network sees, built the way `spineps` 2.1.3 (TPTBox's predictor) builds it.

The reference hands nnU-Net an image already at the model's resolution and cast to float16
(TPTBox ``inference_api.run_inference``); nnU-Net's preprocessing then crops to the non-zero box,
normalises *into that float16 array* (so the network input carries float16 rounding) and, with
the plans spacing already met, does not resample. nnunetv2's own ``DefaultPreprocessor`` casts to
float32 first, so it cannot be used as is for fidelity (issue 22). Training data for the demo
models is built by the same function, so training and inference see the same tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def reference_network_input(
    data: np.ndarray, spacing: Sequence[float], plans_manager: Any, configuration: Any
) -> tuple[np.ndarray, dict[str, Any]]:
    """nnU-Net's preprocessing of one case, as the reference runs it.

    Parameters
    ----------
    data
        ``(C, X, Y, Z)`` image in nnU-Net axis order (the NIfTI axes of the model orientation,
        reversed), any dtype; it is cast to float16 first, as the reference does.
    spacing
        Voxel size in the same axis order.
    plans_manager, configuration
        nnunetv2 ``PlansManager`` and ``ConfigurationManager`` of the model.

    Returns
    -------
    tuple
        The network input ``(C, X', Y', Z')`` float16 (cropped to the non-zero box, normalised,
        resampled only if the spacing differs from the plans), and the properties nnU-Net needs
        to put a prediction back (``shape_before_cropping``, ``bbox_used_for_cropping``,
        ``shape_after_cropping_and_before_resampling``, ``spacing``).
    """
    from nnunetv2.preprocessing.cropping.cropping import crop_to_nonzero
    from nnunetv2.preprocessing.preprocessors.default_preprocessor import compute_new_shape

    x = np.asarray(data).astype(np.float16)
    forward = list(plans_manager.transpose_forward)
    x = x.transpose([0, *[i + 1 for i in forward]])
    original_spacing = [float(spacing[i]) for i in forward]
    props: dict[str, Any] = {
        "spacing": [float(s) for s in spacing],
        "shape_before_cropping": x.shape[1:],
    }
    x, seg, bbox = crop_to_nonzero(x)
    props["bbox_used_for_cropping"] = bbox
    props["shape_after_cropping_and_before_resampling"] = x.shape[1:]
    target = list(configuration.spacing)
    if len(target) < len(x.shape[1:]):
        target = [original_spacing[0], *target]
    new_shape = compute_new_shape(x.shape[1:], original_spacing, target)
    x = np.array(x)  # own the memory: the normalised values are written back into float16
    for c in range(x.shape[0]):
        normalizer = _normalizer(configuration, plans_manager, c)
        x[c] = normalizer.run(x[c], seg[0])
    x = configuration.resampling_fn_data(x, new_shape, original_spacing, target)
    return np.asarray(x), props


def _normalizer(configuration: Any, plans_manager: Any, channel: int) -> Any:
    """The channel's nnU-Net normalisation scheme, found by name as nnU-Net finds it."""
    from os.path import join

    import nnunetv2
    from nnunetv2.utilities.find_class_by_name import recursive_find_python_class

    scheme = configuration.normalization_schemes[channel]
    cls = recursive_find_python_class(
        join(nnunetv2.__path__[0], "preprocessing", "normalization"),
        scheme,
        "nnunetv2.preprocessing.normalization",
    )
    if cls is None:
        raise RuntimeError(f"nnU-Net normalisation scheme {scheme!r} not found")
    return cls(
        use_mask_for_norm=configuration.use_mask_for_norm[channel],
        intensityproperties=plans_manager.foreground_intensity_properties_per_channel[str(channel)],
    )
