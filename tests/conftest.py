"""Fixtures shared across test folders: a small real disk that can be filled or made read-only,
a local S3 server (moto) for object-store tests, and real worker processes for runner tests."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from spineps_dask.distributed.cluster import MODEL_RESOURCE
from spineps_dask.distributed.model_cache import WorkerSetup


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (pyproject's addopts): one process per core, at most four. Each imports
    torch and starts its own Dask clusters, so more would only trade cores for memory."""
    return min(4, os.cpu_count() or 1)


@pytest.fixture(autouse=True)
def _no_handler_left_on_a_closed_stream():
    """A command run in-process (CliRunner, ``main``) sets up logging (`configure_logging`):
    its root handler writes to the stderr that CliRunner lent it and closed afterwards, so a
    later test's warnings would end in "Logging error ... I/O operation on closed file".
    Handlers a test added are taken off the root logger when it ends."""
    root = logging.getLogger()
    before = set(root.handlers)
    yield
    for handler in list(root.handlers):
        if type(handler) is logging.StreamHandler and handler not in before:
            root.removeHandler(handler)


class SmallDisk:
    """A small tmpfs mounted in the test's folder: a real file system whose writes fail
    with the kernel's own ENOSPC (``fill``) or EROFS (``read_only``), even for root, for whom
    ``chmod`` stops nothing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / "filler.bin"

    def fill(self) -> None:
        """Write a filler file until the kernel says the disk is full."""
        block = b"\0" * (64 << 10)
        with open(self._filler, "ab", buffering=0) as fh:  # unbuffered: nothing left on close
            try:
                while True:
                    fh.write(block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
        with pytest.raises(OSError, match="No space left"):
            (self.path / "probe").write_bytes(block)

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)
        (self.path / "probe").unlink(missing_ok=True)

    def read_only(self, on: bool = True) -> None:
        subprocess.run(
            ["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path)], check=True
        )


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 128 MiB tmpfs at ``tmp_path/disk`` (skipped where mounting is not allowed); a phantom
    scan takes ~5 MB in a store."""
    path = tmp_path / "disk"
    path.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small disk")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", str(path)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.decode().strip()}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


S3_SECRET = "moto-secret-not-for-logs"


@pytest.fixture(scope="session")
def s3_options():
    """A moto S3 server on a free port of 127.0.0.1 with one bucket ``cohort``; stopped at the
    end of the session. The options carry a secret that must never show up in logs or files."""
    pytest.importorskip("s3fs", reason="s3fs is in the 'test' extra: pip install '.[test]'")
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is in the 'test' extra")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    options = {
        "key": "testing",
        "secret": S3_SECRET,
        "endpoint_url": f"http://127.0.0.1:{port}",
        "client_kwargs": {"region_name": "eu-central-1"},
        "skip_instance_cache": True,
    }
    try:
        import s3fs

        s3fs.S3FileSystem(**options).mkdir("cohort")
        yield options
    finally:
        server.stop()


@pytest.fixture(scope="session")
def model_workers():
    """``with model_workers(2) as client``: a fixture, not an import, because a module that
    imports ``tests.conftest`` cannot be unpickled on a worker process where ``tests`` is not a
    package (a WorkerPlugin defined in a test module is pickled by reference; CI run 12)."""
    return _model_workers


@contextlib.contextmanager
def _model_workers(n_workers: int = 2, **cluster_options):
    """A client of ``n_workers`` real worker processes on 127.0.0.1, one model slot and one torch
    thread each, set up as ``spineps-dask run`` sets up its workers."""
    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        resources={MODEL_RESOURCE: 1},
        dashboard_address="127.0.0.1:0",
        host="127.0.0.1",
        **cluster_options,
    )
    client = Client(cluster)
    try:
        client.register_plugin(WorkerSetup(threads=1))
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="session")
def release_archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """``"v1.0.9/t2w.zip"`` etc. -> zip bytes, built once from the shipped demo models."""
    from tests.models.releases import release_archives

    return release_archives(tmp_path_factory.mktemp("releases"))


@pytest.fixture
def release_server(release_archives: dict[str, bytes]):
    """A model release server on 127.0.0.1 (``tests/models/releases.py``) serving the archives;
    tests may replace or add files."""
    from tests.models.releases import ReleaseServer

    server = ReleaseServer()
    server.files.update(release_archives)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def models_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh user: no $SPINEPS_SEGMENTOR_MODELS or mirror variable, and a home folder of its
    own, so nothing reads or writes the real user data folder. Returns the default models
    directory (not created)."""
    from spineps_dask.config import MODELS_ENV, MODELS_URL_ENV, default_models_dir

    monkeypatch.delenv(MODELS_ENV, raising=False)
    monkeypatch.delenv(MODELS_URL_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "home" / "data"))
    return default_models_dir()


@pytest.fixture(scope="session")
def published_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory holding the published folder kinds in their published layouts, with
    small random weights (`tests/models/published.py`): the CT set (``CT_semantic_v2.0.0``,
    ``CT_instance_v2.0.0``, ``CT_labeling_v1.4.0``) and the MR set (``T2w_semantic_v1.0.9``,
    ``instance_sagittal_v1.2.0``, ``T2w_labeling_v1.4.0``). Built once (~6 s, ~130 MB)."""
    from tests.models.published import published_models

    return published_models(tmp_path_factory.mktemp("published") / "models")
