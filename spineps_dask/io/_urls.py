"""Store locations: local path or fsspec URL, and redaction of secrets before anything is logged."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Query parameters that carry credentials in presigned / SAS / token URLs.
_SECRET_QUERY = re.compile(
    r"(sig|signature|token|secret|password|key|credential|x-amz-.*|se|sp|sv)$", re.I
)


def is_remote(url: str | os.PathLike) -> bool:
    """True for ``s3://``, ``gs://``, ``memory://`` ... ; False for plain paths and ``file://``."""
    text = os.fspath(url)
    scheme = urlsplit(text).scheme
    return "://" in text and scheme not in ("", "file")


def local_path(url: str | os.PathLike) -> Path:
    """The filesystem path of a local location (``file://`` prefix removed)."""
    text = os.fspath(url)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return Path(text)


def join_url(url: str | os.PathLike, name: str) -> str:
    """``url`` + ``/name`` for both local paths and URLs (``s3://bucket/x/name``)."""
    text = os.fspath(url)
    if not is_remote(text):
        return str(local_path(text) / name)
    return text.rstrip("/") + "/" + name


def redact_url(url: str | os.PathLike) -> str:
    """The URL with any password in the user part and secret query values replaced by ``***``.

    Examples
    --------
    >>> redact_url("s3://AKIA:abc@bucket/cohort.zarr?X-Amz-Signature=f00")
    's3://AKIA:***@bucket/cohort.zarr?X-Amz-Signature=%2A%2A%2A'
    """
    text = os.fspath(url)
    if not is_remote(text):
        return text
    parts = urlsplit(text)
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}:***@{host}" if ":" in user else f"***@{host}"
    query = urlencode(
        [(k, "***" if _SECRET_QUERY.match(k) else v) for k, v in parse_qsl(parts.query, True)]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
