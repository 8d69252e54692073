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
    "nan pixdim, qform only": (dict(pixdim=(1, np.nan, 3), sform_code=0), "non-finite"),
    "nan qform offset, qform only": (
        dict(qoffset=(0, np.nan, 0), sform_code=0),
        r"qoffset_x/y/z\) \[0.0, nan, 0.0\] are not finite",
    ),
    # nibabel reads the voxels from byte 0 then: the header's own bytes become voxels.
    "data offset 0 in one file": (dict(vox_offset=0), r"vox_offset 0\) lies inside the 352"),
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


def test_kept_geometry_that_deserves_a_look_is_warned_about(
    tmp_path, make_scan, bad_header, caplog
):
    """An oblique grid and a qform that disagrees with the sform are kept, but each gives a
    warning (logged and returned in ``notes``) that says which geometry is used."""
    turn = np.radians(10)
    oblique = np.diag([1.0, 2.0, 3.0, 1.0])
    oblique[:3, :3] = [
        [np.cos(turn), -np.sin(turn) * 2, 0],
        [np.sin(turn), np.cos(turn) * 2, 0],
        [0, 0, 3],
    ]
    notes: list[str] = []
    vol = load_volume(make_scan(tmp_path / "a", "001", affine=oblique), notes=notes)
    np.testing.assert_allclose(vol.affine, oblique, atol=1e-5)
    assert len(notes) == 1 and "oblique to the scanner axes (by up to 10.0 degrees" in notes[0]
    assert "from the sform" in notes[0]
    path = bad_header(make_scan(tmp_path / "b", "001"), qoffset=(5.0, 40.0, 300.0))
    notes = []
    with caplog.at_level("WARNING", logger="spineps_dask.io.nifti"):
        load_volume(path, notes=notes)
    assert len(notes) == 1 and "sform and qform disagree (by up to 15 mm); the sform is" in notes[0]
    assert notes[0] in caplog.text
    notes = []
    load_volume(make_scan(tmp_path / "c", "001"), notes=notes)
    assert notes == []  # an axis-aligned grid with matching qform and sform: nothing to say
