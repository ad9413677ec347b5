"""The ``liteseg`` entry of an ONNX file's ``metadata_props``: model metadata plus what was exported."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..meta import ModelMeta

METADATA_KEY = "liteseg"


@dataclass
class ExportInfo:
    """How a graph was exported: its output, output size, baked-in preprocessing and shapes."""

    output: str = "logits"
    labels_dtype: str = "int64"
    output_size: str = "input"
    preprocess: bool = False
    input_layout: str = "nchw"
    opset: int = 0
    fp16: bool = False
    dynamic: bool = True
    sppm_pool: str = "matmul"
    quantized: str = ""
    trt_profile: list[list[int]] | None = None  # TensorRT [min, opt, max] input shapes (N,3,H,W), see tensorrt.py


def write_metadata(model: Any, meta: ModelMeta, info: ExportInfo) -> None:
    """Store ``meta`` and ``info`` as JSON under the ``liteseg`` key of ``model.metadata_props``."""
    text = json.dumps({"meta": meta.to_dict(), "export": asdict(info)})
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            prop.value = text
            return
    model.metadata_props.add(key=METADATA_KEY, value=text)


def read_metadata(model: Any, source: str = "") -> tuple[ModelMeta, ExportInfo] | None:
    """(meta, info) stored by :func:`write_metadata`, or None for a foreign ONNX file."""
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                data = json.loads(prop.value)
                if not isinstance(data, dict) or not all(isinstance(data.get(k), dict) for k in ("meta", "export")):
                    raise ValueError("expected an object with 'meta' and 'export' objects")
                return ModelMeta.from_dict(data["meta"]), ExportInfo(**data["export"])
            except (ValueError, KeyError, TypeError) as e:
                raise FormatError(f"{source}: the liteseg metadata in this ONNX file is damaged ({e}); "
                                  f"re-export the model") from None
    return None


def load_onnx(path: str | os.PathLike) -> Any:
    """``onnx.load`` with a clear error for missing or corrupt files."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such ONNX file")
    try:
        return onnx.load(os.fspath(path))
    except Exception as e:  # protobuf raises DecodeError and others on corrupt files
        raise FormatError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
