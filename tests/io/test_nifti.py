"""``load_volume`` refuses headers whose geometry nibabel would silently guess or repair."""

from __future__ import annotations

import numpy as np
import pytest

from spineps_dask.errors import InputError
from spineps_dask.io import load_volume

CASES = {
    "no qform, no sform": (dict(pixdim=(1, 2, 3), qform_code=0, sform_code=0), "no orientation"),
    "zero pixdim, qform only": (dict(pixdim=(1, 0, 3), sform_code=0), r"\[1.0, 0.0, 3.0\]"),
    "negative pixdim, qform only": (dict(pixdim=(1, -2, 3), sform_code=0), "zero or negative"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_guessed_or_repaired_geometry_is_refused(tmp_path, make_scan, bad_header, case):
    fields, message = CASES[case]
    path = bad_header(make_scan(tmp_path, "001", affine=np.diag([1.0, 2.0, 3.0, 1.0])), **fields)
    with pytest.raises(InputError, match=message):
        load_volume(path)


def test_a_bad_pixdim_is_fine_when_the_sform_defines_the_geometry(tmp_path, make_scan, bad_header):
    path = bad_header(
        make_scan(tmp_path, "001", affine=np.diag([1.0, 2.0, 3.0, 1.0])), pixdim=(1, 0, 3)
    )
    assert load_volume(path).spacing == (1.0, 2.0, 3.0)
