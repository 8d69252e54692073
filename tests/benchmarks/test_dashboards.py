"""Benchmark scripts start clusters like `spineps-dask run` does: scheduler and dashboard on
127.0.0.1 only, never on every interface of a shared machine."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCHMARKS = sorted((Path(__file__).resolve().parents[2] / "benchmarks").glob("*.py"))


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_clusters_bind_their_dashboard_to_localhost(script):
    """Every ``dashboard_address=`` a script passes is a literal on 127.0.0.1 (``":0"`` would
    listen on all interfaces), and every ``LocalCluster`` it starts says ``host="127.0.0.1"``."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        words = {k.arg: k.value for k in node.keywords if k.arg}
        if "dashboard_address" in words:
            value = words["dashboard_address"]
            assert isinstance(value, ast.Constant), f"{script.name}:{node.lineno}"
            assert str(value.value).startswith("127.0.0.1"), f"{script.name}:{node.lineno}"
        if getattr(node.func, "id", None) == "LocalCluster":
            host = words.get("host")
            assert isinstance(host, ast.Constant) and host.value == "127.0.0.1", (
                f"{script.name}:{node.lineno}: LocalCluster without host='127.0.0.1'"
            )
