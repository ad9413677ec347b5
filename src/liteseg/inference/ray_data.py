"""Segmentation on a Ray cluster: a model-actor class for Ray Data's ``Dataset.map_batches`` (the Python API) and
the plumbing (connect, a pool of model actors, per-worker throughput) that ``predict --engine ray`` and
``val --engine ray`` share.

Ray is an optional extra (``pip install 'liteseg[ray]'``), imported on first use. The commands run their actors
with Ray core (``ray.util.ActorPool``) rather than Ray Data: Ray Data's executor starts helper actors and imports
pyarrow/pandas in every process, seconds of start-up on a small machine for no gain when each worker reads and
writes its own files. A worker process that dies (``kill -9``, out of memory, a lost node) is restarted by Ray and
its batch is run again (``max_restarts=-1, max_task_retries=-1``), so a job finishes with every row exactly once.

>>> import ray                                                                   # doctest: +SKIP
>>> ds = ray.data.read_images("imgs/", include_paths=True, mode="RGB")           # doctest: +SKIP
>>> ds = ds.map_batches(SegmentBatch, fn_constructor_kwargs={"model": "m.safetensors"},
...                     compute=ray.data.ActorPoolStrategy(size=2), batch_size=8)  # doctest: +SKIP
>>> for batch in ds.iter_batches(batch_size=None):                               # doctest: +SKIP
...     write_results(batch, "out", class_names=names, palette=palette)
"""
from __future__ import annotations

import contextlib
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..errors import LitesegError, install_hint
from .output_encoding import SUFFIXES
from .result_writer import ResultWriter
from .segmenter import SegResult, Segmenter

# Ray's own servers bind to the node's network address; a cluster started here just for one job binds to loopback
_LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray(local: bool = False) -> Any:
    """The ``ray`` module, or a LitesegError with the install command. ``local``: a cluster this process starts
    listens on loopback only (takes effect when ray is first imported)."""
    if local and "ray" not in sys.modules:
        os.environ.setdefault(_LOCAL_ONLY, "0")
    try:
        import ray
    except ImportError as e:
        raise LitesegError(f"--engine ray needs Ray ({e}): {install_hint('ray')}") from None
    return ray


@contextlib.contextmanager
def connect(address: str | None, on_failure: str = "") -> Iterator[Any]:
    """Ray, connected: to ``address`` (``auto``: the cluster ``ray start`` runs on this machine; ``ray://HOST:PORT``:
    Ray Client), to the cluster this process already joined, or else to a new local one stopped on exit.

    A failed Ray job inside the block becomes a LitesegError ending with ``on_failure`` (what to do)."""
    ray = import_ray(local=address is None)
    started = not ray.is_initialized()
    if started:
        try:
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=True, logging_level="WARNING")
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise LitesegError(f"--address {address}: cannot connect to a Ray cluster ({e}); start one with "
                               f"'ray start --head' or leave --address out for a local one") from None
    try:
        yield ray
    except ray.exceptions.RayError as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LitesegError(f"the Ray job failed: {reason}{on_failure}") from e
    finally:
        if started:
            ray.shutdown()


def start_actors(ray: Any, cls: type, kwargs: dict[str, Any], *, workers: int, threads: int | None,
                 gpus: float) -> list[Any]:
    """``workers`` actors of ``cls(**kwargs)``, each holding ``threads`` CPUs (1 when unset) and ``gpus`` GPUs (a
    fraction shares one GPU between actors). They start (import torch, load the model) while the caller goes on.

    A dead actor (``kill -9``, out of memory, a lost node) is restarted and the calls it was running are run again,
    without limit; an exception raised by ``cls`` itself is not retried."""
    remote = ray.remote(cls).options(num_cpus=threads or 1, num_gpus=gpus or 0, max_restarts=-1,
                                     max_task_retries=-1)
    return [remote.remote(**kwargs) for _ in range(workers)]


def map_on_actors(actors: list[Any], batches: Iterable[dict[str, list]]) -> Iterator[dict[str, Any]]:
    """``actor(batch)`` for every batch, each on the next free actor; results in the order they finish."""
    from ray.util import ActorPool

    yield from ActorPool(actors).map_unordered(lambda actor, batch: actor.__call__.remote(batch), batches)


def chunks(columns: dict[str, Sequence[Any]], rows: int) -> Iterator[dict[str, list]]:
    """``columns`` (equal lengths) cut into batches of ``rows`` rows."""
    count = len(next(iter(columns.values()), []))
    for start in range(0, count, rows):
        yield {k: list(v[start:start + rows]) for k, v in columns.items()}


def pool_size(ray: Any, workers: int | None, threads: int | None, gpus: float) -> int:
    """How many actors to start: ``workers``, or as many as the cluster holds (its CPUs / ``threads``, or its GPUs /
    ``gpus`` for GPU workers). GPU workers on a cluster without GPUs are a LitesegError (they would wait forever)."""
    resources = ray.cluster_resources()
    if gpus and not resources.get("GPU"):
        raise LitesegError(f"--gpus-per-worker {gpus:g}: the Ray cluster has no GPUs ({resources.get('CPU', 0):g} "
                           f"CPUs); leave the option out to run on CPUs, or add GPU nodes to the cluster")
    if workers:
        return workers
    if gpus:
        return max(1, int(resources["GPU"] / gpus))
    return max(1, int(resources.get("CPU", 1) // (threads or 1)))


def worker_name() -> str:
    """``host:pid`` of this process: the key of the per-worker summary."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Throughput:
    """Images and busy seconds per worker, from the ``worker``/``seconds`` columns of result batches."""

    images: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, batch: dict[str, np.ndarray]) -> int:
        """Count a result batch (rows of one image each, or an ``images`` column); returns its images."""
        counts = batch["images"] if "images" in batch else np.ones(len(batch["worker"]), dtype=np.int64)
        for worker, n, seconds in zip(batch["worker"], counts, batch["seconds"]):
            self.images[worker] = self.images.get(worker, 0) + int(n)
            self.seconds[worker] = self.seconds.get(worker, 0.0) + float(seconds)
        return int(np.sum(counts))

    def lines(self) -> list[str]:
        """One line per worker: images and images per busy second."""
        return [f"  worker {w}: {n} image(s), {n / max(self.seconds[w], 1e-9):.2f} img/s"
                for w, n in sorted(self.images.items())]


class SegmentBatch:
    """A model actor for ``Dataset.map_batches``: adds ``labels`` (uint8 ``[H, W]`` per row, at each image's size)
    and, with ``probs=True``, ``probs`` (float16 ``[C, H, W]``) to batches with an ``image`` column of RGB uint8
    ``[H, W, 3]`` arrays (what ``ray.data.read_images(mode="RGB")`` gives). ``model``: any file ``liteseg.load``
    accepts, or ``.onnx`` (None: the shipped default model); the options are :class:`Segmenter`'s.
    """

    def __init__(self, model: str | None = None, *, backend: str | None = None, device: str | None = None,
                 threads: int | None = None, batch_size: int = 1, probs: bool = False, half: bool = False,
                 tile: Any = None, imgsz: Any = None, column: str = "image", keep_image: bool = False) -> None:
        from ..loading.zoo import default_model

        self.segmenter = Segmenter(model or default_model(), backend=backend, device=device, probs=probs,
                                   batch_size=batch_size, half=half, threads=threads, tile=tile,
                                   imgsz=imgsz, keep_image=keep_image)
        self.column, self.probs = column, probs

    def segment(self, images: Sequence[np.ndarray]) -> list[SegResult]:
        """Results for RGB uint8 images, as the single-process Segmenter computes them."""
        return self.segmenter.predict_rgb(images)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        results = self.segment([np.asarray(img) for img in batch[self.column]])
        out = dict(batch)
        out["labels"] = [r.labels for r in results]
        if self.probs:
            out["probs"] = [r.probs.astype(np.float16) for r in results]
        return out


def write_results(batch: dict[str, Any], out_dir: str | os.PathLike, *, class_names: Sequence[str],
                  palette: Sequence[Sequence[int]], kinds: Sequence[str] = ("labels", "color"),
                  name_column: str = "path", alpha: float = 0.5) -> list[Path]:
    """Write each row of a :class:`SegmentBatch` result as ``predict`` does (``OUT/labels/NAME.png``, ...).

    ``NAME`` is the row's ``name_column`` without folder and suffix when that is a path; overlays need the
    ``image`` column, ``probs`` the ``probs`` column. Writes are atomic; returns the paths written.
    """
    writer = ResultWriter(out_dir, kinds, alpha=alpha, num_classes=len(class_names))
    written = []
    for i, labels in enumerate(batch["labels"]):
        name = Path(str(batch[name_column][i])).stem if name_column == "path" else str(batch[name_column][i])
        result = SegResult(labels=np.asarray(labels), class_names=list(class_names),
                           palette=[list(c) for c in palette],
                           image=np.asarray(batch["image"][i]) if "image" in batch else None,
                           probs=np.asarray(batch["probs"][i]) if "probs" in batch else None)
        written.extend(writer.write(result, name).values())
    return written


def remove_partial_files(out_dir: Path, kinds: Sequence[str]) -> int:
    """Delete the temporary files atomic writes of killed workers left in the output folders; how many."""
    removed = 0
    for kind in kinds:
        folder = out_dir / kind
        if folder.is_dir():
            for path in folder.rglob(f".*.tmp{SUFFIXES[kind]}"):
                path.unlink(missing_ok=True)
                removed += 1
    return removed
