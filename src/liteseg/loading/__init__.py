"""Opening models: any PaddleSeg or liteseg artefact (``load``), a fresh architecture (``create_model``), and the
weights liteseg knows by name (``zoo``)."""
from .loader import LoadedModel, LoadReport, create_model, load, resolve_model

__all__ = ["LoadedModel", "LoadReport", "create_model", "load", "resolve_model"]
