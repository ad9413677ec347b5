"""The rule for absent prerequisites (skip locally, fail under CI=true) and which ImportErrors mean "unavailable"."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from liteseg.inference import backends
from liteseg.errors import LitesegError
from liteseg.registry import Registry

from .conftest import _require, require_module


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_dependency_fails_in_ci_and_skips_locally(monkeypatch, tmp_path, ci, outcome):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="liteseg_no_such_package"):
        require_module("liteseg_no_such_package")
    with pytest.raises(outcome, match="not available"):
        _require(tmp_path / "absent")
    assert require_module("numpy").__name__ == "numpy"


def test_our_own_modules_are_never_optional():
    with pytest.raises(ValueError, match="import liteseg's own modules directly"):
        require_module("liteseg.export.onnx")


@pytest.fixture()
def fake_backend(tmp_path, monkeypatch):
    """Register lazy backend 'fake' whose module file the test writes; returns a writer."""
    monkeypatch.syspath_prepend(str(tmp_path))
    only_fake = Registry("backend")
    only_fake.add("fake", "liteseg_fake_backend:factory", package="liteseg_fake_runtime", extra="fake")
    monkeypatch.setattr(backends, "BACKENDS", only_fake)

    def write(source: str) -> None:
        (tmp_path / "liteseg_fake_backend.py").write_text(source)
        sys.modules.pop("liteseg_fake_backend", None)
    yield write
    sys.modules.pop("liteseg_fake_backend", None)


def test_only_the_backends_own_package_missing_means_unavailable(fake_backend):
    fake_backend("import liteseg_fake_runtime\n")
    assert "fake" not in backends.available_backends()
    with pytest.raises(LitesegError, match=r"liteseg_fake_runtime.*pip install 'liteseg\[fake\]'"):
        backends.create_backend(None, "fake")


@pytest.mark.parametrize("source", ["from liteseg.inference.backends import no_such_name\n",
                                    "import liteseg.inference.no_such_module\n", "import some_other_missing_pkg\n"])
def test_a_broken_backend_module_is_an_error_not_a_missing_backend(fake_backend, source):
    fake_backend(source)
    with pytest.raises(ImportError):
        backends.available_backends()
    with pytest.raises(ImportError):
        backends.create_backend(None, "fake")


def test_no_test_bypasses_the_skip_or_fail_rule():
    """``pytest.importorskip`` skips even under CI=true, where an absent [dev] dependency must fail: every test
    file goes through ``require_module`` instead."""
    offenders = []
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            name = getattr(node, {ast.Attribute: "attr", ast.Name: "id", ast.alias: "name"}.get(type(node), ""), None)
            if name == "importorskip":
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"use require_module(...) from tests/conftest.py, not importorskip: {offenders}"
