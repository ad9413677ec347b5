"""Real live sources on loopback for the stream tests: an HTTP MJPEG server and an RTSP relay fed by ffmpeg."""
from __future__ import annotations

import io
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

from liteseg.utils.net import free_ports


def jpeg_frames(width: int, height: int, count: int = 4, seed: int = 0) -> list[bytes]:
    """A few different JPEGs (smooth gradients plus noise blocks) to cycle through."""
    rng = np.random.RandomState(seed)
    out = []
    for _ in range(count):
        small = rng.randint(0, 255, (height // 32, width // 32, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize((width, height), Image.BILINEAR)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=85)
        out.append(buf.getvalue())
    return out


class MjpegServer:
    """``http://127.0.0.1:PORT/video``: multipart JPEGs at ``fps``, paced by the wall clock, one counter per
    connection (``sent``: frames written to the newest client). ``stop()`` kills it; ``start()`` brings it back on
    the same port. ``frames_per_connection`` closes each connection after that many frames (a dying stream)."""

    def __init__(self, frames: list[bytes], fps: float = 25.0, port: int | None = None,
                 frames_per_connection: int | None = None) -> None:
        self.frames, self.fps, self.port = frames, fps, port or free_ports()[0]
        self.frames_per_connection = frames_per_connection
        self.sent = 0
        self.connections = 0
        self.server: ThreadingHTTPServer | None = None
        self.url = f"http://127.0.0.1:{self.port}/video"

    def start(self) -> MjpegServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/video":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                owner.connections += 1
                owner.sent = 0
                start = time.perf_counter()
                try:
                    while owner.server is not None:
                        if owner.frames_per_connection and owner.sent >= owner.frames_per_connection:
                            return
                        jpeg = owner.frames[owner.sent % len(owner.frames)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                         % (len(jpeg), jpeg))
                        owner.sent += 1
                        time.sleep(max(0.0, start + owner.sent / owner.fps - time.perf_counter()))
                except (BrokenPipeError, ConnectionResetError):
                    pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        server.allow_reuse_address = True
        self.server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()


class RtspRelay:
    """A minimal RTSP server on loopback: ffmpeg publishes to it (ANNOUNCE/RECORD over TCP) and every player that
    connects (DESCRIBE/SETUP/PLAY, RTP interleaved over TCP) receives the publisher's RTP packets. ffmpeg alone
    cannot serve RTSP to a player (its ``-rtsp_flags listen`` is for receiving), so the test relays it like a
    media server would."""

    def __init__(self) -> None:
        self.port = free_ports()[0]
        self.url = f"rtsp://127.0.0.1:{self.port}/live"
        self.sdp = b""
        self.players: list[socket.socket] = []
        self.packets = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            while True:
                first = reader.read(1)
                if not first:
                    return
                if first == b"$":  # an interleaved RTP/RTCP packet: from the publisher, relay it
                    channel, size = reader.read(1), int.from_bytes(reader.read(2), "big")
                    packet = b"$" + channel + size.to_bytes(2, "big") + reader.read(size)
                    if conn not in self.players:
                        self._relay(packet)
                    continue
                head = first + b"".join(iter(lambda: reader.readline(), b"\r\n"))
                lines = head.decode().split("\r\n")
                method, url = lines[0].split()[:2]
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                body = reader.read(int(headers.get("Content-Length", 0)))
                self._answer(conn, method, url, headers, body)
        except OSError:
            return
        finally:
            with self._lock:
                if conn in self.players:
                    self.players.remove(conn)
            conn.close()

    def _answer(self, conn: socket.socket, method: str, url: str, headers: dict, body: bytes) -> None:
        extra, payload, code = {}, b"", "200 OK"
        if method == "OPTIONS":
            extra["Public"] = "OPTIONS, DESCRIBE, ANNOUNCE, SETUP, PLAY, RECORD, TEARDOWN, GET_PARAMETER"
        elif method == "ANNOUNCE":
            self.sdp = body
        elif method == "DESCRIBE":
            if not self.sdp:
                code = "404 Not Found"
            else:
                payload = self.sdp
                extra.update({"Content-Type": "application/sdp", "Content-Base": self.url + "/"})
        elif method == "SETUP":
            transport = headers.get("Transport", "")
            if "TCP" not in transport:
                code = "461 Unsupported Transport"  # the player retries over TCP
            else:
                extra.update({"Transport": transport, "Session": "12345678"})
        elif method in ("PLAY", "RECORD"):
            extra["Session"] = "12345678"
            if method == "PLAY":
                with self._lock:
                    self.players.append(conn)
        reply = [f"RTSP/1.0 {code}", f"CSeq: {headers.get('CSeq', '0')}", *(f"{k}: {v}" for k, v in extra.items()),
                 f"Content-Length: {len(payload)}", "", ""]
        with self._lock:
            conn.sendall("\r\n".join(reply).encode() + payload)

    def _relay(self, packet: bytes) -> None:
        with self._lock:
            self.packets += 1
            for player in list(self.players):
                try:
                    player.sendall(packet)
                except OSError:
                    self.players.remove(player)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
