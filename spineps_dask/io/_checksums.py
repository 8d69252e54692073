"""Checksums of a volume's chunks: written with the volume, checked when it is read or skipped.

A complete volume records, per chunk of its level-0 array (C order over the chunk grid), a
BLAKE2b-64 digest of the chunk's voxels as written and the size of the stored chunk object
(-1: not stored, the chunk is all fill value and Zarr writes nothing for it). Digests are of
the voxels, not of the compressed bytes, so they come from the array in memory (no read-back
after a write) and a reader checks them on the voxels it decoded anyway.

Two checks (`check_sizes`, `check_voxels`): the sizes, from one listing, find a deleted or
truncated chunk (and a stray object where none was written) without reading a voxel; the
digests find any change at all, a flipped bit included, for the price of reading the volume.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import zarr

from spineps_dask.io._urls import is_remote, local_path

ALGORITHM = "blake2b-64 of each chunk's voxels (C order), chunks in C order"
ABSENT = -1  # stored size of a chunk that is all fill value (Zarr writes no object for it)


def chunk_boxes(shape: tuple[int, ...], chunks: tuple[int, ...]) -> Iterator[tuple[slice, ...]]:
    """The region of each chunk of an array, in C order over the chunk grid."""
    grid = [range(0, n, c) for n, c in zip(shape, chunks, strict=True)]
    for corner in itertools.product(*grid):
        yield tuple(slice(a, min(a + c, n)) for a, c, n in zip(corner, chunks, shape, strict=True))


def chunk_keys(array: zarr.Array) -> list[str]:
    """Each chunk's key inside its array (``c/0/1/2``), in C order over the chunk grid."""
    encode = array.metadata.chunk_key_encoding.encode_chunk_key  # type: ignore[union-attr]
    return [encode(ix) for ix in itertools.product(*(range(n) for n in array.cdata_shape))]


def digest(block: np.ndarray) -> str:
    """BLAKE2b-64 of a block's voxels in C order (16 hex digits)."""
    return hashlib.blake2b(np.ascontiguousarray(block).tobytes(), digest_size=8).hexdigest()


def record(data: np.ndarray, array: zarr.Array, stored: Mapping[str, int]) -> dict[str, Any]:
    """What a complete volume carries: the digest of each chunk of ``data`` (the voxels just
    written to ``array``) and the size of each stored chunk object (``stored``: key -> bytes)."""
    keys = chunk_keys(array)
    return {
        "algorithm": ALGORITHM,
        "digests": [digest(data[box]) for box in chunk_boxes(data.shape, array.chunks)],
        "sizes": [int(stored.get(k, ABSENT)) for k in keys],
    }


def check_sizes(
    recorded: Mapping[str, Any], array: zarr.Array, stored: Mapping[str, int]
) -> list[str]:
    """Chunks whose stored object is missing, of another size, or there though none was
    written; one phrase each (empty: all as written)."""
    problems = []
    for key, want in zip(chunk_keys(array), recorded["sizes"], strict=True):
        have = int(stored.get(key, ABSENT))
        if have == want:
            continue
        if have == ABSENT:
            problems.append(f"chunk {key} is missing (deleted?)")
        elif want == ABSENT:
            problems.append(f"chunk {key} is there though none was written ({have} bytes)")
        else:
            problems.append(f"chunk {key} has {have} bytes, {want} were written (truncated?)")
    return problems


def check_voxels(
    recorded: Mapping[str, Any],
    array: zarr.Array,
    read: Callable[[tuple[slice, ...]], np.ndarray],
) -> list[str]:
    """Chunks whose voxels (``read(region)``, decoded) differ from the digests written, or
    cannot be decoded at all."""
    problems = []
    keys = chunk_keys(array)
    boxes = chunk_boxes(tuple(array.shape), tuple(array.chunks))
    for key, box, want in zip(keys, boxes, recorded["digests"], strict=True):
        try:
            block = read(box)
        except OSError:  # the disk or the network, not the chunk: the caller's to report
            raise
        except Exception as exc:  # a codec's error on damaged bytes (Zstd, ...)
            problems.append(f"chunk {key} cannot be decoded ({type(exc).__name__}: {exc})")
            continue
        if digest(block) != want:
            problems.append(f"chunk {key} holds other voxels than were written")
    return problems


def stored_sizes(url: str, array_path: str, storage_options: Mapping[str, Any]) -> dict[str, int]:
    """Size in bytes of each stored chunk object of the array at ``array_path`` in the store
    at ``url``, by chunk key (``c/0/1/2``): one listing, no chunk is read."""
    if is_remote(url):
        import fsspec

        fs, root = fsspec.core.url_to_fs(url, **storage_options)
        base = f"{root.rstrip('/')}/{array_path}"
        found = fs.find(f"{base}/c", detail=True)
        return {
            path[len(base) + 1 :]: int(info["size"])
            for path, info in found.items()
            if info.get("type") == "file"
        }
    base_path = local_path(url) / array_path
    sizes = {}
    for folder, _, files in os.walk(base_path / "c"):
        for name in files:
            path = os.path.join(folder, name)
            sizes[os.path.relpath(path, base_path).replace(os.sep, "/")] = os.stat(path).st_size
    return sizes
