"""spineps-dask: the SPINEPS whole-spine MRI segmentation method as a distributed batch system."""

__version__ = "0.1.0"
