"""Per-level biomarkers from the masks: body / disc size, canal and cord area (issue 7 item 5).

:mod:`.geometry` holds the world-millimetre sampling (local axis, lines, planes);
:mod:`.levels` builds the tidy per-subject table; :mod:`.folders` measures a folder of masks
(the ``biomarkers`` command).
"""

from spineps_dask.biomarkers.folders import biomarkers_folder, find_mask_pairs
from spineps_dask.biomarkers.levels import COLUMNS, BiomarkerSettings, level_biomarkers

__all__ = [
    "COLUMNS",
    "BiomarkerSettings",
    "biomarkers_folder",
    "find_mask_pairs",
    "level_biomarkers",
]
