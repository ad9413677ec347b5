"""liteseg: PP-LiteSeg in PyTorch, numerically equal to PaddleSeg, loadable from every Paddle artefact.

The public names below are imported on first use (PEP 562), so that ``import liteseg`` and ``liteseg --help``
do not pay for torch; ``from liteseg import load`` works as usual.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import ArchitectureError, DatasetError, FormatError, LitesegError, UnsafePickleError

__version__ = "0.1.0"  # the one version source: pyproject reads it, --version and reports print it

_LAZY = {
    "create_model": "liteseg.loading", "load": "liteseg.loading", "LoadedModel": "liteseg.loading",
    "LoadReport": "liteseg.loading", "Segmenter": "liteseg.inference.segmenter",
    "SegResult": "liteseg.inference.segmenter", "ModelMeta": "liteseg.meta", "list_models": "liteseg.loading",
    "get_weights": "liteseg.loading.zoo", "list_weights": "liteseg.loading.zoo",
    "ResultWriter": "liteseg.inference.result_writer",
}

__all__ = [
    "create_model", "list_models", "list_weights", "get_weights", "load", "Segmenter", "SegResult", "LoadedModel",
    "LoadReport", "ModelMeta", "ResultWriter",
    "LitesegError", "FormatError", "ArchitectureError", "UnsafePickleError", "DatasetError", "__version__",
]

if TYPE_CHECKING:
    from .inference.result_writer import ResultWriter
    from .inference.segmenter import SegResult, Segmenter
    from .loading import LoadedModel, LoadReport, create_model, list_models, load
    from .loading.zoo import get_weights, list_weights
    from .meta import ModelMeta


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'liteseg' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
