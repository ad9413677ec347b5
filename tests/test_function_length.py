"""No function over 60 lines on the paths data flows through (serve, inference, training, evaluation, data,
export): there a reader follows each step, and a long function hides them."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "liteseg"
PACKAGES = ("serve", "inference", "training", "evaluation", "data", "export")
MAX_LINES = 60


def test_no_function_over_60_lines_where_data_flows():
    long = []
    for package in PACKAGES:
        for path in sorted((SRC / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > MAX_LINES:
                        long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines} lines)")
    assert len(list(SRC.joinpath("serve").glob("*.py"))) > 5  # the walk found the code
    assert not long, "split these functions (at most 60 lines each): " + "; ".join(long)
