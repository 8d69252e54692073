"""Seeded synthetic spine phantoms with exact ground truth (issue 3, item 3).

Training data for the demo models and the reference for every accuracy figure.
"""

from spineps_dask.phantom.generate import Phantom, instance_centroids, make_phantom
from spineps_dask.phantom.spec import PhantomSpec, replace_spec, sample_spec

__all__ = [
    "Phantom",
    "PhantomSpec",
    "instance_centroids",
    "make_phantom",
    "replace_spec",
    "sample_spec",
]
