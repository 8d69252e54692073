"""The distributed shell: schedules the pipeline's plain functions on a Dask cluster.

Nothing here knows image processing; tasks move store keys and small arrays. `window` is the
one bounded-window scheduler (the run's and the sweep's), `outcomes` the types every task
returns, `steps` the only caller of the pipeline's stage functions, `products` what a
finished subject leaves in the store, `runner` and `resume` the run itself.
"""
