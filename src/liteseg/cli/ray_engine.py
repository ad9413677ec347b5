"""``predict --engine ray`` and ``val --engine ray``: the same commands on a pool of Ray Data model actors.

Every worker reads, segments and writes its own images (outputs go to a local or shared filesystem with the
single-process writers, so the files are byte-identical); only a status row per image comes back here.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LitesegError
from . import options

if TYPE_CHECKING:
    from ..inference.ray_data import Throughput

ROWS_PER_TASK = 4  # images per actor call: a killed worker's batch is redone, so this bounds the work lost
_RAY_ONLY = ("address", "workers", "gpus_per_worker", "resume")


def add_options(p: argparse.ArgumentParser, resume: bool) -> None:
    """``--engine`` and the Ray engine's options (``--resume`` for predict)."""
    p.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this process (default); ray: a pool of model workers on a Ray cluster (Ray Data)")
    g = p.add_argument_group("Ray engine (--engine ray; pip install 'liteseg[ray]')")
    g.add_argument("--address", help="Ray cluster: auto (the one 'ray start' runs here) or ray://HOST:PORT "
                                     "(default: a new local Ray on this machine, loopback only)")
    g.add_argument("--workers", type=options.positive_int,
                   help="model workers (default: as many as the cluster's CPUs / --threads, or GPUs / "
                        "--gpus-per-worker, hold)")
    g.add_argument("--gpus-per-worker", type=options.float_range(0.0, 8.0), default=0.0,
                   help="GPUs per worker; a fraction (0.5) puts several workers on one GPU (default 0: CPU)")
    if resume:
        g.add_argument("--resume", action="store_true",
                       help="skip images whose outputs all exist in -o OUT (a stopped job goes on)")


def check_local(args: argparse.Namespace) -> None:
    """Refuse Ray options without ``--engine ray``."""
    given = [f"--{name.replace('_', '-')}" for name in _RAY_ONLY if getattr(args, name, None)]
    if given:
        raise LitesegError(f"{' '.join(given)}: only with --engine ray (add it, or run without these options)")


def _device(args: argparse.Namespace) -> str | None:
    """``--device``, else CUDA for GPU workers of a backend that runs on it."""
    from ..inference.capabilities import capabilities

    caps = capabilities(args.backend) if args.gpus_per_worker else None
    return args.device or ("cuda" if caps is not None and "cuda" in caps.devices else None)


class PredictWorker:
    """A Ray actor that reads, segments and writes the images of rows ``{"path", "name"}`` (names given by the
    driver over the whole job, so they cannot collide across batches) with the :class:`ResultWriter` single-process
    predict uses, and returns a status row per image (``error``, ``notes``, ``worker``, ``seconds``)."""

    def __init__(self, model: str, source: str, out_dir: str, kinds: list[str], alpha: float,
                 **segmenter_options: Any) -> None:
        from ..inference.ray_data import SegmentBatch, worker_name
        from ..inference.result_writer import ResultWriter

        self.segment = SegmentBatch(model, probs="probs" in kinds, keep_image=True, **segmenter_options).segment
        self.source, self.writer = source, ResultWriter(out_dir, kinds, alpha=alpha)
        self.name = worker_name()

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from ..inference.inputs import iter_frames

        start = time.perf_counter()
        frames = [replace(f, name=str(n))  # one frame per image file (videos are refused before the job)
                  for f, n in zip(iter_frames(self.source, [Path(p) for p in batch["path"]]), batch["name"])]
        good = [f for f in frames if f.error is None]
        for frame, result in zip(good, self.segment([f.image for f in good])):
            self.writer.write(result, frame.name)
        seconds = (time.perf_counter() - start) / max(len(frames), 1)
        return {"path": [f.source for f in frames], "error": [f.error or "" for f in frames],
                "notes": ["\n".join(f.notes) for f in frames], "worker": [self.name] * len(frames),
                "seconds": [seconds] * len(frames)}


def _pending(files: list[Path], names: list[str], out_dir: Path, kinds: list[str]) -> list[Path]:
    """The files not all of whose outputs exist (atomic writes: an existing output is a finished one)."""
    from ..inference.result_writer import ResultWriter

    writer = ResultWriter(out_dir, kinds)
    return [f for f, n in zip(files, names) if not all(writer.path(k, n).exists() for k in kinds)]


def run_predict(args: argparse.Namespace, kinds: list[str]) -> int:
    """``liteseg predict --engine ray``."""
    from ..inference.backends import create_backend
    from ..inference.inputs import VIDEO_SUFFIXES, list_sources, output_names
    from ..inference.output_encoding import check_kinds
    from ..inference.ray_data import Throughput, remove_partial_files
    from ..inference.result_writer import ResultWriter
    from ..loading.zoo import default_model
    from .run_dir import prepare_output_dir

    if "://" in args.source:
        raise LitesegError(f"{args.source}: object stores are not supported by --engine ray yet; give a path on "
                           f"a filesystem every worker sees (local, NFS, a mounted bucket)")
    if args.save_video:
        raise LitesegError("--save-video needs the frames in order: use --engine local for videos")
    if args.resume and args.output is None:
        raise LitesegError("--resume needs -o OUT, the output folder of the job to go on with")
    files = list_sources(args.source)
    videos = [f for f in files if f.suffix.lower() in VIDEO_SUFFIXES]
    if videos:
        raise LitesegError(f"{videos[0]}: --engine ray segments images; use --engine local for videos")
    model = args.model or default_model()
    checker = create_backend(model, args.backend)  # a bad model fails here, not in every worker
    meta = checker.meta
    checker.close()
    check_kinds(kinds, meta.num_classes)
    out_dir = prepare_output_dir(args.output, "runs/predict", exist_ok=args.exist_ok or args.resume)
    removed = remove_partial_files(out_dir, kinds)
    names = dict(zip(files, output_names(files, Path(args.source) if Path(args.source).is_dir() else None)))
    pending = _pending(files, [names[f] for f in files], out_dir, kinds) if args.resume else files
    if args.resume:
        print(f"resume: {len(files) - len(pending)} of {len(files)} image(s) already done, {len(pending)} to go"
              + (f"; removed {removed} partial file(s)" if removed else ""))
    stats = Throughput()
    start = time.perf_counter()
    failed, first = _run_job(args, model, kinds, out_dir, [(p, names[p]) for p in pending], stats) \
        if pending else (0, None)
    done = sum(stats.images.values()) - failed
    remove_partial_files(out_dir, kinds)
    elapsed = time.perf_counter() - start
    ResultWriter(out_dir, ()).write_legend(meta.class_names, meta.palette)
    print(f"{done} image(s) segmented, {failed} failed, {done / elapsed if elapsed > 0 else 0.0:.2f} img/s "
          f"(ray, {len(stats.images)} worker(s)) -> {out_dir}")
    if first is not None:
        print(f"time {elapsed:.1f} s, first results after {first:.1f} s (cluster, workers and models starting)")
    for line in stats.lines():
        print(line)
    return 1 if failed else 0


def _run_job(args: argparse.Namespace, model: str, kinds: list[str], out_dir: Path, pending: list[tuple[Path, str]],
             stats: Throughput) -> tuple[int, float | None]:
    """Segment ``pending`` (path, output name) on the Ray workers; (images failed, seconds to the first result)."""
    from tqdm import tqdm

    from ..inference.ray_data import connect, map_with_actors, pool_size

    worker_kwargs = dict(model=model, source=args.source, out_dir=str(out_dir), kinds=kinds, alpha=args.alpha,
                         backend=args.backend, device=_device(args), threads=args.threads,
                         batch_size=args.batch_size, half=args.half, tile=args.tile, imgsz=args.imgsz)
    rows = args.batch_size * -(-ROWS_PER_TASK // args.batch_size)
    failed, first, start = 0, None, time.perf_counter()
    with tqdm(desc="predict (ray)", total=len(pending), unit="img", dynamic_ncols=True) as bar, \
            connect(args.address, f"; finished images are kept: go on with --resume -o {out_dir}") as ray:
        workers = args.workers or pool_size(ray, args.threads, args.gpus_per_worker)
        rows_in = ray.data.from_items([{"path": str(path), "name": name} for path, name in pending])
        ds = map_with_actors(rows_in, PredictWorker, worker_kwargs, workers=workers, threads=args.threads,
                             gpus=args.gpus_per_worker, rows=rows)
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            first = first or time.perf_counter() - start
            stats.add(batch)
            for path, error, notes in zip(batch["path"], batch["error"], batch["notes"]):
                if error:
                    failed += 1
                    tqdm.write(f"skipped: {error}")
                for note in filter(None, str(notes).split("\n")):
                    tqdm.write(f"warning: {path}: {note}")
            bar.update(len(batch["path"]))
            bar.set_postfix_str(f"{bar.n / (time.perf_counter() - start):.2f} img/s")
    return failed, first


def run_val(args: argparse.Namespace, dataset: Any, model: str) -> Any:
    """``liteseg val --engine ray``: the evaluation result, with a progress bar and the per-worker summary."""
    from tqdm import tqdm

    from ..evaluation.ray_eval import evaluate_ray

    with tqdm(total=len(dataset), desc="evaluating (ray)", unit="img", dynamic_ncols=True) as bar:
        result, stats = evaluate_ray(
            model, dataset, backend=args.backend, device=_device(args), threads=args.threads, workers=args.workers,
            gpus=args.gpus_per_worker, address=args.address, flip=args.flip, flip_v=args.flip_v, scales=args.scales,
            slide=args.slide, legacy_aug=args.legacy_aug, skip_bad=args.skip_bad,
            exclude_absent=args.exclude_absent, progress=bar.update)
    print(f"ray: {result.num_images} image(s) in {result.seconds:.1f} s on {len(stats.images)} worker(s)")
    for line in stats.lines():
        print(line)
    return result
