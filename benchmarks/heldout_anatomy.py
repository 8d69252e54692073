"""Held-out phantoms with the textbook sac and with drawn ones: does a model read the anatomy?

    PYTHONPATH=. python benchmarks/heldout_anatomy.py [--semantic-model DIR ...] [--seed S]
        [--phantoms N] [--looks t2w t1w] [--threads T]

The model cards score the semantic model on held-out T2w and T1w phantoms whose dural sac
fills the bony canal and whose cord sits at one place in it: the textbook anatomy every T2w
training phantom has. A real scan varies there (fat behind the sac, the conus against its
back: the tptbox crop, issue 17), and only the random-look training phantoms draw that. This
scores each folder on the same held-out phantoms twice per look: as the cards do, and with
each phantom's sac and cord place drawn as a random look of its seed draws them
(`phantom.sample_spec`'s ``drawn_sac=1``; the rest of the phantom the same). A model that
learned the T2w look as a sign of the textbook anatomy loses canal and cord on the second.
Global Dice, `training.demo_eval.evaluate_semantic` (the cards' own measure).
"""

from __future__ import annotations

import argparse
from pathlib import Path

SHOWN = ("vertebral_body", "disc", "canal", "cord")


def main() -> None:
    import torch

    from spineps_dask.config import DEMO_MODELS
    from spineps_dask.training.config import TrainConfig
    from spineps_dask.training.demo import HELD_OUT_OFFSET
    from spineps_dask.training.demo_eval import evaluate_semantic

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--semantic-model", type=Path, action="append", help="folder (repeat)")
    ap.add_argument("--seed", type=int, default=0, help="held-out block of this training seed")
    ap.add_argument("--phantoms", type=int, default=20, help="held-out phantoms (cards: 20)")
    ap.add_argument("--looks", nargs="+", default=["t2w", "t1w"], choices=["t2w", "t1w"])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    seeds = TrainConfig(seed=args.seed).seeds(HELD_OUT_OFFSET, args.phantoms)
    print(f"held-out phantoms {seeds[0]}..{seeds[-1]}; global Dice " + " / ".join(SHOWN))
    print(f"{'model':<34}{'look':<6}{'textbook sac':>32}{'drawn sac':>32}")
    for folder in args.semantic_model or [DEMO_MODELS / "semantic"]:
        for look in args.looks:
            cells = []
            for drawn in (0.0, 1.0):
                dice = evaluate_semantic(
                    folder, seeds, threads=args.threads, appearance=look, drawn_sac=drawn
                )["global_dice"]
                cells.append(" / ".join(f"{dice[k]:.3f}" for k in SHOWN))
            print(f"{str(folder)[-33:]:<34}{look:<6}{cells[0]:>32}{cells[1]:>32}", flush=True)


if __name__ == "__main__":
    main()
