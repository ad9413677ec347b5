"""LabelMe annotations (one JSON per image) to a list dataset: images, class-index PNG masks, labels.txt, train.txt.

Shapes are rasterised as LabelMe's own ``shape_to_mask`` does, with Pillow's ImageDraw: ``polygon`` (also a
missing ``shape_type``), ``rectangle`` (two corners), ``circle`` (centre, a point on the circle), ``line`` and
``linestrip`` (10 px wide), ``point`` (radius 5); later shapes paint over earlier ones, as in LabelMe's
``shapes_to_label``. The image is the JSON's embedded ``imageData`` (base64) when present, else ``imagePath``
relative to the JSON file. Classes come from a LabelMe ``labels.txt`` (``__ignore__`` first = ignore index 255,
then ``_background_`` = 0, then one class per line) or, without one, ``_background_`` followed by the sorted
labels found.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, UnidentifiedImageError

from ..errors import DatasetError
from ..utils.io import atomic_write_bytes

BACKGROUND, IGNORE = "_background_", "__ignore__"
LINE_WIDTH, POINT_SIZE = 10, 5  # LabelMe's shape_to_mask defaults


def shape_mask(size: tuple[int, int], points: Sequence[Sequence[float]], shape_type: str | None,
               where: str = "shape") -> np.ndarray:
    """Boolean ``[H, W]`` mask of one LabelMe shape on an image of ``size`` (W, H)."""
    xy = [(float(p[0]), float(p[1])) for p in points]
    kind = shape_type or "polygon"
    need = {"circle": 2, "rectangle": 2, "point": 1}
    if kind in need and len(xy) != need[kind]:
        raise DatasetError(f"{where}: a {kind} needs {need[kind]} points, got {len(xy)}")
    if kind == "polygon" and len(xy) < 3:
        raise DatasetError(f"{where}: a polygon needs at least 3 points, got {len(xy)}")
    if kind in ("line", "linestrip") and len(xy) < 2:
        raise DatasetError(f"{where}: a {kind} needs at least 2 points, got {len(xy)}")
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    if kind == "circle":
        (cx, cy), (px, py) = xy
        r = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif kind == "rectangle":
        (x0, y0), (x1, y1) = xy
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, fill=1)
    elif kind in ("line", "linestrip"):
        draw.line(xy, fill=1, width=LINE_WIDTH)
    elif kind == "point":
        (cx, cy), r = xy[0], POINT_SIZE
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif kind == "polygon":
        draw.polygon(xy, outline=1, fill=1)
    else:
        raise DatasetError(f"{where}: shape_type {kind!r} is not supported (polygon, rectangle, circle, line, "
                           f"linestrip, point); convert it in LabelMe or remove the shape")
    return np.asarray(mask, dtype=bool)


def read_class_file(path: str | Path) -> dict[str, int]:
    """LabelMe's labels.txt: ``__ignore__`` (optional, first) -> 255, ``_background_`` -> 0, then 1, 2, ..."""
    names = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    table = {IGNORE: 255} if names[:1] == [IGNORE] else {}
    names = names[1:] if table else names
    if names[:1] != [BACKGROUND]:
        names = [BACKGROUND] + [n for n in names if n != BACKGROUND]
    table.update((n, i) for i, n in enumerate(names))
    return table


@dataclass
class _Annotation:
    json_path: Path
    data: dict[str, Any]


def _read_json(path: Path) -> _Annotation:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: not a readable LabelMe JSON file ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise DatasetError(f"{path}: not a LabelMe annotation (no 'shapes' list)")
    return _Annotation(path, data)


def _image_bytes(ann: _Annotation) -> tuple[bytes, str]:
    """The image file's bytes and its suffix: embedded ``imageData``, else the file at ``imagePath``."""
    embedded = ann.data.get("imageData")
    if embedded:
        try:
            raw = base64.b64decode(embedded, validate=True)
        except (binascii.Error, ValueError, TypeError) as e:
            raise DatasetError(f"{ann.json_path}: imageData is not valid base64 ({e})") from None
    else:
        name = ann.data.get("imagePath")
        if not name:
            raise DatasetError(f"{ann.json_path}: neither imageData nor imagePath is set")
        path = ann.json_path.parent / str(name).replace("\\", "/")
        if not path.is_file():
            raise DatasetError(f"{ann.json_path}: its image {path} does not exist (imagePath {name!r})")
        raw = path.read_bytes()
    try:
        with Image.open(io.BytesIO(raw)) as img:
            fmt = (img.format or "PNG").lower()
    except (UnidentifiedImageError, OSError) as e:
        raise DatasetError(f"{ann.json_path}: the image is not readable ({e})") from None
    return raw, {"jpeg": ".jpg", "mpo": ".jpg"}.get(fmt, f".{fmt}")


def annotation_to_label(ann: _Annotation, classes: dict[str, int], size: tuple[int, int]) -> np.ndarray:
    """The ``[H, W]`` uint8 class-index mask of one annotation (size = the image's (W, H))."""
    label = np.zeros((size[1], size[0]), dtype=np.uint8)
    for n, shape in enumerate(ann.data["shapes"]):
        name = shape.get("label")
        if name not in classes:
            raise DatasetError(f"{ann.json_path}: shape {n} has label {name!r}, not in the class list "
                               f"({', '.join(classes)}); add it to the labels file")
        label[shape_mask(size, shape.get("points") or [], shape.get("shape_type"),
                         f"{ann.json_path}: shape {n} ({name})")] = classes[name]
    return label


def convert_labelme(sources: Sequence[str | Path], out: str | Path, labels_file: str | Path | None = None,
                    exist_ok: bool = False) -> dict[str, Any]:
    """Convert LabelMe JSON files (or folders of them) into ``out``; returns counts and the class list."""
    files: list[Path] = []
    for source in map(Path, sources):
        files += sorted(source.glob("*.json")) if source.is_dir() else [source]
    if not files:
        raise DatasetError(f"no LabelMe .json files in {', '.join(map(str, sources))}")
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not exist_ok:
        raise DatasetError(f"{out} is not empty; choose a new folder or pass --exist-ok")
    annotations = [_read_json(f) for f in files]
    if labels_file is not None:
        classes = read_class_file(labels_file)
    else:
        found = sorted({str(s.get("label")) for a in annotations for s in a.data["shapes"]} - {BACKGROUND})
        classes = {name: i for i, name in enumerate([BACKGROUND, *found])}
    stems = [a.json_path.stem for a in annotations]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise DatasetError(f"several JSON files are named {dupes[0]}.json; their outputs would collide")
    lines = []
    for ann in annotations:
        raw, suffix = _image_bytes(ann)
        with Image.open(io.BytesIO(raw)) as img:
            size = img.size
        declared = (ann.data.get("imageWidth"), ann.data.get("imageHeight"))
        if None not in declared and tuple(declared) != size:
            raise DatasetError(f"{ann.json_path}: imageWidth x imageHeight is {declared[0]}x{declared[1]} but the "
                               f"image is {size[0]}x{size[1]}")
        label = annotation_to_label(ann, classes, size)
        image_rel, label_rel = f"images/{ann.json_path.stem}{suffix}", f"labels/{ann.json_path.stem}.png"
        atomic_write_bytes(out / image_rel, raw)
        buf = io.BytesIO()
        Image.fromarray(label, mode="L").save(buf, format="PNG")
        atomic_write_bytes(out / label_rel, buf.getvalue())
        lines.append(f"{image_rel} {label_rel}")
    names = [n for n, i in sorted(classes.items(), key=lambda kv: kv[1]) if n != IGNORE]
    atomic_write_bytes(out / "labels.txt", ("\n".join(names) + "\n").encode())
    atomic_write_bytes(out / "train.txt", ("\n".join(lines) + "\n").encode())
    return {"images": len(lines), "classes": names, "list": out / "train.txt"}
