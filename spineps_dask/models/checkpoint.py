"""Safe checkpoint loading: tensors and plain values only, never arbitrary pickled code."""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from spineps_dask.errors import ModelError


def _safe_globals() -> list[Any]:
    """Harmless classes real checkpoints carry: Lightning's ``opt`` Namespace, nnU-Net's numpy
    scalars in its training log. Nothing here can run code when unpickled."""
    scalar = getattr(np, "_core", np.core).multiarray.scalar
    dtypes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    return [argparse.Namespace, scalar, np.dtype, *dtypes]


def load_checkpoint(
    path: str | Path, *, mmap: bool = False, extra_globals: Sequence[Any] = ()
) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` plus the small allowlist above.

    ``mmap`` maps the tensors instead of reading them (zip checkpoints, what `torch.save`
    writes): the pickled part is still checked whole, for a fraction of the time and memory,
    which is what a check before a run needs. ``extra_globals``: more allowed globals for one
    kind of checkpoint, in the form ``torch.serialization.safe_globals`` takes (a class, or
    ``(stand_in, "module.Name")`` to rebuild a pickled class as a harmless stand-in).

    Raises
    ------
    ModelError
        When the file holds other pickled objects (which could run code on load) or is unreadable.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals([*_safe_globals(), *extra_globals]):
            try:
                ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
            except RuntimeError as err:  # an old, non-zip checkpoint cannot be mapped
                if not (mmap and "mmap" in str(err)):
                    raise
                ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "unsupported global" not in str(err).lower():  # broken or no pickle, not an object
            detail = str(err).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
            raise ModelError(f"{path} is not a PyTorch checkpoint ({detail})") from err
        raise ModelError(
            f"refusing to load {path}: it contains pickled objects that are not weights "
            f"({str(err).splitlines()[0]}); re-save it with only tensors and plain values"
        ) from err
    except (OSError, RuntimeError, EOFError) as err:
        raise ModelError(f"cannot read checkpoint {path}: {err}") from err
    except Exception as err:  # torch's unpickler fails in odd ways on files that are no pickle
        raise ModelError(
            f"{path} is not a PyTorch checkpoint ({type(err).__name__}: {err})"
        ) from err
    if not isinstance(ckpt, dict):
        raise ModelError(f"{path}: expected a checkpoint dict, got {type(ckpt).__name__}")
    return ckpt


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``'auto'`` -> CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
