"""The fuzz harnesses in CI: a short fixed-seed run per parser must end with no contract violation.

The long campaign (>= 100,000 inputs per parser) runs outside CI: ``python -m fuzz all --runs 100000``;
its figures are in docs/fuzzing.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from fuzz.__main__ import NAMES
from fuzz.runner import run
from fuzz.targets import Harness

from ..conftest import REPO

RUNS = 150


def _fuzz(shared_dir, tmp_path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """``python -m fuzz ARGS`` as a user runs it; its process and its one JSON report."""
    report_file = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "fuzz", *args, "--artifacts", str(tmp_path / "artifacts"),
                           "--json", str(report_file)], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "LITESEG_SHARED": str(shared_dir), "PYTHONPATH": str(REPO / "src")})
    (report,) = json.loads(report_file.read_text())
    return proc, report


@pytest.mark.parametrize("name", NAMES)
def test_short_fixed_seed_run_is_clean(name, shared_dir, tmp_path):
    proc, report = _fuzz(shared_dir, tmp_path, name, "--runs", str(RUNS), "--seed", "0")
    assert report["violations"] == [], proc.stdout + proc.stderr[-3000:]
    assert proc.returncode == 0 and report["runs"] == RUNS
    assert report["accepted"] > 0 and report["rejected"] > 0 or name == "image_file"  # both paths are reached


def _harness(target, cap_mb: int = 256) -> Harness:
    return Harness("probe", target, lambda: [b"seed"], rss_cap_mb=cap_mb)


def test_the_runner_reports_each_kind_of_violation(tmp_path):
    from liteseg.errors import FormatError

    def target(data: bytes) -> None:
        if data == b"seed":
            raise FormatError("rejected")
        raise KeyError("escaped")

    report = run(_harness(target), 20, 0, 5.0, tmp_path / "a", rlimit=False)
    assert report.rejected >= 1 and [v.kind for v in report.violations] == ["crash"]
    assert report.violations[0].error.startswith("KeyError") and report.violations[0].count == 20 - report.rejected
    assert (tmp_path / "a").joinpath(report.violations[0].input.split("/")[-1]).is_file()

    start = time.perf_counter()
    report = run(_harness(lambda data: time.sleep(3)), 1, 0, 0.5, tmp_path / "b", rlimit=False)
    assert [v.kind for v in report.violations] == ["hang"] and time.perf_counter() - start < 2.5

    hold = []
    report = run(_harness(lambda data: hold.append(bytearray(300 << 20)), cap_mb=100), 1, 0, 5.0, tmp_path / "c",
                 rlimit=False)
    assert [v.kind for v in report.violations] == ["memory"]


def test_jobs_split_the_runs_and_merge_the_reports(shared_dir, tmp_path):
    proc, report = _fuzz(shared_dir, tmp_path, "deploy", "--runs", "41", "--jobs", "2", "--seed", "5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report["runs"] == 41 and report["accepted"] + report["rejected"] == 41
    assert report["seed"] == [5, 6] and report["violations"] == []
