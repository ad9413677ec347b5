"""``liteseg data convert labelme``: LabelMe shapes rasterised as LabelMe does, embedded or referenced images."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
from PIL import Image

from liteseg.cli.main import main
from liteseg.data import build_dataset

W, H = 80, 60


def _annotation(shapes: list[dict], image_path: str | None = None, embed: Image.Image | None = None) -> dict:
    data = None
    if embed is not None:
        buf = io.BytesIO()
        embed.save(buf, format="PNG")
        data = base64.b64encode(buf.getvalue()).decode()
    return {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": data,
            "imageHeight": H, "imageWidth": W}


def _shape(label: str, points: list, shape_type: str | None) -> dict:
    return {"label": label, "points": points, "group_id": None, "shape_type": shape_type, "flags": {}}


def test_polygons_rectangles_circles_become_class_masks(tmp_path, capsys):
    src = tmp_path / "labelme"
    src.mkdir()
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8))
    photo.save(src / "a.jpg", quality=95)
    (src / "a.json").write_text(json.dumps(_annotation([
        _shape("car", [[10, 5], [30, 5], [30, 25], [10, 25]], "polygon"),  # a square drawn as a polygon
        _shape("road", [[70, 50], [40, 30]], "rectangle"),  # corners in any order, as LabelMe stores them
        _shape("car", [[45, 35], [50, 40]], "rectangle"),  # later shapes paint over earlier ones
        _shape("person", [[5, 40], [25, 58], [5, 58]], None),  # no shape_type: a polygon, as in LabelMe
    ], image_path="a.jpg")))
    (src / "b.json").write_text(json.dumps(_annotation([
        _shape("person", [[40, 30], [40, 40]], "circle"),  # centre, then a point on the circle: radius 10
        _shape("__ignore_me", [[0, 0], [5, 0], [5, 5]], "polygon"),
    ], image_path="gone.png", embed=photo)))  # the embedded image wins over a missing imagePath
    labels = tmp_path / "labels.txt"
    labels.write_text("__ignore__\n_background_\nroad\ncar\nperson\n__ignore_me\n")
    out = tmp_path / "dataset"
    assert main(["data", "convert", "labelme", str(src), "-o", str(out), "--labels", str(labels)]) == 0
    assert "converted 2 LabelMe annotations" in capsys.readouterr().out
    assert (out / "labels.txt").read_text().split() == ["_background_", "road", "car", "person", "__ignore_me"]
    assert (out / "images" / "a.jpg").read_bytes() == (src / "a.jpg").read_bytes()
    assert np.array_equal(np.asarray(Image.open(out / "images" / "b.png")), np.asarray(photo))

    a = np.asarray(Image.open(out / "labels" / "a.png"))
    expected = np.zeros((H, W), np.uint8)
    expected[5:26, 10:31] = 2  # polygon outline and fill: both ends included
    expected[30:51, 40:71] = 1
    expected[35:41, 45:51] = 2
    yy, xx = np.mgrid[:H, :W]
    below = (yy - 40) - (xx - 5) * 18 / 20  # > 0 below the triangle's long side
    inside, outside = (xx >= 6) & (yy <= 57) & (below >= 1), (xx <= 4) | (yy >= 59) | (below <= -1)
    assert (a[inside] == 3).all() and not (a[outside] == 3).any()  # only pixels on the edges are left open
    a_no_person = np.where(a == 3, 0, a)
    assert np.array_equal(a_no_person, expected)

    b = np.asarray(Image.open(out / "labels" / "b.png"))
    dist = np.hypot(xx - 40, yy - 30)
    assert (b[dist <= 9.5] == 3).all() and not (b[dist >= 10.5] == 3).any()  # within half a pixel of the circle
    assert (b[0:2, 3:5] == 4).all() and (b[6:, :] != 4).all()

    dataset = build_dataset(f"list:{out / 'train.txt'}")  # loads as a list dataset with the written classes
    assert dataset.class_names[1:3] == ["road", "car"] and len(dataset) == 2
    assert np.array_equal(dataset[0]["label"], a)


def test_unknown_labels_and_shapes_are_reported(tmp_path, capsys):
    src = tmp_path / "x.json"
    src.write_text(json.dumps(_annotation([_shape("cat", [[1, 1], [9, 9]], "ellipse")],
                                          embed=Image.new("RGB", (W, H)))))
    assert main(["data", "convert", "labelme", str(src), "-o", str(tmp_path / "o")]) == 2
    assert "shape_type 'ellipse' is not supported" in capsys.readouterr().err
    labels = tmp_path / "labels.txt"
    labels.write_text("_background_\ndog\n")
    assert main(["data", "convert", "labelme", str(src), "-o", str(tmp_path / "p"), "--labels", str(labels)]) == 2
    assert "label 'cat', not in the class list" in capsys.readouterr().err
