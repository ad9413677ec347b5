"""``python -m fuzz {all|NAME ...} [--runs N] [--seed S] [--jobs J] [--engine mutate|atheris]``: worker
processes per harness (``--jobs`` of them in parallel, seeds S, S+1, ...), a summary line each, exit code 1 when
any input broke the contract."""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

NAMES = ["pdparams", "pdmodel", "pdiparams", "deploy", "package", "safetensors", "onnx", "image_file",
         "image_upload", "pir"]
REPO = Path(__file__).resolve().parents[1]


def _worker(args: argparse.Namespace) -> int:
    name = args.targets[0]
    artifacts = Path(args.artifacts) / name
    if args.engine == "atheris":
        from .atheris_driver import main

        main(name, args.runs, args.seed, args.timeout, artifacts, args.max_seconds)
        return 0
    from .runner import run
    from .targets import HARNESSES

    report = run(HARNESSES[name], args.runs, args.seed, args.timeout, artifacts, args.max_seconds)
    print("REPORT " + report.to_json(), flush=True)
    return 0


def _atheris_report(name: str, seed: int, proc: subprocess.CompletedProcess, seconds: float) -> dict:
    out = proc.stdout + proc.stderr
    runs = re.findall(r"stat::number_of_executed_units: (\d+)", out) or re.findall(r"Done (\d+) runs", out)
    violations = []
    if proc.returncode != 0:
        crash = re.findall(r"(?:Test unit written to|artifact_prefix.*?) (\S+)", out)
        tail = "\n".join(line for line in out.splitlines()[-40:] if line.strip())
        kind = ("hang" if "libFuzzer: timeout" in out else "memory" if "out-of-memory" in out else "crash")
        violations.append({"kind": kind,
                           "error": tail[-1500:], "where": "", "input": crash[-1] if crash else "", "count": 1})
    return {"target": name, "engine": "atheris", "seed": seed, "runs": int(runs[-1]) if runs else 0,
            "seconds": seconds, "violations": violations}


def _spawn(name: str, args: argparse.Namespace, runs: int, seed: int, artifacts: str) -> dict:
    cmd = [sys.executable, "-m", "fuzz", name, "--worker", "--runs", str(runs), "--seed", str(seed),
           "--timeout", str(args.timeout), "--engine", args.engine, "--artifacts", artifacts,
           "--max-seconds", str(args.max_seconds)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - start
    if args.engine == "atheris":
        return _atheris_report(name, seed, proc, seconds)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT ")), None)
    if line is not None and proc.returncode == 0:
        return json.loads(line[len("REPORT "):])
    current = Path(artifacts) / name / "current.bin"
    kept = current.with_name("killed.bin")
    if current.exists():
        current.replace(kept)
    kind = "hang" if "Timeout" in proc.stderr else "crash"  # faulthandler's watchdog prints "Timeout (0:00:15)!"
    return {"target": name, "engine": args.engine, "seed": seed, "runs": 0, "seconds": seconds,
            "violations": [{"kind": kind, "error": f"worker died (exit {proc.returncode}): {proc.stderr[-1500:]}",
                            "where": "", "input": str(kept), "count": 1}]}


def _merge(parts: list[dict]) -> dict:
    """One report for a harness run as several jobs: counts add up, time and memory are the worst job's."""
    merged = dict(parts[0])
    merged["seed"] = [r["seed"] for r in parts]
    for key in ("runs", "accepted", "rejected"):
        if all(key in r for r in parts):
            merged[key] = sum(r[key] for r in parts)
    merged["seconds"] = max(r["seconds"] for r in parts)
    if all("peak_rss_growth_mb" in r for r in parts):
        merged["peak_rss_growth_mb"] = max(r["peak_rss_growth_mb"] for r in parts)
    merged["violations"] = [v for r in parts for v in r["violations"]]
    return merged


def _run_jobs(name: str, args: argparse.Namespace) -> dict:
    """``args.jobs`` workers in parallel, each with its own seed and artifact folder, their reports merged."""
    if args.jobs == 1:
        return _spawn(name, args, args.runs, args.seed, args.artifacts)
    shares = [args.runs // args.jobs + (k < args.runs % args.jobs) for k in range(args.jobs)]
    with ThreadPoolExecutor(args.jobs) as pool:
        parts = list(pool.map(lambda k: _spawn(name, args, shares[k], args.seed + k,
                                               str(Path(args.artifacts) / f"job{k}")), range(args.jobs)))
    return _merge(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    p.add_argument("targets", nargs="+", help=f"'all' or some of: {', '.join(NAMES)}")
    p.add_argument("--runs", type=int, default=10_000, help="inputs per harness (seeds included)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes per harness, run in parallel: the runs are split, worker k uses seed S+k")
    p.add_argument("--max-seconds", type=float, default=0, help="stop a harness after this long (0: no limit)")
    p.add_argument("--engine", choices=["mutate", "atheris"], default="mutate",
                   help="built-in deterministic mutator, or coverage-guided atheris (pip install '.[fuzz]')")
    p.add_argument("--artifacts", default=str(REPO / "runs" / "fuzz"), help="where violating inputs are saved")
    p.add_argument("--json", help="also write the reports to this file")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return _worker(args)
    names = NAMES if args.targets == ["all"] else args.targets
    unknown = sorted(set(names) - set(NAMES))
    if unknown:
        p.error(f"unknown harness {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    if args.jobs < 1:
        p.error("--jobs must be at least 1")
    reports = []
    for name in names:
        r = _run_jobs(name, args)
        reports.append(r)
        bad = sum(v["count"] for v in r["violations"])
        print(f"{name:13s} {r['runs']:>8d} inputs {r['seconds']:8.1f} s  "
              f"{r.get('accepted', '-')} parsed {r.get('rejected', '-')} rejected  {bad} violations", flush=True)
        for v in r["violations"]:
            print(f"    {v['kind']}: {v['error'].splitlines()[-1] if v['error'] else ''} at {v['where']} "
                  f"x{v['count']} -> {v['input']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1))
    return 1 if any(r["violations"] for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
