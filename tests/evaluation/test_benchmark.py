"""``liteseg benchmark`` smoke test and the counting helpers (no timing assertions)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import liteseg
from liteseg.cli.main import main
from liteseg.inference.backends import create_backend
from liteseg.evaluation.benchmark import count_macs, count_params


@pytest.mark.parametrize("name,macs,params,inference", [("pp_liteseg_t", 11.42e9, 8_141_600, 8_028_320),
                                                        ("pp_liteseg_b", 19.23e9, 12_366_464, 12_234_752)])
def test_macs_and_params_match_spec(name, macs, params, inference):
    model = liteseg.create_model(name, num_classes=19)
    assert abs(count_macs(model, (1, 3, 512, 1024)) - macs) / macs < 0.005
    assert count_params(model) == {"params": params, "params_inference": inference}


def test_optimized_torch_backend_matches_eager_on_an_odd_size(fixture_dir):
    eager = create_backend(fixture_dir / "weights.pdparams")
    fast = create_backend(fixture_dir / "weights.pdparams", "torch-opt")
    x = np.random.RandomState(0).standard_normal((2, 3, 75, 130)).astype(np.float32)
    assert fast.name == "torch-opt"
    assert np.abs(fast(x) - eager(x)).max() < 1e-4


def test_benchmark_cli_writes_json_and_plot(fixture_dir, tmp_path, capsys):
    out, plot = tmp_path / "bench.json", tmp_path / "bench.png"
    backends = "torch,torch-opt" + (",onnxruntime" if _has("onnxruntime") else "")
    assert main(["benchmark", "--model", str(fixture_dir / "weights.pdparams"), "--backend", backends,
                 "--shape", "1,3,64,96", "--shape", "2,3,32,32", "--runs", "2", "--warmup", "1",
                 "--json", str(out), "--plot", str(plot)]) == 0
    report = json.loads(out.read_text())
    assert report["machine"]["cores"] >= 1 and report["model"]["arch"] == "pp_liteseg_t"
    rows = report["results"]
    assert len(rows) == 2 * len(backends.split(","))
    for row in rows:
        assert 0 < row["min_ms"] <= row["p50_ms"] <= row["p90_ms"]
        assert row["images_per_s"] > 0
        assert row["peak_rss_mb"] > 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "p50 ms" in capsys.readouterr().out


def test_benchmark_times_a_backend_of_known_speed():
    """An independent clock: a backend that takes 20 ms per call of 4 images gives ~200 images/s, p50 ~20 ms."""
    import time

    from liteseg.evaluation.benchmark import run_benchmark

    class Sleepy:
        name = "sleepy"
        takes_images = False  # the Backend interface run_benchmark reads

        def __call__(self, x):
            time.sleep(0.02)
            return x

    result = run_benchmark(Sleepy(), (4, 3, 8, 8), warmup=1, runs=5)
    assert 20 <= result.min_ms <= result.p50_ms < 60  # sleep never returns early; a busy machine adds a little
    assert 4 * 1000 / 60 < result.images_per_s <= 4 * 1000 / 20


def test_benchmark_rejects_unknown_backend(fixture_dir, capsys):
    assert main(["benchmark", "--model", str(fixture_dir / "weights.pdparams"), "--backend", "tensorrt"]) == 2
    assert "unknown" in capsys.readouterr().err


def _has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False
