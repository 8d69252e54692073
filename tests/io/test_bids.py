"""BIDS names: every entity is read (by bids2table, checked against the BIDS schema), a scan's
key carries all of them, and scans told apart by ``acq-``, ``run-`` or ``chunk-`` are separate
scans (issue 21 item 1)."""

from __future__ import annotations

import pytest

from spineps_dask.errors import InputError
from spineps_dask.io.bids import ScanName, parse_scan_name
from spineps_dask.io.cohort import Scan, discover_scans, keep_recorded_keys


def test_every_entity_is_part_of_the_key_in_bids_order():
    """The key holds session, acquisition, run and chunk, ordered as BIDS orders them (a
    name written in another order gives the same key), and a run's zero padding is kept."""
    name = parse_scan_name("sub-001_ses-1_acq-lumbar_run-01_chunk-2_T2w.nii")
    assert (name.sub, name.ses, name.suffix) == ("001", "1", "T2w")
    assert name.key == "sub-001_ses-1_acq-lumbar_run-01_chunk-2"
    assert parse_scan_name("sub-001_ses-1_chunk-2_run-01_acq-lumbar_T2w.nii.gz").key == name.key
    assert name.derivative("seg-spine_msk", ".nii.gz") == (
        "sub-001_ses-1_acq-lumbar_run-01_chunk-2_mod-T2w_seg-spine_msk.nii.gz"
    )


def test_a_derivative_name_has_the_key_of_its_scan():
    """``mod-`` and ``seg-`` name the output, not the scan: a mask pairs with its scan."""
    mask = parse_scan_name("sub-001_ses-1_acq-lumbar_chunk-2_mod-T2w_seg-vert_msk.nii.gz")
    assert mask.key == "sub-001_ses-1_acq-lumbar_chunk-2"
    assert ScanName(sub="001", ses="1", extra=(("chunk", "2"), ("acq", "x"))).key == (
        "sub-001_ses-1_acq-x_chunk-2"
    )


@pytest.mark.parametrize(
    ("fname", "message"),
    [
        ("sub-01_foo-bar_T2w.nii.gz", r"'foo-bar' is not a BIDS entity"),
        ("sub-01_run-a_T2w.nii.gz", r"'run-a' needs a number"),
        ("sub-01_run-1_run-2_T2w.nii.gz", r"entity 'run' appears twice"),
        ("sub-01_T2w (copy).nii.gz", r"suffix"),
        ("ses-1_sub-01_T2w.nii.gz", r"does not start with 'sub-<label>_'"),
        ("sub-01_acq-a.b_T2w.nii.gz", r"not a BIDS entity"),
        ("sub-01_T2w.mha", r"not a NIfTI file name"),
    ],
)
def test_names_that_are_not_bids_are_refused_with_the_reason(fname, message):
    with pytest.raises(InputError, match=message):
        parse_scan_name(fname)


def test_scans_differing_only_by_acq_run_or_chunk_are_separate_scans(tmp_path, make_scan):
    """Whole-spine stations, two acquisitions and a repeat of one visit: each its own key;
    only two files with the very same entities (.nii and .nii.gz) collide."""
    names = [
        "sub-01_ses-1_acq-cervical_T2w.nii.gz",
        "sub-01_ses-1_acq-lumbar_T2w.nii.gz",
        "sub-01_ses-1_acq-lumbar_run-2_T2w.nii",
        "sub-01_ses-2_chunk-1_T2w.nii.gz",
        "sub-01_ses-2_chunk-2_T2w.nii.gz",
    ]
    for fname in names:
        make_scan(tmp_path, "01", ses=fname.split("_")[1][4:], name=fname)
    make_scan(tmp_path, "02", name="sub-02_T2w.nii.gz")
    make_scan(tmp_path, "02", name="sub-02_T2w.nii")
    scans = {s.subject: s for s in discover_scans(tmp_path)}
    assert sorted(k for k, s in scans.items() if s.error is None) == [
        "sub-01_ses-1_acq-cervical",
        "sub-01_ses-1_acq-lumbar",
        "sub-01_ses-1_acq-lumbar_run-2",
        "sub-01_ses-2_chunk-1",
        "sub-01_ses-2_chunk-2",
    ]
    assert "2 files are the same scan sub-02" in str(scans["sub-02"].error)


def test_a_scan_ingested_under_an_older_shorter_key_keeps_it(tmp_path):
    """A store made when keys held only sub- and ses- is not ingested twice: the scan whose
    file the manifest recorded under ``sub-001`` stays ``sub-001``."""
    path = tmp_path / "sub-001_acq-sag_T2w.nii.gz"
    scans = [Scan("sub-001_acq-sag", path, parse_scan_name(path))]
    previous = {"sub-001": {"status": "ok", "source": str(path)}}
    assert [s.subject for s in keep_recorded_keys(scans, previous)] == ["sub-001"]
    clash = [*scans, Scan("sub-001", tmp_path / "sub-001_T2w.nii.gz")]
    assert keep_recorded_keys(clash, previous)[0].subject == "sub-001_acq-sag"
