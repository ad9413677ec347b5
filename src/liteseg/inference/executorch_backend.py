"""The ``executorch`` backend: ``create_backend(PATH, "executorch")``; registers itself on import (see edge_backend)."""
from __future__ import annotations

import executorch  # noqa: F401  (a missing package makes this backend unavailable, see backend_names.LAZY_BACKENDS)

from .edge_backend import register

register("executorch")
