"""Per-level dimensions and the spine curve: where each vertebra sits and how it is turned.

Sizes are interpolated from anchor levels (typical adult values from anatomy textbooks:
cervical bodies ~14 mm high and ~16 mm deep, lumbar ~27 mm high and ~35 mm deep, discs 4-5 mm
cervical/thoracic and ~10 mm lumbar), then jittered per level. The column is laid out along an
arc length ``s`` (mm, downwards from the top of C1); the centreline bends with lordosis,
kyphosis and scoliosis, and each vertebra gets a rigid local frame from the curve's tangent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from spineps_dask.labels import VERTEBRA_IDS
from spineps_dask.phantom.spec import PhantomSpec

# Anchor levels (position in the C1..L5 sequence, 0 = C1) -> dimensions in mm:
# body height, depth (AP), width (LR), disc below, canal AP/LR radius, cord AP/LR radius,
# lamina thickness, spinous length, spinous caudal angle (deg), spinous half-height,
# transverse length, transverse posterior angle (deg), process radius.
_COLUMNS = (
    "height", "depth", "width", "disc", "canal_ra", "canal_rl", "cord_ra", "cord_rl",
    "lamina", "spinous_len", "spinous_deg", "spinous_hh", "trans_len", "trans_deg", "proc_r",
)  # fmt: skip
_ANCHORS = np.array(
    [
        # h    d     w    disc  cra  crl  ora  orl  lam  spl  spa  sph  trl  tra  pr
        [10.0, 15.0, 17.0, 0.0, 8.0, 12.5, 4.5, 6.0, 4.0, 6.0, 0.0, 3.0, 14.0, 0.0, 3.5],  # C1
        [16.0, 15.0, 17.0, 5.0, 7.5, 12.0, 4.2, 6.0, 3.5, 18.0, 20.0, 3.5, 6.0, -10.0, 3.5],  # C2
        [14.0, 16.0, 18.0, 5.0, 7.0, 12.0, 4.0, 6.0, 2.5, 12.0, 20.0, 2.5, 7.0, -15.0, 3.0],  # C3
        [14.5, 17.0, 24.0, 5.5, 7.0, 11.5, 4.0, 5.5, 3.0, 26.0, 25.0, 3.0, 10.0, -5.0, 3.5],  # C7
        [16.0, 18.0, 28.0, 4.0, 7.5, 9.0, 3.5, 4.5, 5.0, 30.0, 40.0, 3.5, 20.0, 30.0, 4.0],  # T1
        [19.0, 25.0, 30.0, 4.5, 7.5, 8.0, 3.5, 4.5, 5.0, 35.0, 55.0, 4.0, 22.0, 35.0, 4.0],  # T6
        [24.0, 30.0, 42.0, 7.0, 8.0, 10.0, 3.8, 4.5, 6.0, 30.0, 15.0, 8.0, 15.0, 20.0, 4.5],  # T12
        [26.0, 32.0, 44.0, 9.0, 8.5, 11.5, 3.5, 4.0, 7.0, 30.0, 5.0, 10.0, 20.0, 10.0, 5.0],  # L1
        [27.0, 34.0, 48.0, 11.0, 8.5, 12.0, 0.0, 0.0, 7.0, 30.0, 5.0, 10.0, 28.0, 10.0, 5.5],  # L3
        [26.0, 35.0, 52.0, 11.0, 9.0, 12.5, 0.0, 0.0, 7.0, 25.0, 0.0, 9.0, 22.0, 5.0, 6.0],  # L5
    ]
)
_ANCHOR_POS = np.array([0, 1, 2, 6, 7, 12, 18, 19, 21, 23], dtype=float)
#: Sacrum length along its axis (mm) and its extra forward tilt versus L5 (sacral slope).
SACRUM_LENGTH = 100.0
_SACRAL_TILT_DEG = 15.0
#: The dens of C2 rises this far (mm) above the C2 body into the ring of C1.
DENS_LENGTH = 10.0
C1_GAP = 2.0
#: The body's flat back wall sits at a = -BACK_WALL * depth (its front at +depth/2); heights
#: "anterior" and "posterior" are taken at these two walls.
BACK_WALL = 0.425
_SPAN = 0.5 + BACK_WALL


@dataclass
class Level:
    """One vertebra (or the sacrum): its id, dimensions (mm), place and local frame.

    ``frame`` columns are the local axes in world (RAS mm) coordinates: ``l`` (towards the
    subject's right), ``a`` (anterior) and ``u`` (superior). ``centre`` is the body centre.
    """

    vid: int
    dims: dict[str, float]
    s_top: float
    s_bottom: float
    centre: np.ndarray = field(default_factory=lambda: np.zeros(3))
    frame: np.ndarray = field(default_factory=lambda: np.eye(3))
    height_anterior: float = 0.0
    height_posterior: float = 0.0

    @property
    def kind(self) -> str:
        if self.vid == 26:
            return "sacrum"
        return {1: "C1", 2: "C2"}.get(self.vid, "vertebra")

    @property
    def canal_a(self) -> float:
        """Local AP position of the canal centre: just behind the body's flat back wall."""
        return -BACK_WALL * self.dims["depth"] - 1.0 - self.dims["canal_ra"]


def _anatomical_position(vid: int) -> float:
    """Position in the C1..L5 anchor scale; T13 sits between T12 and L1, L6 beyond L5."""
    if vid == VERTEBRA_IDS["T13"]:
        return 18.5
    if vid == VERTEBRA_IDS["L6"]:
        return 23.5
    return float(vid - 1)


def anchor_dims(vid: int) -> dict[str, float]:
    """Textbook dimensions of one vertebra (mm, degrees): the anchors interpolated to its level,
    before a phantom's scale and jitter."""
    pos = _anatomical_position(vid)
    values = [np.interp(pos, _ANCHOR_POS, _ANCHORS[:, k]) for k in range(len(_COLUMNS))]
    return dict(zip(_COLUMNS, (float(v) for v in values), strict=True))


def level_dims(vid: int, rng: np.random.Generator, scale: float) -> dict[str, float]:
    """Dimensions of one vertebra: anchor interpolation, overall scale, 5 % per-level jitter."""
    dims = anchor_dims(vid)
    jitter = 1.0 + 0.05 * rng.standard_normal(len(_COLUMNS))
    for k, name in enumerate(_COLUMNS):
        if name.endswith("_deg"):
            dims[name] += 5.0 * jitter[k] - 5.0
        elif name.startswith("cord"):
            dims[name] *= jitter[k]
        else:
            dims[name] *= scale * jitter[k]
    if vid == VERTEBRA_IDS["L1"]:  # conus medullaris: the cord tapers out at L1
        dims["cord_ra"] *= 0.7
        dims["cord_rl"] *= 0.7
    return dims


#: `PhantomSpec.cord_flatten` thins the cord front to back from T10 down; a set conus
#: (`PhantomSpec.conus_end`) replaces the textbook taper below T12 (anchor positions).
_FLATTEN_FROM = 15.0
_T12 = 18.0


def _drawn_cord(dims: dict[str, float], vid: int, spec: PhantomSpec) -> None:
    """The spec's own cord shape, where it sets one (`PhantomSpec.conus_end`): below T12 the
    cord keeps T12's size and `cord_scale` tapers it; from T10 down it is flattened."""
    pos = _anatomical_position(vid)
    if spec.conus_end and pos > _T12:
        t12 = anchor_dims(VERTEBRA_IDS["T12"])
        dims["cord_ra"], dims["cord_rl"] = t12["cord_ra"], t12["cord_rl"]
    if pos >= _FLATTEN_FROM:
        dims["cord_ra"] *= spec.cord_flatten


def conus_arc(levels: list[Level], spec: PhantomSpec) -> tuple[float, ...] | None:
    """Arc length (mm down the column) where a set conus ends, its taper length, and the
    filum's length and radius below it (`PhantomSpec.filum_mm`); None for the textbook cord."""
    if not spec.conus_end:
        return None
    body = [lv for lv in levels if lv.kind != "sacrum"]
    positions = [_anatomical_position(lv.vid) for lv in body]
    centres = [0.5 * (lv.s_top + lv.s_bottom) for lv in body]
    end = float(np.interp(spec.conus_end, positions, centres))
    return end, spec.conus_taper_mm, spec.filum_mm, spec.filum_radius_mm


def cord_scale(s: np.ndarray, conus: tuple[float, ...]) -> np.ndarray:
    """The cord's radius share at arc length ``s`` above a set conus (end, taper, ...): 1
    above the taper, a square-root fall to 0 at the end (a rounded tip), 0 below."""
    end, taper = conus[:2]
    return np.sqrt(np.clip((end - s) / taper, 0.0, 1.0))


def layout(spec: PhantomSpec) -> list[Level]:
    """Dimensions and arc-length positions of every vertebra from C1 to the sacrum.

    C1 has no disc below it (C1 and C2 meet at joints; the dens of C2 rises into C1's ring), so
    the C2 body starts a small gap below the C1 ring.
    """
    rng = np.random.default_rng([spec.seed, 7])
    levels: list[Level] = []
    s = 0.0
    for vid in spec.vertebrae:
        if vid == 26:
            dims = level_dims(VERTEBRA_IDS["L5"], rng, spec.size_scale)
            dims["height"] = SACRUM_LENGTH * spec.size_scale
            dims["disc"] = 0.0
            levels.append(Level(vid, dims, s, s + dims["height"]))
            break
        dims = level_dims(vid, rng, spec.size_scale)
        _drawn_cord(dims, vid, spec)
        if vid == 1:
            dims["disc"] = 0.0
            levels.append(Level(vid, dims, s, s + dims["height"]))
            s += dims["height"] + C1_GAP
            continue
        _degenerate(dims, vid, rng)
        if vid == spec.fracture_vid:
            # Anterior wedge: the front collapses, the back keeps its height; the middle height
            # (the body's extent along the column) is the mean of the two.
            dims["fracture_wedge"] = dims["height"] * (1.0 - spec.fracture_ratio)
            dims["height"] -= dims["fracture_wedge"] * BACK_WALL / _SPAN
        levels.append(Level(vid, dims, s, s + dims["height"]))
        s += dims["height"] + dims["disc"]
    return levels


def _degenerate(dims: dict[str, float], vid: int, rng: np.random.Generator) -> None:
    """Disc below ``vid``: its nucleus signal and, for degenerated discs, lost height.

    Degeneration (dark, 20-50 % thinner disc) is commonest at the lower lumbar and lower cervical
    levels; the rates here are rough, for variety in disc-height biomarkers, not epidemiology.
    """
    low_lumbar = vid in (VERTEBRA_IDS["L4"], VERTEBRA_IDS["L5"], VERTEBRA_IDS["L6"])
    low_cervical = vid in (5, 6)
    rate = 0.35 if low_lumbar else 0.2 if low_cervical else 0.05
    worn, loss = rng.random() < rate, rng.uniform(0.5, 0.8)
    healthy, dark = rng.uniform(0.55, 0.9), rng.uniform(0.25, 0.4)
    dims["disc_signal"] = float(dark if worn else healthy)
    if worn:
        dims["disc"] *= float(loss)


def _curvature(levels: list[Level], spec: PhantomSpec, s: np.ndarray) -> np.ndarray:
    """Sagittal curvature dphi/ds: lordosis negative, kyphosis positive (phi>0 = forwards)."""
    by_id = {lv.vid: lv for lv in levels}
    t1 = by_id[VERTEBRA_IDS["T1"]].s_top
    l1 = by_id[VERTEBRA_IDS["L1"]].s_top
    sac = by_id[26].s_top
    kappa = np.zeros_like(s)
    kappa[s < t1] = -np.deg2rad(spec.lordosis_cervical_deg) / t1
    kappa[(s >= t1) & (s < l1)] = np.deg2rad(spec.kyphosis_thoracic_deg) / (l1 - t1)
    kappa[(s >= l1) & (s < sac)] = -np.deg2rad(spec.lordosis_lumbar_deg) / (sac - l1)
    return ndimage.gaussian_filter1d(kappa, 20.0, mode="nearest")


def place(levels: list[Level], spec: PhantomSpec) -> np.ndarray:
    """Bend the column: set each level's centre and frame; return the curve's sample points.

    Returns
    -------
    numpy.ndarray
        ``(n, 4)``: arc length and x, y, z of the centreline (1 mm steps), for the field of view.
    """
    length = levels[-1].s_bottom + 20.0
    s = np.arange(-40.0, length, 1.0)
    phi = np.cumsum(_curvature(levels, spec, s))
    phi -= phi[(s > 0) & (s < levels[-1].s_top)].mean()  # whole column upright on average
    cobb = np.deg2rad(spec.scoliosis_deg) / 2
    span = levels[-1].s_top
    psi = cobb * np.sin(2 * np.pi * s / span * 0.75 + spec.scoliosis_phase)
    direction = np.stack([np.sin(psi), np.sin(phi), -np.cos(phi) * np.cos(psi)], axis=1)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    points = np.cumsum(direction, axis=0)
    points -= points[np.searchsorted(s, 0.0)]
    lateral = points[:, 0]
    for lv in levels:
        sc = 0.5 * (lv.s_top + lv.s_bottom) if lv.vid != 26 else lv.s_top
        i = int(np.clip(np.searchsorted(s, sc), 0, len(s) - 1))
        # Scoliotic vertebrae also rotate about their axis (about 0.3 deg per mm of shift).
        rot = np.deg2rad(np.clip(0.3 * lateral[i], -15.0, 15.0))
        lv.frame = _frame(-direction[i], rot)
        if lv.vid == 26:
            lv.frame = _tilt(lv.frame, np.deg2rad(_SACRAL_TILT_DEG))
        lv.centre = points[i].copy()
        _wedge(lv, phi, s)
    return np.column_stack([s, points])


def _frame(up: np.ndarray, axial_rot: float) -> np.ndarray:
    """Right-handed local frame (l, a, u) with u along ``up`` and a as close to +y as possible."""
    u = up / np.linalg.norm(up)
    a = np.array([0.0, 1.0, 0.0]) - u[1] * u
    a /= np.linalg.norm(a)
    lat = np.cross(a, u)
    c, sn = np.cos(axial_rot), np.sin(axial_rot)
    a, lat = c * a + sn * lat, c * lat - sn * a
    return np.column_stack([lat, a, u])


def _tilt(frame: np.ndarray, angle: float) -> np.ndarray:
    """Rotate a frame about its l axis, turning u towards a (the sacral slope)."""
    lat, a, u = frame.T
    c, sn = np.cos(angle), np.sin(angle)
    return np.column_stack([lat, c * a - sn * u, c * u + sn * a])


def _wedge(lv: Level, phi: np.ndarray, s: np.ndarray) -> None:
    """Anterior and posterior body heights: bodies share a third of the local bend."""
    h = lv.dims["height"]
    if lv.kind != "vertebra" and lv.vid != 2:
        lv.height_anterior = lv.height_posterior = h
        return
    i0, i1 = np.searchsorted(s, [lv.s_top, lv.s_bottom])
    bend = float(phi[min(i1, len(s) - 1)] - phi[i0])  # >0 kyphotic: front shorter
    delta = float(np.clip(bend * lv.dims["depth"] / 3.0, -0.2 * h, 0.2 * h))
    if "fracture_wedge" in lv.dims:  # the fracture replaces the natural wedging
        delta = lv.dims["fracture_wedge"]
    lv.height_anterior = h - delta * 0.5 / _SPAN
    lv.height_posterior = h + delta * BACK_WALL / _SPAN


def fov_arc(levels: list[Level], value: float) -> tuple[float, Level]:
    """Arc length for a `PhantomSpec.fov_levels` value (vertebra units) and its level."""
    k = int(np.clip(np.floor(value), 0, len(levels) - 1))
    frac = value - k
    lv = levels[k]
    unit = lv.s_bottom - lv.s_top + lv.dims["disc"]
    if value < 0:
        return lv.s_top + value * unit, lv
    return lv.s_top + frac * unit, lv
