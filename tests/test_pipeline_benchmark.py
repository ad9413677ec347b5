"""``benchmarks/pipeline.py --dry-run`` works end to end (a tiny run; timings are not checked)."""
from __future__ import annotations

from .conftest import load_benchmark


def test_pipeline_benchmark_dry_run(camvid_dir, tmp_path, capsys):
    bench = load_benchmark("pipeline")
    assert bench.main(["--dry-run", "--backends", "torch", "--camvid", str(camvid_dir), "--work", str(tmp_path),
                       "--cases", "folder,labels,val"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| predict") or line.startswith("| val")]
    assert len(rows) == 3 and all(float(r.split("|")[-2]) > 0 for r in rows), out
    assert "labels only" in rows[1]
    assert len(list((tmp_path / "out" / "labels").rglob("*.png"))) >= 4
