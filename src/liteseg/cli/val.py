"""``liteseg val [--model M] --data SPEC [-o OUT]``: evaluate any model format on any backend, with a report."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..inference.backend_names import backend_help
from . import options, ray_engine
from .options import DEVICE_HELP


def _scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers, e.g. 0.75,1.0,1.25") from None
    if not scales or min(scales) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: scales must be positive")
    return scales


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("val", help="evaluate a model on a labelled dataset (mIoU, Acc, Kappa, Dice)",
                       description="Evaluate a model (any format liteseg loads, or ONNX/OpenVINO through a backend) "
                                   "with PaddleSeg's metrics and test-time protocols, and write a report.")
    p.add_argument("--model", "-m", help="model file or folder (.pdparams, .safetensors, inference model, .onnx, "
                                         "...) or a weight name; default: the shipped default model, PP-LiteSeg-T for "
                                         "CamVid street scenes (11 classes, 480x360)")
    p.add_argument("--data", required=True, help="cityscapes:/root, camvid:/root, list:/path/file.txt or "
                                                 "folders:IMAGES_DIR,LABELS_DIR")
    p.add_argument("--split", default="val", help="split of a cityscapes/camvid dataset (default: val)")
    p.add_argument("-o", "--output", type=Path, help="folder for metrics.json, report.md and charts (default: a "
                                                     "new runs/val/expN)")
    p.add_argument("--flip", action="store_true", help="add a horizontally flipped pass")
    p.add_argument("--flip-v", action="store_true", help="add a vertically flipped pass (with --flip: both)")
    p.add_argument("--scales", type=_scales, default=(1.0,), help="test scales, e.g. 0.5 or 0.75,1.0,1.25")
    p.add_argument("--slide", type=options.slide, default=None, help="sliding window CROP,STRIDE, each N or WxH "
                                                           "(e.g. 1024x512,768x384)")
    p.add_argument("--legacy-aug", action="store_true", help="PaddleSeg <= 2.7 multi-scale/flip semantics (chained "
                                                            "resizes, summed softmax), as the published numbers")
    p.add_argument("--backend", help=backend_help())
    p.add_argument("--device", default=None, help=f"{DEVICE_HELP} (default: cuda where the backend runs on it and "
                                                  "one is available, else cpu)")
    p.add_argument("--num-workers", type=options.count, default=2, help="data-loading processes (default: 2)")
    p.add_argument("--skip-bad", action="store_true", help="report and skip unusable samples instead of failing")
    p.add_argument("--exclude-absent", action="store_true", help="leave classes absent from predictions and labels "
                                                                 "out of the means (PaddleSeg counts them as 0)")
    p.add_argument("--exist-ok", action="store_true", help="overwrite an existing report in the output folder")
    p.add_argument("--threads", type=options.threads, help="CPU threads for the backend (0: default)")
    ray_engine.add_options(p, resume=False)
    p.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> None:
    """val's checks: the inference options, and a dataset spec of a known kind (before the model loads)."""
    from ..data import spec_kind

    options.check_inference(args)
    spec_kind(args.data)


def run(args: argparse.Namespace) -> int:
    from ..data import build_dataset, has_custom_classes
    from ..data.check import scan_dataset
    from ..evaluation.evaluator import evaluate
    from ..evaluation.report import check_output, format_table, write_report
    from ..inference.about import describe
    from ..inference.backends import create_backend
    from ..inference.capabilities import default_device
    from ..loading.zoo import default_model
    from .run_dir import prepare_output_dir

    if args.output is not None:
        check_output(args.output, args.exist_ok)  # before the run, not after it
    if args.engine != "ray":
        ray_engine.check_local(args)
    backend_options = {"threads": args.threads} if args.threads else {}
    if args.engine != "ray":  # CUDA where the backend runs on it and this machine has it
        backend_options["device"] = args.device or default_device(args.backend)
    model = args.model or default_model()
    name = args.model or "the default model"
    backend = create_backend(model, args.backend, **backend_options)
    meta = backend.meta
    extra = {"class_names": meta.class_names, "palette": meta.palette} if has_custom_classes(args.data) else {}
    dataset = build_dataset(args.data, args.split, **extra)
    print(f"model {name}: {describe(meta)}; backend {backend.name}")
    print(f"data {args.data}: {len(dataset)} images, {dataset.num_classes} classes")
    print(scan_dataset(dataset).format())  # the histogram and mask mistakes, as liteseg data check prints them
    if args.engine == "ray":
        backend.close()
        result = ray_engine.run_val(args, dataset, model)
    else:
        result = evaluate(backend, dataset, flip=args.flip, flip_v=args.flip_v, scales=args.scales, slide=args.slide,
                          legacy_aug=args.legacy_aug, num_workers=args.num_workers, skip_bad=args.skip_bad,
                          exclude_absent=args.exclude_absent)
    print(format_table(result))
    notes = "" if meta.trained else "**The model's weights are not trained (random initialisation).**"
    out = args.output or prepare_output_dir(None, "runs/val")  # numbered folders only for finished runs
    paths = write_report(result, out, model=name, dataset=args.data, notes=notes, exist_ok=args.exist_ok)
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0
