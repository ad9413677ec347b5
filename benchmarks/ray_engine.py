"""``liteseg predict --engine ray --workers 2 --threads 1`` vs single-process ``predict --threads 2``, same images.

Each side runs the real CLI in a fresh process (so Ray's start-up, the workers' imports and model loading count),
alternating single, ray, single, ray, ... for ``--repeats`` rounds. Reported per run: wall time of the command,
images/s end to end, and for Ray the time to its first results (start-up: local cluster, workers, models), the
part of it until Ray was up, and images/s after it; then the medians, their ratios (the issue's goal: >= 0.85x)
and the machine's load average.

    PYTHONPATH=src python benchmarks/ray_engine.py --camvid ../shared/data/camvid          # 200 CamVid frames
    PYTHONPATH=src python benchmarks/ray_engine.py --images 8 --repeats 1                  # quick check
    ray start --head --num-cpus 2 && PYTHONPATH=src python benchmarks/ray_engine.py --camvid ../shared/data/camvid \
        --address auto; ray stop                              # a cluster that is already up (start-up: workers only)

Inputs: ``--images`` JPEGs of ``--size`` (default 480x360: CamVid frames, halved, cycled; generated noise without --camvid). Model:
the shipped default (PP-LiteSeg-T, CamVid classes). Outputs: labels and colour PNGs.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def make_images(folder: Path, count: int, camvid: Path | None, size: tuple[int, int]) -> None:
    folder.mkdir(parents=True)
    sources = sorted((camvid / "images").rglob("*.png")) + sorted((camvid / "images").rglob("*.jpg")) if camvid else []
    rng = np.random.RandomState(0)
    for i in range(count):
        if sources:
            image = Image.open(sources[i % len(sources)]).convert("RGB").resize(size, Image.BILINEAR)
        else:
            image = Image.fromarray(rng.randint(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        image.save(folder / f"{i:04d}.jpg", quality=90)


def run(images: Path, out: Path, ray: bool, address: str | None = None) -> dict[str, float]:
    """One CLI run in a fresh process: wall seconds, images/s, and for Ray the start-up and steady images/s
    (``address``: join that running cluster instead of starting a local one)."""
    argv = [sys.executable, "-m", "liteseg", "predict", str(images), "-o", str(out), "--save", "labels,color"]
    argv += ["--engine", "ray", "--workers", "2", "--threads", "1"] if ray else ["--threads", "2"]
    argv += ["--address", address] if ray and address else []
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, TQDM_DISABLE="1"))
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    count = int(re.search(r"(\d+) image\(s\) segmented", done.stdout).group(1))
    result = {"wall_s": wall, "img_s": count / wall}
    if ray:
        total, first, ray_up = map(float, re.search(
            r"time ([\d.]+) s, first results after ([\d.]+) s \(Ray up after ([\d.]+) s", done.stdout).groups())
        result.update(startup_s=first, ray_up_s=ray_up, steady_img_s=count / max(total - first, 1e-9))
        result["workers"] = "; ".join(line.strip() for line in done.stdout.splitlines() if "worker " in line)
    return result


def differing_labels(a: Path, b: Path) -> tuple[int, int]:
    """(label PNGs that differ, pixels that differ) between two predict output folders."""
    files = pixels = 0
    for path in sorted((a / "labels").rglob("*.png")):
        x, y = np.asarray(Image.open(path)), np.asarray(Image.open(b / "labels" / path.relative_to(a / "labels")))
        diff = int((x != y).sum())
        files, pixels = files + (diff > 0), pixels + diff
    return files, pixels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--camvid", type=Path, help="CamVid root (images/); default: generated images")
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--size", default="480x360", help="image size WxH (default 480x360)")
    parser.add_argument("--address", help="a running Ray cluster to join (auto, HOST:PORT); default: start a local one")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_images(root / "imgs", args.images, args.camvid, size)
        where = f"joining the running cluster at {args.address}" if args.address else "a local Ray started per run"
        print(f"{args.images} images {args.size}, {where}, load average before: {_load()}")
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for r in range(args.repeats):
            for ray in (False, True):
                res = run(root / "imgs", root / f"out_{'ray' if ray else 'single'}_{r}", ray, args.address)
                runs[ray].append(res)
                print(f"round {r + 1} {'ray --workers 2 --threads 1' if ray else 'single --threads 2'}: "
                      + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k}: {v}" for k, v in res.items())
                      + f" (load {_load()})")
        single = statistics.median(r["img_s"] for r in runs[False])
        ray_e2e = statistics.median(r["img_s"] for r in runs[True])
        ray_steady = statistics.median(r["steady_img_s"] for r in runs[True])
        startup = statistics.median(r["startup_s"] for r in runs[True])
        files, pixels = differing_labels(root / "out_single_0", root / "out_ray_0")
        print(f"median: single {single:.2f} img/s; ray {ray_e2e:.2f} img/s end to end ({ray_e2e / single:.2f}x), "
              f"{ray_steady:.2f} img/s after start-up ({ray_steady / single:.2f}x); start-up {startup:.1f} s")
        print(f"labels, 2 threads vs 1 thread per worker: {files} of {args.images} PNGs differ, {pixels} pixels")
        print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
