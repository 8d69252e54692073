"""Help texts of the options that several commands share (one wording for `segment` and `run`)."""

from __future__ import annotations

MODEL_HELP = "Model folder, or a name under $SPINEPS_SEGMENTOR_MODELS (default: shipped demo)."
LABELING_HELP = (
    "Vertebra labelling model: a folder, a name under $SPINEPS_SEGMENTOR_MODELS, or 'none' "
    "(name by counting from C2 / the sacrum). Default: the shipped demo model; while the "
    "package ships none, the rule names the vertebrae."
)
NAMING_HELP = (
    "How vertebrae are named: model, model+anchors (the model with the C2 / sacrum cues as "
    "evidence) or rule (counting, no model). Default: model+anchors when there is a labelling "
    "model, else rule; model naming without a labelling model is an error."
)
