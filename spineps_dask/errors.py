"""Typed errors. Each carries the subject and step so a failed manifest row can say where."""

from __future__ import annotations


class SpinepsDaskError(Exception):
    """Base class: something about the input, a model or the store that a user can fix."""

    def __init__(self, message: str, *, subject: str | None = None, step: str | None = None):
        super().__init__(message)
        self.subject = subject
        self.step = step

    def __str__(self) -> str:
        where = ", ".join(x for x in (self.subject, self.step) if x)
        msg = super().__str__()
        return f"[{where}] {msg}" if where else msg


class InputError(SpinepsDaskError):
    """A scan (or reference mask) that cannot be segmented as given."""


class ModelError(SpinepsDaskError):
    """A model folder or checkpoint that is missing, broken or unsafe."""


class StoreError(SpinepsDaskError):
    """The cohort store cannot be read or written."""


class ClusterError(SpinepsDaskError):
    """A cluster that cannot be started, joined or used as asked (unknown name, missing extra,
    workers without the resources the tasks need)."""


class DownloadError(ModelError):
    """A model archive that could not be fetched (offline, refused, interrupted)."""


class DamagedVolumeError(StoreError):
    """A stored volume that no longer matches the checksums written with it (or cannot be
    decoded): a chunk deleted, truncated or changed. ``volume`` names it (``semantic``)."""

    def __init__(
        self,
        message: str,
        *,
        subject: str | None = None,
        step: str | None = None,
        volume: str | None = None,
    ):
        super().__init__(message, subject=subject, step=step)
        self.volume = volume
