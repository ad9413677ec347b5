"""ncnn: a folder with ``model.ncnn.param``, ``model.ncnn.bin`` and ``liteseg.json``, converted with pnnx (``ncnn`` extra).

pnnx and ncnn default to fp16 storage and arithmetic; ``fp32`` turns fp16 off at export (fp32 weights in the
``.bin``) and at run time (every fp16/bf16 option of the net off), ``fp16`` keeps both on. ncnn's param format has
no room for liteseg's metadata, so it lies beside the graph in ``liteseg.json``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import ncnn
import numpy as np
import torch

from ..errors import FormatError
from .edge import EdgeExportError, Prepared, import_converter, parse_metadata, quiet

PARAM, BIN, METADATA = "model.ncnn.param", "model.ncnn.bin", "liteseg.json"
_FP16_OPTIONS = ("use_fp16_packed", "use_fp16_storage", "use_fp16_arithmetic", "use_bf16_storage")


def check_path(path: Path) -> None:
    if path.suffix:
        raise EdgeExportError(f"{path}: an ncnn model is a folder; give a folder name without a suffix")


@contextlib.contextmanager
def staged(path: Path, overwrite: bool) -> Iterator[Path]:
    """A temporary folder beside ``path`` that replaces it on success and is removed on error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700: the usual permissions for a folder
        if path.exists() and overwrite:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.iterdir())


def write(prepared: Prepared, path: Path, precision: str, calibration: Sequence[torch.Tensor], metadata: str) -> None:
    """Convert ``prepared`` with pnnx (fp16 weights only for ``fp16``) into the folder ``path``."""
    pnnx = import_converter("ncnn", "pnnx")
    with tempfile.TemporaryDirectory() as work, torch.no_grad(), quiet(1, 2):
        pnnx.export(prepared.wrapper, os.path.join(work, "model.pt"), (prepared.example,), fp16=precision == "fp16",
                    check_trace=False)
        for name in (PARAM, BIN):
            if not os.path.isfile(os.path.join(work, name)):
                raise EdgeExportError(f"pnnx wrote no {name}; the model did not convert to ncnn")
            shutil.move(os.path.join(work, name), path / name)
    (path / METADATA).write_text(metadata)


class Runner:
    """An ncnn net: ``runner(x)`` maps a normalised float32 NCHW batch to logits (one image at a time)."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        folder = Path(path)
        self.source = os.fspath(path)
        if not folder.is_dir():
            raise FormatError(f"{self.source}: an ncnn model is a folder with {PARAM}, {BIN} and {METADATA}")
        params = sorted(folder.glob("*.param"))
        meta_file = folder / METADATA
        if len(params) != 1 or not params[0].with_suffix(".bin").is_file() or not meta_file.is_file():
            raise FormatError(f"{self.source}: expected one .param file, its .bin and {METADATA} in the folder "
                              f"(found {', '.join(sorted(p.name for p in folder.iterdir())) or 'nothing'}); "
                              f"export it with 'liteseg export MODEL --format ncnn'")
        self.meta, self.info, self.edge = parse_metadata(meta_file.read_bytes(), os.fspath(meta_file))
        self.net = ncnn.Net()
        for option in _FP16_OPTIONS:
            setattr(self.net.opt, option, self.edge.get("precision") == "fp16")
        if threads:
            self.net.opt.num_threads = threads
        if self.net.load_param(os.fspath(params[0])) != 0 or self.net.load_model(
                os.fspath(params[0].with_suffix(".bin"))) != 0:
            raise FormatError(f"{self.source}: ncnn could not read {params[0].name} or its .bin (damaged or "
                              f"truncated); re-export it with 'liteseg export MODEL --format ncnn'")
        self.input, self.output = self.net.input_names()[0], self.net.output_names()[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        outs = []
        for image in np.ascontiguousarray(x, dtype=np.float32):
            extractor = self.net.create_extractor()
            extractor.input(self.input, ncnn.Mat(image))  # `image` stays alive while the Mat is used
            status, out = extractor.extract(self.output)
            if status != 0:
                raise FormatError(f"{self.source}: ncnn failed to run the net (status {status})")
            outs.append(np.array(out, copy=True))
        return np.stack(outs)


def open_runner(path: str | os.PathLike, threads: int | None = None) -> Runner:
    return Runner(path, threads)
