"""Damage a stored chunk the ways a disk or a careless hand does: truncate, flip, delete."""

from __future__ import annotations

from pathlib import Path

HOW = ("truncated", "flipped", "deleted")


def damage_chunk(store_dir: Path, subject: str, name: str, how: str) -> str:
    """Damage the largest stored chunk of ``subject``/``name``; returns its key (``c/0/1/2``).

    ``truncated``: its second half cut off; ``flipped``: one bit in its middle inverted, same
    size; ``deleted``: removed (Zarr then reads the chunk as zeros, without a word).
    """
    labels = Path(store_dir) / subject / "image" / "labels" / name  # masks live here
    level0 = (labels if labels.is_dir() else Path(store_dir) / subject / name) / "0"
    chunk = max(
        (p for p in (level0 / "c").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size
    )
    blob = bytearray(chunk.read_bytes())
    if how == "truncated":
        chunk.write_bytes(bytes(blob[: len(blob) // 2]))
    elif how == "flipped":
        blob[len(blob) // 2] ^= 0x10
        chunk.write_bytes(bytes(blob))
    elif how == "deleted":
        chunk.unlink()
    else:
        raise ValueError(f"unknown damage {how!r}; use one of {HOW}")
    return chunk.relative_to(level0).as_posix()
