"""The ``ncnn`` backend: ``create_backend(PATH, "ncnn")`` (see edge_backend)."""
from __future__ import annotations

import functools

import ncnn  # noqa: F401  (a missing package makes this backend unavailable, see backends.BACKENDS)

from .edge_backend import edge_factory

factory = functools.partial(edge_factory, "ncnn")
