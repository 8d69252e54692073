"""Options that several commands share, defined once: where the work runs (``run``, ``ingest``)."""

from __future__ import annotations

from typing import Annotated

import typer

Cluster = Annotated[
    str,
    typer.Option(
        "--cluster",
        "-c",
        help="local | cuda | slurm | gateway | kubernetes (configs shipped in the package, "
        "or your own in $SPINEPS_DASK_CLUSTER_DIR) | a YAML file | tcp://address",
    ),
]
Workers = Annotated[
    int | None, typer.Option("--workers", "-j", help="Workers for --cluster local.")
]
Threads = Annotated[int | None, typer.Option("--threads", help="Threads per worker (torch, N4).")]
