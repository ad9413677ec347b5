"""The edge export formats by name (``liteseg export --format``), without importing torch or any converter.

Each entry is the lazy module that writes and runs the format (``check_path``, ``staged``, ``write``,
``open_runner``), the packages it needs, the pyproject extra that installs them, and its ``precisions`` (the
first is the default). A new format is its module plus one line here.
"""
from __future__ import annotations

from types import ModuleType

from ..errors import LitesegError
from ..registry import Registry

EDGE_FORMATS: Registry[ModuleType] = Registry("edge format", error=LitesegError)
EDGE_FORMATS.add("executorch", "liteseg.export.executorch", package=("executorch", "torchao"), extra="executorch",
                 precisions=("fp32", "int8"))
EDGE_FORMATS.add("tflite", "liteseg.export.litert",
                 package=("litert_torch", "ai_edge_litert", "ai_edge_quantizer", "torchao"), extra="litert", precisions=("fp32", "fp16", "int8"))
EDGE_FORMATS.add("ncnn", "liteseg.export.ncnn", package=("pnnx", "ncnn"), extra="ncnn", precisions=("fp32", "fp16"))


def precisions(fmt: str) -> tuple[str, ...]:
    """The precisions edge format ``fmt`` offers (an error with a suggestion for an unknown format)."""
    return EDGE_FORMATS.entry(fmt).info["precisions"]
