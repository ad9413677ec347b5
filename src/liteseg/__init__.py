"""liteseg: PP-LiteSeg in PyTorch, numerically equal to PaddleSeg, loadable from every Paddle artefact."""
from .errors import ArchitectureError, DatasetError, FormatError, LitesegError, UnsafePickleError
from .loading import LoadedModel, LoadReport, create_model, load
from .inference.segmenter import Segmenter, SegResult
from .meta import ModelMeta
from .models import list_models
from .loading.zoo import get_weights, list_weights

__version__ = "0.1.0"

__all__ = [
    "create_model", "list_models", "list_weights", "get_weights", "load", "Segmenter", "SegResult", "LoadedModel",
    "LoadReport", "ModelMeta",
    "LitesegError", "FormatError", "ArchitectureError", "UnsafePickleError", "DatasetError", "__version__",
]
