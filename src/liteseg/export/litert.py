"""LiteRT / TFLite (``.tflite``) through ``litert-torch``, run with ``ai-edge-litert`` (``litert`` extra).

Precisions: fp32; fp16 (float16 weights, dequantized to float32 at load: float compute). No int8: ai-edge-quantizer
0.10's full-integer recipe (static int8 weights and activations) fails on PP-LiteSeg's graph ("ADD(index: 0) not
found in tensor_name_to_qsv" after calibration).
The liteseg metadata is a ``liteseg`` entry of the flatbuffer's metadata table.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Sequence

import ai_edge_litert  # noqa: F401  (a missing runtime makes this format unavailable, see edge.format_module)
import numpy as np
import torch

from ..errors import FormatError
from ..utils.io import atomic_path
from .edge import EdgeExportError, Prepared, import_converter, parse_metadata

SUFFIX = ".tflite"
METADATA_NAME = "liteseg"

staged = atomic_path


def check_path(path: Path) -> None:
    if path.suffix.lower() != SUFFIX:
        raise EdgeExportError(f"{path}: a LiteRT model must end in {SUFFIX}")


def size(path: Path) -> int:
    return path.stat().st_size


# fp16 weights, dequantized to float32 at load (float compute), with ai-edge-quantizer's float-casting algorithm
_FP16_RECIPE = [{"regex": ".*", "operation": "*", "algorithm_key": "float_casting",
                 "op_config": {"weight_tensor_config": {"num_bits": 16, "dtype": "FLOAT"}, "compute_precision": "FLOAT",
                               "explicit_dequantize": True}}]


def _fp16_weights(model: bytes) -> bytes:
    quantizer = import_converter("tflite", "ai_edge_quantizer.quantizer")
    result = quantizer.Quantizer(bytearray(model), _FP16_RECIPE).quantize(enable_progress_bar=False,
                                                                           enable_progress_report=False)
    return bytes(result.quantized_model)


def with_metadata(model: bytes, text: str) -> bytes:
    """``model`` with a ``liteseg`` metadata entry holding ``text`` (the flatbuffer is rebuilt; its buffers must be
    inside it, as litert-torch writes them)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    tree = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(text.encode(), dtype=np.uint8)
    tree.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(tree.buffers) - 1
    tree.metadata = [m for m in (tree.metadata or []) if m.name != METADATA_NAME.encode()] + [entry]
    builder = flatbuffers.Builder(len(model) + len(text) + 1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def read_metadata_text(model: bytes, source: str) -> str:
    """The ``liteseg`` metadata of a ``.tflite`` flatbuffer (FormatError if it is not one or has none)."""
    from ai_edge_litert import schema_py_generated as schema

    try:
        if len(model) < 8 or model[4:8] != b"TFL3":
            raise ValueError("no TFL3 file identifier")
        tree = schema.Model.GetRootAs(model, 0)
        for i in range(tree.MetadataLength()):
            entry = tree.Metadata(i)
            if entry.Name() == METADATA_NAME.encode():
                buffer = tree.Buffers(entry.Buffer())
                if buffer.Offset() > 1:  # data after the flatbuffer (ai-edge-quantizer writes it so)
                    return bytes(model[buffer.Offset():buffer.Offset() + buffer.Size()]).decode()
                return buffer.DataAsNumpy().tobytes().decode()
    except Exception as e:  # flatbuffers raises struct/index errors on damaged files
        raise FormatError(f"{source}: not a readable LiteRT/TFLite model ({type(e).__name__}: {e}); re-export it "
                          f"with 'liteseg export MODEL --format tflite'") from None
    raise FormatError(f"{source}: a TFLite model without liteseg metadata; export it with "
                      f"'liteseg export MODEL --format tflite'")


_last_conversion: dict[str, bytes] = {}  # fingerprint -> float flatbuffer (the last one only)


def _fingerprint(prepared: Prepared) -> str:
    """Identifies a model and shape: the weights (and buffers, e.g. SPPM's bin matrices) and the input shape."""
    digest = hashlib.sha256(repr(prepared.shape).encode())
    for name, tensor in prepared.wrapper.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def convert(prepared: Prepared) -> bytes:
    """The float32 flatbuffer of ``prepared`` (litert-torch). The slow step: the last result is reused, so the
    fp32 and fp16 exports of one model and shape convert once."""
    key = _fingerprint(prepared)
    if key not in _last_conversion:
        litert_torch = import_converter("tflite", "litert_torch")
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            model = bytes(litert_torch.convert(prepared.wrapper, (prepared.example,)).model_content())
        _last_conversion.clear()
        _last_conversion[key] = model
    return _last_conversion[key]


def write(prepared: Prepared, path: Path, precision: str, calibration: Sequence[torch.Tensor], metadata: str) -> None:
    """Convert ``prepared`` with litert-torch, quantize if asked, add the metadata, write to ``path``."""
    if precision not in ("fp32", "fp16"):
        raise EdgeExportError(f"tflite: no {precision} export (ai-edge-quantizer's full-integer int8 fails on "
                              f"PP-LiteSeg); choose fp32 or fp16")
    model = with_metadata(convert(prepared), metadata)  # the quantizer keeps metadata entries
    if precision == "fp16":
        model = _fp16_weights(model)
    path.write_bytes(model)


class Runner:
    """A LiteRT interpreter (XNNPACK CPU): ``runner(x)`` maps a normalised float32 NCHW batch to logits."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.source = os.fspath(path)
        if not Path(path).is_file():
            raise FormatError(f"{self.source}: no such LiteRT/TFLite model")
        data = Path(path).read_bytes()
        self.meta, self.info, self.edge = parse_metadata(read_metadata_text(data, self.source), self.source)
        try:
            self.interpreter = Interpreter(model_content=data, num_threads=threads or None)
            self.interpreter.allocate_tensors()
        except Exception as e:  # the interpreter raises ValueError/RuntimeError on damaged models
            raise FormatError(f"{self.source}: not a readable LiteRT/TFLite model ({type(e).__name__}: {e}); "
                              f"re-export it with 'liteseg export MODEL --format tflite'") from None
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input, np.ascontiguousarray(x, dtype=np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output).copy()


def open_runner(path: str | os.PathLike, threads: int | None = None) -> Runner:
    return Runner(path, threads)
