"""How loud the command line is: quiet by default, ``-v``/``-vv`` for more, ``-q`` for less.

What a command did is printed by the command itself (progress bars, summary tables, failed
subjects with their reasons), so logging is only for what those leave out:

=========  ==========================  ===========================================
flag       spineps_dask (this process)  distributed, numexpr, ... (and the workers)
=========  ==========================  ===========================================
``-q``     errors                       errors
(none)     warnings                     errors
``-v``     info                         warnings (info from spineps_dask workers)
``-vv``    debug                        info
=========  ==========================  ===========================================

distributed's own loggers are set through Dask's config variable in the environment before
distributed is imported, so worker processes that a local cluster spawns inherit the level.
"""

from __future__ import annotations

import logging
import os
import warnings

#: Flags that set the level, accepted before or after the subcommand (`hoist_verbosity`).
VERBOSITY_FLAGS = ("-v", "-vv", "-vvv", "--verbose", "-q", "--quiet")
_THIRD_PARTY = ("distributed", "numexpr", "bids2table", "nnunetv2", "asyncio", "tornado", "bokeh")


def configure_logging(verbosity: int) -> None:
    """Set up logging for a command: ``verbosity`` -1 (``-q``), 0 (default), 1, 2 (``-vv``)."""
    own = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    others = {-1: logging.ERROR, 0: logging.ERROR, 1: logging.WARNING}.get(verbosity, logging.INFO)
    fmt = "%(levelname)s %(name)s: %(message)s"
    if verbosity >= 2:
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=own, format=fmt, force=True)
    logging.getLogger("spineps_dask").setLevel(own)
    for name in _THIRD_PARTY:
        logging.getLogger(name).setLevel(others)
    # Read by distributed when it is imported, here and in every worker process it spawns.
    os.environ["DASK_LOGGING__DISTRIBUTED"] = logging.getLevelName(others).lower()
    if verbosity < 1:  # the dashboard's address is printed with the port it got
        warnings.filterwarnings("ignore", r"Port \d+ is already in use", UserWarning)


def hoist_verbosity(args: list[str]) -> list[str]:
    """Move ``-v``/``-q`` flags given after the subcommand in front of it, where the root
    command reads them (``spineps-dask run STORE -v`` = ``spineps-dask -v run STORE``).

    Arguments after ``--`` are left alone.

    Examples
    --------
    >>> hoist_verbosity(["run", "s.zarr", "-v", "--", "-q"])
    ['-v', 'run', 's.zarr', '--', '-q']
    """
    end = args.index("--") if "--" in args else len(args)
    flags = [a for a in args[:end] if a in VERBOSITY_FLAGS]
    rest = [a for a in args[:end] if a not in VERBOSITY_FLAGS]
    return [*flags, *rest, *args[end:]]
