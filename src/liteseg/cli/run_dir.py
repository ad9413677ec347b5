"""Output folders that never overwrite silently: explicit folders need --exist-ok, default ones are numbered."""
from __future__ import annotations

from pathlib import Path

from ..errors import LitesegError


def prepare_output_dir(output: Path | None, default_root: str, exist_ok: bool = False) -> Path:
    """Create and return the output folder.

    Without ``output``: a new ``<default_root>/exp``, ``exp2``, ... (never reused). With ``output``: refuse a
    non-empty existing folder unless ``exist_ok``.
    """
    if output is None:
        root = Path(default_root)
        n = 1
        while True:
            candidate = root / ("exp" if n == 1 else f"exp{n}")
            try:
                candidate.mkdir(parents=True, exist_ok=False)
                return candidate
            except FileExistsError:
                n += 1
    check_output_dir(output, exist_ok)
    output.mkdir(parents=True, exist_ok=True)
    return output


def check_output_dir(output: Path, exist_ok: bool = False) -> None:
    """Refuse a file, or a non-empty existing folder unless ``exist_ok`` (creates nothing)."""
    if output.exists() and not output.is_dir():
        raise LitesegError(f"{output}: exists and is not a folder")
    if output.is_dir() and any(output.iterdir()) and not exist_ok:
        raise LitesegError(f"{output}: the output folder exists and is not empty; pass --exist-ok to write into "
                           f"it (files with the same names are replaced) or choose another folder")
