"""The dataset check behind ``liteseg data check`` and the start of ``train``/``val``: statistics and mistakes.

:func:`scan_dataset` reads every mask once and returns a :class:`DataReport`: per-class pixel and image counts,
the ignored share, image sizes, and findings for the classic mask mistakes. A *fatal* finding makes training
meaningless or unsafe (every foreground pixel ignored, lossy JPEG masks, unusable samples); ``train`` stops on
it unless ``data.allow`` names its code. :func:`auto_class_weights` turns the histogram into loss weights.
"""
from __future__ import annotations

import math
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from ..errors import DatasetError
from .base import SegDataset
from .io import image_size, label_file_info, read_label

MOSTLY_IGNORED = 0.5  # a "mostly ignored" warning above this share of ignored pixels
FATAL = ("foreground_ignored", "jpeg_masks", "bad_samples")  # the rest (grey_rgb_masks, empty_classes,
# mostly_ignored) are warnings
ALLOWABLE = ("foreground_ignored", "jpeg_masks")  # data.allow; unusable samples need fixing or data.skip_bad


@dataclass
class Finding:
    """One problem of a dataset: a code (what ``data.allow`` names), a message with the remedy, its severity."""

    code: str
    message: str

    @property
    def fatal(self) -> bool:
        return self.code in FATAL


@dataclass
class _MaskScan:
    raw: np.ndarray  # counts of the 256 raw mask values
    size: tuple[int, int]  # (W, H) of the image
    fmt: str
    mode: str
    problem: str | None = None


@dataclass
class DataReport:
    """What :func:`scan_dataset` found; ``format()`` is the text ``liteseg data check`` prints."""

    name: str
    class_names: list[str]
    ignore_index: int
    num_images: int
    usable: int  # images without problems: the statistics cover these
    pixels: np.ndarray  # [C] labelled pixels per class (after label_map)
    images: np.ndarray  # [C] images holding the class
    ignored: int
    raw_values: np.ndarray  # [256] pixels per raw mask value (before label_map)
    sizes: Counter = field(default_factory=Counter)  # (W, H) -> images
    findings: list[Finding] = field(default_factory=list)

    @property
    def total(self) -> int:
        return int(self.pixels.sum()) + self.ignored

    def fatal(self, allow: Iterable[str] = ()) -> list[Finding]:
        """The fatal findings that ``allow`` does not accept."""
        allowed = set(allow)
        return [f for f in self.findings if f.fatal and f.code not in allowed]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "images": self.num_images, "usable_images": self.usable, "ignore_index": self.ignore_index,
                "ignored_pixels": self.ignored, "total_pixels": self.total,
                "classes": [{"name": n, "pixels": int(p), "images": int(i)}
                            for n, p, i in zip(self.class_names, self.pixels, self.images)],
                "sizes": {f"{w}x{h}": n for (w, h), n in self.sizes.most_common()},
                "findings": [{"code": f.code, "fatal": f.fatal, "message": f.message} for f in self.findings]}

    def format(self) -> str:
        total = max(self.total, 1)
        width = max(12, *(len(n) for n in self.class_names)) + 4
        sizes = ", ".join(f"{w}x{h} ({n})" for (w, h), n in self.sizes.most_common(5))
        more = f", ... {len(self.sizes) - 5} more" if len(self.sizes) > 5 else ""
        usable = f" ({self.usable} usable)" if self.usable != self.num_images else ""
        lines = [f"{self.name}: {self.num_images} images{usable}, {len(self.class_names)} classes, ignore index "
                 f"{self.ignore_index}",
                 f"sizes (WxH): {sizes}{more}",
                 f"{'class':<{width}} {'pixels':>12} {'share':>7} {'images':>7}"]
        for i, (n, p, k) in enumerate(zip(self.class_names, self.pixels, self.images)):
            lines.append(f"{f'{i} {n}':<{width}} {int(p):>12} {100 * p / total:>6.2f}% {int(k):>7}")
        lines.append(f"{'ignored':<{width}} {self.ignored:>12} {100 * self.ignored / total:>6.2f}%")
        if not self.findings:
            lines.append("no problems found")
        for f in self.findings:
            lines.append(f"{'ERROR' if f.fatal else 'warning'} [{f.code}]: {f.message}")
        return "\n".join(lines)


def _scan_one(dataset: SegDataset, index: int) -> _MaskScan:
    sample = dataset.samples[index]
    try:
        h, w = image_size(sample.image)
    except DatasetError as e:
        return _MaskScan(np.zeros(256, np.int64), (0, 0), "", "", str(e))
    if sample.label is None:
        return _MaskScan(np.zeros(256, np.int64), (w, h), "", "", f"{sample.image}: no label file")
    fmt, mode = label_file_info(sample.label)
    try:
        raw = read_label(sample.label)
    except DatasetError as e:
        return _MaskScan(np.zeros(256, np.int64), (w, h), fmt, mode, str(e))
    counts = np.bincount(raw.ravel(), minlength=256).astype(np.int64)
    problem = None
    if raw.shape != (h, w):
        problem = dataset._size_message(sample, (h, w), raw.shape)
    else:
        try:
            dataset._check_values(sample, sample.lut[raw] if sample.lut is not None else raw)
        except DatasetError as e:
            problem = str(e)
    return _MaskScan(counts, (w, h), fmt, mode, problem)


def scan_dataset(dataset: SegDataset, num_threads: int = 4, progress: bool = False) -> DataReport:
    """Read every mask of ``dataset`` once (raw values, then its ``label_map``) and look for the classic mistakes."""
    if not dataset.samples:
        raise DatasetError(f"{dataset.name or 'dataset'}: no samples found")
    c = dataset.num_classes
    with ThreadPoolExecutor(max(1, num_threads)) as pool:
        results: Iterable[_MaskScan] = pool.map(lambda i: _scan_one(dataset, i), range(len(dataset.samples)))
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(dataset.samples), desc="checking data", unit="img")
        scans = list(results)
    pixels, images = np.zeros(c, np.int64), np.zeros(c, np.int64)
    raw_values, ignored, sizes = np.zeros(256, np.int64), 0, Counter()
    for sample, s in zip(dataset.samples, scans):
        if s.size != (0, 0):
            sizes[s.size] += 1
        if s.problem is not None:  # the statistics cover the usable samples, those training would use
            continue
        lut = sample.lut if sample.lut is not None else np.arange(256)
        mapped = np.bincount(lut, weights=s.raw, minlength=256).astype(np.int64)
        raw_values += s.raw
        pixels += mapped[:c]
        images += mapped[:c] > 0
        ignored += int(mapped[dataset.ignore_index]) if dataset.ignore_index < 256 else 0
    report = DataReport(dataset.name or "dataset", list(dataset.class_names), dataset.ignore_index,
                        len(dataset.samples), sum(s.problem is None for s in scans), pixels, images, ignored, raw_values, sizes)
    report.findings = _findings(dataset, report, scans)
    return report


def _examples(paths: list[str], n: int = 2) -> str:
    more = f" and {len(paths) - n} more" if len(paths) > n else ""
    return ", ".join(paths[:n]) + more


def _findings(dataset: SegDataset, report: DataReport, scans: list[_MaskScan]) -> list[Finding]:
    found: list[Finding] = []
    labels = [s.label or s.image for s in dataset.samples]
    bad = [s.problem for s in scans if s.problem]
    if bad:
        listed = "\n    ".join(bad[:3]) + (f"\n    ... and {len(bad) - 3} more" if len(bad) > 3 else "")
        found.append(Finding("bad_samples", f"{len(bad)} of {len(scans)} samples are unusable; fix them, or leave "
                                            f"them out with data.skip_bad=true (liteseg val: --skip-bad):\n    {listed}"))
    present = np.flatnonzero(report.pixels)
    used_raw = {int(v) for v in np.flatnonzero(report.raw_values)}
    if report.ignored and len(present) <= 1 and len(report.class_names) > 1:
        only = f"class {int(present[0])} ({report.class_names[int(present[0])]})" if len(present) else "no class"
        if used_raw <= {0, 255}:
            cause = (f"every mask holds only the values 0 and 255, and 255 is the ignore index: the foreground "
                     f"is drawn as 255 (a common export), so all of it is ignored and the model only ever sees "
                     f"{only}. If 255 marks your object, remap it: data.label_map={{255: 1}} (liteseg data check: "
                     f"--label-map 255:1); if your masks mark ignored pixels with another value, set "
                     f"data.ignore_index to it")
        else:
            cause = (f"every labelled pixel is {only}; all other pixels are the ignore index "
                     f"{report.ignore_index}, so training learns nothing; check data.label_map and "
                     f"data.ignore_index against the mask values {sorted(used_raw)[:8]}")
        found.append(Finding("foreground_ignored", cause))
    jpeg = [p for p, s in zip(labels, scans) if s.fmt == "JPEG"]
    if jpeg:
        found.append(Finding("jpeg_masks", f"{len(jpeg)} masks are JPEG files ({_examples(jpeg)}): JPEG is lossy, "
                                           f"so pixels along class edges get values of other classes or none; save "
                                           f"masks as PNG (to train on them anyway: data.allow=[jpeg_masks])"))
    grey = [p for p, s in zip(labels, scans) if s.mode in ("RGB", "RGBA") and s.problem is None]
    if grey:
        found.append(Finding("grey_rgb_masks", f"{len(grey)} masks are RGB images with R=G=B ({_examples(grey)}), "
                                               f"as cv2.imwrite writes 3-channel arrays; they are read as class "
                                               f"indices, but convert them once to single-channel PNGs (what other "
                                               f"tools expect): Image.open(p).convert('L').save(p)"))
    empty = [f"{i} {n}" for i, n in enumerate(report.class_names) if report.pixels[i] == 0]
    if empty and len(empty) < len(report.class_names):
        found.append(Finding("empty_classes", f"{len(empty)} classes have no pixels: {', '.join(empty[:8])}; the "
                                              f"model cannot learn them (check data.class_names and data.label_map)"))
    share = report.ignored / max(report.total, 1)
    if share > MOSTLY_IGNORED:
        found.append(Finding("mostly_ignored", f"{100 * share:.1f}% of all pixels are the ignore index "
                                               f"{report.ignore_index}; only the rest teaches the model"))
    return found


def auto_class_weights(pixels: np.ndarray) -> list[float]:
    """``loss.class_weights: auto``: ``w_c = 1 / ln(1.02 + p_c)`` (ENet, Paszke et al. 2016), ``p_c`` the share of
    class ``c`` among the labelled training pixels, then scaled so that the pixel-weighted mean weight is 1.

    Weights lie between 1/ln(2.02) = 1.42 (a class of all pixels) and 1/ln(1.02) = 50.5 (a class of none), before
    the scaling: rare classes count up to ~35x more than dominant ones, without median-frequency's extremes.
    """
    counts = np.asarray(pixels, dtype=np.float64)
    if counts.sum() <= 0:
        raise DatasetError("loss.class_weights=auto: the training masks hold no labelled pixel")
    share = counts / counts.sum()
    weights = np.array([1.0 / math.log(1.02 + p) for p in share])
    weights /= float((share * weights).sum())
    return [round(float(w), 6) for w in weights]
