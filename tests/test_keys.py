"""Scan keys and the identity columns tables carry: a table counts people (``subject``) and
visits (``session``), not scans (issue 21 item 1)."""

from __future__ import annotations

import pytest

from spineps_dask.keys import identity, is_key, key_entities


@pytest.mark.parametrize(
    "key", ["sub-001", "sub-001_ses-1", "sub-001_ses-1_acq-lumbar_run-01_chunk-2", "sub-A1_run-3"]
)
def test_keys_with_any_entities_are_keys(key):
    assert is_key(key)


@pytest.mark.parametrize("key", ["001", "sub-../x", "sub-1/..", "sub-a_b", "sub-1_ses-", ""])
def test_names_with_path_characters_or_bare_parts_are_not_keys(key):
    assert not is_key(key)


def test_identity_names_the_person_and_the_visit():
    assert identity("sub-001_ses-2_chunk-1") == {
        "scan": "sub-001_ses-2_chunk-1",
        "subject": "sub-001",
        "session": "ses-2",
    }
    assert identity("sub-001")["session"] is None
    assert key_entities("sub-001_ses-2_chunk-1") == {"sub": "001", "ses": "2", "chunk": "1"}
