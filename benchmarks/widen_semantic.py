"""Is the tiny network the limit? Widen a trained semantic folder without changing what it does.

    PYTHONPATH=. python benchmarks/widen_semantic.py OUT FOLDER --features 12,24,48,96

Issue 17, session 27: every lever that lifted the T1w canal (per-patch looks, fewer inset
sacs) cost the T2w cord, as a network too small for both looks would. A wider network trained
from scratch is hours of CPU here; instead the trained one is widened function-preservingly
(in the spirit of Net2Net, Chen et al., ICLR 2016): each stage gets new channels with fresh
He-initialised weights, and every weight from a new channel into an old one is zero, so the
old channels, and the output, are unchanged until training moves those weights. ``OUT/semantic``
is a copy of FOLDER with the wider ``plans.json`` and weights, its record's command prefixed by
the widening; fine-tune it with ``train-demo --init-from OUT/semantic --features ...``.
A test of an idea, not a shipped step.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import torch

#: The first conv of a decoder stage reads the upsampled features and the skip, concatenated:
#: two blocks of the stage's width along its input channels.
_CONCAT_INPUT = re.compile(r"decoder\.stages\.\d+\.convs\.0\.(conv|all_modules\.0)\.weight")


def _blocks(old: int, new: int, count: int) -> list[tuple[slice, slice]]:
    """The old channels' places in the widened dimension: (old slice, new slice) per block."""
    a, b = old // count, new // count
    return [(slice(i * a, (i + 1) * a), slice(i * b, i * b + a)) for i in range(count)]


def widen_tensor(key: str, old: torch.Tensor, fresh: torch.Tensor) -> torch.Tensor:
    """``fresh`` (the wider network's own initial tensor) with ``old`` in the old channels' places
    and zero weight from new input channels into old output channels.

    Conv weights are (out, in, ...), transposed convs' (in, out, ...); either way dim 0 and dim 1
    are channels, and which is the input is told by the key."""
    if old.shape == fresh.shape:  # input image channel, class count, a layer left as it was
        return old.clone()
    out = fresh.clone()
    if old.dim() == 1:  # bias, norm weight/bias: output channels
        out[: old.shape[0]] = old
        return out
    transposed = ".transpconvs." in key
    in_dim, out_dim = (0, 1) if transposed else (1, 0)
    in_count = 2 if _CONCAT_INPUT.fullmatch(key) else 1
    old_outputs: list[slice] = [slice(None)] * fresh.dim()
    old_outputs[out_dim] = slice(0, old.shape[out_dim])  # old outputs keep their places
    out[tuple(old_outputs)] = 0  # and read nothing from new inputs
    for old_in, new_in in _blocks(old.shape[in_dim], fresh.shape[in_dim], in_count):
        src, dst = list(old_outputs), list(old_outputs)
        src[in_dim], dst[in_dim] = old_in, new_in
        out[tuple(dst)] = old[tuple(src)]
    return out


def widen_state(
    old: dict[str, torch.Tensor], fresh: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Every tensor of ``fresh`` (a wider network's state) carrying ``old``'s weights."""
    if set(old) != set(fresh):
        raise ValueError("the two networks differ in more than their widths")
    return {key: widen_tensor(key, old[key], fresh[key]) for key in fresh}


def write_wide(out: Path, folder: Path, features: tuple[int, ...], seed: int = 0) -> Path:
    """``out/semantic``: FOLDER's copy with ``features`` widths; ``seed`` draws the new weights."""
    from benchmarks.semantic_soup import replace_weights
    from spineps_dask.models.nnunet_folder import CONFIGURATION, build_network
    from spineps_dask.training.demo import fold0_weights

    target = out / "semantic"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(folder, target)
    plans_path = target / "plans.json"
    plans = json.loads(plans_path.read_text())
    arch = plans["configurations"][CONFIGURATION]["architecture"]["arch_kwargs"]
    if len(features) != len(arch["features_per_stage"]):
        raise ValueError(f"{folder} has {len(arch['features_per_stage'])} stages")
    if any(n < o for n, o in zip(features, arch["features_per_stage"], strict=True)):
        raise ValueError("widening only: every stage at least as wide as before")
    arch["features_per_stage"] = list(features)
    n_classes = len(json.loads((target / "dataset.json").read_text())["labels"])
    torch.manual_seed(seed)
    wide = build_network(plans, n_classes)
    weights = widen_state(fold0_weights(folder), wide.state_dict())
    replace_weights(target, weights, f"widened to {','.join(map(str, features))}")
    plans_path.write_text(json.dumps(plans, indent=2))
    return target


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("folder", type=Path, help="a semantic results folder")
    ap.add_argument("--features", required=True, help="new widths per stage, e.g. 12,24,48,96")
    ap.add_argument("--seed", type=int, default=0, help="seed of the new channels' weights")
    args = ap.parse_args()
    features = tuple(int(w) for w in args.features.split(","))
    print(write_wide(args.out, args.folder, features, seed=args.seed))


if __name__ == "__main__":
    main()
