"""OS errors at the storage boundary, turned into a `StoreError` that names the path and the fix.

A full or read-only disk is not a problem of one subject: the message says which location
could not be written and what to do, and that re-running resumes (nothing finished is lost).
"""

from __future__ import annotations

import errno
import re

from spineps_dask.errors import StoreError

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def _errno_of(exc: OSError) -> int | None:
    """``exc.errno``, or the ``[Errno N]`` pyarrow puts only in its message."""
    if exc.errno is not None:
        return exc.errno
    m = re.search(r"errno (\d+)", str(exc), re.I)
    return int(m.group(1)) if m else None


def store_write_error(exc: OSError, what: str, where: str) -> StoreError:
    """A `StoreError` for ``exc`` raised while writing ``what`` at ``where`` (redacted URL)."""
    code = _errno_of(exc)
    reason = exc.strerror or str(exc)
    if code in _FULL:
        fix = "the disk (or quota) holding it is full: free space there or move the store"
    elif code in _READ_ONLY:
        fix = "it is not writable (read-only file system or permissions): make it writable"
    else:
        fix = "check the disk or object store"
    return StoreError(
        f"cannot write {what} at {where}: {reason}; {fix}, then re-run the same command "
        "(finished subjects are kept and skipped)"
    )
