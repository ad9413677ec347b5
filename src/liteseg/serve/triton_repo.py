"""``liteseg export MODEL --format triton -o REPO``: a Triton model repository.

* ``REPO/liteseg``: the Python-backend model (:mod:`liteseg.serve.triton_backend`; needs liteseg in the server's
  Python), inputs ``IMAGE`` / ``PIXELS`` and outputs ``LABELS`` / ``PROBS`` as in :mod:`liteseg.serve.tensors`.
* ``REPO/liteseg_onnx``: ONNX Runtime (TensorRT execution accelerator on GPUs) with the preprocessing in the graph:
  input ``x`` UINT8 ``[N, H, W, 3]``, output ``labels`` ``[N, H, W]``; dynamic batch, height and width.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LitesegError
from ..export.convert import convert
from ..loading import LoadedModel, load
from .tensors import IMAGE, LABELS, MODEL_NAME, PIXELS, PROBS, labels_dtype

ONNX_MODEL = f"{MODEL_NAME}_onnx"
MODEL_PY = '"""Triton Python backend: liteseg (pip install liteseg in the server\'s Python)."""\n{path}' \
           "from liteseg.serve.triton_backend import TritonPythonModel  # noqa: E402,F401\n"


def _triton_type(dtype: np.dtype) -> str:
    return {"uint8": "TYPE_UINT8", "int32": "TYPE_INT32", "float32": "TYPE_FP32"}[np.dtype(dtype).name]


def python_config(num_classes: int, max_batch: int = 8, max_wait_ms: float = 5.0,
                  max_pixels: int = 4096 * 4096, threads: int | None = None) -> str:
    """``config.pbtxt`` of the Python-backend model."""
    labels = _triton_type(labels_dtype(num_classes))
    return f'''name: "{MODEL_NAME}"
backend: "python"
max_batch_size: {max_batch}
dynamic_batching {{ max_queue_delay_microseconds: {int(max_wait_ms * 1000)} }}
input [
  {{ name: "{IMAGE}" data_type: TYPE_STRING dims: [ 1 ] optional: true }},
  {{ name: "{PIXELS}" data_type: TYPE_UINT8 dims: [ -1, -1, 3 ] optional: true }}
]
output [
  {{ name: "{LABELS}" data_type: {labels} dims: [ -1, -1 ] }},
  {{ name: "{PROBS}" data_type: TYPE_FP32 dims: [ {num_classes}, -1, -1 ] }}
]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
parameters {{ key: "max_pixels" value: {{ string_value: "{max_pixels}" }} }}
parameters {{ key: "threads" value: {{ string_value: "{threads or 0}" }} }}
'''


def onnx_config(num_classes: int, max_batch: int = 8, max_wait_ms: float = 5.0) -> str:
    """``config.pbtxt`` of the ONNX Runtime / TensorRT model (GPU containers)."""
    return f'''name: "{ONNX_MODEL}"
platform: "onnxruntime_onnx"
max_batch_size: {max_batch}
dynamic_batching {{ max_queue_delay_microseconds: {int(max_wait_ms * 1000)} }}
input [ {{ name: "x" data_type: TYPE_UINT8 dims: [ -1, -1, 3 ] }} ]
output [ {{ name: "labels" data_type: {"TYPE_UINT8" if num_classes <= 256 else "TYPE_INT64"} dims: [ -1, -1 ] }} ]
instance_group [ {{ kind: KIND_GPU count: 1 }} ]
optimization {{ execution_accelerators {{ gpu_execution_accelerator: [ {{ name: "tensorrt"
  parameters {{ key: "precision_mode" value: "FP16" }} }} ] }} }}
'''


def write_repository(source: Any, out: str | Path, *, onnx: bool = True, max_batch: int = 8,
                     max_wait_ms: float = 5.0, max_pixels: int = 4096 * 4096, threads: int | None = None,
                     import_path: str | None = None, overwrite: bool = False) -> list[str]:
    """Write the repository for ``source`` (a path ``liteseg.load`` accepts or a LoadedModel) to ``out``.

    ``import_path``: a folder the model imports liteseg from (default: the server's installed liteseg).

    Written in a temporary folder beside ``out`` and renamed into place; returns the lines to print.
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise LitesegError(f"{out}: already exists; pass --force to replace it")
    if isinstance(source, (str, Path)) and str(source).lower().endswith(".onnx"):
        raise LitesegError(f"{source}: the Triton repository needs the model's weights (.safetensors, .pdparams, "
                           "a PaddleSeg folder, ...), not an ONNX file")
    loaded = source if isinstance(source, LoadedModel) else load(source)
    num_classes = loaded.meta.num_classes
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        python_dir = work / MODEL_NAME / "1"
        python_dir.mkdir(parents=True)
        convert(loaded, python_dir / "model.safetensors")
        path = f"import sys\n\nsys.path.insert(0, {import_path!r})\n" if import_path else ""
        (python_dir / "model.py").write_text(MODEL_PY.format(path=path))
        (work / MODEL_NAME / "config.pbtxt").write_text(python_config(num_classes, max_batch, max_wait_ms,
                                                                      max_pixels, threads))
        lines = [f"{out}/{MODEL_NAME}: Python backend (IMAGE bytes or PIXELS uint8 HxWx3 -> LABELS, PROBS)"]
        if onnx:
            from ..export.onnx import export_onnx

            onnx_dir = work / ONNX_MODEL / "1"
            onnx_dir.mkdir(parents=True)
            report = export_onnx(loaded, onnx_dir / "model.onnx", output="labels",
                                 labels_dtype="uint8" if num_classes <= 256 else "int64",
                                 include_preprocess=True, input_layout="nhwc")
            (work / ONNX_MODEL / "config.pbtxt").write_text(onnx_config(num_classes, max_batch, max_wait_ms))
            lines.append(f"{out}/{ONNX_MODEL}: ONNX Runtime / TensorRT (x uint8 NxHxWx3 -> labels NxHxW); "
                         f"{report.summary().splitlines()[0].removeprefix('wrote ')}")
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [f"wrote {out}", *lines]
