"""Function-preserving widening of `benchmarks/widen_semantic.py` (issue 17, session 27)."""

from __future__ import annotations

import pytest
import torch

from benchmarks.widen_semantic import widen_state
from spineps_dask.models.nnunet_folder import PlainUNetSpec, build_network, make_plans


def _net(features: tuple[int, ...]) -> torch.nn.Module:
    spec = PlainUNetSpec(features=features, strides=((1, 1, 1), (2, 2, 2), (2, 2, 1)))
    return build_network(make_plans(spec), n_classes=4).eval()


def test_a_widened_network_computes_what_the_narrow_one_did():
    """Every stage wider (the decoder's concatenated skip inputs included), the output is the
    narrow network's to float rounding; the new channels carry fresh, not zero, weights, so
    training can use them."""
    torch.manual_seed(0)
    narrow, wide = _net((4, 8, 16)), _net((6, 12, 24))
    wide.load_state_dict(widen_state(narrow.state_dict(), wide.state_dict()))
    x = torch.randn(1, 1, 16, 16, 8)
    with torch.no_grad():
        assert torch.allclose(narrow(x), wide(x), atol=1e-4)
    first = wide.state_dict()["encoder.stages.0.0.convs.0.conv.weight"]
    assert first[4:].abs().sum() > 0


def test_widening_refuses_another_network():
    """Weights of a network with other layers (a key that differs) stop with a clear error."""
    narrow, wide = _net((4, 8, 16)), _net((6, 12, 24))
    state = narrow.state_dict()
    state.pop(next(iter(state)))
    with pytest.raises(ValueError, match="differ"):
        widen_state(state, wide.state_dict())
