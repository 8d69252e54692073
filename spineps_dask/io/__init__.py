"""All file access: NIfTI, BIDS names, the Zarr cohort store, the manifest."""
