"""Download the published SPINEPS models from their releases (or a mirror) and install them.

Only the standard library talks HTTP here (``urllib``); it honours ``https_proxy``/``no_proxy``.
A release base URL is ``<base>/<version>/<archive>``, the layout of the reference's GitHub
releases; an institution's mirror (``--url`` or ``$SPINEPS_DASK_MODELS_URL``) uses the same
layout, and may be a ``file://`` folder on a shared file system.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import shlex
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from spineps_dask._version import __version__
from spineps_dask.config import models_url
from spineps_dask.errors import DownloadError
from spineps_dask.models._archive import extract_archive, model_root
from spineps_dask.models.install import Installed, install_into, install_root
from spineps_dask.models.registry import published_model

logger = logging.getLogger(__name__)

#: ``progress(bytes_done, bytes_total_or_None)``, called after each block.
Progress = Callable[[int, int | None], None]

_SCHEMES = ("http", "https", "file")
_BLOCK = 1 << 20


def download_model(
    name: str,
    *,
    models: str | Path | None = None,
    base_url: str | None = None,
    progress: Progress | None = None,
    timeout: float = 60.0,
    load: bool = False,
) -> Installed:
    """Download the published model ``name`` and install it into the models directory.

    Nothing is downloaded when the model is installed already (its folder validates).

    Parameters
    ----------
    name
        A published model (``t2w``, ``t1w``, ``vibe``, ``ct``, ``instance``, ``ct_instance``,
        ``t2w_labeling``, ``ct_labeling``).
    models
        The models directory (default: ``$SPINEPS_SEGMENTOR_MODELS``, else the default one).
    base_url
        The release base URL (default: ``$SPINEPS_DASK_MODELS_URL``, else the reference's).
    progress
        Called with the bytes received so far and the total (``None`` when not announced).
    timeout
        Seconds without an answer from the server before giving up.
    load
        Also load the weights on the CPU, as ``models check`` does.

    Raises
    ------
    DownloadError
        The server cannot be reached (offline), answers with an error, or the transfer breaks
        off; the message says how to install the archive by hand.
    ModelError
        The archive is corrupt, unsafe or holds no valid model folder of the expected kind.

    Examples
    --------
    >>> download_model("t2w", models="/data/spineps-models")  # doctest: +SKIP
    Installed(path=PosixPath('/data/spineps-models/T2w_semantic_v1.0.9'), ...)
    """
    published = published_model(name)
    root = install_root(models)
    url = published.url(base_url or models_url())

    def fill(staging: Path) -> tuple[Path, dict[str, Any]]:
        archive = staging / published.archive
        logger.info("downloading %s", url)
        sha256 = fetch(url, archive, progress=progress, timeout=timeout)
        extract_archive(archive, staging / "extracted")
        return model_root(staging / "extracted"), {"source": url, "sha256": sha256}

    try:
        return install_into(
            root, published.installed_name, fill, published=published, load=load, origin=url
        )
    except DownloadError as err:
        into = "" if models is None else f" --models {shlex.quote(str(root))}"
        raise DownloadError(
            f"{err}. Nothing was installed. To install by hand, download {url} on a machine "
            f"with internet, copy {published.archive} here and run: spineps-dask models "
            f"install {published.archive}{into}  (models directory: {root})"
        ) from err


def fetch(url: str, dest: Path, *, progress: Progress | None = None, timeout: float = 60.0) -> str:
    """Stream ``url`` into the file ``dest``; return the SHA-256 of what arrived.

    Raises
    ------
    DownloadError
        Unsupported scheme, unreachable server, an HTTP error, or fewer bytes than announced.
    """
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise DownloadError(
            f"cannot download {url}: the release URL must start with http://, https:// or "
            "file:// (set it with --url or $SPINEPS_DASK_MODELS_URL)"
        )
    request = urllib.request.Request(url, headers={"User-Agent": f"spineps-dask/{__version__}"})
    h = hashlib.sha256()
    done, total = 0, None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, dest.open("wb") as fh:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            # read1: whatever arrived, up to a block, so progress moves on slow links.
            while block := response.read1(_BLOCK):
                fh.write(block)
                h.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
    except urllib.error.HTTPError as err:
        raise DownloadError(
            f"{url} answered HTTP {err.code} ({err.reason}); check the release URL "
            "(--url or $SPINEPS_DASK_MODELS_URL)"
        ) from err
    except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as err:
        reason = getattr(err, "reason", None) or err
        if done:
            raise _interrupted(url, done, total, reason) from err
        if scheme == "file":
            raise DownloadError(
                f"cannot read {url} ({reason}); check the mirror folder (--url or "
                "$SPINEPS_DASK_MODELS_URL)"
            ) from err
        raise DownloadError(
            f"cannot reach {url} ({reason}); is this machine offline? Compute nodes of clusters "
            "often are. Use a mirror you can reach (--url or $SPINEPS_DASK_MODELS_URL)"
        ) from err
    if total is not None and done != total:
        raise _interrupted(url, done, total, "the connection closed early")
    return h.hexdigest()


def _interrupted(url: str, done: int, total: int | None, reason: object) -> DownloadError:
    of = f" of {total}" if total is not None else ""
    return DownloadError(
        f"the download of {url} broke off after {done}{of} bytes ({reason}); run the command again"
    )
