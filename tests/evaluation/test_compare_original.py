"""benchmarks/compare_original.py: interleaved rounds, paired ratios and the Paddle-side protocol (no Paddle)."""
from __future__ import annotations

import argparse
import stat
import sys

import pytest

from ..conftest import load_benchmark


@pytest.fixture(scope="module")
def compare():
    return load_benchmark("compare_original")


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"rounds": 3, "runs": 2, "warmup": 4, "pause": 0.0, "shape": "1,3,8,8",
                                 "threads": 1, "verbose": False, **kw})


def test_rounds_rotate_the_order_and_warm_every_engine_up(compare):
    calls = []

    def engine(label):
        def block(warmup, runs):
            calls.append((label, warmup, runs))
            return [1.0] * runs
        return block

    blocks = {label: engine(label) for label in ("a", "b", "c")}
    series = compare.interleaved(blocks, _args(), "t")
    assert calls[:3] == [("a", 4, 0), ("b", 4, 0), ("c", 4, 0)]
    order = [label for label, _, runs in calls[3:]]
    assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(w == 1 and n == 2 for _, w, n in calls[3:])
    assert {label: len(s) for label, s in series.items()} == {"a": 3, "b": 3, "c": 3}


def test_ratios_pair_blocks_of_the_same_round_so_drift_cancels(compare):
    # the machine drifts 1x, 3x, 2x between rounds; liteseg is always 0.8x Paddle and 1.25x ORT within a round
    drift = [1.0, 3.0, 2.0]
    series = {compare.PADDLE: [[100 * d, 100 * d] for d in drift],
              compare.P2O: [[64 * d, 64 * d] for d in drift],
              "liteseg x": [[80 * d, 80 * d] for d in drift]}
    rows = compare.summarise(series, {"liteseg x": 1e-5})
    assert rows["liteseg x"]["vs_paddle"] == pytest.approx(0.8)
    assert rows["liteseg x"]["vs_p2o"] == pytest.approx(1.25)
    assert rows["liteseg x"]["vs_paddle_range"] == pytest.approx([0.8, 0.8])
    assert rows["liteseg x"]["p50_ms"] == pytest.approx(160.0) and rows["liteseg x"]["min_ms"] == 80.0
    assert rows[compare.PADDLE]["vs_paddle"] == pytest.approx(1.0)
    # an unpaired comparison would be wrong here: liteseg's fastest round against Paddle's slowest
    series["liteseg x"] = [[80 * d, 80 * d] for d in (3.0, 1.0, 2.0)]
    rows = compare.summarise(series, {})
    assert rows["liteseg x"]["vs_paddle_range"] == pytest.approx([0.8 / 3, 0.8 * 3])


def _fake_python(tmp_path, body: str):
    """An executable standing in for the Paddle venv's python: it ignores its arguments and runs ``body``."""
    fake = tmp_path / "fake_python"
    fake.write_text(f"#!{sys.executable}\n{body}")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return fake


def test_paddle_side_protocol_skips_other_output(compare, tmp_path):
    fake = _fake_python(tmp_path, """import json, sys
print("W1201 paddle noise on stdout")
print("@@ " + json.dumps("ready"), flush=True)
for line in sys.stdin:
    words = line.split()
    if words[0] == "quit":
        break
    print("I1201 more noise", flush=True)
    print("@@ " + json.dumps([float(len(words[0]))] * int(words[2])), flush=True)
""")
    side = compare.PaddleSide(fake, "t", _args(), tmp_path)
    assert side.block("paddle", 1, 3) == [6.0, 6.0, 6.0]
    assert side.block("p2o", 1, 2) == [3.0, 3.0]
    side.close()
    assert side.proc.returncode == 0


def test_paddle_side_that_dies_is_a_clear_error(compare, tmp_path):
    fake = _fake_python(tmp_path, "import sys\nprint('no paddle here')\nsys.exit(3)\n")
    with pytest.raises(RuntimeError, match="exit code 3"):
        compare.PaddleSide(fake, "t", _args(), tmp_path)
