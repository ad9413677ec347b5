"""Every backend name, known without importing any backend or torch (the CLI's help texts list them)."""
from __future__ import annotations

CORE_BACKENDS = ("torch", "torch-opt")  # defined in liteseg.inference.backends
# name -> (module that registers it on import, the optional package it needs, the pyproject extra that installs
# that package, or None when it is a core dependency)
LAZY_BACKENDS: dict[str, tuple[str, str, str | None]] = {
    "torch-compile": ("liteseg.inference.compiled_backend", "torch", None),
    "onnxruntime": ("liteseg.inference.ort_backend", "onnxruntime", "onnx"),
    "openvino": ("liteseg.inference.openvino_backend", "openvino", "openvino"),
    "executorch": ("liteseg.inference.executorch_backend", "executorch", "executorch"),
    "litert": ("liteseg.inference.litert_backend", "ai_edge_litert", "litert"),
    "ncnn": ("liteseg.inference.ncnn_backend", "ncnn", "ncnn")}


def backend_help() -> str:
    """The ``--backend`` help text: every backend and how the default is chosen."""
    names = ", ".join([*CORE_BACKENDS, *LAZY_BACKENDS])
    return (f"{names} (default: torch; onnxruntime, else openvino, for .onnx; the matching one for .pte, .tflite "
            f"and ncnn folders)")
