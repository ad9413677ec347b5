"""A full disk (here: a file-size limit, which makes writes short the way a nearly full disk does) gives a clean
error naming the file and the free space, and leaves neither a truncated output nor a temporary file."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ..conftest import require_module

_LIMIT = 16 * 1024
_SCRIPT = """
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit is short / EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
import torch
from liteseg.cli.main import main
from liteseg.errors import LitesegError
from liteseg.training.checkpoint import save_checkpoint
out = Path(sys.argv[1])
model = sys.argv[3]
print("predict", main(["predict", sys.argv[2], "-m", model, "--save", "overlay", "-o", str(out / "pred")]), flush=True)
print("convert", main(["convert", model, "-o", str(out / "m.safetensors")]), flush=True)
try:
    save_checkpoint({{"model": {{"w": torch.zeros(100_000)}}}}, out / "ckpt" / "last.pt")
except LitesegError as e:
    print("checkpoint error:", e, file=sys.stderr)
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


def test_full_disk_outputs_are_clean_errors_and_leave_nothing(tmp_path, serve_model_file):
    image = tmp_path / "noise.png"  # noise: its overlay JPEG is far over the limit, the PNG itself is read only
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 320, 3), dtype=np.uint8)).save(image)
    out = tmp_path / "out"
    out.mkdir()
    run = subprocess.run([sys.executable, "-c", _SCRIPT.format(limit=_LIMIT), str(out), str(image),
                          str(serve_model_file)], capture_output=True, text=True, env=_env(),
                         timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "predict 2" in run.stdout and "convert 2" in run.stdout, run.stdout + run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    for name in ("noise.jpg", "m.safetensors", "last.pt"):
        line = next(line for line in run.stderr.splitlines() if name in line)
        assert "could not be written" in line and " free in " in line, line
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == [], left  # no truncated output under its name, no temporary file


def test_sigterm_removes_the_temporary_file(tmp_path):
    script = ("import sys, time\nfrom liteseg.utils.io import atomic_path, remove_temps_on_sigterm\n"
              "remove_temps_on_sigterm()\n"
              "with atomic_path(sys.argv[1]) as tmp:\n    print(tmp, flush=True)\n    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "out.png")], stdout=subprocess.PIPE,
                            text=True, env=_env())
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


_VIDEO_SCRIPT = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from liteseg.cli.main import main
print("predict", main(["predict", sys.argv[2], "-m", sys.argv[3], "--save", "labels", "--save-video",
                       "-o", sys.argv[1]]), flush=True)
"""


def test_full_disk_video_is_a_clean_error_and_publishes_no_partial_video(tmp_path, serve_model_file):
    cv2 = require_module("cv2")
    clip = tmp_path / "clip.mp4"  # noise frames: the side-by-side video is far over the limit, the labels are not
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 256))
    rng = np.random.default_rng(0)
    for _ in range(6):
        writer.write(rng.integers(0, 255, (256, 320, 3), dtype=np.uint8))
    writer.release()
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-c", _VIDEO_SCRIPT.format(limit=_LIMIT), str(out), str(clip),
                          str(serve_model_file)], capture_output=True, text=True, env=_env(), timeout=300)
    assert "predict 2" in run.stdout, run.stdout + run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    line = next(line for line in run.stderr.splitlines() if "clip.mp4" in line and "error" in line)
    assert "could not be written" in line and " free in " in line, line
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert left == [f"labels/clip/{i:06d}.png" for i in range(1, 7)], left  # no video, whole or partial
