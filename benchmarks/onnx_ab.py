"""ONNX graphs on the same ONNX Runtime, alternated call by call: what a graph costs, with the machine's drift out.

    python benchmarks/onnx_ab.py runs/compare_original/t/paddle2onnx.onnx \\
        runs/compare_original/t/liteseg_fixed.onnx runs/compare_original/t/liteseg_dynamic.onnx --calls 60

compare_original.py writes these three files (ORT on the paddle2onnx model, liteseg's fixed and dynamic exports of
the same weights). Every round calls each graph once on the same input (order rotated); the ratio of graph k to the
first graph is the median over rounds of the per-round ratios. Also prints the node count after ORT's optimisation
and the max abs difference of the outputs against the first graph.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort


def session(path: Path, threads: int, optimized: Path) -> ort.InferenceSession:
    """A CPU session without thread spinning; it writes the graph as ORT optimised it to ``optimized``."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("graphs", nargs="+", type=Path, help="ONNX files with one float input [N, 3, H, W]")
    p.add_argument("--shape", default="1,3,512,1024")
    p.add_argument("--calls", type=int, default=60, help="rounds (one call of every graph each)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    x = np.random.RandomState(0).standard_normal([int(v) for v in args.shape.split(",")]).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        optimized = [Path(tmp) / f"{k}.onnx" for k in range(len(args.graphs))]
        sessions = [session(g, args.threads, o) for g, o in zip(args.graphs, optimized)]
        nodes = [len(onnx.load(str(o)).graph.node) for o in optimized]
    feeds = [{s.get_inputs()[0].name: x} for s in sessions]
    outputs = [s.run(None, feed)[0] for s, feed in zip(sessions, feeds)]
    times = np.zeros((args.calls, len(sessions)))
    for r in range(args.calls):
        for k in [(r + i) % len(sessions) for i in range(len(sessions))]:
            start = time.perf_counter()
            sessions[k].run(None, feeds[k])
            times[r, k] = (time.perf_counter() - start) * 1000
    ratios = times / times[:, :1]
    print(f"ONNX Runtime {ort.__version__}, {args.threads} threads, {args.shape}, {args.calls} alternating rounds")
    print(f"{'graph':<48} {'nodes':>6} {'median ms':>10} {'vs first':>9} {'[q25, q75]':>14} {'max abs diff':>13}")
    for k, g in enumerate(args.graphs):
        q25, q75 = np.percentile(ratios[:, k], [25, 75])
        diff = float(np.abs(outputs[k] - outputs[0]).max())
        print(f"{str(g)[-48:]:<48} {nodes[k]:>6} {np.median(times[:, k]):>10.1f} {np.median(ratios[:, k]):>8.3f}x "
              f"[{q25:.2f}, {q75:.2f}] {diff:>13.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
