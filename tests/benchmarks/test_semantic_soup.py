"""The weight average of `benchmarks/semantic_soup.py` (issue 17, session 19)."""

from __future__ import annotations

import torch

from benchmarks.semantic_soup import average_weights


def test_average_weights_means_float_tensors_and_keeps_counters():
    """Each float tensor is the mean of the states' (in its own dtype); integer entries, such
    as a norm layer's step counter, are the first state's, not averaged."""
    a = {"w": torch.tensor([1.0, 2.0], dtype=torch.float32), "n": torch.tensor(3)}
    b = {"w": torch.tensor([3.0, 6.0], dtype=torch.float32), "n": torch.tensor(9)}
    out = average_weights([a, b])
    assert torch.equal(out["w"], torch.tensor([2.0, 4.0]))
    assert out["w"].dtype == torch.float32
    assert out["n"].item() == 3
