"""Atomic file writes: a temporary name beside the target, then one rename over it.

Readers never see half a file, and a failed write (a full disk, an error in the writer) leaves
no temporary file behind. Every local file this package writes goes through `atomic_write`;
object stores get the same guarantee from a single ``put``.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it over ``path``.

    The temporary name starts with a dot, carries the process and thread (two writers of one
    file never share it) and ends with ``path``'s own suffixes, because some writers choose
    the format from them (nibabel gzips ``.nii.gz``). Parent folders are created.

    Examples
    --------
    >>> atomic_write("out/table.csv", lambda tmp: df.to_csv(tmp))  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{threading.get_ident()}"
    tmp = path.with_name(f".{path.name}.{tag}.tmp{''.join(path.suffixes)}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_file(data: bytes | str, path: str | os.PathLike) -> Path:
    """Atomic write of bytes or UTF-8 text."""
    blob = data.encode("utf-8") if isinstance(data, str) else data
    return atomic_write(path, lambda tmp: tmp.write_bytes(blob))


def write_json(obj: object, path: str | os.PathLike) -> Path:
    """Atomic JSON write (indented by one space, as the reference's centroid files)."""
    return write_file(json.dumps(obj, indent=1), path)
