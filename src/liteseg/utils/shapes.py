"""The one rule for an input shape written as text (``--input-shape``, ``--shape``, ``--bench-shape``, TensorRT
profiles, ``export_onnx(input_shape=...)``): ``N,3,H,W`` or ``NxCxHxW``."""
from __future__ import annotations

from typing import Sequence

from ..errors import LitesegError


def parse_shape(text: str | Sequence[int], *, dynamic: bool = False, what: str = "input shape",
                error: type[Exception] = LitesegError) -> list[int]:
    """``"1,3,512,512"`` or ``"1x3x512x512"`` (or a sequence) -> ``[1, 3, 512, 512]``: four integers, 3 channels
    (RGB), positive sizes; with ``dynamic`` a -1 keeps a dimension open. Anything else raises ``error`` naming
    ``what`` was parsed."""
    try:
        dims = [int(v) for v in (text.replace("x", ",").split(",") if isinstance(text, str) else text)]
    except (TypeError, ValueError):
        dims = []
    if len(dims) != 4 or dims[1] != 3 or any(d < (-1 if dynamic else 1) or d == 0 for d in dims):
        sizes = "positive sizes (or -1 for dynamic)" if dynamic else "positive sizes"
        raise error(f"{what} {text!r}: expected N,3,H,W with {sizes}, e.g. 1,3,512,512")
    return dims
