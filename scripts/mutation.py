"""Mutation testing with mutmut 3, one module group at a time, each against a narrow set of fast tests.

    pip install -e '.[mutation]'
    python scripts/mutation.py metrics            # one target (see TARGETS), or several names
    python scripts/mutation.py --list             # the targets, their modules and tests

Each target runs in its own folder ``.mutation/<target>`` (a copy of src/, tests/, configs/, benchmarks/, examples/
and a pyproject.toml whose ``[tool.mutmut]`` names the target's modules and tests), so targets never share mutmut's
state; ``mutmut results`` / ``mutmut show NAME`` work inside that folder afterwards. Not run in CI: a target takes
minutes to an hour of CPU. The scores and the equivalent mutants are in docs/testing.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPIED = ("src", "tests", "configs", "benchmarks", "examples")

# target -> (modules to mutate, the tests that check them: pytest node ids relative to the repository)
TARGETS: dict[str, tuple[list[str], list[str]]] = {
    "metrics": (["src/liteseg/evaluation/metrics.py"],
                ["tests/evaluation/test_metrics.py", "tests/evaluation/test_evaluator.py::test_exclude_absent_reaches_the_metrics"]),
    "tta": (["src/liteseg/inference/tta.py"], ["tests/inference/test_tta.py"]),
    "preprocess": (["src/liteseg/inference/preprocess.py"],
                   ["tests/inference/test_preprocess.py", "tests/inference/test_fast_kernels.py",
                    "tests/inference/test_sizing.py",
                    "tests/test_images.py::test_one_normalisation_for_inference_training_and_exported_graphs"]),
    "writers": (["src/liteseg/inference/result_writer.py", "src/liteseg/inference/output_encoding.py",
                 "src/liteseg/inference/video_writer.py", "src/liteseg/serve/codecs.py"],
                ["tests/inference/test_result_writer.py", "tests/serve/test_codecs.py"]),
    "batcher": (["src/liteseg/serve/batcher.py"], ["tests/serve/test_batcher.py"]),
    "tensor_mapping": (["src/liteseg/formats/pdparams.py"], ["tests/formats/test_pdparams.py"]),
    "checkpoint": (["src/liteseg/training/checkpoint.py"], ["tests/training/test_checkpoint.py"]),
    "images": (["src/liteseg/images.py"], ["tests/test_images.py"]),
    "pipeline": (["src/liteseg/inference/pipeline.py"], ["tests/inference/test_pipeline.py"]),
}


def _prepare(name: str) -> Path:
    """A fresh ``.mutation/<name>`` folder holding the project files and the target's mutmut configuration."""
    modules, tests = TARGETS[name]
    work = REPO / ".mutation" / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for folder in COPIED:
        shutil.copytree(REPO / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
    config = {"source_paths": ["src"], "only_mutate": modules, "also_copy": list(COPIED[1:]),
              "pytest_add_cli_args_test_selection": tests, "pytest_add_cli_args": ["-p", "no:cacheprovider"],
              "timeout_multiplier": 3.0, "timeout_constant": 5.0}  # a mutant looping forever is killed soon
    lines = [f"{key} = {json.dumps(value)}" for key, value in config.items()]
    pyproject = (REPO / "pyproject.toml").read_text()
    (work / "pyproject.toml").write_text(pyproject + "\n[tool.mutmut]\n" + "\n".join(lines) + "\n")
    return work


def run(name: str) -> dict[str, object]:
    """Run one target; returns its counts (from ``mutants/mutmut-cicd-stats.json``) and the wall time."""
    work = _prepare(name)
    env = {**os.environ, "LITESEG_SHARED": str(Path(os.environ.get("LITESEG_SHARED", REPO.parent / "shared")))}
    env.pop("PYTHONPATH", None)  # mutmut puts the mutated copy first on sys.path itself
    # mutmut forks every mutant's test run from a process that has already run the tests; a child that then uses
    # torch's OpenMP thread pool hangs until the timeout and is scored "timeout" (killed) whatever the mutant does.
    # One thread per process leaves no pool to inherit (and the machine is shared anyway).
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    start = time.monotonic()
    with open(work / "mutmut-run.log", "w") as log:  # mutmut redraws a progress line many times a second
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", "1"], cwd=work, env=env, check=False,
                       stdout=log, stderr=subprocess.STDOUT)
    subprocess.run([sys.executable, "-m", "mutmut", "export-cicd-stats"], cwd=work, env=env, check=False,
                   capture_output=True)
    stats = json.loads((work / "mutants" / "mutmut-cicd-stats.json").read_text())
    stats["seconds"] = round(time.monotonic() - start)
    scored = stats["killed"] + stats["survived"] + stats.get("timeout", 0)
    stats["score"] = round(100 * (stats["killed"] + stats.get("timeout", 0)) / scored, 1) if scored else None
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help=f"targets to run: {', '.join(TARGETS)}")
    parser.add_argument("--list", action="store_true", help="show the targets and exit")
    args = parser.parse_args(argv)
    if args.list or not args.targets:
        for name, (modules, tests) in TARGETS.items():
            print(f"{name}: {' '.join(modules)}\n    tests: {' '.join(tests)}")
        return 0
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; choose from {', '.join(TARGETS)}")
    for name in args.targets:
        stats = run(name)
        print(f"{name}: score {stats['score']}% ({stats['killed']} killed, {stats['survived']} survived, "
              f"{stats.get('timeout', 0)} timeout, {stats.get('no_tests', 0)} without tests) in {stats['seconds']} s; "
              f"survivors: cd .mutation/{name} && python -m mutmut results", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
