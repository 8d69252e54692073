"""The architecture and the types, checked on every CI run (``python -m pytest``).

Protects: the layer contracts in ``pyproject.toml`` (the pipeline imports no dask, torch, zarr
or io; io and metrics do not import each other; nothing below ``distributed/`` imports it or
the entry points above it; only the CLI imports ``training/``) and a clean mypy run over the
package. An import that breaks a layer, or a type error, fails the suite with the tool's own
report.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


#: The tools' own entry points, run in a fresh interpreter on the checkout in ``cwd``.
LINT = (
    "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
)
MYPY = "from mypy.main import main; main()"


def _python(code: str, *, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -c code`` in ``cwd``, with ``cwd``'s package first on the path; plain output."""
    env = {**os.environ, "PYTHONPATH": str(cwd), "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    done.stdout = re.sub(r"\x1b\[[0-9;]*m", "", done.stdout)  # the linter colours regardless
    return done


def test_layer_contracts_hold():
    done = _python(LINT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_forbidden_import_breaks_the_contracts(tmp_path):
    """The check is live: io importing metrics (a cycle this layout removed) fails it."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(
        ROOT / "spineps_dask",
        tmp_path / "spineps_dask",
        ignore=shutil.ignore_patterns("demo_models", "__pycache__"),
    )
    with open(tmp_path / "spineps_dask" / "io" / "names.py", "a") as fh:
        fh.write("\nimport spineps_dask.metrics.tables\n")
    done = _python(LINT, cwd=tmp_path)
    assert done.returncode != 0
    assert "io and metrics do not import each other BROKEN" in done.stdout
    assert "spineps_dask.io.names -> spineps_dask.metrics.tables" in done.stdout


def test_the_package_type_checks():
    """mypy with pyproject's settings (its cache in .mypy_cache keeps reruns fast)."""
    done = _python(MYPY, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Success: no issues found" in done.stdout
