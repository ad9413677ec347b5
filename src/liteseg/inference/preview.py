"""``--preview PORT``: a local MJPEG page of the newest overlay of each live source, on 127.0.0.1 only."""
from __future__ import annotations

import html
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

from ..errors import LitesegError

_BOUNDARY = b"liteseg-frame"


class PreviewServer:
    """Serves ``/`` (a page with one image per source) and ``/stream/N.mjpg`` (multipart JPEG of source N).

    :meth:`publish` encodes a frame only while someone watches, so an unwatched preview costs nothing.
    """

    def __init__(self, port: int, names: list[str]) -> None:
        self.names = names
        self._cond = threading.Condition()
        self._frames: dict[int, tuple[int, bytes]] = {}
        self.watchers = 0
        self._closed = False
        try:
            self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        except OSError as e:
            raise LitesegError(f"--preview {port}: cannot listen on 127.0.0.1:{port} ({e.strerror}); "
                               "choose another port") from None
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread = threading.Thread(target=self.server.serve_forever, name="liteseg-preview", daemon=True)
        self._thread.start()

    def publish(self, source_id: int, rgb: np.ndarray) -> None:
        """Show ``rgb`` as the newest frame of source ``source_id``."""
        if not self.watchers:
            return
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="JPEG", quality=80)
        with self._cond:
            count = self._frames.get(source_id, (0, b""))[0] + 1
            self._frames[source_id] = (count, buf.getvalue())
            self._cond.notify_all()

    def next_frame(self, source_id: int, seen: int) -> tuple[int, bytes] | None:
        """The first frame of ``source_id`` newer than ``seen`` (blocks), or None once closed."""
        with self._cond:
            while not self._closed and self._frames.get(source_id, (0, b""))[0] <= seen:
                self._cond.wait(0.5)
            return None if self._closed else self._frames[source_id]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.server.shutdown()
        self.server.server_close()


def _handler(preview: PreviewServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep the progress line clean
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path in ("/", "/index.html"):
                images = "".join(f'<figure><img src="/stream/{i}.mjpg" alt="{html.escape(name)}"><figcaption>'
                                 f"{html.escape(name)}</figcaption></figure>" for i, name in enumerate(preview.names))
                self._send(200, "text/html; charset=utf-8",
                           f"<!doctype html><title>liteseg preview</title><body>{images}</body>".encode())
                return
            stem = self.path.removeprefix("/stream/").removesuffix(".mjpg")
            if not (self.path.startswith("/stream/") and stem.isdigit() and int(stem) < len(preview.names)):
                self._send(404, "text/plain", b"not found\n")
                return
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY.decode()}")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            with preview._cond:
                preview.watchers += 1
            seen = 0
            try:
                while (frame := preview.next_frame(int(stem), seen)) is not None:
                    seen, jpeg = frame
                    self.wfile.write(b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                     % (_BOUNDARY, len(jpeg), jpeg))
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                with preview._cond:
                    preview.watchers -= 1

        def _send(self, code: int, kind: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler
