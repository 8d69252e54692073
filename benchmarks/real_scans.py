"""How far the shipped models carry beyond phantoms: the real crops in the tptbox wheel, side by
side with held-out T2w phantoms and the same phantoms in a T1w-like contrast (issue 17).

    PYTHONPATH=. python benchmarks/real_scans.py [--phantoms 20] [--semantic-model DIR]
        [--instance-model DIR]

Real crops (`demo_eval.evaluate_real_samples`): the T2w MRI crop (ids 5-7, thoracolumbar) end
to end from its image, and the instance phase alone on the real semantic masks of the MRI and
the CT crop, scored against their own masks. Phantoms: global Dice per structure over held-out seeds
100000.. (never trained on), T2w and T1w (`make_phantom(seed, appearance="t1w")`). The last
line is the real crop's mean Dice over vertebral body, IVD, canal and cord.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

STRUCTURES = ("vertebra", "ivd", "spinal_canal", "spinal_cord")
PHANTOM_KEYS = {"vertebra": "vertebral_body", "ivd": "disc", "spinal_canal": "canal"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phantoms", type=int, default=20)
    parser.add_argument("--semantic-model", type=Path, default=None)
    parser.add_argument("--instance-model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from spineps_dask.config import DEMO_MODELS
    from spineps_dask.training.demo_eval import evaluate_real_samples, evaluate_semantic

    torch.set_num_threads(args.threads)
    sem = args.semantic_model or DEMO_MODELS / "semantic"
    inst = args.instance_model or DEMO_MODELS / "instance"
    t0 = time.perf_counter()
    real = evaluate_real_samples(sem, inst)
    if real is None:
        raise SystemExit("tptbox (a test extra) is not installed: no real crops to score")
    seeds = list(range(100_000, 100_000 + args.phantoms))
    phantoms = (
        {
            look: evaluate_semantic(sem, seeds, threads=args.threads, appearance=look)[
                "global_dice"
            ]
            for look in ("t2w", "t1w")
        }
        if args.phantoms
        else {}
    )
    print(json.dumps(real, indent=1))
    mri = real.get("sample_mri: both phases on the real T2w image", {})
    print(f"{'structure':<14}{'real T2w crop':>14}{'T2w phantoms':>14}{'T1w phantoms':>14}")
    for s in STRUCTURES:
        key = PHANTOM_KEYS.get(s, s.split("_")[-1])
        row = [mri.get(f"global/{s}/DSC", float("nan"))]
        row += [phantoms[look].get(key, float("nan")) for look in phantoms]
        print(f"{s:<14}" + "".join(f"{v:>14.3f}" for v in row))
    print(f"seconds: {time.perf_counter() - t0:.0f}")
    mean = sum(mri.get(f"global/{s}/DSC", 0.0) for s in STRUCTURES) / len(STRUCTURES)
    print(f"real T2w crop, mean Dice body/IVD/canal/cord: {mean:.3f}")


if __name__ == "__main__":
    main()
