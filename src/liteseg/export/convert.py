"""Writing a loaded model in the format an output suffix names (``liteseg convert``'s library side).

``WRITERS`` maps a suffix to ``writer(loaded, out, *, half, overwrite, input_shape) -> message`` (what to print,
starting with ``wrote OUT``); register more with :func:`register_writer`. The CLI only looks writers up here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from ..errors import LitesegError
from ..formats.native import save_native
from ..loading import LoadedModel

Writer = Callable[..., str]


def _write_safetensors(loaded: LoadedModel, out: Path, *, half: bool = False, overwrite: bool = False,
                       input_shape: Sequence[int] | None = None) -> str:
    if input_shape is not None:
        raise LitesegError(f"{out}: an input shape applies to ONNX outputs only; .safetensors holds weights")
    meta = loaded.meta.to_dict()
    save_native(out, loaded.model.state_dict(), {"arch": meta["arch"], "config": meta["config"], "meta": meta},
                half=half, overwrite=overwrite)
    return f"wrote {out}"


def _write_onnx(loaded: LoadedModel, out: Path, *, half: bool = False, overwrite: bool = False,
                input_shape: Sequence[int] | None = None) -> str:
    """``input_shape`` if given, else the source program's fixed feed shape if it has one, else dynamic H x W."""
    from .onnx import export_onnx

    shape = input_shape if input_shape is not None else (loaded.meta.input_shape if loaded.meta.fixed_hw else None)
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


def convert(loaded: LoadedModel, out: str | Path, *, half: bool = False, overwrite: bool = False,
            input_shape: Sequence[int] | None = None) -> str:
    """Write ``loaded`` to ``out`` in the format of its suffix (``input_shape`` fixes an ONNX input); returns
    the message to show (it starts with ``wrote OUT``)."""
    return writer_for(out)(loaded, Path(out), half=half, overwrite=overwrite, input_shape=input_shape)
