"""``evaluate_ray``: :func:`~liteseg.evaluation.evaluator.evaluate` spread over a pool of Ray actors.

Each actor scores batches of samples with the single-process evaluator and returns their confusion matrix; the
driver sums them (integer counts, so the merge is exact) and computes the metrics once, as ``evaluate`` does.
"""
from __future__ import annotations

import copy
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import numpy as np

from ..data.base import SegDataset
from ..inference import tta
from ..inference.backends import create_backend
from ..inference.ray_data import Throughput, chunks, connect, map_on_actors, pool_size, start_actors, worker_name
from .evaluator import EvalResult, check_run, evaluate
from .metrics import SegMetrics

ROWS_PER_TASK = 4  # samples per actor call: a killed worker loses at most this much work


class EvalBatch:
    """A model actor scoring batches ``{"index": [i, ...]}`` of ``dataset``: one row out per batch with the confusion
    matrix of those samples (``confusion`` [1, C, C]), ``images``, ``worker`` and ``seconds``."""

    def __init__(self, model: str, dataset: SegDataset, protocol: dict[str, Any], *, backend: str | None = None,
                 device: str | None = None, threads: int | None = None) -> None:
        options = {k: v for k, v in dict(device=device, threads=threads).items() if v}
        self.backend = create_backend(model, backend, **options)
        self.dataset, self.protocol, self.name = dataset, protocol, worker_name()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        start = time.perf_counter()
        subset = copy.copy(self.dataset)
        subset.samples = [self.dataset.samples[int(i)] for i in batch["index"]]
        result = evaluate(self.backend, subset, num_workers=0, progress=False, **self.protocol)
        return {"confusion": result.confusion[None], "images": [result.num_images], "worker": [self.name],
                "seconds": [time.perf_counter() - start], "protocol": [json.dumps(result.protocol)]}


def evaluate_ray(model: str, dataset: SegDataset, *, backend: str | None = None, device: str | None = None,
                 threads: int | None = None, workers: int | None = None, gpus: float = 0.0,
                 address: str | None = None, flip: bool = False, flip_v: bool = False,
                 scales: Sequence[float] = (1.0,), slide: tuple[tta.Size, tta.Size] | None = None,
                 legacy_aug: bool = False, skip_bad: bool = False, exclude_absent: bool = False,
                 progress: Callable[[int], None] | None = None) -> tuple[EvalResult, Throughput]:
    """Evaluate ``model`` on ``dataset`` on Ray workers; the same metrics as ``evaluate`` with the same options.

    Samples are checked here first (``skip_bad`` as in ``evaluate``); ``progress(n)`` is called as results come.
    ``workers`` defaults to as many as the cluster's CPUs (or GPUs) hold. Returns the result and per-worker counts.
    """
    scales = tuple(float(s) for s in scales)
    protocol = dict(flip=flip, flip_v=flip_v, scales=scales, slide=slide, legacy_aug=legacy_aug,
                    exclude_absent=exclude_absent)
    options = {k: v for k, v in dict(device=device, threads=threads).items() if v}

    def check() -> None:  # here, once, while Ray starts: a bad model or sample is one clear error
        checker = create_backend(model, backend, **options)
        check_run(checker, dataset, flip=flip, flip_v=flip_v, scales=scales, slide=slide, skip_bad=skip_bad)
        checker.close()

    metrics = SegMetrics(dataset.num_classes, dataset.ignore_index, exclude_absent=exclude_absent)
    stats = Throughput()
    worker_protocol: dict[str, Any] = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(1) as pool:
        checked = pool.submit(check)
        with connect(address) as ray:
            checked.result()
            kwargs = dict(model=model, dataset=dataset, protocol=protocol, backend=backend, device=device,
                          threads=threads)
            actors = start_actors(ray, EvalBatch, kwargs, workers=pool_size(ray, workers, threads, gpus),
                                  threads=threads, gpus=gpus)
            for batch in map_on_actors(actors, chunks({"index": range(len(dataset))}, ROWS_PER_TASK)):
                metrics.confusion += batch["confusion"].sum(axis=0)
                worker_protocol = json.loads(batch["protocol"][0])
                done = stats.add(batch)
                if progress is not None:
                    progress(done)
    seconds = time.perf_counter() - start
    count = sum(stats.images.values())
    worker_protocol.update(engine="ray", workers=len(stats.images), num_workers=0)
    return EvalResult(metrics.compute(), metrics.confusion.copy(), count / seconds if seconds > 0 else 0.0, count,
                      seconds, list(dataset.class_names), worker_protocol, list(dataset.skipped)), stats

