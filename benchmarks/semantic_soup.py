"""Do averaged weights take out the real crop's checkpoint drift? (issue 17, session 19)

    PYTHONPATH=. python benchmarks/semantic_soup.py OUT FOLDER FOLDER [FOLDER ...]

Averages the fold-0 network weights of semantic folders that share one architecture and one
start (a "model soup", Wortsman et al., ICML 2022: fine-tuned runs from one start average
into a model at least as good as each) into ``OUT/semantic``, then measures it as a model card
does (`training.demo.write_cards`: held-out T2w and T1w phantoms, both phases on the tptbox
real T2w crop) and prints the issue-17 figures. A test of an idea, not a way to ship weights:
the folder's record keeps the first folder's command, with the soup's sources in front.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import torch

STRUCTURES = ("vertebral_body", "disc", "canal", "cord")
REAL = ("corpus", "ivd", "spinal_canal", "spinal_cord")


def average_weights(states: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The mean of each floating-point tensor (in float64, back to its dtype); others as the
    first state has them. States of different networks raise ``ValueError``: an average of
    unlike tensors means nothing."""
    first = states[0]
    shapes = {k: v.shape for k, v in first.items()}
    for i, state in enumerate(states[1:], start=2):
        if {k: v.shape for k, v in state.items()} != shapes:
            raise ValueError(f"folder {i} holds another network than folder 1 (keys or shapes)")
    out = {}
    for key, value in first.items():
        if value.is_floating_point():
            out[key] = (sum(s[key].double() for s in states) / len(states)).to(value.dtype)
        else:
            out[key] = value
    return out


def write_soup(out: Path, folders: list[Path]) -> Path:
    """``out/semantic``: a copy of the first folder with the averaged fold-0 weights."""
    from spineps_dask.training.demo import fold0_weights

    target = out / "semantic"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(folders[0], target)
    states = [fold0_weights(f) for f in folders]
    sources = ", ".join(str(f) for f in folders)
    replace_weights(target, average_weights(states), f"soup of {sources}")
    return target


def replace_weights(target: Path, weights: dict[str, torch.Tensor], how: str) -> None:
    """Put ``weights`` in a copied folder's fold 0 and say ``how`` in front of its record's
    command, so its card does not pass the new weights off as the command's."""
    from spineps_dask.models.checkpoint import load_checkpoint

    path = target / "fold_0" / "checkpoint_final.pth"
    checkpoint = load_checkpoint(path)
    checkpoint["network_weights"] = weights
    torch.save(checkpoint, path)
    config_path = target / "inference_config.json"
    config = json.loads(config_path.read_text())
    config["training"]["command"] = f"({how}) {config['training']['command']}"
    config_path.write_text(json.dumps(config, indent=2))


def main() -> None:
    from spineps_dask.training.demo import write_cards

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("folders", type=Path, nargs="+", help="semantic folders, one architecture")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    target = write_soup(args.out, args.folders)
    write_cards(args.out)
    training = json.loads((target / "inference_config.json").read_text())["training"]
    for name, key in (("T2w", "heldout"), ("T1w", "heldout_t1w")):
        scores = training[key]["global_dice"]
        print(name, " / ".join(f"{scores[k]:.3f}" for k in STRUCTURES))
    card = (target / "MODEL_CARD.md").read_text()
    real = json.loads(re.findall(r"```json\n(.*?)\n```", card, flags=re.S)[-1])
    crop = real["sample_mri: both phases on the real T2w image"]
    print("real crop", " / ".join(f"{crop[f'global/{k}/DSC']:.3f}" for k in REAL))


if __name__ == "__main__":
    main()
