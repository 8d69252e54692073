"""The published SPINEPS models: release names, versions, archives and installed folder names.

The table is the reference's download registry (spineps 2.1.3 ``utils/auto_download.py``,
``shared/docs/spineps-reference.md``, "Published weights and the labelling phase"): an archive is
``<base>/<version>/<archive>`` and installs as ``<folder>_<version>`` in the models directory, the
folder name ``spineps`` itself checks before it downloads, so both share one models folder.
"""

from __future__ import annotations

from dataclasses import dataclass

from spineps_dask.errors import ModelError


@dataclass(frozen=True)
class PublishedModel:
    """One published model.

    Examples
    --------
    >>> m = published_model("t2w")
    >>> m.installed_name, m.url("https://mirror.example/spineps/")
    ('T2w_semantic_v1.0.9', 'https://mirror.example/spineps/v1.0.9/t2w.zip')
    """

    name: str
    kind: str
    modality: str
    version: str
    archive: str
    folder: str

    @property
    def installed_name(self) -> str:
        """The sub-folder of the models directory it installs as (the reference's name)."""
        return f"{self.folder}_{self.version}"

    def url(self, base: str) -> str:
        """The archive's address under a release base URL (the reference's or a mirror)."""
        return f"{base.rstrip('/')}/{self.version}/{self.archive}"


_SEMANTIC, _INSTANCE, _LABELING = "semantic", "instance", "labeling"

#: Every published model by the name the reference gives it (``spineps -model_semantic t2w``).
PUBLISHED: dict[str, PublishedModel] = {
    m.name: m
    for m in (
        PublishedModel("t2w", _SEMANTIC, "T2w", "v1.0.9", "t2w.zip", "T2w_semantic"),
        PublishedModel("t1w", _SEMANTIC, "T1w", "v1.0.9", "t1w.zip", "T1w_semantic"),
        PublishedModel("vibe", _SEMANTIC, "Vibe", "v1.0.9", "vibe.zip", "Vibe_semantic"),
        PublishedModel("ct", _SEMANTIC, "CT", "v2.0.0", "ct.zip", "CT_semantic"),
        PublishedModel("instance", _INSTANCE, "SEG", "v1.2.0", "instance.zip", "instance_sagittal"),
        PublishedModel("ct_instance", _INSTANCE, "SEG", "v2.0.0", "CT_instance.zip", "CT_instance"),
        PublishedModel("t2w_labeling", _LABELING, "T2w", "v1.4.0", "labeling.zip", "T2w_labeling"),
        PublishedModel("ct_labeling", _LABELING, "CT", "v1.4.0", "ct_labeling.zip", "CT_labeling"),
    )
}

# The reference also accepts "t2w_semantic" for "t2w" (its canonical_model_key).
_ALIAS_SUFFIX = "_semantic"


def published_model(name: str) -> PublishedModel:
    """The published model called ``name`` (case-insensitive; ``t2w_semantic`` means ``t2w``).

    Raises
    ------
    ModelError
        When no published model has that name; the message lists the names.
    """
    key = name.strip().lower()
    if key not in PUBLISHED and key.endswith(_ALIAS_SUFFIX):
        key = key.removesuffix(_ALIAS_SUFFIX)
    if key not in PUBLISHED:
        raise ModelError(
            f"no published model {name!r}; the published models are {', '.join(PUBLISHED)}"
        )
    return PUBLISHED[key]


def published_by_installed_name(folder_name: str) -> PublishedModel | None:
    """The published model installed under ``folder_name`` (``T2w_semantic_v1.0.9``), if any."""
    return next((m for m in PUBLISHED.values() if m.installed_name == folder_name), None)


def published_by_archive(filename: str) -> PublishedModel | None:
    """The published model whose release archive has this file name (``t2w.zip``), if any."""
    return next((m for m in PUBLISHED.values() if m.archive == filename), None)
