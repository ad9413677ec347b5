"""``predict --engine ray`` and ``val --engine ray``: the same commands on a pool of Ray model actors.

Every worker reads (from files, or from an object store such as ``s3://``), segments and writes its own images
(outputs go to a local or shared filesystem with the single-process writers, so the files are byte-identical); only
a status row per image comes back here.
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import LitesegError
from . import options

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

    caps = capabilities(args.backend or "torch") if args.gpus_per_worker else None
    return args.device or ("cuda" if caps is not None and "cuda" in caps.devices else None)


class PredictWorker:
    """A Ray actor that reads, segments and writes the images of rows ``{"path", "name"}`` (files, or object keys
    for an object-store source; names given by the driver over the whole job, so they cannot collide across
    batches) with the :class:`ResultWriter` single-process predict uses, and returns a status row per image (``error``, ``notes``, ``worker``,
    ``seconds``)."""

    def __init__(self, model: str, source: str, out_dir: str, kinds: list[str], alpha: float,
                 **segmenter_options: Any) -> None:
        from ..inference.object_store import ObjectStore, is_uri
        from ..inference.ray_data import SegmentBatch, worker_name
        from ..inference.result_writer import ResultWriter

        self.segment = SegmentBatch(model, probs="probs" in kinds, keep_image=True, **segmenter_options).segment
        self.source, self.writer = source, ResultWriter(out_dir, kinds, alpha=alpha)
        self.store = ObjectStore(source) if is_uri(source) else None
        self.name = worker_name()

    def _read(self, batch: dict[str, Any]) -> list[Any]:
        """One frame per row (videos are refused before the job), named as the driver decided."""
        from ..inference.inputs import iter_frames

        if self.store is not None:
            return [self.store.read(str(key), str(n)) for key, n in zip(batch["path"], batch["name"])]
        return [replace(f, name=str(n))
                for f, n in zip(iter_frames(self.source, [Path(p) for p in batch["path"]]), batch["name"])]

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        frames = self._read(batch)
        good = [f for f in frames if f.error is None]
        for frame, result in zip(good, self.segment([f.image for f in good])):
            self.writer.write(result, frame.name)
        seconds = (time.perf_counter() - start) / max(len(frames), 1)
        return {"path": [f.source for f in frames], "error": [f.error or "" for f in frames],
                "notes": ["\n".join(f.notes) for f in frames], "worker": [self.name] * len(frames),
                "seconds": [seconds] * len(frames)}


def _pending(files: list[str], names: list[str], out_dir: Path, kinds: list[str]) -> tuple[list[str], list[str]]:
    """The inputs (and their output names) not all of whose outputs exist (atomic writes: an existing output is a
    finished one)."""
    from ..inference.result_writer import ResultWriter

    writer = ResultWriter(out_dir, kinds)
    todo = [(f, n) for f, n in zip(files, names) if not all(writer.path(k, n).exists() for k in kinds)]
    return [f for f, _ in todo], [n for _, n in todo]


def _refuse(args: argparse.Namespace) -> None:
    """Options and sources the Ray engine cannot run, refused before anything starts."""
    if args.save_video:
        raise LitesegError("--save-video needs the frames in order: use --engine local for videos")
    if args.resume and args.output is None:
        raise LitesegError("--resume needs -o OUT, the output folder of the job to go on with")


def _inputs(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The images of the source (file paths, or object keys for ``s3://...``) and their output names (decided here
    over the whole job)."""
    from ..inference.inputs import VIDEO_SUFFIXES, list_sources, output_names
    from ..inference.object_store import ObjectStore, is_uri

    if is_uri(args.source):
        keys, names = ObjectStore(args.source).list_images()
    else:
        paths = list_sources(args.source)
        keys = [str(p) for p in paths]
        names = output_names(paths, Path(args.source) if Path(args.source).is_dir() else None)
    videos = [k for k in keys if Path(k).suffix.lower() in VIDEO_SUFFIXES]
    if videos:
        raise LitesegError(f"{videos[0]}: --engine ray segments images; use --engine local for videos")
    return keys, names


def _model_meta(model: str, args: argparse.Namespace, kinds: list[str]) -> Any:
    """The model's metadata, loading it here once (a bad model, or an output kind it cannot give, is one clear
    error, not one per worker)."""
    from ..inference.backends import create_backend
    from ..inference.output_encoding import check_kinds

    checker = create_backend(model, args.backend)
    meta = checker.meta
    checker.close()
    check_kinds(kinds, meta.num_classes)
    return meta


@dataclass
class _Job:
    """A predict job on Ray: the model's metadata, failures, per-worker throughput, and when Ray was up and the first
    results came (seconds from the start of the command)."""

    meta: Any
    stats: Any
    failed: int = 0
    ray_s: float | None = None
    first_s: float | None = None


def _segment(args: argparse.Namespace, model: str, out_dir: Path, kinds: list[str], files: list[str],
             names: list[str], start: float) -> _Job:
    """Check the model here while Ray starts, then start the workers and segment ``files`` on them."""
    from tqdm import tqdm

    from ..inference.ray_data import Throughput, chunks, connect, map_on_actors, pool_size, start_actors

    with ThreadPoolExecutor(1) as pool:
        checked = pool.submit(_model_meta, model, args, kinds)
        with connect(args.address, f"; finished images are kept: go on with --resume -o {out_dir}") as ray:
            ray_s = time.perf_counter() - start
            job = _Job(checked.result(), Throughput(), ray_s=ray_s)
            actors = start_actors(ray, PredictWorker, dict(
                model=model, source=args.source, out_dir=str(out_dir), kinds=kinds, alpha=args.alpha,
                backend=args.backend, device=_device(args), threads=args.threads, batch_size=args.batch_size,
                half=args.half, tile=args.tile, imgsz=args.imgsz),
                workers=pool_size(ray, args.workers, args.threads, args.gpus_per_worker), threads=args.threads,
                gpus=args.gpus_per_worker)
            rows = args.batch_size * -(-ROWS_PER_TASK // args.batch_size)
            with tqdm(desc="predict (ray)", total=len(files), unit="img", dynamic_ncols=True) as bar:
                for batch in map_on_actors(actors, chunks({"path": files, "name": names}, rows)):
                    job.first_s = job.first_s or time.perf_counter() - start
                    job.stats.add(batch)
                    for path, error, notes in zip(batch["path"], batch["error"], batch["notes"]):
                        job.failed += bool(error)
                        if error:
                            tqdm.write(f"skipped: {error}")
                        for note in filter(None, str(notes).split("\n")):
                            tqdm.write(f"warning: {path}: {note}")
                    bar.update(len(batch["path"]))
                    bar.set_postfix_str(f"{bar.n / (time.perf_counter() - start):.2f} img/s")
    return job


def run_predict(args: argparse.Namespace, kinds: list[str]) -> int:
    """``liteseg predict --engine ray``."""
    from ..inference.ray_data import Throughput, remove_partial_files
    from ..inference.result_writer import ResultWriter
    from ..loading.zoo import default_model
    from .run_dir import prepare_output_dir

    _refuse(args)
    start = time.perf_counter()
    files, names = _inputs(args)
    model = args.model or default_model()
    out_dir = prepare_output_dir(args.output, "runs/predict", exist_ok=args.exist_ok or args.resume)
    removed = remove_partial_files(out_dir, kinds)
    todo, todo_names = _pending(files, names, out_dir, kinds) if args.resume else (files, names)
    if args.resume:
        print(f"resume: {len(files) - len(todo)} of {len(files)} image(s) already done, {len(todo)} to go"
              + (f"; removed {removed} partial file(s)" if removed else ""))
    if todo:
        job = _segment(args, model, out_dir, kinds, todo, todo_names, start)
    else:
        job = _Job(_model_meta(model, args, kinds), Throughput())
    remove_partial_files(out_dir, kinds)
    elapsed = time.perf_counter() - start
    ResultWriter(out_dir, ()).write_legend(job.meta.class_names, job.meta.palette)
    done = sum(job.stats.images.values()) - job.failed
    print(f"{done} image(s) segmented, {job.failed} failed, {done / elapsed if elapsed > 0 else 0.0:.2f} img/s "
          f"(ray, {len(job.stats.images)} worker(s)) -> {out_dir}")
    if job.first_s is not None:
        print(f"time {elapsed:.1f} s, first results after {job.first_s:.1f} s (Ray up after {job.ray_s:.1f} s, "
              f"then workers starting and loading the model)")
    for line in job.stats.lines():
        print(line)
    return 1 if job.failed else 0


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
