"""The published-model table matches the reference's download registry (spineps 2.1.3), so a
download lands in the folder ``spineps`` itself looks for and both share one models folder."""

from __future__ import annotations

import pytest

from spineps_dask.errors import ModelError
from spineps_dask.models.registry import (
    PUBLISHED,
    published_by_archive,
    published_by_installed_name,
    published_model,
)

BASE = "https://github.com/Hendrik-code/spineps/releases/download/"

# name, kind, URL under the release base, installed folder (spineps auto_download.py).
REFERENCE = [
    ("t2w", "semantic", "v1.0.9/t2w.zip", "T2w_semantic_v1.0.9"),
    ("t1w", "semantic", "v1.0.9/t1w.zip", "T1w_semantic_v1.0.9"),
    ("vibe", "semantic", "v1.0.9/vibe.zip", "Vibe_semantic_v1.0.9"),
    ("ct", "semantic", "v2.0.0/ct.zip", "CT_semantic_v2.0.0"),
    ("instance", "instance", "v1.2.0/instance.zip", "instance_sagittal_v1.2.0"),
    ("ct_instance", "instance", "v2.0.0/CT_instance.zip", "CT_instance_v2.0.0"),
    ("t2w_labeling", "labeling", "v1.4.0/labeling.zip", "T2w_labeling_v1.4.0"),
    ("ct_labeling", "labeling", "v1.4.0/ct_labeling.zip", "CT_labeling_v1.4.0"),
]


@pytest.mark.parametrize(("name", "kind", "path", "folder"), REFERENCE)
def test_registry_matches_the_reference(name: str, kind: str, path: str, folder: str) -> None:
    """Each name downloads the reference's archive and installs under the reference's folder."""
    model = published_model(name)
    assert model.kind == kind
    assert model.url(BASE) == BASE + path
    assert model.installed_name == folder
    assert published_by_installed_name(folder) is model
    assert published_by_archive(path.rsplit("/", 1)[1]) is model


def test_every_published_model_is_in_the_reference_table() -> None:
    """No extra or missing names."""
    assert sorted(PUBLISHED) == sorted(row[0] for row in REFERENCE)


def test_names_are_case_insensitive_and_accept_the_semantic_suffix() -> None:
    """The reference accepts 't2w_semantic' for 't2w'."""
    assert published_model("T2W") is published_model("t2w_semantic") is PUBLISHED["t2w"]


def test_mirror_base_with_or_without_slash() -> None:
    """A mirror URL works with or without its trailing slash."""
    model = published_model("ct")
    assert model.url("http://mirror/spineps") == model.url("http://mirror/spineps/")


def test_unknown_name_lists_the_published_ones() -> None:
    """A typo names the value and every valid name."""
    with pytest.raises(ModelError, match=r"no published model 't3w'.*t2w, t1w, vibe, ct"):
        published_model("t3w")
