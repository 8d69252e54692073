"""The weight average of `benchmarks/semantic_soup.py` (issue 17, session 19)."""

from __future__ import annotations

import pytest
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


def test_average_weights_refuses_states_of_different_networks():
    """Weights of another architecture (a key or a shape that differs) stop the soup with a
    clear error instead of a broadcast or a KeyError deep in the sum."""
    a = {"w": torch.zeros(2)}
    with pytest.raises(ValueError, match="another network"):
        average_weights([a, {"w": torch.zeros(3)}])
    with pytest.raises(ValueError, match="another network"):
        average_weights([a, {"v": torch.zeros(2)}])
