"""The backend registry: every backend by name, known without importing any backend or torch (the CLI's help
texts list them from here).

A new backend is its module (with a ``factory(source, meta=None, **options)`` and a :class:`~.backends.Backend`
subclass declaring its ``capabilities``) plus one line here; ``package``/``extra``: the optional package it imports
and the pyproject extra that installs it.
"""
from __future__ import annotations

from typing import Any, Callable

from ..registry import Registry

BACKENDS: Registry[Callable[..., Any]] = Registry("backend")
BACKENDS.add("torch", "liteseg.inference.backends:torch_factory")
BACKENDS.add("torch-opt", "liteseg.inference.backends:torch_opt_factory")
BACKENDS.add("torch-compile", "liteseg.inference.compiled_backend:factory")
BACKENDS.add("onnxruntime", "liteseg.inference.ort_backend:factory", package="onnxruntime", extra="onnx")
BACKENDS.add("openvino", "liteseg.inference.openvino_backend:factory", package="openvino", extra="openvino")
BACKENDS.add("executorch", "liteseg.inference.executorch_backend:factory", package="executorch", extra="executorch")
BACKENDS.add("litert", "liteseg.inference.litert_backend:factory", package="ai_edge_litert", extra="litert")
BACKENDS.add("ncnn", "liteseg.inference.ncnn_backend:factory", package="ncnn", extra="ncnn")


def backend_help() -> str:
    """The ``--backend`` help text: every backend and how the default is chosen."""
    return (f"{', '.join(BACKENDS.names())} (default: torch; onnxruntime, else openvino, for .onnx; the matching "
            f"one for .pte, .tflite and ncnn folders)")
