"""Per-level biomarkers from the masks: body / disc size, canal and cord area (issue 7 item 5).

:mod:`.geometry` holds the world-millimetre sampling (local axis, lines, planes);
:mod:`.levels` builds the tidy per-subject table.
"""

from spineps_dask.biomarkers.levels import COLUMNS, BiomarkerSettings, level_biomarkers

__all__ = ["COLUMNS", "BiomarkerSettings", "level_biomarkers"]
