"""The ``executorch`` backend: ``create_backend(PATH, "executorch")`` (see edge_backend)."""
from __future__ import annotations

import functools

import executorch  # noqa: F401  (a missing package makes this backend unavailable, see backends.BACKENDS)

from .edge_backend import edge_factory

factory = functools.partial(edge_factory, "executorch")
