"""Opening models: any PaddleSeg or liteseg artefact (``load``), a registered architecture with or without
weights (``create_model``, ``list_models``), and the weights liteseg knows by name (``zoo``)."""
from .create import create_model, list_models
from .loader import LoadedModel, LoadReport, load, resolve_model

__all__ = ["LoadedModel", "LoadReport", "create_model", "list_models", "load", "resolve_model"]
