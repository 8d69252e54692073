"""Smoke run of the throughput benchmark on 2 subjects (CI runs no benchmark beyond this).

Protects: the script runs both paths end to end on real workers with the shipped models,
prints its table, and ends with the summary figure a reader of RESULTS.md looks for.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE_ARGS = ("--subjects", "2", "--layouts", "2x1", "--no-n4")
SUMMARY = re.compile(r"best throughput ratio dask/sequential, end to end: (\d+\.\d\d)")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_throughput_benchmark_two_subjects(tmp_path):
    """Both paths process both subjects; the last line is the end-to-end ratio."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "benchmarks/throughput.py", *SMOKE_ARGS, "--work", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert any(line.startswith("sequential (") for line in lines)
    assert any(line.startswith("dask 2x1") for line in lines)
    last = SUMMARY.fullmatch(lines[-1])
    assert last is not None, lines[-1]
    assert float(last.group(1)) > 0
    assert len(list((tmp_path / "seq").glob("*_biomarkers.parquet"))) == 2
