"""GPU benchmark with the paper's protocol: batch-1 latency and batch-8 throughput at 512x1024 and 1024x2048.

Engines: PyTorch fp32 / fp16 / bf16 (eager, channels-last, CUDA graphs, torch.compile), ONNX Runtime with the
CUDA and TensorRT execution providers, and TensorRT itself when the ``tensorrt`` package is importable (the
engine is built from liteseg's ONNX export with one min/opt/max profile, see liteseg.export.tensorrt). Every
engine's output is first checked against PyTorch fp32 on the CPU; an engine that fails the check is reported,
not timed. Unavailable engines are skipped with the reason.

    python benchmarks/gpu.py --models t,b --out runs/gpu                 # on a CUDA machine
    python benchmarks/gpu.py --dry-run --out runs/gpu_dry                # CPU stand-ins, tiny shapes (CI)

The paper (PP-LiteSeg, 1080Ti, TensorRT, 512x1024): T 273.6 FPS, B 195.3 FPS.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import liteseg
from liteseg.evaluation.benchmark import machine_info

PAPER_FPS = {"t": 273.6, "b": 195.3}  # 512x1024, batch 1, 1080Ti + TensorRT
ARCH = {"t": "pp_liteseg_t", "b": "pp_liteseg_b"}
# max abs logit difference against CPU fp32 allowed per precision (relative to the largest reference logit),
# and the share of equal argmax labels
TOLERANCE = {"fp32": (1e-4, 0.999), "fp16": (2e-2, 0.98), "bf16": (5e-2, 0.95)}
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
Runner = Callable[[torch.Tensor], torch.Tensor]


class Skip(Exception):
    """An engine that cannot run here; the message says why."""


def timed(fn: Runner, x: torch.Tensor, warmup: int, runs: int, device: torch.device) -> list[float]:
    """Wall times (ms) of ``runs`` calls after ``warmup``, synchronising the device around each call."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn(x)
    sync()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(x)
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return times


# -- PyTorch ------------------------------------------------------------------------------------------------
def torch_runner(model: torch.nn.Module, device: torch.device, precision: str, channels_last: bool = False,
                 cuda_graph: bool = False, compile_mode: str | None = None) -> Runner:
    dtype = DTYPES[precision]
    if precision == "fp16" and device.type != "cuda":
        raise Skip("fp16 convolutions need CUDA (bf16 is the CPU half precision)")
    if cuda_graph and device.type != "cuda":
        raise Skip("CUDA graphs need CUDA")
    m = model.to(device=device, dtype=dtype).eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    m = m.to(memory_format=fmt)
    if compile_mode:
        m = torch.compile(m, mode=compile_mode, options=None if compile_mode == "reduce-overhead" else
                          {"freezing": True})

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return m(x.to(dtype=dtype).contiguous(memory_format=fmt))

    if not cuda_graph:
        return run
    graphs: dict[tuple[int, ...], tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]] = {}

    def replay(x: torch.Tensor) -> torch.Tensor:
        key = tuple(x.shape)
        if key not in graphs:
            static_x = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):
                    run(static_x)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_y = run(static_x)
            graphs[key] = (graph, static_x, static_y)
        graph, static_x, static_y = graphs[key]
        static_x.copy_(x)
        graph.replay()
        return static_y

    return replay


# -- ONNX Runtime -------------------------------------------------------------------------------------------
def ort_runner(onnx_path: Path, provider: str, device: torch.device, precision: str, cache: Path) -> Runner:
    try:
        import onnxruntime as ort
    except ImportError:
        raise Skip("onnxruntime is not installed") from None
    if provider not in ort.get_available_providers():
        raise Skip(f"{provider} is not in this onnxruntime build ({', '.join(ort.get_available_providers())})")
    if precision != "fp32" and provider != "TensorrtExecutionProvider":
        raise Skip("fp16 for ONNX Runtime is the TensorRT EP's trt_fp16_enable")
    from liteseg.export.metadata import load_onnx, read_metadata
    from liteseg.export.tensorrt import ort_trt_provider_options

    providers: list[Any] = [provider]
    if provider == "TensorrtExecutionProvider":
        info = read_metadata(load_onnx(onnx_path), str(onnx_path))[1]
        providers = [(provider, {**ort_trt_provider_options(info), "trt_fp16_enable": str(precision == "fp16"),
                                 "trt_engine_cache_enable": "True", "trt_engine_cache_path": str(cache)}),
                     "CUDAExecutionProvider"]
    session = ort.InferenceSession(str(onnx_path), providers=providers)
    out_name = session.get_outputs()[0].name
    on_gpu = device.type == "cuda"

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.float().contiguous()
        if not on_gpu:
            return torch.from_numpy(session.run(None, {"x": x.numpy()})[0])
        binding = session.io_binding()
        binding.bind_input("x", "cuda", device.index or 0, np.float32, tuple(x.shape), x.data_ptr())
        binding.bind_output(out_name, "cuda", device.index or 0)
        session.run_with_iobinding(binding)
        return torch.from_numpy(binding.copy_outputs_to_cpu()[0]) if run.fetch else x  # type: ignore[attr-defined]

    run.fetch = True  # type: ignore[attr-defined]  # the check fetches outputs; timed calls leave them on the GPU
    return run


# -- TensorRT -----------------------------------------------------------------------------------------------
def trt_runner(onnx_path: Path, device: torch.device, precision: str, cache: Path) -> Runner:
    if device.type != "cuda":
        raise Skip("TensorRT needs CUDA")
    try:
        import tensorrt as trt
    except ImportError:
        raise Skip("the tensorrt package is not installed (pip install tensorrt)") from None
    if precision == "bf16":
        raise Skip("bf16 TensorRT engines are not benchmarked (fp32 and fp16 are)")
    from liteseg.export.tensorrt import build_engine

    engine_path = build_engine(onnx_path, cache / f"{onnx_path.stem}_{precision}.engine", fp16=precision == "fp16",
                               overwrite=True)
    logger = trt.Logger(trt.Logger.WARNING)
    engine = trt.Runtime(logger).deserialize_cuda_engine(engine_path.read_bytes())
    context = engine.create_execution_context()
    name_in, name_out = engine.get_tensor_name(0), engine.get_tensor_name(1)

    def run(x: torch.Tensor) -> torch.Tensor:
        x = x.float().contiguous()
        context.set_input_shape(name_in, tuple(x.shape))
        y = torch.empty(tuple(context.get_tensor_shape(name_out)), device=device, dtype=torch.float32)
        context.set_tensor_address(name_in, x.data_ptr())
        context.set_tensor_address(name_out, y.data_ptr())
        context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
        return y

    return run


# -- the protocol -------------------------------------------------------------------------------------------
def engines(dry_run: bool, compile_: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """(label, kind, options) of every engine in the table."""
    rows: list[tuple[str, str, dict[str, Any]]] = []
    for precision in ("fp32", "fp16", "bf16"):
        rows.append((f"torch {precision}", "torch", {"precision": precision}))
        rows.append((f"torch {precision} channels-last", "torch", {"precision": precision, "channels_last": True}))
        rows.append((f"torch {precision} CUDA graph", "torch", {"precision": precision, "cuda_graph": True}))
        if compile_ and precision != "bf16":
            rows.append((f"torch {precision} compile (max-autotune)", "torch",
                         {"precision": precision, "channels_last": True,
                          "compile_mode": "max-autotune-no-cudagraphs"}))
            rows.append((f"torch {precision} compile + CUDA graphs", "torch",
                         {"precision": precision, "channels_last": True, "compile_mode": "reduce-overhead"}))
    provider = "CPUExecutionProvider" if dry_run else "CUDAExecutionProvider"
    rows.append((f"onnxruntime {provider}", "ort", {"precision": "fp32", "provider": provider}))
    for precision in ("fp32", "fp16"):
        rows.append((f"onnxruntime TensorRT EP {precision}", "ort",
                     {"precision": precision, "provider": "TensorrtExecutionProvider"}))
        rows.append((f"TensorRT {precision}", "trt", {"precision": precision}))
    return rows


def make_runner(kind: str, options: dict[str, Any], model: torch.nn.Module, onnx_path: Path,
                device: torch.device, cache: Path) -> Runner:
    import copy

    options = dict(options)
    precision = options.pop("precision")
    if kind == "torch":
        return torch_runner(copy.deepcopy(model), device, precision, **options)
    if kind == "ort":
        return ort_runner(onnx_path, options["provider"], device, precision, cache)
    return trt_runner(onnx_path, device, precision, cache)


def check(out: torch.Tensor, reference: torch.Tensor, precision: str) -> tuple[float, float, bool]:
    """(max abs diff relative to the largest reference logit, label agreement, passed) against CPU fp32."""
    out = out.float().cpu()
    diff = float((out - reference).abs().max() / reference.abs().max())
    agree = float((out.argmax(1) == reference.argmax(1)).float().mean())
    max_diff, min_agree = TOLERANCE[precision]
    return diff, agree, diff <= max_diff and agree >= min_agree


def randomize(model: torch.nn.Module) -> torch.nn.Module:
    """Random BN statistics and affine terms, so the logits are not near zero as after PaddleSeg's init."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.2, 0.2, generator=g)
                m.running_mean.uniform_(-0.2, 0.2, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    return model


def bench_model(key: str, args: argparse.Namespace, device: torch.device, work: Path) -> list[dict[str, Any]]:
    from liteseg.export.onnx import export_onnx

    torch.manual_seed(0)
    model = randomize(liteseg.create_model(ARCH[key], num_classes=19)).eval()
    onnx_path = work / f"{key}.onnx"
    small, large, batch = args.shapes
    profile = f"1x3x{small[0] // 2}x{small[1] // 2}:1x3x{small[0]}x{small[1]}:{batch}x3x{large[0]}x{large[1]}"
    export_onnx(model, onnx_path, trt_profile=profile, verify=False, overwrite=True)
    check_x = torch.randn(1, 3, *small, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference = model(check_x)
    shapes = [(1, 3, *small), (1, 3, *large), (batch, 3, *small), (batch, 3, *large)]
    results = []
    for label, kind, options in engines(args.dry_run, args.compile):
        row: dict[str, Any] = {"model": key, "engine": label}
        try:
            start = time.perf_counter()
            runner = make_runner(kind, options, model, onnx_path, device, work)
            diff, agree, ok = check(runner(check_x.to(device)), reference, options["precision"])
            row.update(setup_s=time.perf_counter() - start, max_abs_diff=diff, label_agreement=agree)
            if not ok:
                row["skipped"] = f"output check failed (max abs diff {diff:.3g}, labels agree {agree:.4f})"
            else:
                if hasattr(runner, "fetch"):
                    runner.fetch = False  # type: ignore[attr-defined]
                for shape in shapes:
                    x = torch.randn(*shape, device=device)
                    t = timed(runner, x, args.warmup, args.runs, device)
                    row["x".join(map(str, shape))] = {"p50_ms": float(np.median(t)), "min_ms": float(min(t)),
                                                      "fps": shape[0] * 1000 / float(np.median(t))}
        except Skip as e:
            row["skipped"] = str(e)
        except Exception as e:  # report any engine failure (driver, build, out of memory) and go on
            row["skipped"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        results.append(row)
        print(f"[{key}] {label}: " + (row["skipped"] if "skipped" in row else
                                      ", ".join(f"{s} {v['p50_ms']:.2f} ms" for s, v in row.items()
                                                if isinstance(v, dict))), flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return results


def markdown(results: list[dict[str, Any]], shapes: tuple) -> str:
    small, large, batch = shapes
    cols = [f"1x3x{small[0]}x{small[1]}", f"1x3x{large[0]}x{large[1]}", f"{batch}x3x{small[0]}x{small[1]}",
            f"{batch}x3x{large[0]}x{large[1]}"]
    lines = [f"| model | engine | {cols[0]} ms (FPS) | {cols[1]} ms (FPS) | batch {batch} {cols[2][2:]} img/s | "
             f"batch {batch} {cols[3][2:]} img/s | max rel diff vs CPU fp32 | note |", "|---" * 8 + "|"]
    for key in dict.fromkeys(r["model"] for r in results):
        lines.append(f"| {key.upper()} | paper: TensorRT on a 1080Ti | – ({PAPER_FPS[key]}) | | | | | |")
        for r in (r for r in results if r["model"] == key):
            if "skipped" in r:
                lines.append(f"| {key.upper()} | {r['engine']} | | | | | | {r['skipped']} |")
                continue
            c = [r[col] for col in cols]
            lines.append(f"| {key.upper()} | {r['engine']} | {c[0]['p50_ms']:.2f} ({c[0]['fps']:.1f}) | "
                         f"{c[1]['p50_ms']:.2f} ({c[1]['fps']:.1f}) | {c[2]['fps']:.1f} | {c[3]['fps']:.1f} | "
                         f"{r['max_abs_diff']:.1e} | labels agree {r['label_agreement']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="t,b", help="comma-separated: t, b")
    p.add_argument("--device", default="cuda")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--batch", type=int, default=8, help="batch size of the throughput rows")
    p.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile rows")
    p.add_argument("--dry-run", action="store_true",
                   help="on CPU: tiny shapes, 1 warm-up + 2 runs, no torch.compile, CPU stand-ins for CUDA engines")
    p.add_argument("--out", type=Path, default=Path("runs/gpu"))
    args = p.parse_args(argv)
    models = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    if not models or any(m not in ARCH for m in models):
        p.error(f"--models: choose from {', '.join(ARCH)}")
    if args.dry_run:
        args.device, args.warmup, args.runs, args.compile = "cpu", 1, 2, False
        args.shapes = ((32, 64), (64, 64), 2)
        torch.set_num_threads(1)
    else:
        if not torch.cuda.is_available():
            p.error("no CUDA device here; run with --dry-run to check the script on CPU")
        args.shapes = ((512, 1024), (1024, 2048), args.batch)
        torch.backends.cudnn.benchmark = True
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        results = [row for key in models for row in bench_model(key, args, device, Path(tmp))]
    table = markdown(results, args.shapes)
    print("\n" + table)
    report = {"machine": machine_info(), "dry_run": args.dry_run, "warmup": args.warmup, "runs": args.runs,
              "paper_fps": PAPER_FPS, "results": results}
    (args.out / "gpu.json").write_text(json.dumps(report, indent=2))
    (args.out / "gpu.md").write_text(table + "\n")
    print(f"\nwrote {args.out / 'gpu.json'} and gpu.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
