"""The ``spineps-dask`` command line: a thin shell over the package, one module per command group.

Heavy imports (torch, nnU-Net, distributed) happen inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import importlib
import sys

import typer

from spineps_dask.cli._logging import configure_logging, hoist_verbosity

app = typer.Typer(
    name="spineps-dask",
    help="Whole-spine MRI segmentation (SPINEPS) for whole cohorts, on a laptop or a Dask cluster.",
    no_args_is_help=True,
    # Click's plain help: paragraphs re-wrapped to the terminal, long words never cut, flags
    # without a type label (rich's panels broke sentences at the docstring's line ends, cut
    # $SPINEPS_SEGMENTOR_MODELS at 80 columns and labelled every flag <bool>: issue 21 item 9).
    rich_markup_mode=None,
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
    verbose: int = typer.Option(
        0,
        "--verbose",
        "-v",
        count=True,
        show_default=False,
        help="More messages (-vv: debug). Also after the command.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Errors only. Also after the command."),
) -> None:
    configure_logging(-1 if quiet else verbose)


for _name in _COMMAND_MODULES:
    importlib.import_module(f"spineps_dask.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point; ``-v``/``-q`` may come before or after the subcommand."""
    args = sys.argv[1:] if argv is None else list(argv)
    app(args=hoist_verbosity(args), prog_name="spineps-dask")
