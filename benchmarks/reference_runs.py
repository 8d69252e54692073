"""`spineps` 2.1.3's `segment_image` over scans, for the scripts that capture its stages.

Runs with the *reference's* Python (its own virtual environment), like its callers
(`fidelity_reference.py`, `fidelity_post_capture.py`); imports only spineps and TPTBox.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("SPINEPS_NO_CITATION_REMINDER", "1")


def reference_runs(
    sem_folder: str, inst_folder: str, scans: list[str], store: dict, *, n4: bool, tag: str
) -> Iterator[tuple[str, tuple, float]]:
    """Yield ``(name, result, seconds)`` per scan: what `segment_image` returned (no labelling
    model, outputs returned rather than saved). ``store`` (filled by the caller's hooks) is
    emptied before each scan; ``tag`` names the derivative folder spineps would create."""
    from spineps.get_models import get_actual_model
    from spineps.seg_run import segment_image
    from TPTBox import BIDS_FILE

    sem = get_actual_model(sem_folder, use_cpu=True).load()
    inst = get_actual_model(inst_folder, use_cpu=True).load()
    for scan in scans:
        store.clear()
        path = Path(scan)
        t0 = time.perf_counter()
        result = segment_image(
            img_ref=BIDS_FILE(path, dataset=path.parent, verbose=False),
            model_semantic=sem,
            model_instance=inst,
            model_labeling=None,
            proc_sem_n4_bias_correction=n4,
            return_output_instead_of_save=True,
            derivative_name=f"derivatives_{tag}_{os.getpid()}",
        )
        yield path.name.split(".")[0], result, time.perf_counter() - t0
