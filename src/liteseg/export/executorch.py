"""ExecuTorch (``.pte``) with the XNNPACK delegate: fp32, and int8 through PT2E quantization (``executorch`` extra).

The liteseg metadata is a constant method of the program (``liteseg_metadata`` returns the JSON string).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import executorch  # noqa: F401  (a missing package makes this format unavailable, see edge.format_module)
import numpy as np
import torch

from ..errors import FormatError
from ..utils.io import atomic_path
from .edge import EdgeExportError, Prepared, parse_metadata, quiet

SUFFIX = ".pte"
METADATA_METHOD = "liteseg_metadata"


def check_path(path: Path) -> None:
    if path.suffix.lower() != SUFFIX:
        raise EdgeExportError(f"{path}: an ExecuTorch program must end in {SUFFIX}")


staged = atomic_path


def size(path: Path) -> int:
    return path.stat().st_size


def _quantized(prepared: Prepared, calibration: Sequence[torch.Tensor]) -> torch.nn.Module:
    """PT2E int8: per-channel symmetric int8 weights, int8 activations calibrated on ``calibration``."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    graph = torch.export.export(prepared.wrapper, (prepared.example,)).module()
    quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
    observed = prepare_pt2e(graph, quantizer)
    for x in calibration:
        observed(x)
    return convert_pt2e(observed)


def write(prepared: Prepared, path: Path, precision: str, calibration: Sequence[torch.Tensor], metadata: str) -> None:
    """Lower ``prepared`` to XNNPACK and write the program to ``path``."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        module = _quantized(prepared, calibration) if precision == "int8" else prepared.wrapper
        program = torch.export.export(module, (prepared.example,))
        lowered = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()],
                                              constant_methods={METADATA_METHOD: metadata})
        path.write_bytes(lowered.to_executorch().buffer)


class Runner:
    """An ExecuTorch program: ``runner(x)`` maps a normalised float32 NCHW batch to logits."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        with quiet(2):  # importing the runtime logs optional kernels it did not find
            from executorch.runtime import Runtime
        self.source = os.fspath(path)
        if not Path(path).is_file():
            raise FormatError(f"{self.source}: no such ExecuTorch program")
        try:
            with quiet(2):  # the runtime logs on stderr (why it refuses a file: the FormatError below says it)
                if threads:
                    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

                    _unsafe_reset_threadpool(threads)
                program = Runtime.get().load_program(Path(path))
                if METADATA_METHOD not in program.method_names:
                    raise FormatError(f"{self.source}: an ExecuTorch program without liteseg metadata; export it "
                                      f"with 'liteseg export MODEL --format executorch'")
                text = program.load_method(METADATA_METHOD).execute([])[0]
                self.method = program.load_method("forward")
        except FormatError:
            raise
        except Exception as e:  # the runtime raises RuntimeError/ValueError on damaged programs
            raise FormatError(f"{self.source}: not a readable ExecuTorch program ({type(e).__name__}: {e}); "
                              f"re-export it with 'liteseg export MODEL --format executorch'") from None
        self.meta, self.info, self.edge = parse_metadata(text, self.source)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.method.execute([torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))])[0].numpy()


def open_runner(path: str | os.PathLike, threads: int | None = None) -> Runner:
    return Runner(path, threads)

