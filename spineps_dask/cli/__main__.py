"""``python -m spineps_dask.cli``: the same as the ``spineps-dask`` console script."""

from spineps_dask.cli import main

main()
