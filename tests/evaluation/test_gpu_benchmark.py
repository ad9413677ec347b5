"""benchmarks/gpu.py --dry-run: the GPU protocol's code paths on CPU stand-ins (no timing assertions)."""
from __future__ import annotations

import json

import pytest

from ..conftest import load_benchmark, require_module


@pytest.fixture(scope="module")
def gpu_bench():
    return load_benchmark("gpu")


@pytest.mark.slow
def test_dry_run_checks_times_and_skips_with_reasons(gpu_bench, tmp_path):
    require_module("onnxruntime")
    assert gpu_bench.main(["--dry-run", "--models", "t", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "gpu.json").read_text())
    rows = {r["engine"]: r for r in report["results"]}
    assert report["dry_run"] and report["paper_fps"] == {"t": 273.6, "b": 195.3}
    for name in ("torch fp32", "torch fp32 channels-last", "onnxruntime CPUExecutionProvider"):
        row = rows[name]
        assert "skipped" not in row, row
        assert row["max_abs_diff"] < 1e-4 and row["label_agreement"] > 0.999
        for shape in ("1x3x32x64", "1x3x64x64", "2x3x32x64", "2x3x64x64"):
            assert 0 < row[shape]["min_ms"] <= row[shape]["p50_ms"]
    assert rows["torch fp32 CUDA graph"]["skipped"] == "CUDA graphs need CUDA"
    assert rows["TensorRT fp16"]["skipped"] == "TensorRT needs CUDA"
    assert "not in this onnxruntime build" in rows["onnxruntime TensorRT EP fp32"]["skipped"]
    assert "| T | torch fp32 |" in (tmp_path / "gpu.md").read_text()


def test_output_check_rejects_wrong_logits(gpu_bench):
    import torch

    ref = torch.randn(1, 5, 8, 8, generator=torch.Generator().manual_seed(0))
    assert gpu_bench.check(ref + 1e-6, ref, "fp32")[2]
    assert not gpu_bench.check(ref + 0.1, ref, "fp32")[2]
    assert not gpu_bench.check(ref.flip(1), ref, "bf16")[2]
