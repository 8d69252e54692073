"""A model release server on 127.0.0.1 and model archives built from the shipped demo models.

The demo folders are valid SPINEPS model folders (semantic: nnU-Net results; instance: a
Lightning-style checkpoint), so archives of them install and validate like published ones.
"""

from __future__ import annotations

import http.server
import io
import json
import shutil
import threading
import zipfile
from pathlib import Path

from spineps_dask.config import DEMO_MODELS

# How the server answers, chosen by the first path component: /<mode>/<version>/<archive>.
#   ok        the whole archive, with Content-Length
#   truncate  Content-Length of the whole archive, half of it, then the connection closes
#   stall     half of the archive, then nothing until ``release`` is set (a hung transfer)
#   hold      nothing until ``release`` is set, then the whole archive
#   pair      nothing until two requests are waiting, then the whole archive to both
MODES = ("ok", "truncate", "stall", "hold", "pair")


class ReleaseServer:
    """Serves ``files`` (``"v1.0.9/t2w.zip"`` -> bytes) over HTTP on 127.0.0.1 in a thread."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.release = threading.Event()
        self._pair = threading.Barrier(2, timeout=60)
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url(self, mode: str = "ok") -> str:
        """The release base URL for ``mode``."""
        assert mode in MODES, mode
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/{mode}/"

    def close(self) -> None:
        self.release.set()
        self._pair.abort()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                mode, _, name = self.path.lstrip("/").partition("/")
                server.requests.append(self.path)
                body = server.files.get(name)
                if mode not in MODES or body is None:
                    self.send_error(404, "no such release file")
                    return
                if mode == "hold":
                    server.release.wait(60)
                if mode == "pair":
                    server._pair.wait()
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode in ("truncate", "stall"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    if mode == "stall":
                        server.release.wait(60)
                    return
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        return Handler


def zip_folder(folder: Path, *, prefix: str = "") -> bytes:
    """The files under ``folder`` as a zip, each under ``prefix`` (e.g. ``"T2w_semantic/"``)."""
    buffer = io.BytesIO()
    # Stored, not deflated: the demo weights hardly compress and tests stay fast.
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + path.relative_to(folder).as_posix())
    return buffer.getvalue()


def labeling_folder(out: Path) -> Path:
    """A labelling-model folder as the reference lays it out: a ``classifier`` config and a
    ``*val_f1=*valf1-weights.ckpt`` checkpoint (the weights are the demo instance ones: no
    loader reads them yet)."""
    out.mkdir(parents=True)
    config = json.loads((DEMO_MODELS / "instance" / "inference_config.json").read_text())
    config.update(modeltype="classifier", modality="T2w", log_name="labeling")
    (out / "inference_config.json").write_text(json.dumps(config))
    shutil.copy(
        DEMO_MODELS / "instance" / "demo_instance_weights.ckpt",
        out / "epoch=9-val_f1=0.98_valf1-weights.ckpt",
    )
    return out


def release_archives(tmp: Path) -> dict[str, bytes]:
    """Archives as the releases name them: ``t2w.zip`` wraps the demo semantic model in one
    folder, ``instance.zip`` holds the demo instance model at its top, ``labeling.zip`` a
    labelling folder."""
    return {
        "v1.0.9/t2w.zip": zip_folder(DEMO_MODELS / "semantic", prefix="T2w_semantic/"),
        "v1.2.0/instance.zip": zip_folder(DEMO_MODELS / "instance"),
        "v1.4.0/labeling.zip": zip_folder(labeling_folder(tmp / "labeling")),
    }


def corrupt(archive: bytes) -> bytes:
    """The archive with bytes in the middle of its largest member flipped (its CRC fails)."""
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        big = max(zf.infolist(), key=lambda m: m.file_size)
    # A stored member's data starts after its 30-byte local header, name and extra field.
    middle = big.header_offset + 30 + len(big.filename.encode()) + big.file_size // 2
    data = bytearray(archive)
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    return bytes(data)
