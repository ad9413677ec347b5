"""Evaluation reports: a terminal table, ``metrics.json``, a markdown report and two charts (matplotlib)."""
from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LitesegError
from ..utils.io import atomic_write_bytes
from ..utils.plots import INSTALL, figure, have_matplotlib
from .evaluator import EvalResult

log = logging.getLogger("liteseg")
REPORT_FILES = ("metrics.json", "report.md", "confusion_matrix.png", "class_iou.png")


def protocol_text(protocol: dict[str, Any]) -> str:
    """One line describing the inference protocol, e.g. ``scales 0.75,1.0,1.25 + flip (legacy)``."""
    parts = [f"scale {','.join(f'{s:g}' for s in protocol.get('scales', [1.0]))}"]
    flips = [name for name, key in (("flip", "flip"), ("vertical flip", "flip_v")) if protocol.get(key)]
    parts += flips
    if protocol.get("slide"):
        (cw, ch), (sw, sh) = protocol["slide"]
        parts.append(f"slide {cw}x{ch} stride {sw}x{sh}")
    text = " + ".join(parts)
    if protocol.get("legacy_aug"):
        text += " (legacy PaddleSeg <= 2.7 semantics)"
    return text


def summary_line(result: EvalResult) -> str:
    m = result.metrics
    return (f"{result.num_images} images | mIoU {m['miou']:.4f} | Acc {m['acc']:.4f} | Kappa {m['kappa']:.4f} | "
            f"mDice {m['mdice']:.4f} | {result.images_per_second:.2f} images/s")


def format_table(result: EvalResult) -> str:
    """Summary line plus a per-class table (IoU, precision, recall, Dice) for the terminal."""
    m = result.metrics
    width = max(12, *(len(n) for n in result.class_names))
    lines = [summary_line(result), f"{'class':<{width}}  {'IoU':>7}  {'Precision':>9}  {'Recall':>7}  {'Dice':>7}"]
    for i, name in enumerate(result.class_names):
        absent = "  (absent)" if i in m["absent_classes"] else ""
        lines.append(f"{name:<{width}}  {m['class_iou'][i]:>7.4f}  {m['class_precision'][i]:>9.4f}  "
                     f"{m['class_recall'][i]:>7.4f}  {m['class_dice'][i]:>7.4f}{absent}")
    lines.append(f"{'mean':<{width}}  {m['miou']:>7.4f}  {m['mean_precision']:>9.4f}  {m['mean_recall']:>7.4f}  "
                 f"{m['mdice']:>7.4f}")
    return "\n".join(lines)


def markdown_report(result: EvalResult, model: str, dataset: str, notes: str = "", charts: bool = True) -> str:
    """The report as markdown: setup, summary metrics, per-class table, charts, skipped samples."""
    m, p = result.metrics, result.protocol
    rows = "\n".join(f"| {name} | {m['class_iou'][i]:.4f} | {m['class_precision'][i]:.4f} | "
                     f"{m['class_recall'][i]:.4f} | {m['class_dice'][i]:.4f} |"
                     for i, name in enumerate(result.class_names))
    absent = ", ".join(result.class_names[i] for i in m["absent_classes"]) or "none"
    rule = ("Such classes are left out of the means." if m["exclude_absent"]
            else "Such classes count as IoU 0 in the means, as in PaddleSeg 2.8.0.")
    text = f"""# Evaluation report

| | |
|---|---|
| model | `{model}` |
| dataset | `{dataset}` ({result.num_images} images) |
| protocol | {protocol_text(p)} |
| backend | {p.get('backend')} on {p.get('device')} ({p.get('threads')} threads, {p.get('cpus')} CPUs, \
{p.get('num_workers')} loader workers) |
| speed | {result.images_per_second:.2f} images/s ({result.seconds:.1f} s, data loading included) |

{notes}

## Metrics

| mIoU | Acc | Kappa | mDice | mean precision | mean recall | pixels |
|---|---|---|---|---|---|---|
| {m['miou']:.4f} | {m['acc']:.4f} | {m['kappa']:.4f} | {m['mdice']:.4f} | {m['mean_precision']:.4f} | \
{m['mean_recall']:.4f} | {m['num_pixels']} |

Classes absent from both predictions and labels: {absent}. {rule}

| class | IoU | precision | recall | Dice |
|---|---|---|---|---|
{rows}
"""
    if charts:
        text += "\n![per-class IoU](class_iou.png)\n\n![confusion matrix](confusion_matrix.png)\n"
    if result.skipped:
        text += "\n## Skipped samples\n\n" + "\n".join(f"- `{path}`: {why}" for path, why in result.skipped) + "\n"
    return text


def _figure(width: float, height: float):
    return figure(width, height, dpi=110, purpose="the report's charts")


def _save(fig, path: Path, overwrite: bool) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    atomic_write_bytes(path, buffer.getbuffer(), overwrite=overwrite)


def plot_confusion(result: EvalResult, path: Path, overwrite: bool = False) -> None:
    """Row-normalised confusion matrix (each row = one labelled class, sums to 1) as a PNG."""
    cm = result.confusion.astype(np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(result.class_names)
    size = max(5.0, 0.45 * n + 2)
    fig = _figure(size + 1, size)
    ax = fig.add_subplot()
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the labelled class")
    ax.set_xticks(range(n), result.class_names, rotation=90)
    ax.set_yticks(range(n), result.class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("label")
    ax.set_title("confusion matrix (row-normalised)")
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if norm[i, j] >= 0.005:
                    ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
    _save(fig, path, overwrite)


def plot_class_iou(result: EvalResult, path: Path, overwrite: bool = False) -> None:
    """Horizontal bar chart of per-class IoU with the mIoU as a line."""
    iou = np.asarray(result.metrics["class_iou"])
    n = len(iou)
    fig = _figure(7, max(3.0, 0.3 * n + 1))
    ax = fig.add_subplot()
    ax.barh(range(n), iou, color="tab:blue")
    ax.axvline(result.metrics["miou"], color="tab:red", linestyle="--", label=f"mIoU {result.metrics['miou']:.4f}")
    ax.set_yticks(range(n), result.class_names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("IoU")
    for i, v in enumerate(iou):
        ax.text(min(v + 0.01, 0.9), i, f"{v:.3f}", va="center", fontsize=7)
    ax.legend(loc="lower right")
    ax.set_title("per-class IoU")
    _save(fig, path, overwrite)


def check_output(out_dir: str | os.PathLike, exist_ok: bool = False) -> None:
    """Refuse an output folder that already holds a report, unless ``exist_ok``."""
    existing = [Path(out_dir) / name for name in REPORT_FILES if (Path(out_dir) / name).exists()]
    if existing and not exist_ok:
        raise LitesegError(f"{existing[0]}: already exists; choose another output folder or pass --exist-ok to "
                           f"overwrite the report")


def write_report(result: EvalResult, out_dir: str | os.PathLike, *, model: str, dataset: str, notes: str = "",
                 exist_ok: bool = False) -> dict[str, Path]:
    """Write metrics.json, report.md, confusion_matrix.png and class_iou.png into ``out_dir`` (atomically).

    Existing report files are an error unless ``exist_ok``. Without matplotlib (the ``plot`` extra) the two
    charts are left out, with a warning that names the install command.
    """
    out = Path(out_dir)
    check_output(out, exist_ok)
    paths = {name: out / name for name in REPORT_FILES}
    out.mkdir(parents=True, exist_ok=True)
    from .. import __version__

    data = {"model": model, "dataset": dataset, "liteseg_version": __version__, **result.to_dict()}
    if notes:
        data["notes"] = notes
    atomic_write_bytes(paths["metrics.json"], json.dumps(data, indent=2).encode())
    charts = have_matplotlib()
    atomic_write_bytes(paths["report.md"], markdown_report(result, model, dataset, notes, charts=charts).encode())
    if not charts:
        log.warning("warning: charts left out of the report: they need matplotlib (%s)", INSTALL)
        return {name: path for name, path in paths.items() if not name.endswith(".png")}
    plot_confusion(result, paths["confusion_matrix.png"], overwrite=True)
    plot_class_iou(result, paths["class_iou.png"], overwrite=True)
    return paths
