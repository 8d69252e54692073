"""Checkpoint loading refuses files that are not checkpoints with a ModelError naming the file."""

from __future__ import annotations

import pytest

from spineps_dask.errors import ModelError
from spineps_dask.models.checkpoint import load_checkpoint


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"this is not a checkpoint\n" * 10, "is not a PyTorch checkpoint"),
        (b"\x80\x02garbage", "is not a PyTorch checkpoint"),
        (b"", "cannot read checkpoint"),
        (b"PK\x03\x04" + b"\0" * 40, "cannot read checkpoint|is not a PyTorch checkpoint"),
    ],
)
def test_a_file_that_is_not_a_checkpoint_is_a_model_error(tmp_path, content, message):
    """Text, a broken pickle, an empty file, a broken zip: never a stray IndexError/KeyError."""
    path = tmp_path / "checkpoint_final.pth"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        load_checkpoint(path)
