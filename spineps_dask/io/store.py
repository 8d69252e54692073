"""The Zarr v3 cohort store: one group per subject, one NGFF image group per named volume.

Layout (``<subject>`` is a scan key, `spineps_dask.keys`: ``sub-001``, ``sub-001_ses-1``,
``sub-001_ses-1_acq-lumbar_chunk-2``)::

    cohort.zarr/
      zarr.json                    root group
      manifest.parquet             what is done (see ``manifest.py``); zarr ignores it
      sub-001/                     subject group
        image/                     NGFF 0.5 image group: attrs ``ome`` + ``spineps_dask``
          0/                       the voxels, dims (z, y, x) = NIfTI (k, j, i), 64^3 chunks,
                                   attrs: affine, spacing, orientation, source, sha256, ...
          labels/                  NGFF labels group: ``ome.labels`` lists the masks below
            semantic/0, instance/0 the run's masks (NGFF label images: ``image-label`` with
            ref_semantic/0, ...    each label's name and colour), same layout as the image
        work_prepared/0, ...       a subject's work arrays while it runs, beside the image

The masks (`LABELS`) sit in the image's ``labels/`` group, where NGFF readers (``ome_zarr
info``, napari) find them with their names and colours. Stores written before that keep them
beside the image; they are read there and moved into ``labels/`` when rewritten.

A volume counts as written only once its group carries ``spineps_dask.complete = true``, which
:meth:`CohortStore.write_volume` sets after the last chunk, so a task killed half-way leaves a
volume that :meth:`CohortStore.has_volume` reports as missing and the runner redoes (issue 3,
items 4-5). Tasks pass :class:`VolumeKey` (store URL, subject, name), never arrays.

With ``complete`` the group records the checksums of its chunks (``_checksums``): every whole
read (:meth:`CohortStore.read_volume`) checks them, :meth:`CohortStore.verify_volume` checks a
volume without using it, and a chunk deleted, truncated or changed since is a
`DamagedVolumeError` naming the subject, the volume and the chunk (issue 18).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import zarr
from zarr.storage import FsspecStore, LocalStore

from spineps_dask.errors import DamagedVolumeError, StoreError
from spineps_dask.geometry import Volume
from spineps_dask.io import _checksums, _ngff
from spineps_dask.io._oserror import store_write_error
from spineps_dask.io._urls import is_remote, join_url, local_path, redact_url
from spineps_dask.io.atomic import write_file
from spineps_dask.io.bids import validate_subject_key
from spineps_dask.io.manifest import Manifest
from spineps_dask.io.names import IMAGE, LABELS, MANIFEST
from spineps_dask.keys import is_key
from spineps_dask.labels import SEMANTIC_NAMES, instance_name

if TYPE_CHECKING:
    import xarray as xr

logger = logging.getLogger(__name__)

CHUNK = 64  # 64^3 voxels: ~0.5 MB of int16, a few chunks per sagittal slab (issue 3 item 4)
LEVEL = "0"  # NGFF level-0 array inside each volume group; coarser levels may follow
_ATTR = "spineps_dask"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class VolumeKey:
    """Address of one volume: what a distributed task receives instead of the array."""

    store: str
    subject: str
    name: str

    def __str__(self) -> str:
        return f"{redact_url(self.store)}#{self.subject}/{self.name}"


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise StoreError(
            f"volume name {name!r} is not allowed: use letters, digits, '_' and '-' "
            "starting with a letter (e.g. 'semantic')"
        )
    return name


def _check_blob_name(name: str) -> str:
    """File names beside volumes: ``snapshot.png`` yes, ``../x`` or ``a/b`` no."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*\.[A-Za-z0-9]+", name):
        raise StoreError(f"file name {name!r} is not allowed: use e.g. 'snapshot.png'")
    return name


def store_exists(url: str | os.PathLike, *, storage_options: dict | None = None) -> bool:
    """True when a cohort store (a root ``zarr.json``) is at ``url``; nothing is created."""
    target = join_url(os.fspath(url), "zarr.json")
    if is_remote(target):
        import fsspec

        fs, path = fsspec.core.url_to_fs(target, **(storage_options or {}))
        return bool(fs.exists(path))
    return local_path(target).is_file()


def _open_zarr_store(url: str, *, read_only: bool, storage_options: dict | None):
    if is_remote(url):
        return FsspecStore.from_url(url, storage_options=storage_options, read_only=read_only)
    path = local_path(url)
    if not read_only:
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".write-probe.{uuid.uuid4().hex}"
            probe.touch()  # a read-only disk is refused here, not half-way through a cohort
            probe.unlink()
        except OSError as exc:
            raise store_write_error(exc, "the cohort store", str(path)) from exc
    return LocalStore(path, read_only=read_only)


def _open_root(zstore: Any, mode: Literal["r", "a"]) -> zarr.Group:
    """Open the root group; two processes creating one store at once both succeed."""
    try:
        return zarr.open_group(store=zstore, mode=mode, zarr_format=3)
    except zarr.errors.ContainsGroupError:  # created by another writer between check and write
        return zarr.open_group(store=zstore, mode="r+", zarr_format=3)


def _reopen(url: str, mode: Literal["r", "a"], storage_options: dict | None) -> CohortStore:
    return CohortStore(url, mode=mode, storage_options=storage_options)


class CohortStore:
    """A cohort of scans and their segmentations in one Zarr v3 hierarchy.

    Parameters
    ----------
    url
        Local folder (``cohort.zarr``, ``file://...``) or fsspec URL (``s3://bucket/cohort.zarr``).
        Put credentials in ``storage_options`` or the environment, never in the URL: the URL is
        logged (redacted) and ends up in task keys.
    mode
        ``"r"``: read only, the store must exist. ``"a"``: read and write, created if missing.
    storage_options
        Passed to fsspec (e.g. ``{"endpoint_url": ..., "anon": False}``); never stored.
    """

    def __init__(
        self,
        url: str | os.PathLike,
        *,
        mode: Literal["r", "a"] = "a",
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if mode not in ("r", "a"):
            raise StoreError(f"mode {mode!r} is not supported; use 'r' or 'a'")
        self.url = os.fspath(url)
        self.mode = mode
        self._storage_options = dict(storage_options or {})
        self._zstore = _open_zarr_store(
            self.url, read_only=mode == "r", storage_options=self._storage_options or None
        )
        try:
            self._root = _open_root(self._zstore, mode)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
            raise StoreError(
                f"no cohort store at {redact_url(self.url)} (no zarr.json there); check the "
                "path, or make one with `spineps-dask ingest BIDS STORE` (in Python: mode='a')"
            ) from exc
        logger.debug("opened cohort store %s (mode %s)", redact_url(self.url), mode)

    def __repr__(self) -> str:
        return f"CohortStore({redact_url(self.url)!r}, mode={self.mode!r})"

    def __reduce__(self):
        # Pickled into task graphs as (url, mode, options); reopened on the worker.
        return (_reopen, (self.url, self.mode, self._storage_options or None))

    @property
    def manifest_url(self) -> str:
        """Where the Parquet manifest of this store lives (inside the store folder)."""
        return join_url(self.url, MANIFEST)

    @property
    def manifest(self) -> Manifest:
        """The store's manifest: what is done, one row per subject and phase."""
        return Manifest(self.manifest_url, storage_options=self._storage_options or None)

    @property
    def storage_options(self) -> dict[str, Any]:
        """A copy of the fsspec options (for the manifest next to the store)."""
        return dict(self._storage_options)

    def key(self, subject: str, name: str) -> VolumeKey:
        """The :class:`VolumeKey` of ``subject``/``name`` in this store."""
        return VolumeKey(self.url, validate_subject_key(subject), _check_name(name))

    # -- listing -----------------------------------------------------------------------------

    def subjects(self) -> list[str]:
        """Sorted subject keys that have a group (whether or not any volume is complete)."""
        with warnings.catch_warnings():
            # The manifest and the run lock live in the store folder; zarr warns about each.
            warnings.filterwarnings("ignore", "Object at", zarr.errors.ZarrUserWarning)
            keys = [k for k, _ in self._root.groups()]
        return sorted(k for k in keys if is_key(k))

    def volumes(self, subject: str) -> list[str]:
        """Names of the complete volumes of ``subject`` (empty if the subject is unknown)."""
        group = self._group(subject, None)
        if group is None:
            return []
        with warnings.catch_warnings():
            # Files written with write_blob sit beside the volumes; zarr warns about each.
            warnings.filterwarnings("ignore", "Object at", zarr.errors.ZarrUserWarning)
            names = {n for n, _ in group.groups()}
        labels = self._open(f"{subject}/{IMAGE}/labels")
        if labels is not None:
            names |= {n for n, _ in labels.groups()}
        return sorted(n for n in names if self.has_volume(subject, n))

    def has_volume(self, subject: str, name: str) -> bool:
        """True only when the volume was written to the end (``complete`` set last)."""
        group = self._group(subject, name)
        if group is None:
            return False
        ours = group.attrs.get(_ATTR)
        return isinstance(ours, dict) and bool(ours.get("complete", False))

    def _group(self, subject: str, name: str | None) -> zarr.Group | None:
        """A subject's group, or one volume's (a mask in ``image/labels/``, or where a store
        written before that kept it, beside the image)."""
        if name is None:
            return self._open(validate_subject_key(subject))
        node = self._open(_volume_path(subject, name))
        if node is None and name in LABELS:
            node = self._open(f"{subject}/{name}")
        return node

    def _open(self, path: str) -> zarr.Group | None:
        try:
            node = zarr.open_group(store=self._zstore, path=path, mode="r", zarr_format=3)
        except (FileNotFoundError, KeyError, ValueError, zarr.errors.GroupNotFoundError):
            return None
        return node

    # -- writing -----------------------------------------------------------------------------

    def write_volume(
        self, subject: str, name: str, vol: Volume, *, label: bool | None = None, **attrs: Any
    ) -> VolumeKey:
        """Write a whole volume (replacing any previous one) and mark it complete last.

        Parameters
        ----------
        subject, name
            ``sub-001[_ses-1]`` and the volume name (``image``, ``semantic``, ``instance``, ...).
        vol
            ``(X, Y, Z)`` voxels in NIfTI order, any numeric dtype (kept), and its affine.
        label
            Marks the volume as a label map (NGFF ``image-label``, opened as labels by napari).
            Default: integer dtype and a name other than ``image``.
        **attrs
            JSON-serialisable extras stored with the geometry (``source``, ``sha256``, ...).
        """
        self._require_writable()
        key = self.key(subject, name)
        try:
            self._write_volume(key, vol, label=label, attrs=attrs)
        except OSError as exc:  # full or read-only disk, object store refusing
            self._drop_partial(key)
            raise store_write_error(exc, f"{name} of {subject}", redact_url(self.url)) from exc
        return key

    def _drop_partial(self, key: VolumeKey) -> None:
        """Remove what a failed write left (never complete, so never used); best effort:
        deleting frees space even on a full disk, but the store may be gone altogether."""
        path = _volume_path(key.subject, key.name)  # masks: in the image's labels/ group
        try:
            self._remove_node(path, best_effort=True)
        except Exception as exc:  # the write's own error is the one to report
            logger.debug("could not remove the partial %s: %s", key, exc)

    def _remove_node(self, path: str, *, best_effort: bool = False) -> None:
        """Remove the array or group at ``path`` and everything under it; absent is fine.

        Locally the folder goes whole, even when its ``zarr.json`` is missing or was cut short
        by a full disk (zarr would not see a node there); ``best_effort`` goes on past files
        that cannot be removed. On object stores, through zarr.
        """
        if not is_remote(self.url):
            folder = local_path(self.url) / path
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=best_effort)
        elif self._open(path) is not None:
            del self._root[path]

    def _write_volume(
        self, key: VolumeKey, vol: Volume, *, label: bool | None, attrs: dict[str, Any]
    ) -> None:
        subject, name = key.subject, key.name
        data = np.asarray(vol.data)
        if not data.dtype.isnative:  # big-endian NIfTI: same values, native bytes
            data = data.astype(data.dtype.newbyteorder("="))
        if label is None:
            label = name != IMAGE and np.issubdtype(data.dtype, np.integer)
        parent_path, _, leaf = _volume_path(subject, name).rpartition("/")
        try:
            parent = self._root.require_group(parent_path)
        except zarr.errors.ContainsGroupError:  # another task created it a moment ago
            parent = self._root.require_group(parent_path)
        group = parent.create_group(leaf, overwrite=True, attributes={_ATTR: {"complete": False}})
        zyx = data.transpose(2, 1, 0)
        array = group.create_array(
            LEVEL,
            shape=zyx.shape,
            dtype=zyx.dtype,
            chunks=tuple(min(CHUNK, s) for s in zyx.shape),
            dimension_names=_ngff.DIMS,
            attributes=_geometry_attrs(vol, attrs),
        )
        array[...] = zyx
        checksums = _checksums.record(zyx, array, self._stored_sizes(subject, name))
        meta: dict[str, Any] = {"ome": _ngff.multiscales(f"{subject}/{name}", vol.affine)}
        if label:
            source = "../../" if name in LABELS else f"../{IMAGE}"
            names = _label_names(name, data) if name in LABELS else {}  # work arrays: none
            meta["ome"]["image-label"] = _ngff.image_label(source, names)
        meta[_ATTR] = {
            "complete": True,
            "label": bool(label),
            "written": datetime.now(UTC).isoformat(timespec="seconds"),
            "checksums": checksums,
        }
        group.update_attributes(meta)
        if name in LABELS:
            self._list_label(subject, name, present=True)
            if self._open(f"{subject}/{name}") is not None:  # the copy of an older layout
                del self._root[f"{subject}/{name}"]
        logger.debug("wrote %s %s %s", key, vol.shape, data.dtype)

    def _list_label(self, subject: str, name: str, *, present: bool) -> None:
        """Keep the ``labels`` group's list (``ome.labels``) in step with its masks."""
        group = self._root.require_group(f"{subject}/{IMAGE}/labels")
        ome = group.attrs.get("ome")
        names = ome.get("labels") if isinstance(ome, dict) else None
        listed = {str(n) for n in names} if isinstance(names, list) else set()
        listed = listed | {name} if present else listed - {name}
        group.update_attributes({"ome": {"version": _ngff.NGFF_VERSION, "labels": sorted(listed)}})

    def delete_subject(self, subject: str) -> None:
        """Remove a subject and all its volumes (e.g. its source scan changed)."""
        self._require_writable()
        subject = validate_subject_key(subject)
        try:
            if subject in self._root:
                del self._root[subject]
        except OSError as exc:
            raise store_write_error(exc, f"(deleting) {subject}", redact_url(self.url)) from exc

    def delete_volume(self, subject: str, name: str) -> None:
        """Remove one volume (a finished subject's work arrays, say); no error if absent."""
        self._require_writable()
        key = self.key(subject, name)
        try:
            for path in {_volume_path(key.subject, key.name), f"{key.subject}/{key.name}"}:
                self._remove_node(path)
            if key.name in LABELS and self._open(f"{key.subject}/{IMAGE}/labels") is not None:
                self._list_label(key.subject, key.name, present=False)
        except OSError as exc:
            where = redact_url(self.url)
            raise store_write_error(exc, f"(deleting) {name} of {subject}", where) from exc

    def write_blob(self, subject: str, name: str, data: bytes) -> str:
        """Store a small file (a snapshot PNG) beside a subject's volumes; returns its location.

        Written whole under a temporary name and renamed (local), or with one ``put`` (object
        stores), so a reader never sees half a file.
        """
        self._require_writable()
        rel = f"{validate_subject_key(subject)}/{_check_blob_name(name)}"
        return self._put(rel, data, f"{name} of {subject}")

    def write_root_file(self, name: str, data: bytes) -> str:
        """Store a small cohort-wide file (``participants.tsv``) at the store root, whole."""
        return self._put(_check_blob_name(name), data, f"{name} of the cohort")

    def read_root_file(self, name: str) -> bytes | None:
        """A file written with `write_root_file`, or None when the store has none."""
        try:
            return self._get(_check_blob_name(name))
        except FileNotFoundError:
            return None

    def _put(self, rel: str, data: bytes, what: str) -> str:
        url = join_url(self.url, rel)
        try:
            if is_remote(url):
                import fsspec

                with fsspec.open(url, "wb", **self._storage_options) as fh:
                    fh.write(data)
                return url
            write_file(data, local_path(url))
        except OSError as exc:
            raise store_write_error(exc, what, redact_url(self.url)) from exc
        return url

    def _get(self, rel: str) -> bytes:
        url = join_url(self.url, rel)
        if is_remote(url):
            import fsspec

            with fsspec.open(url, "rb", **self._storage_options) as fh:
                return fh.read()
        return local_path(url).read_bytes()

    def read_blob(self, subject: str, name: str) -> bytes:
        """A file written with `write_blob`."""
        url = join_url(self.url, f"{validate_subject_key(subject)}/{_check_blob_name(name)}")
        try:
            if is_remote(url):
                import fsspec

                with fsspec.open(url, "rb", **self._storage_options) as fh:
                    return fh.read()
            return local_path(url).read_bytes()
        except FileNotFoundError as exc:
            raise StoreError(f"no {name!r} for {subject} in {redact_url(self.url)}") from exc

    def _require_writable(self) -> None:
        if self.mode == "r":
            raise StoreError(f"{self!r} is read-only; open it with mode='a' to write")

    # -- reading -----------------------------------------------------------------------------

    def read_attrs(self, subject: str, name: str) -> dict[str, Any]:
        """Geometry and provenance attributes of a complete volume (affine as nested lists)."""
        return dict(self._level0(subject, name).attrs)

    def read_volume(self, subject: str, name: str, *, verify: bool = True) -> Volume:
        """The volume as written: ``(X, Y, Z)`` voxels, same dtype, the exact affine.

        ``verify`` (default) checks the voxels against the checksums written with them, and
        the stored chunks against their sizes (a deleted chunk would read as zeros).

        Raises
        ------
        DamagedVolumeError
            A chunk was deleted, truncated or changed since it was written, or cannot be
            decoded; the message names the subject, the volume and the chunks.
        """
        array = self._level0(subject, name)
        recorded = self._checksums(subject, name) if verify else None
        if recorded is not None:
            self._raise_if(
                subject,
                name,
                _checksums.check_sizes(recorded, array, self._stored_sizes(subject, name)),
            )
        try:
            zyx = np.asarray(array[...])
        except OSError:
            raise
        except Exception as exc:  # a codec's error on damaged bytes (Zstd, ...)
            self._raise_if(subject, name, [f"cannot be decoded ({type(exc).__name__}: {exc})"])
            raise
        if recorded is not None:
            self._raise_if(subject, name, _checksums.check_voxels(recorded, array, zyx.__getitem__))
        data = np.ascontiguousarray(zyx.transpose(2, 1, 0))
        return Volume(data, np.asarray(array.attrs["affine"], dtype=float))

    def verify_volume(self, subject: str, name: str, *, full: bool = False) -> bool:
        """Check a complete volume against the checksums written with it, without using it.

        The quick check (default) compares the size of every stored chunk with the size
        written, from one listing and without reading a voxel: it finds deleted and truncated
        chunks. ``full`` also reads every voxel against its digest: any change, a flipped bit
        included. Returns False for a volume written before checksums were (then only a
        ``full`` check can find chunks that do not decode), True when it was checked.

        Raises
        ------
        DamagedVolumeError
            Naming the subject, the volume and the chunks that differ.
        """
        array = self._level0(subject, name)
        recorded = self._checksums(subject, name)
        if recorded is None:
            if full:
                self.read_volume(subject, name, verify=False)  # decodes every chunk
            return False
        self._raise_if(
            subject,
            name,
            _checksums.check_sizes(recorded, array, self._stored_sizes(subject, name)),
        )
        if full:
            problems = _checksums.check_voxels(recorded, array, lambda box: np.asarray(array[box]))
            self._raise_if(subject, name, problems)
        return True

    def _checksums(self, subject: str, name: str) -> dict[str, Any] | None:
        group = self._group(subject, name)
        ours = {} if group is None else group.attrs.get(_ATTR) or {}
        recorded = ours.get("checksums") if isinstance(ours, dict) else None
        return recorded if isinstance(recorded, dict) else None

    def _stored_sizes(self, subject: str, name: str) -> dict[str, int]:
        """Size of each stored chunk object of a volume's level-0 array, by chunk key."""
        group = self._group(subject, name)  # in image/labels/, or beside the image (older)
        rel = f"{group.path if group is not None else _volume_path(subject, name)}/{LEVEL}"
        return _checksums.stored_sizes(self.url, rel, self._storage_options)

    def _raise_if(self, subject: str, name: str, problems: list[str]) -> None:
        if not problems:
            return
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise DamagedVolumeError(
            f"{name!r} of {subject} in {redact_url(self.url)} is damaged: "
            f"{'; '.join(problems[:3])}{more}",
            volume=name,
        )

    def open_array(self, subject: str, name: str) -> VoxelView:
        """Lazy ``(X, Y, Z)`` view of a volume: slicing it reads only the chunks it needs.

        What a task holding a store key uses to fetch a cutout window instead of the volume.
        """
        return VoxelView(self._level0(subject, name), what=f"{name!r} of {subject}")

    def open_xarray(self, subject: str, name: str) -> xr.DataArray:
        """Lazy (dask-backed) ``DataArray`` with dims ``(z, y, x)`` and mm coordinates.

        Attributes carry ``affine`` (4x4, voxel (i, j, k) -> RAS+ mm), ``spacing`` (mm along
        i, j, k) and ``orientation``; coordinates are the axis-aligned part (see ``_ngff``).
        """
        import xarray as xr

        array = self._level0(subject, name)
        group = self._group(subject, name)
        assert group is not None  # _level0 found it
        ds = xr.open_zarr(self._zstore, group=group.path, consolidated=False, zarr_format=3)
        affine = np.asarray(array.attrs["affine"], dtype=float)
        coords = _ngff.axis_coords(affine, tuple(array.shape[::-1]))
        da = ds[LEVEL].rename(name).assign_coords(coords)
        for dim in _ngff.DIMS:
            da[dim].attrs["units"] = "mm"
        da.attrs.update(array.attrs.asdict(), subject=subject)
        return da

    def _level0(self, subject: str, name: str) -> zarr.Array:
        if not self.has_volume(subject, name):
            raise StoreError(
                f"{name!r} of {subject} is missing or incomplete in {redact_url(self.url)}; "
                f"complete volumes: {self.volumes(subject)}"
            )
        group = self._group(subject, name)
        level0 = None if group is None else group.get(LEVEL)
        if not isinstance(level0, zarr.Array):  # a complete volume always has one
            raise StoreError(
                f"{name!r} of {subject} in {redact_url(self.url)} has no level-0 array; "
                "delete the volume and run again to rewrite it"
            )
        return level0


class VoxelView:
    """``(X, Y, Z)`` indexing over an array stored as ``(Z, Y, X)`` (basic slices only).

    A window that cannot be decoded (damaged chunks) is a `DamagedVolumeError` naming
    ``what`` (the volume and subject).
    """

    def __init__(self, array: zarr.Array, *, what: str = "volume") -> None:
        self._array = array
        self._what = what
        self.shape = tuple(int(s) for s in array.shape[::-1])
        self.dtype = array.dtype
        self.ndim = 3

    def __getitem__(self, index: tuple[slice, slice, slice]) -> np.ndarray:
        if not (isinstance(index, tuple) and len(index) == 3):
            raise IndexError("index a VoxelView with three slices (x, y, z)")
        try:
            window = np.asarray(self._array[index[::-1]])
        except OSError:
            raise
        except Exception as exc:  # a codec's error on damaged bytes (Zstd, ...)
            raise DamagedVolumeError(
                f"{self._what} is damaged: a window cannot be decoded ({type(exc).__name__}: {exc})"
            ) from exc
        return window.transpose(2, 1, 0)


def _volume_path(subject: str, name: str) -> str:
    """Where a volume's group is: masks in the image's NGFF ``labels/`` group, the rest beside
    the image."""
    subject, name = validate_subject_key(subject), _check_name(name)
    return f"{subject}/{IMAGE}/labels/{name}" if name in LABELS else f"{subject}/{name}"


def _label_names(name: str, data: np.ndarray) -> dict[int, str]:
    """``{label value: name}`` of the labels in a mask, for NGFF's colours and properties."""
    if not np.issubdtype(data.dtype, np.integer) or data.size == 0 or data.min() < 0:
        return {}
    values = [int(v) for v in np.flatnonzero(np.bincount(data.ravel())) if v]
    if "semantic" in name:
        return {v: SEMANTIC_NAMES.get(v, str(v)).replace("_", " ") for v in values}
    return {v: instance_name(v) for v in values}


def _geometry_attrs(vol: Volume, extra: dict[str, Any]) -> dict[str, Any]:
    """Geometry first, then provenance extras; URLs in extras are redacted."""
    clean = {
        k: redact_url(v) if isinstance(v, str) and is_remote(v) else v for k, v in extra.items()
    }
    return {
        "affine": [[float(x) for x in row] for row in np.asarray(vol.affine, dtype=float)],
        "spacing": list(vol.spacing),
        "orientation": "".join(vol.orientation),
        "shape": list(vol.shape),
        "dtype": str(np.dtype(vol.data.dtype).newbyteorder("=")),
        "axes": "stored (z, y, x) = NIfTI voxel axes (k, j, i)",
        **clean,
    }
