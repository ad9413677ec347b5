"""``liteseg data check DATA`` (statistics and the classic mask mistakes) and ``liteseg data convert labelme``."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import LitesegError


def _label_map(text: str) -> dict[int, int]:
    try:
        pairs = [item.split(":") for item in text.split(",") if item.strip()]
        table = {int(raw): int(new) for raw, new in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected RAW:CLASS pairs, e.g. 255:1 or 0:0,255:1") from None
    if not table or not all(0 <= v <= 255 for kv in table.items() for v in kv):
        raise argparse.ArgumentTypeError(f"{text!r}: values must be in 0-255")
    return table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="check a dataset (class histogram, mask mistakes) or convert annotations",
                       description="Dataset tools: 'check' prints the class histogram and the classic mask "
                                   "mistakes (train and val run the same check); 'convert labelme' turns LabelMe "
                                   "JSON polygons into a list dataset.")
    tools = p.add_subparsers(dest="tool", metavar="TOOL", required=True)
    c = tools.add_parser("check", help="class histogram, sizes and mask mistakes of a dataset",
                         description="Read every mask once: pixels and images per class, the ignored share, image "
                                     "sizes, and the classic mistakes (0/255 masks, JPEG masks, grey RGB masks, "
                                     "empty classes, mostly ignored pixels). Exit code 1 when training on the data "
                                     "would stop.")
    c.add_argument("data", help="cityscapes:/root, camvid:/root, list:/path/file.txt or folders:IMAGES,LABELS")
    c.add_argument("--split", default="train", help="split of a cityscapes/camvid dataset (default: train)")
    c.add_argument("--class-names", type=lambda s: [n.strip() for n in s.split(",") if n.strip()],
                   help="comma-separated class names (list/folders; default: labels.txt beside the data)")
    c.add_argument("--num-classes", type=int, help="class count when there are no names (list/folders)")
    c.add_argument("--label-map", type=_label_map, help="remap raw mask values first, e.g. 255:1 (data.label_map)")
    c.add_argument("--ignore-index", type=int, default=255, help="the ignore value (default 255; data.ignore_index)")
    c.add_argument("--allow", default="", help="comma-separated findings not to count as errors (data.allow)")
    c.add_argument("-o", "--output", type=Path, help="also write report.txt, report.json, the histogram chart "
                                                     "labels.png (needs matplotlib) and samples.jpg here")
    c.add_argument("--exist-ok", action="store_true", help="write into an existing non-empty output folder")
    c.set_defaults(func=run_check)
    v = tools.add_parser("convert", help="convert annotations into a liteseg list dataset")
    formats = v.add_subparsers(dest="format", metavar="FORMAT", required=True)
    lm = formats.add_parser("labelme", help="LabelMe JSON (polygon, rectangle, circle, line, point) -> PNG masks",
                            description="Rasterise LabelMe shapes into class-index PNG masks and write images/, "
                                        "labels/, labels.txt and train.txt (train with data.train=list:OUT/train.txt).")
    lm.add_argument("sources", nargs="+", help="LabelMe .json files or folders of them")
    lm.add_argument("-o", "--output", type=Path, required=True, help="output folder (new or empty)")
    lm.add_argument("--labels", type=Path, help="LabelMe labels.txt (__ignore__, _background_, classes...); default: "
                                                "_background_ then the labels found, sorted")
    lm.add_argument("--exist-ok", action="store_true", help="write into an existing non-empty output folder")
    lm.set_defaults(func=run_labelme)


def run_check(args: argparse.Namespace) -> int:
    from ..data import CLASS_OPTIONS, build_dataset, class_options, has_custom_classes
    from ..data.check import ALLOWABLE, scan_dataset
    from ..training.data_plots import label_chart, sample_sheet
    from ..utils.io import atomic_write_bytes
    from ..utils.plots import have_matplotlib

    allow = [a.strip() for a in args.allow.split(",") if a.strip()]
    if set(allow) - set(ALLOWABLE):
        raise LitesegError(f"--allow takes {', '.join(ALLOWABLE)}, not {sorted(set(allow) - set(ALLOWABLE))}")
    if args.output is not None and args.output.exists() and any(args.output.iterdir()) and not args.exist_ok:
        raise LitesegError(f"{args.output} is not empty; choose a new folder or pass --exist-ok")
    extra = class_options(args.data, {k: getattr(args, k, None) for k in CLASS_OPTIONS},
                          lambda k: f"--{k.replace('_', '-')}")
    if has_custom_classes(args.data):
        extra["ignore_index"] = args.ignore_index
    dataset = build_dataset(args.data, args.split, **extra)
    report = scan_dataset(dataset, progress=True)
    print(report.format())
    fatal = report.fatal(allow)
    if args.output is not None:
        atomic_write_bytes(args.output / "report.txt", (report.format() + "\n").encode())
        atomic_write_bytes(args.output / "report.json", json.dumps(report.to_dict(), indent=2).encode())
        written = [args.output / "report.txt", args.output / "report.json"]
        if have_matplotlib():
            written.append(label_chart(report, dataset.palette.tolist(), args.output / "labels.png"))
        usable = [i for i in range(len(dataset)) if dataset.check_sample(i) is None][:8]
        if usable:
            pairs = [(item["image"], item["label"]) for item in (dataset[i] for i in usable)]
            written.append(sample_sheet(pairs, dataset.palette.tolist(), dataset.ignore_index,
                                        args.output / "samples.jpg"))
        print(f"wrote {', '.join(map(str, written))}")
    if fatal:
        print(f"{len(fatal)} error(s) ({', '.join(f.code for f in fatal)}): liteseg train stops on this data; the "
              f"remedies are above")
        return 1
    return 0


def run_labelme(args: argparse.Namespace) -> int:
    from ..data.labelme import convert_labelme

    result = convert_labelme(args.sources, args.output, args.labels, exist_ok=args.exist_ok)
    print(f"converted {result['images']} LabelMe annotations into {args.output}: {len(result['classes'])} classes "
          f"({', '.join(result['classes'])}); train with data.train=list:{result['list']}")
    return 0
