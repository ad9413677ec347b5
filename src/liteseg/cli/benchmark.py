"""``liteseg benchmark [--model M] --backend torch|torch-opt|torch-compile|onnxruntime|openvino|all --shape 1,3,512,1024``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import LitesegError
from ..registry import did_you_mean
from ..utils.shapes import parse_shape
from . import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("benchmark", help="latency, throughput, memory, params and FLOPs per backend and shape",
                       description="Time the model call (no pre/post-processing) on random input, per backend and "
                                   "input shape, after warm-up; report p50/p90/min latency, images/s, peak memory, "
                                   "parameter count and conv FLOPs.")
    p.add_argument("--model", "-m", help="any model liteseg.load accepts, or an .onnx file (default: the shipped "
                                         "default model, as predict and val)")
    p.add_argument("--backend",
                   help="comma-separated: torch, torch-opt, torch-compile, onnxruntime, openvino or all (all that can "
                        "run the model; default torch, or onnxruntime for an .onnx file)")
    p.add_argument("--shape", action="append", help="input N,3,H,W (repeatable; default 1,3,512,1024)")
    p.add_argument("--warmup", type=options.count, default=5, help="untimed calls first (default 5)")
    p.add_argument("--runs", type=options.positive_int, default=20, help="timed calls (default 20)")
    p.add_argument("--threads", type=options.threads, help="CPU threads (default or 0: the library's)")
    p.add_argument("--json", type=Path, help="write the results as JSON")
    p.add_argument("--plot", type=Path, help="write a PNG bar chart of latency per backend and shape")
    g = p.add_argument_group("formats", "--formats: export the model to each format and precision and run each "
                                        "(status, size, max abs diff vs PyTorch, latency and its ratio to ONNX "
                                        "Runtime fp32, mIoU on --eval-list at the first --shape)")
    g.add_argument("--formats", help="all, or e.g. executorch:int8,tflite,ncnn:fp16 (a bare format: all its "
                                     "precisions)")
    g.add_argument("--calib", help="int8 calibration images: a folder or a list file (first column)")
    g.add_argument("--num-calib", type=options.positive_int, default=32, help="calibration images (default 32)")
    g.add_argument("--eval-list", type=Path, help="labelled list file ('image label' per line) for mIoU")
    g.add_argument("--num-eval", type=options.positive_int, help="use only the first N labelled images")
    g.add_argument("--workdir", type=Path, help="where the exports go (default: a temporary folder)")
    p.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> None:
    """benchmark's checks: the model exists, the backends are known, matplotlib is there for --plot."""
    from ..utils.plots import require_matplotlib

    if args.model:
        options.check_model(args.model)
    if args.backend and args.backend != "all":
        _backends(args.backend, str(args.model or ""))
    if args.plot:
        require_matplotlib("--plot")  # before the run, not after it


TORCH_BACKENDS = ("torch", "torch-opt", "torch-compile")


def _backends(text: str | None, model: str) -> list[str]:
    """The backends to time; an ONNX file only runs in the graph backends (ONNX Runtime, OpenVINO)."""
    from ..evaluation.benchmark import BENCH_BACKENDS
    from ..inference.backends import GRAPH_SUFFIXES, available_backends, backend_for

    graph = model.lower().endswith(GRAPH_SUFFIXES)
    if text is None:
        return [backend_for(model)]
    if text == "all":
        have = set(available_backends())
        names = [b for b in BENCH_BACKENDS if b in have]
        return [b for b in names if b not in TORCH_BACKENDS] if graph else names
    names = [b.strip() for b in text.split(",") if b.strip()]
    for name in names:
        if name not in BENCH_BACKENDS:
            raise LitesegError(f"--backend: unknown backend {name!r}; {did_you_mean(name, [*BENCH_BACKENDS, 'all'])}")
    if graph and set(names) & set(TORCH_BACKENDS):
        raise LitesegError(f"{model}: an ONNX graph runs in onnxruntime or openvino, not in "
                           f"{', '.join(b for b in names if b in TORCH_BACKENDS)}; benchmark the weights it was "
                           f"exported from for torch")
    return names


def run_formats(args: argparse.Namespace) -> int:
    """``--formats``: every export of the model, run and compared (:mod:`liteseg.evaluation.formats`)."""
    import tempfile

    from ..evaluation.formats import benchmark_formats, formats_table, parse_formats
    from ..quantize import list_images, list_labelled
    from ..utils.io import atomic_write_bytes

    formats = parse_formats(args.formats)
    if any(p == "int8" for _, p in formats) and not args.calib:
        raise LitesegError("--formats with int8 precisions needs --calib IMAGES (e.g. camvid/train.txt)")
    shapes = [parse_shape(s, what="--shape") for s in (args.shape or ["1,3,360,480", "1,3,512,1024"])]
    calibration = list_images(args.calib, args.num_calib) if args.calib else []
    labelled = list_labelled(args.eval_list, args.num_eval) if args.eval_list else []
    threads = args.threads or 2
    with tempfile.TemporaryDirectory() as tmp:
        report = benchmark_formats(args.model, args.workdir or tmp, formats, shapes, calibration=calibration,
                                   labelled=labelled, threads=threads, warmup=args.warmup, runs=args.runs)
    machine = report.machine
    print(f"machine: {machine['cpu']} ({machine['cores']} cores), torch {machine['torch']}, threads {threads}, "
          f"warm-up {args.warmup}, runs {args.runs}; model call only")
    if labelled:
        print(f"mIoU on the first {len(labelled)} images of {args.eval_list} at "
              f"{'x'.join(map(str, shapes[0]))}; PyTorch fp32: {report.torch_miou:.4f}")
    print(formats_table(report))
    if args.json:
        atomic_write_bytes(args.json, json.dumps(report.to_json(), indent=2).encode())
        print(f"wrote {args.json}")
    return 0


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.formats:
        return run_formats(args)

    from ..evaluation.benchmark import make_backend, model_stats, plot_results, results_table, run_benchmark, to_json
    from ..inference.backends import GRAPH_SUFFIXES
    from ..utils.io import atomic_write_bytes
    if args.model is None:
        from ..loading.zoo import default_model

        args.model = default_model()
    shapes = [parse_shape(s, what="--shape") for s in (args.shape or ["1,3,512,1024"])]
    names = _backends(args.backend, str(args.model))
    onnx_source = str(args.model).lower().endswith(GRAPH_SUFFIXES)
    stats = {} if onnx_source else model_stats(args.model, shapes[0])
    results = []
    for name in tqdm(names, desc="backends", unit="backend", disable=len(names) == 1):
        backend = make_backend(args.model, name, threads=args.threads)
        for shape in shapes:
            results.append(run_benchmark(backend, shape, args.warmup, args.runs, args.threads))
        backend.close()
    report = to_json(results, stats)
    machine = report["machine"]
    print(f"machine: {machine['cpu']} ({machine['cores']} cores), torch {machine['torch']}, "
          f"threads {results[0].threads}, warm-up {args.warmup}, runs {args.runs}; model call only")
    if stats:
        print(f"model: {stats['arch']}, {stats['params']:,} params ({stats['params_inference']:,} in the eval graph), "
              f"{stats['macs'] / 1e9:.2f} G MACs = {stats['flops'] / 1e9:.2f} GFLOPs (convs) at "
              f"{'x'.join(map(str, shapes[0]))}")
    print(results_table(results))
    if args.json:
        atomic_write_bytes(args.json, json.dumps(report, indent=2).encode())
        print(f"wrote {args.json}")
    if args.plot:
        plot_results(results, args.plot)
        print(f"wrote {args.plot}")
    return 0
