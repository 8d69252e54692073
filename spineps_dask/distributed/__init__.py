"""The distributed shell: schedules the pipeline's plain functions on a Dask cluster.

Nothing here knows image processing; tasks move store keys and small arrays.
"""
