"""matplotlib is an optional extra: without it, charts are refused up front or left out with a clear message."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from liteseg.errors import LitesegError
from liteseg.evaluation.evaluator import EvalResult
from liteseg.evaluation.metrics import SegMetrics
from liteseg.evaluation.report import write_report
from liteseg.utils.plots import figure, require_matplotlib

from .conftest import require_module


@pytest.fixture()
def no_matplotlib(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails, find_spec says absent


def _result() -> EvalResult:
    metrics = SegMetrics(3, 255)
    metrics.update(np.array([[0, 1], [2, 2]]), np.array([[0, 1], [2, 1]]))
    return EvalResult(metrics.compute(), metrics.confusion.copy(), 1.0, 1, 1.0, ["a", "b", "c"])


def test_missing_matplotlib_names_the_extra(no_matplotlib):
    with pytest.raises(LitesegError, match=r"--plot needs matplotlib.*pip install 'liteseg\[plot\]'"):
        require_matplotlib("--plot")
    with pytest.raises(LitesegError, match="the report's charts needs matplotlib"):
        figure(2, 2, purpose="the report's charts")


def test_report_without_matplotlib_keeps_metrics_and_markdown(no_matplotlib, tmp_path, caplog):
    paths = write_report(_result(), tmp_path, model="m", dataset="d")
    assert sorted(paths) == ["metrics.json", "report.md"] and not list(tmp_path.glob("*.png"))
    assert ".png" not in paths["report.md"].read_text() and "liteseg[plot]" in caplog.text


def test_report_with_matplotlib_draws_both_charts(tmp_path):
    require_module("matplotlib")
    paths = write_report(_result(), tmp_path, model="m", dataset="d")
    assert paths["class_iou.png"].read_bytes()[:4] == b"\x89PNG" and "class_iou.png" in paths["report.md"].read_text()


def test_benchmark_plot_is_refused_before_the_run(no_matplotlib, tmp_path, capsys):
    from liteseg.cli.main import main

    assert main(["benchmark", "--model", "camvid", "--plot", str(tmp_path / "p.png")]) == 2
    assert "--plot needs matplotlib" in capsys.readouterr().err
