"""End-to-end throughput of ``liteseg predict`` (folder, video) and ``liteseg val`` vs the model alone.

Each case runs the real CLI command in this process and, interleaved with it (A, B, A, B, ...), the model alone
on the same backend: a fresh backend, the same inputs already decoded and normalised in memory, one call per
image timed from the first call (so both sides pay the same first-call cost). Reported: median images/s of each
side over the repeats and their ratio (the issue's goal is >= 0.9), with the machine's load average.

    PYTHONPATH=src python benchmarks/pipeline.py --camvid ../shared/data/camvid            # full run
    PYTHONPATH=src python benchmarks/pipeline.py --dry-run                                   # tiny, checks it works

Inputs: 24 JPEGs of 1024x512 (CamVid frames upscaled when --camvid is given, else generated), an .mp4 of the
same frames (needs OpenCV), CamVid val at 480x360. Model: the shipped default (PP-LiteSeg-T, CamVid classes).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from liteseg.cli.main import main as cli
from liteseg.inference.backends import create_backend
from liteseg.inference.inputs import iter_frames
from liteseg.inference.preprocess import normalize
from liteseg.loading.zoo import default_model


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def make_images(folder: Path, count: int, size: tuple[int, int], camvid: Path | None) -> list[Path]:
    """``count`` JPEGs of ``size`` (W, H): CamVid val frames resized, or smooth synthetic scenes."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = sorted((camvid / "images" / "val").glob("*")) if camvid else []
    rng = np.random.RandomState(0)
    paths = []
    for i in range(count):
        if sources:
            img = Image.open(sources[i % len(sources)]).convert("RGB").resize(size, Image.BILINEAR)
        else:
            w, h = size
            yy, xx = np.mgrid[0:h, 0:w]
            base = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy + 40 * i) % 256)], axis=2)
            img = Image.fromarray((base + rng.randint(0, 20, base.shape)).clip(0, 255).astype(np.uint8))
        path = folder / f"{i:04d}.jpg"
        img.save(path, quality=90)
        paths.append(path)
    return paths


def make_video(path: Path, images: list[Path], fps: float = 25.0) -> Path | None:
    """An .mp4 (mp4v) of ``images``; None without OpenCV."""
    try:
        import cv2
    except ImportError:
        return None
    first = np.asarray(Image.open(images[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (first.shape[1], first.shape[0]))
    for p in images:
        writer.write(np.asarray(Image.open(p))[:, :, ::-1].copy())
    writer.release()
    return path


def model_only(model: str, backend: str, inputs: list[np.ndarray], threads: int | None) -> float:
    """Images/s of a fresh ``backend`` on pre-normalised inputs, timed from its first call."""
    runner = create_backend(model, backend, **({"threads": threads} if threads else {}))
    start = time.perf_counter()
    for x in inputs:
        runner(x)
    rate = len(inputs) / (time.perf_counter() - start)
    runner.close()
    return rate


def _quiet(argv: list[str]) -> str:
    """Run the CLI with its output captured; raise when it fails."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli(argv)
    if code != 0:
        raise RuntimeError(f"liteseg {' '.join(argv)} exited with {code}:\n{out.getvalue()}\n{err.getvalue()}")
    return out.getvalue()


def predict_rate(source: Path, model: str, backend: str, out: Path, threads: int | None,
                 save: str | None = None) -> float:
    """Images/s that ``liteseg predict`` reports (model loaded before its clock starts, writing included)."""
    shutil.rmtree(out, ignore_errors=True)
    argv = ["predict", str(source), "--model", model, "--backend", backend, "-o", str(out)]
    argv += ["--save", save] if save else []
    text = _quiet(argv + (["--threads", str(threads)] if threads else []))
    line = next(s for s in text.splitlines() if "image(s) segmented" in s or "frame(s) segmented" in s)
    return float(line.split(" img/s" if "image(s)" in line else " frame/s")[0].rsplit(" ", 1)[1])


def val_rate(data: str, model: str, backend: str, out: Path) -> float:
    """Images/s that ``liteseg val`` reports (data loading included)."""
    device = ["--device", "cpu"] if backend == "torch" else []
    text = _quiet(["val", "--model", model, "--backend", backend, "--data", data, "-o", str(out), "--exist-ok",
                   *device])
    line = next(s for s in text.splitlines() if "images/s" in s)
    return float(line.split(" images/s")[0].rsplit(" ", 1)[1])


def interleave(name: str, e2e: Callable[[], float], alone: Callable[[], float], repeats: int) -> dict:
    """A, B, A, B, ... ``repeats`` times; medians and their ratio."""
    ends, alones, loads = [], [], []
    for _ in range(repeats):
        loads.append(_load())
        alones.append(alone())
        ends.append(e2e())
    row = {"case": name, "e2e": statistics.median(ends), "model": statistics.median(alones), "loads": loads,
           "all_e2e": ends, "all_model": alones}
    row["ratio"] = row["e2e"] / row["model"]
    print(f"{name:<28} {row['e2e']:7.2f} img/s vs model alone {row['model']:7.2f} img/s  ratio {row['ratio']:.2f}"
          f"   (e2e {', '.join(f'{v:.2f}' for v in ends)}; model {', '.join(f'{v:.2f}' for v in alones)};"
          f" load {loads[0]})", flush=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--camvid", type=lambda s: Path(s).resolve(),  # the val list must not hold relative paths
                   help="CamVid root (val frames as inputs, and the val case)")
    p.add_argument("--backends", default="torch,onnxruntime")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--images", type=int, default=24)
    p.add_argument("--size", default="1024x512", help="WxH of the generated JPEGs")
    p.add_argument("--threads", type=int, help="backend threads (default: the backend's own default)")
    p.add_argument("--cases", default="folder,video,val",
                   help="folder, labels (the folder with --save labels only), video, val")
    p.add_argument("--dry-run", action="store_true", help="4 tiny images, 1 repeat, 4 val images: checks it works")
    p.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    args = p.parse_args(argv)
    if args.dry_run:
        args.images, args.size, args.repeats = 4, "128x64", 1
    w, h = (int(v) for v in args.size.lower().split("x"))
    cases = set(args.cases.split(","))
    print(f"load average {_load()}, {os.cpu_count()} CPUs; {args.images} images {w}x{h}, {args.repeats} repeats")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        images = make_images(work / "images", args.images, (w, h), args.camvid)
        video = make_video(work / "video.mp4", images) if "video" in cases else None
        model = str(default_model())
        meta = create_backend(model, "torch").meta
        folder_inputs = [normalize(np.asarray(Image.open(p).convert("RGB")), meta) for p in images]
        video_inputs = [normalize(f.image, meta) for f in iter_frames(video)] if video else []
        val_data, val_inputs = None, []
        if args.camvid and "val" in cases:
            lines = (args.camvid / "val.txt").read_text().split("\n")
            lines = [s for s in lines if s.strip()][: 4 if args.dry_run else None]
            listing = work / "val.txt"
            listing.write_text("".join(" ".join(str(args.camvid / part) for part in s.split()) + "\n"
                                       for s in lines))
            val_data = f"list:{listing}"
            val_inputs = [normalize(np.asarray(Image.open(args.camvid / s.split()[0]).convert("RGB")), meta)
                          for s in lines]
        rows = []
        for backend in args.backends.split(","):
            source = model
            if backend != "torch":  # export once, so that neither side pays for it
                source = str(work / "model.onnx")
                if not Path(source).exists():
                    _quiet(["export", model, "-o", source])
            if "folder" in cases:
                rows.append(interleave(f"predict folder {backend}",
                                       lambda: predict_rate(work / "images", source, backend, work / "out",
                                                            args.threads),
                                       lambda: model_only(source, backend, folder_inputs, args.threads), args.repeats))
            if "labels" in cases:
                rows.append(interleave(f"predict folder labels only {backend}",
                                       lambda: predict_rate(work / "images", source, backend, work / "out",
                                                            args.threads, save="labels"),
                                       lambda: model_only(source, backend, folder_inputs, args.threads), args.repeats))
            if video is not None:
                rows.append(interleave(f"predict video {backend}",
                                       lambda: predict_rate(video, source, backend, work / "out", args.threads),
                                       lambda: model_only(source, backend, video_inputs, args.threads), args.repeats))
            if val_data:
                rows.append(interleave(f"val camvid {backend}",
                                       lambda: val_rate(val_data, source, backend, work / "val"),
                                       lambda: model_only(source, backend, val_inputs, None), args.repeats))
    print("\n| case | end to end img/s | model alone img/s | ratio |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['e2e']:.2f} | {r['model']:.2f} | {r['ratio']:.2f} |")
    print(f"\nload average at the end {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
