"""``download_model`` against a release server on 127.0.0.1 (``tests/models/releases.py``): every
download ends in a valid model folder or in a clear error with nothing half-installed, also
when processes download the same model at once or one is killed mid-transfer."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import spineps_dask
from spineps_dask.errors import DownloadError, ModelError
from spineps_dask.models.catalog import catalog
from spineps_dask.models.download import download_model
from spineps_dask.models.folders import load_model_folder
from spineps_dask.models.install import RECORD_NAME, install_model, read_record
from tests.models.releases import ReleaseServer, corrupt

REPO = Path(spineps_dask.__file__).resolve().parents[1]


def _leftovers(models: Path) -> list[str]:
    """Everything in the models directory except lock files (kept on purpose, hidden)."""
    return sorted(p.name for p in models.iterdir() if not p.name.endswith(".lock"))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_download_installs_validates_and_reports_progress(
    tmp_path: Path, release_server: ReleaseServer
) -> None:
    """t2w -> T2w_semantic_v1.0.9, progress reaches the announced size, the record has the URL
    and the archive's hash; a second call downloads nothing."""
    seen: list[tuple[int, int | None]] = []
    models = tmp_path / "models"
    result = download_model(
        "t2w",
        models=models,
        base_url=release_server.url(),
        progress=lambda d, t: seen.append((d, t)),
    )
    size = len(release_server.files["v1.0.9/t2w.zip"])
    assert seen[-1] == (size, size)
    assert result.path == models / "T2w_semantic_v1.0.9" and not result.already
    assert load_model_folder(result.path, kind="semantic").config.modality == ("T2w",)
    record = read_record(result.path)
    assert record["source"] == release_server.url() + "v1.0.9/t2w.zip"
    assert _leftovers(models) == ["T2w_semantic_v1.0.9"]

    again = download_model("t2w", models=models, base_url=release_server.url())
    assert again.already and len(release_server.requests) == 1


def test_environment_chooses_directory_and_mirror(
    models_env: Path, release_server: ReleaseServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without arguments: $SPINEPS_DASK_MODELS_URL is the mirror and the model lands in the
    default models directory, created on demand; $SPINEPS_SEGMENTOR_MODELS then wins."""
    monkeypatch.setenv("SPINEPS_DASK_MODELS_URL", release_server.url())
    assert download_model("instance").path == models_env / "instance_sagittal_v1.2.0"
    monkeypatch.setenv("SPINEPS_SEGMENTOR_MODELS", str(models_env.parent / "shared"))
    (models_env.parent / "shared").mkdir()
    result = download_model("t2w_labeling")
    assert result.path == models_env.parent / "shared" / "T2w_labeling_v1.4.0"
    assert result.model.kind == "labeling"


def test_file_url_mirror(tmp_path: Path, release_archives: dict[str, bytes]) -> None:
    """A mirror on a shared file system (file://) works without any server."""
    mirror = tmp_path / "mirror"
    (mirror / "v1.2.0").mkdir(parents=True)
    (mirror / "v1.2.0" / "instance.zip").write_bytes(release_archives["v1.2.0/instance.zip"])
    result = download_model("instance", models=tmp_path / "models", base_url=mirror.as_uri())
    assert result.model.kind == "instance"
    with pytest.raises(DownloadError, match=r"cannot read file://.*check the mirror folder"):
        download_model("t2w", models=tmp_path / "models", base_url=mirror.as_uri())


def test_offline_says_how_to_install_by_hand(tmp_path: Path) -> None:
    """A server that cannot be reached (a closed port on 127.0.0.1) gives the manual steps."""
    models = tmp_path / "models"
    url = f"http://127.0.0.1:{_closed_port()}/"
    with pytest.raises(DownloadError, match=r"cannot reach .*offline") as err:
        download_model("t2w", models=models, base_url=url, timeout=5)
    assert f"download {url}v1.0.9/t2w.zip on a machine with internet" in str(err.value)
    assert f"spineps-dask models install t2w.zip --models {models}" in str(err.value)
    assert _leftovers(models) == []


def test_http_error_and_bad_scheme(tmp_path: Path, release_server: ReleaseServer) -> None:
    """A 404 from the mirror and an ftp:// base URL are named, nothing installed."""
    with pytest.raises(DownloadError, match=r"answered HTTP 404.*check the release URL"):
        download_model("vibe", models=tmp_path / "models", base_url=release_server.url())
    with pytest.raises(DownloadError, match=r"must start with http://, https:// or file://"):
        download_model("vibe", models=tmp_path / "models", base_url="ftp://127.0.0.1/")
    assert _leftovers(tmp_path / "models") == []


def test_connection_closed_early(tmp_path: Path, release_server: ReleaseServer) -> None:
    """Fewer bytes than the Content-Length announced is an interrupted download, not a model."""
    size = len(release_server.files["v1.0.9/t2w.zip"])
    with pytest.raises(DownloadError, match=rf"broke off after {size // 2} of {size} bytes"):
        download_model("t2w", models=tmp_path / "models", base_url=release_server.url("truncate"))
    assert _leftovers(tmp_path / "models") == []


def test_hung_server_times_out(tmp_path: Path, release_server: ReleaseServer) -> None:
    """A transfer that stops midway ends after the timeout, with nothing installed."""
    with pytest.raises(DownloadError, match=r"broke off after \d+ of \d+ bytes.*timed out"):
        download_model(
            "t2w", models=tmp_path / "models", base_url=release_server.url("stall"), timeout=1
        )
    assert _leftovers(tmp_path / "models") == []


def test_corrupt_archive(tmp_path: Path, release_server: ReleaseServer) -> None:
    """An archive damaged on the way (CRC mismatch) is not installed."""
    release_server.files["v1.0.9/t2w.zip"] = corrupt(release_server.files["v1.0.9/t2w.zip"])
    with pytest.raises(ModelError, match=r"t2w\.zip is not a complete zip archive"):
        download_model("t2w", models=tmp_path / "models", base_url=release_server.url())
    assert _leftovers(tmp_path / "models") == []


def test_archive_of_the_wrong_kind(tmp_path: Path, release_server: ReleaseServer) -> None:
    """A mirror serving an instance model as t2w.zip is caught by the validation."""
    release_server.files["v1.0.9/t2w.zip"] = release_server.files["v1.2.0/instance.zip"]
    with pytest.raises(ModelError, match=r"is a instance model.*semantic model is needed"):
        download_model("t2w", models=tmp_path / "models", base_url=release_server.url())
    assert _leftovers(tmp_path / "models") == []


def _cli_download(models: Path, url: str, log: Path) -> subprocess.Popen:
    """``spineps-dask models download t2w`` in its own process, output into ``log``."""
    args = ["models", "download", "t2w", "--models", str(models), "--url", url]
    with log.open("w") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "spineps_dask.cli", *args],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_killed_download_leaves_nothing_that_looks_installed(
    tmp_path: Path, release_server: ReleaseServer
) -> None:
    """SIGKILL mid-transfer: no model folder, nothing listed; the next download succeeds and
    removes the dead process's staging folder."""
    models = tmp_path / "models"
    proc = _cli_download(models, release_server.url("stall"), tmp_path / "a.log")
    partial = lambda: [p for p in models.glob(".T2w_semantic_v1.0.9.partial-*/t2w.zip")]  # noqa: E731
    _wait_for(lambda: any(p.stat().st_size > 0 for p in partial()), "a partial archive")
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    assert not (models / "T2w_semantic_v1.0.9").exists() and partial()
    assert catalog(models).installed == []

    result = download_model("t2w", models=models, base_url=release_server.url())
    assert not result.already and _leftovers(models) == ["T2w_semantic_v1.0.9"]


def test_concurrent_downloads_wait_for_one_another(
    tmp_path: Path, release_server: ReleaseServer
) -> None:
    """Two processes downloading one model: the second waits on the lock, the archive is
    fetched once, both end with the same valid folder."""
    models = tmp_path / "models"
    first = _cli_download(models, release_server.url("hold"), tmp_path / "first.log")
    _wait_for(lambda: len(release_server.requests) == 1, "the first request")
    second = _cli_download(models, release_server.url("hold"), tmp_path / "second.log")
    _wait_for(
        lambda: "waiting for another process" in (tmp_path / "second.log").read_text(),
        "the second process to wait on the lock",
    )
    release_server.release.set()
    assert first.wait(120) == 0, (tmp_path / "first.log").read_text()
    assert second.wait(120) == 0, (tmp_path / "second.log").read_text()
    assert "already installed" in (tmp_path / "second.log").read_text()
    assert len(release_server.requests) == 1
    assert _leftovers(models) == ["T2w_semantic_v1.0.9"]
    load_model_folder(models / "T2w_semantic_v1.0.9", kind="semantic")


_NO_LOCK_DOWNLOAD = """
import sys
import spineps_dask.models.install as install
from spineps_dask.models.download import download_model
install.fcntl = None  # as on a file system without locks
result = download_model("t2w", models=sys.argv[1], base_url=sys.argv[2])
print("already" if result.already else "installed")
"""


def test_concurrent_downloads_without_locks(tmp_path: Path, release_server: ReleaseServer) -> None:
    """Without file locks (some cluster file systems) both processes download at once; the
    atomic rename lets one install and the other adopt the winner's folder."""
    models = tmp_path / "models"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _NO_LOCK_DOWNLOAD, str(models), release_server.url("pair")],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted(out.strip().splitlines()[-1] for out in outputs) == ["already", "installed"]
    assert len(release_server.requests) == 2
    assert _leftovers(models) == ["T2w_semantic_v1.0.9"]
    assert (models / "T2w_semantic_v1.0.9" / RECORD_NAME).is_file()
    load_model_folder(models / "T2w_semantic_v1.0.9", kind="semantic")


def test_installed_model_needs_neither_network_nor_write_access(
    tmp_path: Path, release_archives: dict[str, bytes], small_disk
) -> None:
    """On a read-only shared models directory (compute nodes) an installed model is checked
    and reported as installed, without contacting the server or writing a lock file."""
    models = small_disk.path / "models"
    (tmp_path / "t2w.zip").write_bytes(release_archives["v1.0.9/t2w.zip"])
    install_model(tmp_path / "t2w.zip", models=models)
    small_disk.read_only()
    try:
        offline = f"http://127.0.0.1:{_closed_port()}/"
        assert download_model("t2w", models=models, base_url=offline, timeout=5).already
    finally:
        small_disk.read_only(False)
