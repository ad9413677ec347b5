"""LiteRT / TFLite (``.tflite``) through ``litert-torch``, run with ``ai-edge-litert`` (``litert`` extra).

Precisions: fp32; fp16 (float16 weights, dequantized to float32 at load: float compute); int8, full-integer
(int8 weights per channel, int8 activations, int8 input and output tensors) through litert-torch's PT2E path:
calibrated in PyTorch, then converted with the quantize/dequantize pairs folded into int8 LiteRT ops.
(ai-edge-quantizer 0.10's full-integer recipe on the float flatbuffer fails on PP-LiteSeg's graph after
calibration: "ADD(index: 0) not found in tensor_name_to_qsv".)
int8 exports pool SPPM with the exact matmul form at every size: LiteRT's int8 average pool needs one scale on
its input and output, and so on the concat before it (the last STDC block), whose inputs calibration gives
different scales ("'tfl.concatenation' op quantization parameters violate the same scale constraint" at sizes
whose 1/32 map divides by the bins, such as 512x1024).
The liteseg metadata is a ``liteseg`` entry of the flatbuffer's metadata table.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import ai_edge_litert  # noqa: F401  (a missing runtime makes this format unavailable, see edge.format_module)
import numpy as np
import torch

from ..errors import FormatError
from ..utils.io import atomic_path
from .edge import EdgeExportError, Prepared, import_converter, parse_metadata

SUFFIX = ".tflite"
METADATA_NAME = "liteseg"
MATMUL_POOL_PRECISIONS = ("int8",)  # precisions whose SPPM pools take the matmul form at every size (see above)

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


def convert_int8(prepared: Prepared, calibration: Sequence[torch.Tensor]) -> bytes:
    """The full-integer int8 flatbuffer of ``prepared``: PT2E with litert-torch's quantizer (per-channel
    symmetric int8 weights, int8 activations from histogram observers over ``calibration``), converted with the
    static quantize/dequantize pairs lowered to int8 ops (int8 input and output tensors)."""
    litert_torch = import_converter("tflite", "litert_torch")
    pt2e = import_converter("tflite", "litert_torch.quantize.pt2e_quantizer")
    quant_config = import_converter("tflite", "litert_torch.quantize.quant_config")
    quantize_pt2e = import_converter("tflite", "torchao.quantization.pt2e.quantize_pt2e")
    quantizer = pt2e.PT2EQuantizer().set_global(
        pt2e.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        graph = torch.export.export(prepared.wrapper, (prepared.example,)).module()
        observed = quantize_pt2e.prepare_pt2e(graph, quantizer)
        for x in calibration:
            observed(x)
        quantized = quantize_pt2e.convert_pt2e(observed, fold_quantize=False)
        model = litert_torch.convert(quantized, (prepared.example,),
                                     quant_config=quant_config.QuantConfig(pt2e_quantizer=quantizer))
    return bytes(model.model_content())


def write(prepared: Prepared, path: Path, precision: str, calibration: Sequence[torch.Tensor], metadata: str) -> None:
    """Convert ``prepared`` with litert-torch, quantize if asked, add the metadata, write to ``path``."""
    if precision == "int8":
        path.write_bytes(with_metadata(convert_int8(prepared, calibration), metadata))
        return
    model = with_metadata(convert(prepared), metadata)  # the quantizer keeps metadata entries
    if precision == "fp16":
        model = _fp16_weights(model)
    path.write_bytes(model)


class Runner:
    """A LiteRT interpreter (XNNPACK CPU): ``runner(x)`` maps a normalised float32 NCHW batch to float32 logits
    (a full-integer model's int8 input is quantized and its int8 output dequantized with the file's scale and
    zero point)."""

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
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], _to_tensor(np.asarray(x, dtype=np.float32), self.input))
        self.interpreter.invoke()
        return _from_tensor(self.interpreter.get_tensor(self.output["index"]), self.output)


def _to_tensor(x: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """``x`` as the input tensor wants it: float32, or quantized to its integer type with its scale/zero point."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind != "i":
        return np.ascontiguousarray(x, dtype=dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def _from_tensor(y: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """An output tensor as float32 (integer outputs dequantized with their scale and zero point)."""
    if np.dtype(detail["dtype"]).kind != "i":
        return y.astype(np.float32, copy=True)
    scale, zero_point = detail["quantization"]
    return ((y.astype(np.float32) - zero_point) * scale).astype(np.float32)


def open_runner(path: str | os.PathLike, threads: int | None = None) -> Runner:
    return Runner(path, threads)
