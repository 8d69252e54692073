"""What is random about one synthetic subject, drawn from a seed (issue 3, item 3).

A `PhantomSpec` fixes the field of view, the vertebra sequence and its variants, the sagittal and
coronal curvature, the voxel grid and the acquisition (SNR, bias, intensity scale). Everything the
generator does after that is a deterministic function of the spec, so a spec (or its seed) is the
whole recipe of a phantom and its ground truth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from spineps_dask.errors import InputError
from spineps_dask.labels import vertebra_sequence
from spineps_dask.phantom.appearance import APPEARANCES

REGIONS: tuple[str, ...] = ("cervical", "thoracic", "lumbar", "whole")
#: Stored orientations drawn by `sample_spec`; the models expect P-I-R, the rest test reorienting.
ORIENTATIONS: tuple[tuple[str, str, str], ...] = (
    ("P", "I", "R"),
    ("R", "A", "S"),
    ("L", "P", "S"),
    ("P", "I", "L"),
    ("A", "S", "R"),
    ("I", "P", "R"),
)
_WORLD_AXIS = {"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}

# Variant rates are rough population figures: an extra thoracic or lumbar vertebra in a few per
# cent of spines; C1 out of view is common in cropped cervical scans (issue 3: "rare variants").
_P_T13 = 0.08
_P_L6 = 0.08
_P_C1_MISSING = 0.25
_P_FRACTURE = 0.1
#: The anatomy a random-look spec draws beyond the seed's T2w spec (all inside the bony canal).
RANDOM_LOOK_FIELDS = ("cord_offset", "sac_inset")


@dataclass(frozen=True)
class PhantomSpec:
    """Everything random about one phantom subject.

    Attributes
    ----------
    seed
        The seed it was drawn from; also seeds per-level size jitter, texture and noise.
    region
        Field of view: ``'cervical'``, ``'thoracic'``, ``'lumbar'`` or ``'whole'``.
    has_t13, has_l6
        Rare variants: an extra thoracic (T13, id 28) or lumbar (L6, id 25) vertebra.
    c1_in_view
        False when the top of the field of view cuts below C1 (labelling must then anchor
        elsewhere).
    fov_levels
        (top, bottom) of the field of view in vertebra units along the column: ``k + f`` is the
        fraction ``f`` down vertebra ``k`` of `vertebrae` (body plus the disc below; the sacrum's
        unit is its length).
    fov_lr_mm, fov_ap_mm
        Left-right slab width and the anterior / posterior tissue margins around the spine.
    lordosis_cervical_deg, kyphosis_thoracic_deg, lordosis_lumbar_deg
        Sagittal curvature of each region (total bend of its tangent).
    scoliosis_deg, scoliosis_phase
        Coronal curvature: Cobb-like angle (0..20 degrees) and where along the spine it bends.
    size_scale
        Overall body size; each level also gets its own small jitter.
    spacing
        mm per voxel along the **stored** array axes (as `Volume.spacing` reports).
    orientation
        Axis codes of the stored arrays, e.g. ``('P', 'I', 'R')``.
    origin_mm
        Scanner position of the spine (shifts the affine only).
    snr, bias_strength, intensity_scale, rician
        Acquisition: signal-to-noise of bright tissue, amplitude of the smooth multiplicative
        bias field, a global gain, and Rician (magnitude) versus Gaussian noise.
    fracture_vid, fracture_ratio
        Vertebra with an anterior wedge fracture (0: none) and its anterior / posterior body
        height ratio (Genant grades: < 0.8 mild, < 0.75 moderate, < 0.6 severe).
    appearance
        ``"t2w"`` (default), ``"t1w"`` or ``"random"`` (tissue signals drawn per phantom,
        `phantom.appearance`); never drawn from the seed, so a seed's T2w phantom stays the same.
    cord_offset
        Where the cord's centre sits in the dural sac: (anterior, right) in units of the
        sac's radii (the canal's, where the sac fills it). T2w and T1w phantoms keep
        ``(0.15, 0.0)`` (unless `sample_spec`'s ``drawn_sac``); random-look specs from
        `sample_spec` draw it from their own stream (`replace_spec` keeps a spec's).
        Issue 17: the tptbox crop's conus lies against the back of the sac, where a cord
        always drawn near the middle never taught the network to look.
    sac_inset
        How far the dural sac's back and front lie inside the bony canal: (posterior, anterior)
        in the canal's AP radii, the sac's width shrinking by their mean; the space left is
        epidural (label 0). T2w and T1w phantoms keep ``(0.0, 0.0)`` (the sac fills the
        canal); random-look specs (and others with `sample_spec`'s ``drawn_sac``) draw it
        with the cord place. Issue 17: in the tptbox crop fat and ligament lie between the
        sac's back and the arch, and models trained on a sac that fills the canal called that
        space canal.
    conus_end, conus_taper_mm, cord_flatten
        Where the cord ends, in the anchor scale of `anatomy` (C1 = 0, T12 = 18, L1 = 19;
        0: the textbook taper, 0.7 of the radius at L1 and out within L2), over how many mm
        above that end it tapers to nothing, and its anterior-posterior radius over its
        left-right one from T10 down, as a share of the textbook ratio. Never drawn: every
        spec keeps ``(0.0, 30.0, 1.0)`` unless told (issue 17, session 20: the tptbox crop's
        cord at T11-L1 is a flat band 3-4.5 mm deep and 9 mm wide; random looks that drew
        all three, end 18-20.5, taper 15-50 mm, flatten 0.35-1, left its Dice where it was,
        benchmarks/RESULTS.md).
    filum_mm, filum_radius_mm
        A thin thread in the cord's label below a set conus's tip, this many mm long (0:
        none), at the cord's place, ``filum_radius_mm`` deep (half) and 2.5 times that wide
        (the filum terminale with the roots along it). Issue 17: the tptbox crop's masks label
        cord for 33 mm below its conus (rows I16-I37) as a band 1-2 voxels deep and 2-5 wide
        at the sac's back (`benchmarks/real_crop_gap.py`), which no phantom showed.
    """

    seed: int
    region: str
    has_t13: bool
    has_l6: bool
    c1_in_view: bool
    fov_levels: tuple[float, float]
    fov_lr_mm: float
    fov_ap_mm: tuple[float, float]
    lordosis_cervical_deg: float
    kyphosis_thoracic_deg: float
    lordosis_lumbar_deg: float
    scoliosis_deg: float
    scoliosis_phase: float
    size_scale: float
    spacing: tuple[float, float, float]
    orientation: tuple[str, str, str]
    origin_mm: tuple[float, float, float]
    snr: float
    bias_strength: float
    intensity_scale: float
    rician: bool
    fracture_vid: int = 0
    fracture_ratio: float = 1.0
    appearance: str = "t2w"
    cord_offset: tuple[float, float] = (0.15, 0.0)
    sac_inset: tuple[float, float] = (0.0, 0.0)
    conus_end: float = 0.0
    conus_taper_mm: float = 30.0
    cord_flatten: float = 1.0
    filum_mm: float = 0.0
    filum_radius_mm: float = 1.0

    @property
    def vertebrae(self) -> list[int]:
        """Vertebra ids from C1 to S1 (sacrum) of this spine, variants included."""
        return vertebra_sequence(has_t13=self.has_t13, has_l6=self.has_l6)

    @property
    def world_spacing(self) -> tuple[float, float, float]:
        """mm per voxel along the world axes (left-right, anterior-posterior, superior-inferior)."""
        return to_world_order(self.spacing, self.orientation)

    @property
    def isotropic(self) -> bool:
        return max(self.spacing) / min(self.spacing) < 1.2

    def summary(self) -> dict[str, object]:
        """Flat description for ``participants.tsv``."""
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = ",".join(str(round(v, 3)) if isinstance(v, float) else v for v in value)
            elif isinstance(value, float):
                value = round(value, 3)
            out[f.name] = value
        return out


def to_world_order(
    values: tuple[float, ...], orientation: tuple[str, ...]
) -> tuple[float, float, float]:
    """Reorder per-array-axis values into world order (LR, AP, SI)."""
    out = [0.0, 0.0, 0.0]
    for value, code in zip(values, orientation, strict=True):
        out[_WORLD_AXIS[code]] = float(value)
    return out[0], out[1], out[2]


def from_world_order(
    values: tuple[float, ...], orientation: tuple[str, ...]
) -> tuple[float, float, float]:
    """Reorder world-order (LR, AP, SI) values into the array axes of ``orientation``."""
    a, b, c = (float(values[_WORLD_AXIS[code]]) for code in orientation)
    return a, b, c


def _check_orientation(orientation: tuple[str, ...]) -> tuple[str, str, str]:
    """Upper-case axis codes, refused unless they cover the three world axes once each."""
    codes = [str(c).upper() for c in orientation]
    if len(codes) != 3 or sorted(_WORLD_AXIS[c] for c in codes if c in _WORLD_AXIS) != [0, 1, 2]:
        raise InputError(
            f"orientation {orientation!r} is not three axis codes covering R/L, A/P and S/I; "
            "use e.g. ('P', 'I', 'R')"
        )
    return codes[0], codes[1], codes[2]


def _fov_levels(rng: np.random.Generator, region: str, seq: list[int], c1: bool) -> tuple:
    """Top and bottom of the field of view in vertebra units (see `PhantomSpec.fov_levels`)."""
    idx = {v: i for i, v in enumerate(seq)}
    sacrum = idx[26]
    t1, l1 = idx[8], idx[20]
    t12 = l1 - 1  # the last thoracic vertebra: T12, or T13 when present
    top_cervical = rng.uniform(-3.0, -0.4) if c1 else rng.uniform(1.3, 1.7)
    if region == "cervical":
        return top_cervical, rng.uniform(t1 + 0.3, t1 + 3.0)
    if region == "thoracic":
        return rng.uniform(5.3, t1 + 0.2), rng.uniform(t12 + 0.3, l1 + 1.6)
    if region == "lumbar":
        return rng.uniform(t12 - 2.7, t12 + 0.5), sacrum + rng.uniform(0.35, 0.95)
    return top_cervical, sacrum + rng.uniform(0.35, 0.95)


def _draw_body(rng: np.random.Generator) -> dict[str, object]:
    """Field-of-view margins, curvature (issue 3: scoliosis up to ~20 degrees) and size."""
    return {
        "fov_lr_mm": float(rng.uniform(60.0, 110.0)),
        "fov_ap_mm": (float(rng.uniform(50.0, 90.0)), float(rng.uniform(95.0, 140.0))),
        "lordosis_cervical_deg": float(rng.uniform(10.0, 40.0)),
        "kyphosis_thoracic_deg": float(rng.uniform(20.0, 55.0)),
        "lordosis_lumbar_deg": float(rng.uniform(30.0, 60.0)),
        "scoliosis_deg": float(rng.uniform(0.0, 20.0) * (rng.random() < 0.4)),
        "scoliosis_phase": float(rng.uniform(0.0, 2 * np.pi)),
        "size_scale": float(rng.uniform(0.9, 1.1)),
    }


def _draw_acquisition(rng: np.random.Generator) -> dict[str, object]:
    """Scanner position, SNR, bias, gain, noise model, and a rare wedge fracture."""
    return {
        "origin_mm": tuple(float(v) for v in rng.uniform(-60.0, 60.0, size=3)),
        "snr": float(rng.uniform(8.0, 40.0)),
        "bias_strength": float(rng.uniform(0.0, 0.4)),
        "intensity_scale": float(np.exp(rng.uniform(np.log(100.0), np.log(3000.0)))),
        "rician": bool(rng.random() < 0.7),
        # A rare anterior wedge (compression) fracture, T6-L3: anterior / posterior height.
        "fracture_vid": int(rng.integers(13, 23)) * (rng.random() < _P_FRACTURE),
        "fracture_ratio": float(rng.uniform(0.55, 0.85)),
    }


def _draw_cord_offset(rng: np.random.Generator) -> tuple[float, float]:
    """A random-look phantom's cord place: from against the back of the sac (the supine
    conus) to a little anterior, a little to either side."""
    return float(rng.uniform(-0.6, 0.3)), float(rng.uniform(-0.3, 0.3))


def _draw_sac_inset(rng: np.random.Generator) -> tuple[float, float]:
    """A random-look phantom's epidural space: a fifth fill the canal as before; the rest
    leave up to 0.6 canal radii behind the sac (the posterior fat pad) and 0.2 in front."""
    back, front = rng.uniform((0.0, 0.0), (0.6, 0.2))
    return (0.0, 0.0) if rng.random() < 0.2 else (float(back), float(front))


def sample_spec(
    seed: int, *, textbook_sac: float = 0.0, drawn_sac: float = 0.0, **overrides: object
) -> PhantomSpec:
    """Draw a `PhantomSpec` from a seed; keyword overrides fix any field.

    Overriding ``orientation`` without ``spacing`` keeps the drawn spacing in world terms
    (thick slices stay left-right). ``spacing`` is in the stored array axes.
    ``textbook_sac``: the chance that a random-look spec keeps the T2w phantoms' sac and
    cord place instead of its drawn ones (drawn after them, so 0 gives the specs it gave).
    Issue 17: with 0, an unfamiliar look comes with an inset sac and a cord further back in
    most training phantoms, and a network learns the look as a sign of that anatomy: on T1w
    phantoms (textbook sac) it placed the sac's rim a voxel inside (benchmarks/RESULTS.md,
    session 24). ``drawn_sac``: the chance that a T2w or T1w spec draws its sac and cord
    place as a random look of the seed does (from the same stream, so 0 gives the specs it
    gave): in training, the T2w look no longer a sign of the textbook sac; in evaluation,
    held-out phantoms with the epidural space and cord places a real scan has (session 25).

    Raises
    ------
    InputError
        An unknown field name, region or orientation.
    """
    names = {f.name for f in dataclasses.fields(PhantomSpec)}
    unknown = set(overrides) - names
    if unknown:
        raise InputError(f"unknown phantom spec fields {sorted(unknown)}; known: {sorted(names)}")
    for name, share in (("textbook_sac", textbook_sac), ("drawn_sac", drawn_sac)):
        if not 0.0 <= share <= 1.0:
            raise InputError(f"{name} {share} must be a share in [0, 1]")
    rng = np.random.default_rng([int(seed), 3])
    region = str(overrides.get("region", REGIONS[rng.integers(len(REGIONS))]))
    if region not in REGIONS:
        raise InputError(f"region {region!r} is not one of {REGIONS}")
    has_t13 = bool(overrides.get("has_t13", rng.random() < _P_T13))
    has_l6 = bool(overrides.get("has_l6", rng.random() < _P_L6))
    c1_draw = rng.random() >= _P_C1_MISSING
    c1 = bool(overrides.get("c1_in_view", c1_draw if region in ("cervical", "whole") else False))
    seq = vertebra_sequence(has_t13=has_t13, has_l6=has_l6)
    # Own streams for draws whose count depends on other fields, so that fixing one field
    # (say the region) leaves every other drawn value of the seed unchanged.
    fov = _fov_levels(np.random.default_rng([int(seed), 5]), region, seq, c1)
    orientation = _check_orientation(
        overrides.get("orientation", ORIENTATIONS[rng.integers(len(ORIENTATIONS))])  # type: ignore[arg-type]
    )
    # Sagittal thick-slice scans: 0.5-1.0 mm in plane, 2.5-4.5 mm slices; a quarter isotropic.
    iso, inplane, thick = rng.uniform((0.9, 0.5, 2.5), (1.3, 1.0, 4.5))
    world = (iso, iso, iso) if rng.random() < 0.25 else (thick, inplane, inplane)
    drawn = {
        "seed": int(seed),
        "region": region,
        "has_t13": has_t13,
        "has_l6": has_l6,
        "c1_in_view": c1,
        "fov_levels": (float(fov[0]), float(fov[1])),
        **_draw_body(rng),
        "spacing": from_world_order(world, orientation),
        "orientation": orientation,
        **_draw_acquisition(rng),
    }
    drawn.update(overrides)
    drawn["orientation"] = orientation
    sac_rng = np.random.default_rng([int(seed), 11])  # after the cord place: it stays
    place, inset = _draw_cord_offset(sac_rng), _draw_sac_inset(sac_rng)
    share = sac_rng.random()
    if (share >= textbook_sac) if drawn.get("appearance") == "random" else (share < drawn_sac):
        drawn.setdefault("cord_offset", place)
        drawn.setdefault("sac_inset", inset)
    if "spacing" in overrides:
        drawn["spacing"] = tuple(float(s) for s in overrides["spacing"])  # type: ignore[attr-defined]
    return _validated(PhantomSpec(**drawn))  # type: ignore[arg-type]


def replace_spec(spec: PhantomSpec, **overrides: object) -> PhantomSpec:
    """`dataclasses.replace` that keeps world spacing when only the orientation changes."""
    if "orientation" in overrides and "spacing" not in overrides:
        orientation = _check_orientation(overrides["orientation"])  # type: ignore[arg-type]
        overrides["orientation"] = orientation
        overrides["spacing"] = from_world_order(spec.world_spacing, orientation)
    return _validated(dataclasses.replace(spec, **overrides))  # type: ignore[arg-type]


def _validated(spec: PhantomSpec) -> PhantomSpec:
    """Refuse overrides that would make an impossible phantom."""
    if spec.region not in REGIONS:
        raise InputError(f"region {spec.region!r} is not one of {REGIONS}")
    if spec.appearance not in APPEARANCES:
        raise InputError(f"appearance {spec.appearance!r} is not one of {APPEARANCES}")
    if len(spec.spacing) != 3 or min(spec.spacing) <= 0.2 or max(spec.spacing) > 8.0:
        raise InputError(f"spacing {spec.spacing!r} must be three values in (0.2, 8] mm")
    if len(spec.cord_offset) != 2 or max(abs(v) for v in spec.cord_offset) > 1.0:
        raise InputError(f"cord_offset {spec.cord_offset!r} must be two values in [-1, 1]")
    if len(spec.sac_inset) != 2 or not (min(spec.sac_inset) >= 0.0 and sum(spec.sac_inset) <= 1.0):
        raise InputError(
            f"sac_inset {spec.sac_inset!r} must be two values >= 0 adding up to at most 1"
        )
    if spec.conus_end and not 15.0 <= spec.conus_end <= 23.0:
        raise InputError(f"conus_end {spec.conus_end} must be 0 (textbook) or lie in [15, 23]")
    if not (spec.conus_taper_mm > 0.0 and 0.2 <= spec.cord_flatten <= 1.5):
        raise InputError(
            f"conus_taper_mm {spec.conus_taper_mm} must be > 0 and cord_flatten "
            f"{spec.cord_flatten} in [0.2, 1.5]"
        )
    if spec.filum_mm and not (spec.conus_end and spec.filum_mm > 0 and spec.filum_radius_mm > 0):
        raise InputError(
            f"filum_mm {spec.filum_mm} needs a set conus_end and positive filum_mm and "
            f"filum_radius_mm ({spec.filum_radius_mm})"
        )
    if not 0.0 <= spec.scoliosis_deg <= 45.0:
        raise InputError(f"scoliosis_deg {spec.scoliosis_deg} must lie in [0, 45]")
    return spec
