"""Live sources against real streams on loopback: HTTP MJPEG (a Python server), RTSP (ffmpeg through a relay),
stdin; bounded latency with the real T model at 1024x512, reconnection, and one clear error per bad source."""
from __future__ import annotations

import io
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import liteseg
from liteseg.cli.main import main
from liteseg.inference.stdin_frames import MjpegReader, Y4mReader
from liteseg.inference.streams import LiveSources
from liteseg.loading.zoo import default_model
from liteseg.utils.net import free_ports

from ..conftest import require_executable, require_module
from .live_sources import MjpegServer, RtspRelay, jpeg_frames

cv2 = require_module("cv2")
FPS = 25.0


@pytest.fixture(scope="module")
def seg():
    """The shipped PP-LiteSeg-T (a real model, trained) on 2 threads."""
    return liteseg.Segmenter(default_model(), threads=2)


def source_fps_faster_than(seg, jpeg: bytes) -> float:
    """A frame rate about five frames per inference of ``seg`` on ``jpeg`` (never under 25 FPS, at most 250)."""
    rgb = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"))
    seg.predict_rgb([rgb])  # warm-up
    times = []
    for _ in range(3):
        start = time.perf_counter()
        seg.predict_rgb([rgb])
        times.append(time.perf_counter() - start)
    return float(min(250.0, max(FPS, 5.0 / min(times))))


def test_latency_stays_bounded_on_a_faster_source(seg):
    """A source several times faster than T at 1024x512 (at least 25 FPS, faster on a fast machine): each result
    must be of a frame that arrived at most about one inference earlier (the frames in between dropped), and match
    the model on that frame."""
    frames = jpeg_frames(1024, 512)
    fps = source_fps_faster_than(seg, frames[0])
    server = MjpegServer(frames, fps).start()
    try:
        indices, lags, ticks, results = [], [], [time.perf_counter()], []
        for result in seg.stream(server.url, max_frames=6):
            ticks.append(time.perf_counter())
            indices.append(int(result.source.rsplit("#", 1)[1]))
            lags.append(server.sent - indices[-1])  # frames the server sent after this one, when its result arrives
            results.append(result)
    finally:
        server.stop()
    assert len(results) == 6 and results[0].labels.shape == (512, 1024)
    inference = np.diff(ticks)  # each frame is taken right after the previous result: its inference (+ waiting)
    assert np.median(inference[1:]) > 2 / fps, "the model must be slower than the source for this test to mean much"
    assert min(np.diff(indices)) > 1, f"frames must be dropped between results: {indices}"
    # newest frame first: the lag is what the source sent during this frame's own inference, plus a few frames
    # in flight; a queue of frames would add the previous inferences' frames, growing result after result
    bounds = fps * inference + 5
    assert all(lag <= bound for lag, bound in zip(lags[1:], bounds[1:])), f"lags {lags}, bounds {bounds.round()}"
    expected = seg.predict_rgb([results[-1].image])[0].labels
    np.testing.assert_array_equal(results[-1].labels, expected)


def test_cli_streams_file_with_video_and_preview(seg, tmp_path, capsys):
    """Two HTTP MJPEG sources side by side: one sub-folder each, the .mp4 at the processed rate, the preview page
    serving the overlay, and the timing summary."""
    # 5 FPS each: the 8 frames take at least ~0.8 s however fast the model is, time for the viewer to connect
    servers = [MjpegServer(jpeg_frames(256, 128, seed=s), 5.0).start() for s in (0, 1)]
    listing = tmp_path / "cams.streams"
    listing.write_text(f"# two cameras\n{servers[0].url}\n\n{servers[1].url}\n")
    port, seen = free_ports()[0], {}

    def watch():  # a viewer on the preview: the page, then one JPEG of source 1's overlay
        deadline = time.time() + 60
        while time.time() < deadline and "jpeg" not in seen:
            try:
                seen["page"] = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream/1.mjpg", timeout=30) as r:
                    head = b"".join(iter(lambda: r.readline(), b"\r\n"))
                    size = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                    seen["jpeg"] = r.read(size)
            except OSError:
                time.sleep(0.1)

    viewer = threading.Thread(target=watch, daemon=True)
    viewer.start()
    out = tmp_path / "out"
    try:
        assert main(["predict", str(listing), "-o", str(out), "--max-frames", "8", "--save-video",
                     "--save", "labels,overlay", "--preview", str(port), "--threads", "2"]) == 0
    finally:
        for server in servers:
            server.stop()
    viewer.join(timeout=10)
    text = capsys.readouterr().out
    assert (out / "legend.png").exists()
    subs = sorted(p for p in out.iterdir() if p.is_dir())
    assert [p.name.split("_")[0] for p in subs] == ["0", "1"]
    for sub in subs:
        labels = sorted((sub / "labels").iterdir())
        assert labels and len(labels) == len(list((sub / "overlay").iterdir()))
        assert np.asarray(Image.open(labels[0])).shape == (128, 256)
        video = cv2.VideoCapture(str(sub / "video" / "live.mp4"))
        assert video.get(cv2.CAP_PROP_FRAME_WIDTH) == 512 and video.get(cv2.CAP_PROP_FRAME_COUNT) == len(labels)
        video.release()
    assert "8 frame(s) segmented" in text and "--max-frames reached" in text
    assert "latency (frame received -> result written): p50" in text and "dropped" in text
    assert "the rate they were processed" in text
    assert "/stream/0.mjpg" in seen["page"] and Image.open(io.BytesIO(seen["jpeg"])).size == (256, 128)


def test_rtsp_stream_from_ffmpeg(seg):
    """An RTSP stream published by ffmpeg: results arrive at the stream's size."""
    ffmpeg = require_executable("ffmpeg")
    relay = RtspRelay()
    publisher = subprocess.Popen([ffmpeg, "-hide_banner", "-loglevel", "fatal", "-re", "-f", "lavfi", "-i",
                                  "testsrc2=size=320x160:rate=25", "-c:v", "mjpeg", "-huffman", "default",
                                  "-pix_fmt", "yuvj420p", "-f", "rtsp", "-rtsp_transport", "tcp", relay.url])
    try:
        deadline = time.time() + 20
        while not relay.sdp and time.time() < deadline:
            time.sleep(0.05)
        results = list(seg.stream(relay.url, max_frames=2))
    finally:
        publisher.terminate()
        publisher.wait()
        relay.close()
    assert [r.labels.shape for r in results] == [(160, 320)] * 2
    assert results[1].source.startswith(relay.url)


def test_a_stream_that_dies_and_comes_back_is_reconnected(caplog):
    server = MjpegServer(jpeg_frames(64, 32), FPS).start()
    caplog.set_level(logging.WARNING, logger="liteseg")
    got = []
    with LiveSources([server.url]) as live:
        for frame in live.frames(duration=30):
            got.append(frame.index)
            if len(got) == 3:
                server.stop()  # the server dies ...
                time.sleep(1.5)
                server.start()  # ... and comes back on the same port
            if live.readers[0].reconnects and len(got) > 6:
                break
        reconnects = live.readers[0].reconnects
    server.stop()
    assert reconnects >= 1 and server.connections == 2 and len(got) > 6  # frames came over the new connection
    lost = re.search(r"stream lost after (\d+) frame\(s\)", caplog.text)  # the reader may be a frame ahead of us
    assert lost and int(lost.group(1)) >= 3 and "reconnected" in caplog.text


@pytest.mark.parametrize("source, message", [
    ("ftp://example.com/cam", "unsupported scheme ftp://"),
    ("rtsp://", "bad URL"),
    ("http://127.0.0.1:99999/video", "bad URL"),
    ("rtsp://user:secret@127.0.0.1:{port}/x", "rtsp://user:***@127.0.0.1:{port}/x: cannot open the stream"),
    ("http://127.0.0.1:{port}/video", "cannot open the stream"),
    ("63", "camera 63: no camera at this index"),
])
def test_sources_that_cannot_be_read_get_one_clear_error(source, message, capsys):
    port = free_ports()[0]  # nothing listens there
    assert main(["predict", source.format(port=port)]) == 2
    err = capsys.readouterr().err
    assert message.format(port=port) in err and err.count("\n") == 1 and "secret" not in err


def test_mjpeg_and_y4m_readers_match_independent_decoders(tmp_path):
    """MJPEG on stdin cut at each EOI (a JPEG with an EXIF thumbnail included) and Y4M converted like ffmpeg."""
    rng = np.random.RandomState(0)
    images = [rng.randint(0, 255, (24, 40, 3), dtype=np.uint8) for _ in range(3)]
    blobs = []
    for i, img in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=95, progressive=i == 2)
        blobs.append(buf.getvalue())
    thumb = blobs[2][:]  # a whole JPEG (with its own EOI) inside an APP1 segment, as EXIF thumbnails are
    app1 = b"\xff\xe1" + (len(thumb) + 8).to_bytes(2, "big") + b"Exif\0\0" + thumb
    blobs[1] = blobs[1][:2] + app1 + blobs[1][2:]
    reader = MjpegReader(io.BufferedReader(io.BytesIO(b"".join(blobs))))
    decoded = [reader.read() for _ in range(4)]
    assert decoded[3] is None
    for got, blob in zip(decoded, blobs):
        np.testing.assert_array_equal(got, np.asarray(Image.open(io.BytesIO(blob)).convert("RGB")))

    ffmpeg = require_executable("ffmpeg")
    smooth = Image.fromarray(rng.randint(0, 255, (6, 8, 3), dtype=np.uint8)).resize((64, 48), Image.BILINEAR)
    smooth.save(tmp_path / "in.png")
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", tmp_path / "in.png", "-pix_fmt", "yuv420p",
                    tmp_path / "in.y4m"], check=True)
    reference = subprocess.run([ffmpeg, "-loglevel", "error", "-i", tmp_path / "in.y4m", "-f", "rawvideo",
                                "-pix_fmt", "rgb24", "-"], check=True, capture_output=True).stdout
    with open(tmp_path / "in.y4m", "rb") as f:
        y4m = Y4mReader(f)
        got = y4m.read()
        assert y4m.read() is None
    expected = np.frombuffer(reference, np.uint8).reshape(48, 64, 3)
    assert np.abs(got.astype(int) - expected).mean() < 3  # chroma upsampling differs slightly from swscale's


def test_stdin_pipe_and_ctrl_c_finish_the_video(tmp_path):
    """``ffmpeg ... -f mjpeg - | liteseg predict -``, then Ctrl-C: a clean stop with a playable video."""
    ffmpeg = require_executable("ffmpeg")
    source = subprocess.Popen([ffmpeg, "-loglevel", "error", "-re", "-f", "lavfi", "-i",
                               "testsrc2=size=128x64:rate=25", "-f", "mjpeg", "-"], stdout=subprocess.PIPE)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(liteseg.__file__).parents[1])}  # the liteseg under test
    cli = subprocess.Popen([sys.executable, "-m", "liteseg", "predict", "-", "-o", str(out), "--save-video",
                            "--save", "labels", "--threads", "1"], stdin=source.stdout, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env, text=True)
    source.stdout.close()
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list((out / "labels").glob("*.png")) if out.exists() else []) < 3:
            time.sleep(0.1)
        cli.send_signal(signal.SIGINT)
        text, _ = cli.communicate(timeout=60)
    finally:
        source.kill()
        source.wait()
    assert cli.returncode == 0, text
    assert "stopped by Ctrl-C" in text and "frames at" in text
    video = cv2.VideoCapture(str(out / "video" / "live.mp4"))
    assert video.get(cv2.CAP_PROP_FRAME_COUNT) >= 3 and video.get(cv2.CAP_PROP_FRAME_HEIGHT) == 64
    video.release()


def test_stream_over_files_yields_every_frame(seg, tmp_path):
    """``Segmenter.stream`` on an image folder: every image, in order, as the plain call segments it."""
    rng = np.random.RandomState(1)
    for name in ("a", "b"):
        Image.fromarray(rng.randint(0, 255, (32, 48, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
    results = list(seg.stream(tmp_path))
    assert [Path(r.source).name for r in results] == ["a.png", "b.png"]
    np.testing.assert_array_equal(results[1].labels, seg(tmp_path / "b.png").labels)
