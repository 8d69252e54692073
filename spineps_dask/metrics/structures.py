"""Which labels make up each evaluated structure (paper tables 2 and 3).

Global (whole-structure) figures come from the semantic mask, as in the paper: its table 2 shows
the same global Dice with and without instance post-processing, which only changes the instance
mask. Instance-wise figures come from the instance mask, one group per kind of instance.
"""

from __future__ import annotations

from dataclasses import dataclass

from spineps_dask.labels import (
    ENDPLATE_OFFSET,
    ENDPLATE_SEMANTIC,
    IVD_OFFSET,
    VERTEBRA_IDS,
    VERTEBRA_SEMANTIC,
    Semantic,
)


@dataclass(frozen=True)
class Structure:
    """A named set of labels scored as one mask (global) or as a group of instances."""

    name: str
    title: str
    labels: tuple[int, ...]


_VERT_IDS: tuple[int, ...] = tuple(sorted(VERTEBRA_IDS.values()))

#: Whole-structure masks of the semantic map. Left/right processes are merged as in the
#: paper's table 3; corpus includes the corpus border (50) that some models emit.
GLOBAL_STRUCTURES: tuple[Structure, ...] = (
    Structure("vertebra", "Vertebra", VERTEBRA_SEMANTIC),
    Structure("ivd", "IVD", (int(Semantic.DISC),)),
    Structure("spinal_canal", "Spinal Canal", (int(Semantic.CANAL),)),
    Structure("spinal_cord", "Spinal Cord", (int(Semantic.CORD),)),
    Structure("endplate", "Endplate", ENDPLATE_SEMANTIC),
    Structure("sacrum", "Sacrum", (int(Semantic.SACRUM),)),
    Structure("arcus", "Arcus Vertebrae", (int(Semantic.ARCUS),)),
    Structure("spinosus", "Spinosus Process", (int(Semantic.SPINOSUS),)),
    Structure(
        "articularis_inferior",
        "Articularis Inferior",
        (int(Semantic.ARTICULARIS_INF_LEFT), int(Semantic.ARTICULARIS_INF_RIGHT)),
    ),
    Structure(
        "articularis_superior",
        "Articularis Superior",
        (int(Semantic.ARTICULARIS_SUP_LEFT), int(Semantic.ARTICULARIS_SUP_RIGHT)),
    ),
    Structure(
        "costal", "Costal Process", (int(Semantic.COSTALIS_LEFT), int(Semantic.COSTALIS_RIGHT))
    ),
    Structure("corpus", "Vertebra Corpus", (int(Semantic.CORPUS), int(Semantic.CORPUS_BORDER))),
)

#: Instance groups of the instance map: vertebrae 1-28, IVDs 100+X, endplates 200+X.
INSTANCE_GROUPS: tuple[Structure, ...] = (
    Structure("vertebra", "Vertebra", _VERT_IDS),
    Structure("ivd", "IVD", tuple(IVD_OFFSET + v for v in _VERT_IDS)),
    Structure("endplate", "Endplate", tuple(ENDPLATE_OFFSET + v for v in _VERT_IDS)),
)

TITLES: dict[str, str] = {s.name: s.title for s in (*GLOBAL_STRUCTURES, *INSTANCE_GROUPS)}
