"""Training budgets count CPU seconds, not wall seconds.

Protects: a demo training loop stops when its process has used ``budget_s`` CPU seconds,
whatever the wall clock says, so a run on a busy shared machine does the work it would do on
an idle one (and a long wait for the CPU does not cut it short); the learning rate follows the
nearer limit, so a run stopped by its budget ends at the low rate.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from spineps_dask.training import demo_loops


class _Clock:
    """A fake clock: every reading advances by ``step`` seconds."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def _batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(rng.normal(size=(1, 1, 4, 4, 4)).astype(np.float32))
    return x, torch.from_numpy(rng.integers(0, 2, size=(1, 4, 4, 4)))


@pytest.mark.parametrize("cpu_per_reading, expect_stop", [(1.0, True), (0.0, False)])
def test_the_budget_counts_cpu_seconds(monkeypatch, cpu_per_reading, expect_stop):
    net = nn.Conv3d(1, 2, 1)
    rates = []
    real_step = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    monkeypatch.setattr(time, "process_time", _Clock(cpu_per_reading))
    monkeypatch.setattr(time, "time", _Clock(1000.0))  # the wall clock races: never a limit
    out = demo_loops.run_loop(
        net, _batch, iterations=40, budget_s=10.0, lr=1.0, seed=0, name="budget"
    )
    if expect_stop:  # two CPU-clock readings per step: the budget ends it after a few steps
        assert 0 < out.iterations < 10
        assert rates[-1] < 0.5  # the schedule followed the budget down
    else:
        assert out.iterations == 40 and rates[-1] == pytest.approx(1.0 - 0.95 * 39 / 40)
