"""Writing a loaded model in the format an output suffix names (``liteseg convert``'s library side).

``WRITERS`` maps a suffix to ``writer(loaded, out, *, half, overwrite) -> summary or None``; register more with
:func:`register_writer`. The CLI only looks writers up here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from ..errors import LitesegError
from ..formats.native import save_native
from ..loading import LoadedModel

Writer = Callable[..., Optional[str]]


def _write_safetensors(loaded: LoadedModel, out: Path, *, half: bool = False, overwrite: bool = False) -> None:
    meta = loaded.meta.to_dict()
    save_native(out, loaded.model.state_dict(), {"arch": meta["arch"], "config": meta["config"], "meta": meta},
                half=half, overwrite=overwrite)


def _write_onnx(loaded: LoadedModel, out: Path, *, half: bool = False, overwrite: bool = False) -> str:
    """The source program's fixed feed shape if it has one, else dynamic; returns the export summary."""
    from .onnx import export_onnx

    shape = loaded.meta.input_shape if loaded.meta.fixed_hw else None
    return export_onnx(loaded, out, input_shape=shape, fp16=half, overwrite=overwrite).summary()


WRITERS: dict[str, Writer] = {".safetensors": _write_safetensors, ".onnx": _write_onnx}


def register_writer(suffix: str, writer: Writer) -> None:
    """Make ``convert(..., "x" + suffix)`` use ``writer``."""
    WRITERS[suffix.lower()] = writer


def writer_for(out: str | Path) -> Writer:
    """The writer for ``out``'s suffix; a clear error for an unknown one (checked before any loading)."""
    suffix = Path(out).suffix.lower()
    if suffix not in WRITERS:
        raise LitesegError(f"{out}: unknown output format {suffix!r}; use one of {sorted(WRITERS)}")
    return WRITERS[suffix]


def convert(loaded: LoadedModel, out: str | Path, *, half: bool = False, overwrite: bool = False) -> str | None:
    """Write ``loaded`` to ``out`` in the format of its suffix; returns the writer's summary, if any."""
    return writer_for(out)(loaded, Path(out), half=half, overwrite=overwrite)
