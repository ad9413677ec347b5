"""Writing a loaded model in the format an output suffix names (``liteseg convert``'s library side).

``WRITERS`` maps a suffix to ``writer(loaded, out, *, half, overwrite, input_shape) -> message`` (what to print,
starting with ``wrote OUT``); a new format is its writer plus one ``WRITERS.add`` line. The CLI only looks
writers up here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from ..errors import LitesegError
from ..formats.native import save_native
from ..loading import LoadedModel
from ..registry import Registry

Writer = Callable[..., str]


def _write_safetensors(loaded: LoadedModel, out: Path, *, half: bool = False, overwrite: bool = False,
                       input_shape: Sequence[int] | None = None) -> str:
    if input_shape is not None:
        raise LitesegError(f"{out}: an input shape applies to ONNX outputs only; .safetensors holds weights")
    meta = loaded.meta.to_dict()
    save_native(out, loaded.model.state_dict(), {"arch": meta["arch"], "config": meta["config"], "meta": meta},
                half=half, overwrite=overwrite)
    return f"wrote {out}"


# what a Paddle inference program appended after the logits (ModelMeta.output_op) -> the ONNX output that keeps it
OUTPUT_OF_OP = {"argmax": "labels", "softmax": "probs"}


def _write_onnx(loaded: LoadedModel, out: Path, *, half: bool = False, overwrite: bool = False,
                input_shape: Sequence[int] | None = None, output: str | None = None) -> str:
    """``input_shape`` if given, else the source program's fixed feed shape if it has one, else dynamic H x W.
    ``output`` (logits, probs or labels) if given, else what the source outputs (labels for an argmax package)."""
    from .onnx import export_onnx

    shape = input_shape if input_shape is not None else (loaded.meta.input_shape if loaded.meta.fixed_hw else None)
    kept = OUTPUT_OF_OP.get(loaded.meta.output_op, "logits")
    message = export_onnx(loaded, out, input_shape=shape, fp16=half, overwrite=overwrite,
                          output=output or kept).summary()
    if output is None and kept != "logits":
        message += f"\noutput {kept}: kept from the source, whose output op is {loaded.meta.output_op}"
    return message


WRITERS: Registry[Writer] = Registry("output format")
WRITERS.add(".safetensors", _write_safetensors)
WRITERS.add(".onnx", _write_onnx)


def writer_for(out: str | Path) -> Writer:
    """The writer for ``out``'s suffix; a clear error for an unknown one (checked before any loading)."""
    suffix = Path(out).suffix.lower()
    if suffix not in WRITERS:
        raise LitesegError(f"{out}: unknown output format {suffix!r}; {WRITERS.hint(suffix)}")
    return WRITERS.get(suffix)


def convert(loaded: LoadedModel, out: str | Path, *, half: bool = False, overwrite: bool = False,
            input_shape: Sequence[int] | None = None, output: str | None = None) -> str:
    """Write ``loaded`` to ``out`` in the format of its suffix (``input_shape`` fixes an ONNX input, ``output``
    picks its output, default the source's); returns the message to show (it starts with ``wrote OUT``)."""
    options = {"output": output} if output else {}  # only the ONNX writer has outputs to choose
    return writer_for(out)(loaded, Path(out), half=half, overwrite=overwrite, input_shape=input_shape, **options)
