"""``liteseg info MODEL``: what a model file holds (architecture, classes, preprocessing, load report)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
from typing import TYPE_CHECKING

from ..errors import LitesegError, install_hint

if TYPE_CHECKING:
    from ..meta import ModelMeta


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="describe a model file, or list the registered models",
                       description="Describe a model file (an .onnx too: the metadata export embedded) or a weight "
                                   "name (its record); without MODEL, list the registered architectures and the "
                                   "published weights.")
    p.add_argument("model", nargs="?", help="any file liteseg.load accepts, an .onnx file, or a weight name")
    p.add_argument("--json", action="store_true", help="print the metadata as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..inference.about import describe
    from ..loading import load, zoo
    from ..models import list_models

    if not args.model:
        from ..loading.zoo import list_weights

        print("architectures (liteseg.create_model):\n  " + "\n  ".join(list_models()))
        print("weights (--model NAME, liteseg.load(NAME)):\n  " + "\n  ".join(
            f"{n}  <- the shipped default: {_about(n)}" if n == zoo.DEFAULT_NAME else n for n in list_weights()))
        return 0
    if str(args.model).lower().endswith(".onnx"):
        return _graph_info(args)
    from ..inference.backends import edge_backend_for

    if edge_backend_for(args.model):
        return _edge_info(args)
    name = None if os.path.exists(args.model) else zoo.canonical_name(args.model)
    if name is not None and zoo.local_path(name) is None:  # a weights record, not downloaded: print, don't fetch
        record = zoo.record(name)
        print(json.dumps(dataclasses.asdict(record), indent=2) if args.json else "\n".join(record.describe()))
        return 0
    if name is not None and not args.json:
        print("\n".join(zoo.record(name).describe()) + "\n")
    loaded = load(args.model)
    meta = loaded.meta
    if args.json:
        print(json.dumps(meta.to_dict(), indent=2))
        return 0
    params = sum(p.numel() for p in loaded.model.parameters())
    print(f"about:       {describe(meta)}")
    print(f"model:       {meta.arch} ({params:,} parameters incl. aux heads)")
    print(f"source:      {meta.source} [{meta.source_format}], loaded in {loaded.load_seconds:.2f} s")
    if meta.extra.get("program_format") == "PIR":
        name = f", {meta.extra['model_name']}" if "model_name" in meta.extra else ""
        print(f"format:      Paddle 3 PIR program {meta.extra.get('program_file')} (PIR version "
              f"{meta.extra.get('pir_version')}){name}")
    elif meta.extra.get("program_format"):
        print(f"format:      Paddle ProgramDesc {meta.extra.get('program_file')} (version "
              f"{meta.extra.get('paddle_version')})")
    print(f"weights:     {loaded.report.summary()}")
    _describe(meta)
    return 0


def _about(name: str) -> str:
    """The one-line description of weight ``name`` from its record (nothing loaded)."""
    from ..inference.about import ARCH_NAMES, DOMAINS
    from ..loading import zoo

    w = zoo.record(name)
    size = f"{w.input_size[0]}x{w.input_size[1]}" if w.input_size else "any size"
    return f"{ARCH_NAMES.get(w.arch, w.arch)}, {DOMAINS.get(w.dataset, w.dataset)}, {w.num_classes} classes, {size}"


def _graph_info(args: argparse.Namespace) -> int:
    """An ONNX file: the metadata ``liteseg export`` embedded (or what the graph says) and how it was exported."""
    from dataclasses import asdict

    try:
        from ..inference.onnx_graph import open_graph
    except ImportError:
        raise LitesegError(f"{args.model}: reading ONNX files needs onnx: {install_hint('onnx')}") from None
    _, meta, info, _ = open_graph(args.model)
    if args.json:
        print(json.dumps({"meta": meta.to_dict(), "export": asdict(info)}, indent=2))
        return 0
    print(f"model:       {meta.arch} (ONNX graph{'' if meta.source_format == 'onnx' else ', liteseg export'})")
    layout = f"uint8 {info.input_layout}" if info.preprocess else "float32 nchw"
    print(f"export:      output {info.output} at {info.output_size} size, input {layout}, opset {info.opset}"
          + (", fp16" if info.fp16 else "") + (f", {info.quantized}" if info.quantized else ""))
    _describe(meta)
    return 0


def _scores(metrics: dict) -> str:
    scores = ", ".join(f"{k} {metrics[k]:.4f}" for k in ("miou", "acc", "kappa", "mdice") if k in metrics)
    return scores + (f" ({metrics['protocol']})" if metrics.get("protocol") else "")


def _edge_info(args: argparse.Namespace) -> int:
    """An edge export (.pte, .tflite, ncnn folder): its metadata, format and precision, read by its runtime."""
    from dataclasses import asdict

    from ..inference.backends import create_backend

    backend = create_backend(args.model)
    meta, info, edge = backend.meta, backend.info, backend.runner.edge
    if args.json:
        print(json.dumps({"meta": meta.to_dict(), "export": asdict(info), "edge": edge}, indent=2))
        return 0
    print(f"model:       {meta.arch} ({edge.get('format')} {edge.get('precision')}, liteseg export, backend "
          f"{backend.name})")
    _describe(meta)
    return 0


def _describe(meta: ModelMeta) -> None:
    print(f"classes:     {meta.num_classes}: {', '.join(meta.class_names)}")
    print(f"input:       {meta.input_shape}, mean {meta.mean}, std {meta.std}")
    print(f"output op:   {meta.output_op}")
    print(f"config:      {json.dumps(meta.config)}")
    if meta.metrics:
        print(f"metrics:     {_scores(meta.metrics)}")
    elif meta.extra.get("fp32_metrics"):
        print(f"metrics:     not measured for this INT8 model ('liteseg quantize --eval-list' measures it); its "
              f"FP32 source: {_scores(meta.extra['fp32_metrics'])}")
    for n, stage in enumerate(meta.extra.get("training_stages", []), 1):
        curve = stage.get("val_miou_curve", {})
        wall = f", {stage['wall_s'] / 60:.0f} min" if "wall_s" in stage else ""
        print(f"training {n}:  {stage.get('checkpoint')} at iteration {stage.get('iteration')}{wall}; val mIoU "
              + ", ".join(f"{v:.3f}@{it}" for it, v in curve.items()))
    if meta.license:
        print(f"licence:     {meta.license}")
