"""Pictures of the training data: the class histogram chart (``labels.png``) and a sheet of augmented samples
with their masks (``train_batch0.jpg``), as Ultralytics writes ``labels.jpg`` and ``train_batch*.jpg``."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..data.check import DataReport
from ..inference.visualize import colorize
from ..utils.io import atomic_write_bytes
from ..utils.plots import figure


def label_chart(report: DataReport, palette: Sequence[Sequence[int]], out: str | Path) -> Path:
    """PNG of the per-class pixel share (bars in the class colours, log scale) and the images holding each class."""
    names = [f"{i} {n}" for i, n in enumerate(report.class_names)]
    share = 100.0 * report.pixels / max(report.total, 1)
    colours = [tuple(v / 255 for v in c) for c in palette]
    fig = figure(max(6.0, 0.45 * len(names) + 2), 6.5, dpi=100, purpose="the class histogram chart")
    top, bottom = fig.add_subplot(2, 1, 1), fig.add_subplot(2, 1, 2, sharex=None)
    x = np.arange(len(names))
    top.bar(x, np.maximum(share, 1e-4), color=colours, edgecolor="black", linewidth=0.5)
    top.set_yscale("log")
    top.set_ylim(max(float(share[share > 0].min()) / 3 if (share > 0).any() else 1e-4, 1e-4), 150)
    top.set_ylabel("% of pixels (log)")
    ignored = 100.0 * report.ignored / max(report.total, 1)
    top.set_title(f"{report.name}: {report.num_images} images, ignored {ignored:.2f}% of pixels")
    bottom.bar(x, report.images, color=colours, edgecolor="black", linewidth=0.5)
    bottom.set_ylabel("images with the class")
    for ax in (top, bottom):
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=60, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(out, buf.getvalue())
    return Path(out)


def mask_view(label: np.ndarray, palette: Sequence[Sequence[int]], ignore_index: int) -> np.ndarray:
    """RGB mask: class colours, ignored pixels white (so they stand out from any class)."""
    rgb = colorize(label, palette, ignore_index)
    rgb[label == ignore_index] = 255
    return rgb


def sample_sheet(samples: Sequence[tuple[np.ndarray, np.ndarray]], palette: Sequence[Sequence[int]],
                 ignore_index: int, out: str | Path, tile: int = 256, columns: int = 4) -> Path:
    """JPEG grid: each (RGB image, label) pair as the image above its mask blended over it (ignored: white)."""
    cells = []
    for image, label in samples:
        blend = (0.4 * image.astype(np.float32) + 0.6 * mask_view(label, palette, ignore_index)).astype(np.uint8)
        pair = np.concatenate([image, blend], axis=0)
        scale = tile / max(pair.shape[:2])
        size = (max(1, round(pair.shape[1] * scale)), max(1, round(pair.shape[0] * scale)))
        cells.append(Image.fromarray(pair).resize(size, Image.NEAREST))
    columns = max(1, min(columns, len(cells)))
    rows = -(-len(cells) // columns)
    sheet = Image.new("RGB", (columns * (tile + 4), rows * (tile + 4)), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    for k, cell in enumerate(cells):
        x, y = (k % columns) * (tile + 4) + 2, (k // columns) * (tile + 4) + 2
        sheet.paste(cell, (x, y))
        draw.text((x + 3, y + 2), str(k), fill=(255, 255, 0))
    buf = io.BytesIO()
    sheet.save(buf, format="JPEG", quality=90)
    atomic_write_bytes(out, buf.getvalue())
    return Path(out)
