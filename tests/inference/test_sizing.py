"""Model-aware input size: images run at the model's resolution (aspect kept) and come back at their own size."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from liteseg import create_model
from liteseg.errors import LitesegError
from liteseg.inference.preprocess import normalize
from liteseg.inference.segmenter import Segmenter
from liteseg.inference.sizing import plan
from liteseg.meta import ModelMeta

from ..conftest import randomize_


@pytest.fixture(scope="module")
def small():
    """A randomised 3-class model meant to run at 48x36 (W x H), run single-threaded (tiny inputs: faster, and no
    stall on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model = randomize_(create_model("pp_liteseg_t", num_classes=3)).eval()
    yield model, ModelMeta(arch="pp_liteseg_t", num_classes=3, extra={"input_size": [36, 48]})
    torch.set_num_threads(threads)


def _reference(model, meta, image, hw):
    """Independent reference: torch resize to ``hw``, the model, bilinear logits back, argmax."""
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    x = F.interpolate(x, size=hw, mode="bilinear", align_corners=False).round().clamp(0, 255)
    x = torch.from_numpy(normalize(x[0].permute(1, 2, 0).to(torch.uint8).numpy(), meta))
    with torch.no_grad():
        logits = F.interpolate(model(x), size=image.shape[:2], mode="bilinear", align_corners=False)
    return logits[0].argmax(0).numpy()


def test_upscaled_camvid_frame_agrees_with_its_native_prediction(camvid_dir, caplog):
    frame = np.asarray(Image.open(camvid_dir / "images" / "val" / "0016E5_07959.jpg").convert("RGB"))
    seg = Segmenter()  # the shipped default, like the CLI
    assert seg.target_hw() == (360, 480)
    native = seg(frame).labels
    up = np.asarray(Image.fromarray(frame).resize((480 * 8, 360 * 8), Image.BILINEAR))
    with caplog.at_level(logging.INFO, logger="liteseg"):
        labels = seg(up).labels
    assert labels.shape == (2880, 3840)
    agree = (labels == np.repeat(np.repeat(native, 8, 0), 8, 1)).mean()
    assert agree >= 0.99, agree
    said = [r.getMessage() for r in caplog.records if "resized" in r.getMessage()]
    assert said == ["resized 3840x2880 to 480x360, the model's size (480x360, aspect kept); labels at 3840x2880; "
                    "--imgsz to change"]


@pytest.mark.parametrize("hw, net", [((100, 70), (48, 34)),    # portrait: the model's size swapped
                                     ((75, 100), (36, 48)),    # 0.48x, not an integer scale
                                     ((20, 30), (32, 48))])    # smaller: scaled up to the model's size
def test_portrait_and_non_integer_scales_come_back_at_their_size(small, hw, net):
    model, meta = small
    image = np.random.RandomState(1).randint(0, 256, (*hw, 3), dtype=np.uint8)
    seg = Segmenter(model, meta=meta)
    assert seg.target_hw(hw) == net
    labels = seg(image).labels
    assert labels.shape == hw
    assert (labels == _reference(model, meta, image, net)).mean() >= 0.999


def test_imgsz_overrides_and_native(small):
    model, meta = small
    assert Segmenter(model, meta=meta, imgsz="native").target_hw((300, 400)) is None
    assert Segmenter(model, meta=meta, imgsz="96x72").target_hw((300, 400)) == (72, 96)
    assert Segmenter(model, meta=meta, imgsz=(96, 72)).target_hw((400, 300)) == (96, 72)
    with pytest.raises(LitesegError, match="--imgsz '96by72': expected WxH"):
        Segmenter(model, meta=meta, imgsz="96by72")
    fixed = ModelMeta(arch="pp_liteseg_t", num_classes=3, input_shape=[1, 3, 64, 64])
    with pytest.raises(LitesegError, match="--imgsz 96x72: this model takes only 64x64"):
        Segmenter(model, meta=fixed, imgsz="96x72")


def test_fixed_shape_stretch_is_said_once_and_letterbox_where_recorded(small, caplog):
    model, _ = small
    image = np.random.RandomState(2).randint(0, 256, (32, 48, 3), dtype=np.uint8)
    stretch = ModelMeta(arch="pp_liteseg_t", num_classes=3, input_shape=[1, 3, 64, 64])
    seg = Segmenter(model, meta=stretch)
    with caplog.at_level(logging.INFO, logger="liteseg"):
        assert seg(image).labels.shape == (32, 48)
        seg(image)
    notes = [r for r in caplog.records if "stretched" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.WARNING
    assert "stretched 48x32 to 64x64, the model's fixed input shape (aspect not kept" in notes[0].getMessage()

    boxed = ModelMeta(arch="pp_liteseg_t", num_classes=3, input_shape=[1, 3, 64, 64],
                      extra={"resize_mode": "letterbox"})
    found = plan((32, 48), boxed)
    assert found.net_hw == (64, 64) and found.box == (10, 0, 43, 64)
    labels = Segmenter(model, meta=boxed)(image).labels
    canvas = np.full((64, 64, 3), 128, np.uint8)  # mean 0.5 -> 0 after normalisation
    canvas[10:53] = np.asarray(Image.fromarray(image).resize((64, 43), Image.BILINEAR))  # reference resize
    x = torch.from_numpy(normalize(canvas, boxed))
    with torch.no_grad():
        logits = model(x)[:, :, 10:53]
    expected = F.interpolate(logits, size=(32, 48), mode="bilinear", align_corners=False)[0].argmax(0).numpy()
    assert labels.shape == (32, 48) and (labels == expected).mean() >= 0.97  # PIL vs torch resize of the image
