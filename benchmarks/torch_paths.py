"""The PyTorch inference paths timed in ONE run, interleaved: eager, torch-opt (TorchScript), torch-compile.

    python benchmarks/torch_paths.py --model t --rounds 12            # 1x3x512x1024, 2 threads

Each round calls every backend once (A, B, C, A, B, C, ...); medians and ratios to torch-opt are printed with
the load average. torch-compile's first call compiles (from Inductor's cache under $LITESEG_HOME/inductor when
warm); that time is printed apart. Outputs are checked against eager first.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
import torch

import liteseg
from liteseg.inference.backends import create_backend

ARCH = {"t": "pp_liteseg_t", "b": "pp_liteseg_b"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="t", choices=sorted(ARCH))
    p.add_argument("--shape", default="1,3,512,1024")
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backends", default="torch,torch-opt,torch-compile")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    model = liteseg.create_model(ARCH[args.model], num_classes=19).eval()
    x = np.random.RandomState(0).standard_normal([int(v) for v in args.shape.split(",")]).astype(np.float32)
    backends, reference = {}, None
    for name in args.backends.split(","):
        backend = create_backend(model, name, threads=args.threads)
        start = time.perf_counter()
        out = backend(x)
        reference = out if reference is None else reference
        print(f"{name}: first call {time.perf_counter() - start:.1f} s, max abs diff vs {args.backends.split(',')[0]} "
              f"{np.abs(out - reference).max():.1e}", flush=True)
        backends[name] = backend
    times: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(args.rounds):
        for name, backend in backends.items():
            start = time.perf_counter()
            backend(x)
            times[name].append((time.perf_counter() - start) * 1000)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; {args.model.upper()} {args.shape}, "
          f"{args.threads} threads, {args.rounds} interleaved rounds")
    base = float(np.median(times["torch-opt"])) if "torch-opt" in times else None
    for name, t in times.items():
        ratio = f"  {np.median(t) / base:.2f}x torch-opt" if base else ""
        print(f"{name:14s} median {np.median(t):8.1f} ms  min {min(t):8.1f} ms{ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
