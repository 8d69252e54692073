"""Options that several commands share, defined once: where the work runs (``run``, ``ingest``)
and which models name what (``run``, ``segment``)."""

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

_MODEL_HELP = "Model folder, or a name under $SPINEPS_SEGMENTOR_MODELS (default: shipped demo)."
SemanticModel = Annotated[str | None, typer.Option("--semantic-model", help=_MODEL_HELP)]
InstanceModel = Annotated[str | None, typer.Option("--instance-model", help=_MODEL_HELP)]
LabelingModel = Annotated[
    str | None,
    typer.Option(
        "--labeling-model",
        help="Vertebra labelling model: a folder, a name under $SPINEPS_SEGMENTOR_MODELS, or "
        "'none' (name by counting from C2 / the sacrum). Default: the shipped demo model "
        "(trained on phantoms; on real scans give the published t2w_labeling).",
    ),
]
Naming = Annotated[
    str | None,
    typer.Option(
        "--naming",
        help="How vertebrae are named: model, model+anchors (the model with the C2 / sacrum cues "
        "as evidence) or rule (counting, no model). Default: model+anchors when there is a "
        "labelling model, else rule; model naming without a labelling model is an error.",
    ),
]
