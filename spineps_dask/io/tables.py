"""Tables as Parquet: files written atomically, and bytes for files kept inside the store."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pandas as pd

from spineps_dask.errors import InputError
from spineps_dask.io.atomic import atomic_write


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write a table as Parquet under a temporary name, then rename (readers never see half)."""
    return atomic_write(path, lambda tmp: df.to_parquet(tmp, index=False))


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by :func:`write_table`.

    Raises
    ------
    InputError
        There is no file at ``path``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such table: {path}")
    return pd.read_parquet(path)


def table_bytes(df: pd.DataFrame) -> bytes:
    """The table as Parquet bytes (a per-subject table stored with ``write_blob``)."""
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def table_from_bytes(blob: bytes) -> pd.DataFrame:
    """Inverse of :func:`table_bytes`."""
    return pd.read_parquet(io.BytesIO(blob))
