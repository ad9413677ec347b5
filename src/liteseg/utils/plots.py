"""matplotlib, an optional extra (``pip install 'liteseg[plot]'``) used only for charts: a figure without pyplot."""
from __future__ import annotations

import importlib.util
from typing import Any

from ..errors import LitesegError

INSTALL = "pip install 'liteseg[plot]'"


def have_matplotlib() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def require_matplotlib(purpose: str) -> None:
    """A clear error, with the install command, when ``purpose`` needs matplotlib and it is missing."""
    if not have_matplotlib():
        raise LitesegError(f"{purpose} needs matplotlib, an optional extra: {INSTALL}")


def figure(width: float, height: float, dpi: int = 100, purpose: str = "drawing charts") -> Any:
    """A matplotlib ``Figure`` on the Agg canvas (no pyplot state, no display needed)."""
    require_matplotlib(purpose)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig
