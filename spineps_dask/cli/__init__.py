"""The ``spineps-dask`` command line: a thin shell over the package, one module per command group.

Heavy imports (torch, nnU-Net, distributed) happen inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import importlib
import logging

import typer

app = typer.Typer(
    name="spineps-dask",
    help="Whole-spine MRI segmentation (SPINEPS) for whole cohorts, on a laptop or a Dask cluster.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# Each module has ``register(app)``; add a module here to add its commands.
_COMMAND_MODULES: tuple[str, ...] = (
    "phantom",
    "store",
    "run",
    "segment",
    "models",
    "evaluate",
    "demo",
    "biomarkers",
    "report",
    "sweep",
    "verify",
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


for _name in _COMMAND_MODULES:
    importlib.import_module(f"spineps_dask.cli.{_name}").register(app)


def main() -> None:
    """Console-script entry point."""
    app()
