"""How a phantom looks: tissue signals per label for T2w, T1w or a randomised contrast.

Issue 17. A network trained on one synthetic contrast learns that contrast; SynthSeg (Billot
et al., Medical Image Analysis 2023) showed that drawing every tissue's intensity at random per
training image, inverting contrast at times, and randomising blur, resolution, bias, noise and
artefacts makes it learn shapes instead. ``appearance="random"`` draws such a look from the
phantom's seed; ``"t2w"`` (the default, unchanged) and ``"t1w"`` (CSF dark, marrow and fat
bright) are fixed contrasts for evaluation beyond T2w.

Tissue groups share a draw, so a phantom stays anatomically coherent: all posterior elements
look alike, as do the bodies and the sacrum's marrow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spineps_dask.labels import Semantic

APPEARANCES = ("t2w", "t1w", "random")

#: Labels that look alike (one draw each in a random appearance).
GROUPS: dict[str, tuple[int, ...]] = {
    "muscle": (0,),
    "posterior": tuple(range(int(Semantic.ARCUS), int(Semantic.ARTICULARIS_INF_RIGHT) + 1)),
    "marrow": (int(Semantic.CORPUS), int(Semantic.SACRUM)),
    "cord": (int(Semantic.CORD),),
    "csf": (int(Semantic.CANAL),),
    "endplate": (int(Semantic.ENDPLATE),),
    "disc": (int(Semantic.DISC),),
}

# Relative signal per group, CSF = 1 in T2w. T2w: close to the label medians of the real T2w
# sample shipped with tptbox (body 0.35, cord 0.36, posterior elements 0.19, endplate 0.12).
_T2W = {
    "muscle": 0.15,
    "posterior": 0.24,
    "marrow": 0.38,
    "cord": 0.42,
    "csf": 1.00,
    "endplate": 0.10,
    "disc": 0.22,
    "fat": 0.70,
    "nucleus": 1.0,
}
# T1w: fatty marrow and fat bright, CSF dark, cord above CSF, discs intermediate and no
# bright nucleus, cortical endplates dark.
_T1W = {
    "muscle": 0.30,
    "posterior": 0.55,
    "marrow": 0.70,
    "cord": 0.45,
    "csf": 0.12,
    "endplate": 0.12,
    "disc": 0.32,
    "fat": 0.95,
    "nucleus": 0.0,
}
_SACRUM_T2W = 0.36  # the sacrum's marrow is a little darker than the bodies' in T2w


@dataclass(frozen=True)
class Look:
    """One phantom's tissue signals and acquisition effects beyond the spec's SNR and bias.

    ``lut``: signal per semantic label (index 0 = muscle background); ``fat``: subcutaneous fat;
    ``nucleus``: scale of the painted bright disc nucleus (0 removes it); ``spread``: relative
    per-tissue texture amplitude; ``blur_mm``: extra Gaussian blur; ``gamma``: power applied
    to the normalised image; ``ghost``: amplitude of a motion ghost along anterior-posterior;
    ``epidural_mm``: a fat layer this thick around the dural sac (0: none), in the fat's
    signal, or in ``epidural``'s where set (ligament and fat near the cord's signal);
    ``roots``: share of the sac below the conus taken by nerve roots (the cauda equina) in
    the cord's signal, labels unchanged (0: none).
    """

    lut: np.ndarray
    fat: float
    nucleus: float
    spread: float = 0.12
    blur_mm: float = 0.0
    gamma: float = 1.0
    ghost: float = 0.0
    ghost_shift_mm: float = 0.0
    epidural_mm: float = 0.0
    roots: float = 0.0
    epidural: float | None = None


def look(appearance: str, rng: np.random.Generator) -> Look:
    """The phantom's look; ``rng`` decides a random appearance (the phantom's own stream)."""
    if appearance == "t2w":
        lut = _lut(_T2W)
        lut[int(Semantic.SACRUM)] = _SACRUM_T2W
        return Look(lut, fat=_T2W["fat"], nucleus=_T2W["nucleus"])
    if appearance == "t1w":
        return Look(_lut(_T1W), fat=_T1W["fat"], nucleus=_T1W["nucleus"])
    if appearance != "random":
        raise ValueError(f"unknown appearance {appearance!r}; use one of {APPEARANCES}")
    signal = {name: float(rng.uniform(0.05, 1.0)) for name in (*GROUPS, "fat")}
    if rng.random() < 0.2:  # contrast inversion
        signal = {k: 1.05 - v for k, v in signal.items()}
    signal["nucleus"] = float(rng.uniform(0.0, 1.0)) if rng.random() < 0.5 else 0.0
    ghost = float(rng.uniform(0.05, 0.2)) if rng.random() < 0.3 else 0.0
    return Look(
        _lut(signal),
        fat=signal["fat"],
        nucleus=signal["nucleus"],
        spread=float(rng.uniform(0.0, 0.3)),
        blur_mm=float(rng.uniform(0.0, 1.5)) if rng.random() < 0.5 else 0.0,
        gamma=float(np.exp(rng.normal(0.0, 0.25))),
        ghost=ghost,
        ghost_shift_mm=float(rng.uniform(20.0, 60.0)),
        # Drawn last (arguments run in order), so the draws above stay each seed's. Real T2w
        # shows fat between the dural sac and the arch (the tptbox crop: a quarter of the
        # background 1.5-4.5 mm from the canal is above half the CSF signal, against under a
        # tenth far from it); phantoms without it teach that anything bright behind the
        # bodies is canal.
        epidural_mm=float(rng.uniform(1.0, 4.0)) if rng.random() < 0.7 else 0.0,
        # Nerve roots (`Look.roots`, session 13) are drawn but no longer painted: side by side
        # from `s16-more-looks`, random looks without them gave the tptbox crop's cord 0.19
        # against 0.13 and moved nothing else by more than 0.003 (RESULTS "Session 17"); its
        # thin conus reads as roots, which are labelled canal.
        roots=_drawn_roots_left_out(rng),
        # Real T2w: in the tptbox crop the band between the sac and the arch (ligamentum
        # flavum and fat) is at about half the CSF signal, near the cord's; the session-13
        # models called it canal and put the cord at its back. Some looks give the epidural
        # layer the cord's signal, so only shape (a band against bone, not a tube in CSF)
        # tells them apart.
        epidural=min(signal["cord"] * float(rng.uniform(0.8, 1.25)), 1.05)
        if rng.random() < 0.4
        else None,
    )


def _drawn_roots_left_out(rng: np.random.Generator) -> float:
    """No roots, after their draws (70 %: a share of 0.1-0.35), so that every seed's later
    draws, and so its look, stay what they were."""
    if rng.random() < 0.7:
        rng.uniform(0.1, 0.35)
    return 0.0


def _lut(signal: dict[str, float]) -> np.ndarray:
    lut = np.zeros(256, np.float32)
    for name, labels in GROUPS.items():
        for label in labels:
            lut[label] = signal[name]
    return lut
