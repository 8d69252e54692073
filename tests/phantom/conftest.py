"""Small, fast phantoms shared by the phantom tests (coarse voxels keep each under a second)."""

from __future__ import annotations

import pytest

from spineps_dask.phantom import Phantom, make_phantom

PIR = ("P", "I", "R")
COARSE_PIR = (1.2, 1.2, 4.0)  # P, I, R: thick left-right slices as in sagittal scans


@pytest.fixture(scope="package")
def cervical() -> Phantom:
    """Cervical field of view with C1 in view, stored P-I-R."""
    return make_phantom(11, region="cervical", c1_in_view=True, orientation=PIR, spacing=COARSE_PIR)


@pytest.fixture(scope="package")
def lumbar() -> Phantom:
    """Lumbar field of view with the sacrum, isotropic 1.2 mm, stored R-A-S, no scoliosis."""
    return make_phantom(
        12, region="lumbar", orientation=("R", "A", "S"), spacing=(1.2, 1.2, 1.2), scoliosis_deg=0.0
    )
