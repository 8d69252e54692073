"""The SPINEPS label scheme: semantic structures and anatomical instance ids.

One place for every label number, so the phantom generator, the models, the merge and the
metrics cannot disagree. Numbers follow ``shared/docs/spineps-reference.md`` (the reference
`spineps`/`tptbox` scheme).
"""

from __future__ import annotations

from enum import IntEnum
from types import MappingProxyType

import numpy as np

from spineps_dask.errors import InputError


class Semantic(IntEnum):
    """Semantic mask labels (14 structures; 50 is only produced by some models)."""

    ARCUS = 41
    SPINOSUS = 42
    COSTALIS_LEFT = 43
    COSTALIS_RIGHT = 44
    ARTICULARIS_SUP_LEFT = 45
    ARTICULARIS_SUP_RIGHT = 46
    ARTICULARIS_INF_LEFT = 47
    ARTICULARIS_INF_RIGHT = 48
    CORPUS = 49
    CORPUS_BORDER = 50
    SACRUM = 26
    CORD = 60
    CANAL = 61
    ENDPLATE = 62
    #: spineps 2.1.3 splits the endplate into superior / inferior (its semantic output; ours in
    #: reference mode too).
    ENDPLATE_SUPERIOR = 52
    ENDPLATE_INFERIOR = 53
    DISC = 100


SEMANTIC_NAMES: dict[int, str] = {
    41: "Arcus_Vertebrae",
    42: "Spinosus_Process",
    43: "Costal_Process_Left",
    44: "Costal_Process_Right",
    45: "Superior_Articular_Left",
    46: "Superior_Articular_Right",
    47: "Inferior_Articular_Left",
    48: "Inferior_Articular_Right",
    49: "Vertebra_Corpus",
    50: "Vertebra_Corpus_border",
    26: "Sacrum",
    60: "Spinal_Cord",
    61: "Spinal_Canal",
    62: "Endplate",
    52: "Vertebral_Body_Endplate_Superior",
    53: "Vertebral_Body_Endplate_Inferior",
    100: "Vertebra_Disc",
}

#: Labels that make up a vertebra (posterior elements + body); endplates are separate instances.
VERTEBRA_SEMANTIC: tuple[int, ...] = (41, 42, 43, 44, 45, 46, 47, 48, 49, 50)
#: An endplate, whole or split as spineps 2.1.3 splits it.
ENDPLATE_SEMANTIC: tuple[int, ...] = (62, 52, 53)
#: Everything the instance mask may cover.
SPINE_SEMANTIC: tuple[int, ...] = (*VERTEBRA_SEMANTIC, 26, *ENDPLATE_SEMANTIC, 100)

#: Semantic label -> instance-model input id (reference: 41..48 -> 1..8, 49/50/51 -> 9, sacrum
#: 26 -> 0 = background, everything else 0). 51 is not in our scheme; some reference models
#: emit it.
INSTANCE_INPUT_MAPPING = MappingProxyType(
    {**{k: k - 40 for k in range(41, 49)}, 49: 9, 50: 9, 51: 9, 26: 0}
)

IVD_OFFSET = 100
ENDPLATE_OFFSET = 200

# Anatomical vertebra ids in cranio-caudal order, T13 (28) and L6 (25) being rare variants.
_CERVICAL = [(f"C{i}", i) for i in range(1, 8)]
_THORACIC = [(f"T{i}", 7 + i) for i in range(1, 13)]
_LUMBAR = [(f"L{i}", 19 + i) for i in range(1, 7)]
VERTEBRA_IDS: dict[str, int] = dict([*_CERVICAL, *_THORACIC, ("T13", 28), *_LUMBAR, ("S1", 26)])
VERTEBRA_NAMES: dict[int, str] = {v: k for k, v in VERTEBRA_IDS.items()}


def vertebra_sequence(*, has_t13: bool = False, has_l6: bool = False) -> list[int]:
    """Vertebra ids from C1 down to S1 for one spine, with optional T13 / L6 variants."""
    seq = [i for _, i in _CERVICAL] + [i for _, i in _THORACIC]
    if has_t13:
        seq.append(VERTEBRA_IDS["T13"])
    seq += [VERTEBRA_IDS[f"L{i}"] for i in range(1, 6)]
    if has_l6:
        seq.append(VERTEBRA_IDS["L6"])
    seq.append(VERTEBRA_IDS["S1"])
    return seq


def instance_name(label: int) -> str:
    """Human name of an instance label: ``'L3'``, ``'IVD L3'``, ``'Endplate L3'``."""
    if label >= ENDPLATE_OFFSET:
        return f"Endplate {VERTEBRA_NAMES.get(label - ENDPLATE_OFFSET, label - ENDPLATE_OFFSET)}"
    if label >= IVD_OFFSET:
        return f"IVD {VERTEBRA_NAMES.get(label - IVD_OFFSET, label - IVD_OFFSET)}"
    return VERTEBRA_NAMES.get(label, str(label))


def level_title(level: str) -> str:
    """A level as a reader names it: a vertebra as it is, a disc by its two vertebrae.

    Tables name the disc below vertebra X ``IVD X`` (its label is 100 + X); a page shows
    ``C2-C3``. The vertebra below is the usual one: T12-L1 and L5-S1 even in a spine with a
    T13 or L6 (a disc label alone cannot tell), T13-L1 and L6-S1 for the variants themselves.

    Examples
    --------
    >>> level_title("IVD C2"), level_title("IVD C7"), level_title("IVD L5"), level_title("L3")
    ('C2-C3', 'C7-T1', 'L5-S1', 'L3')
    """
    if not level.startswith("IVD "):
        return level
    above = level.removeprefix("IVD ")
    vid = VERTEBRA_IDS.get(above)
    seq = vertebra_sequence(has_t13=above == "T13", has_l6=above == "L6")
    if vid is None or vid not in seq or seq.index(vid) + 1 >= len(seq):
        return f"disc below {above}"
    return f"{above}-{VERTEBRA_NAMES[seq[seq.index(vid) + 1]]}"


#: Every label a semantic mask may hold (0 = background).
VALID_SEMANTIC: frozenset[int] = frozenset({0, *SPINE_SEMANTIC, *(int(s) for s in Semantic)})
#: Every label an instance mask may hold: vertebrae, their discs (100+X) and endplates (200+X).
VALID_INSTANCE: frozenset[int] = frozenset(
    {0, *(offset + v for offset in (0, IVD_OFFSET, ENDPLATE_OFFSET) for v in VERTEBRA_IDS.values())}
)


def check_labels(
    labelmap: np.ndarray, valid: frozenset[int], *, what: str, subject: str | None = None
) -> None:
    """Refuse a mask holding labels outside the SPINEPS scheme (`VALID_SEMANTIC`, ...).

    Raises
    ------
    InputError
        Naming the unexpected labels, so a mask in another scheme (e.g. SPIDER's raw ids) is
        recognised instead of silently scoring zero.
    """
    arr = np.asarray(labelmap)
    if not np.issubdtype(arr.dtype, np.integer) or arr.min(initial=0) < 0:
        raise InputError(
            f"{what} must hold non-negative integer labels, got dtype {arr.dtype}",
            subject=subject,
            step="evaluate",
        )
    present = {int(x) for x in np.flatnonzero(np.bincount(arr.ravel()))}
    bad = sorted(present - valid)
    if bad:
        raise InputError(
            f"{what} holds labels {bad[:10]} outside the SPINEPS scheme "
            f"(allowed: {sorted(valid - {0})[:6]}...); convert it with the labels in "
            "spineps_dask/labels.py",
            subject=subject,
            step="evaluate",
        )


def region(label: int) -> str:
    """'cervical', 'thoracic', 'lumbar' or 'sacral' for a vertebra id."""
    name = VERTEBRA_NAMES[label % 100]
    return {"C": "cervical", "T": "thoracic", "L": "lumbar", "S": "sacral"}[name[0]]
