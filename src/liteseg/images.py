"""The one image decoder (files, PIL images and arrays -> RGB uint8 ``[H, W, 3]``, with a note per conversion) and
the one normalisation of its pixels to network input (:func:`normalize`).

predict, serve, the datasets (training and evaluation) and INT8 calibration all decode through here, so every
path sees the same pixels. What is done, and why:

* **EXIF orientation** is applied (``ImageOps.exif_transpose``): a phone photo is segmented upright, as PaddleSeg
  sees it (``cv2.imread`` applies the orientation too). Label maps are never rotated (``data.io.read_label``).
* **16-bit** (``I;16``, 32-bit ``I`` clipped to 0-65535) is *scaled* to 8 bits, ``round(v / 257)``: the full range
  maps onto the full range (0 -> 0, 65535 -> 255). Pillow's ``convert("RGB")`` would saturate every value above
  255 to white. Float arrays in [0, 1] are scaled by 255; other integer arrays are clipped to 0-255.
* **grayscale** (``L``, 16-bit, ``F``) is repeated into three channels, which is what an RGB-trained model expects.
* **palette** (``P``) images give their colours (not their indices); with a transparent entry they go through RGBA.
* **alpha** (``RGBA``, ``LA``, palette transparency) is dropped, not composited: the colour under a transparent
  pixel is kept, as ``cv2.imread`` in colour mode does.
* **CMYK**, ``YCbCr``, ``LAB``, ``HSV`` and bilevel images use Pillow's conversion to RGB.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

if TYPE_CHECKING:
    import torch

Pixels = TypeVar("Pixels", np.ndarray, "torch.Tensor")


def normalize(pixels: Pixels, mean: Pixels, std: Pixels) -> Pixels:
    """``(pixels / 255 - mean) / std``: uint8 RGB -> network input, PaddleSeg's ``Normalize`` (``ModelMeta.mean`` and
    ``std`` apply to images scaled to [0, 1]). numpy arrays or torch tensors; ``mean``/``std`` shaped to broadcast.

    The only definition: inference (``preprocess.normalize``), training (``transforms.Normalize``) and exported
    graphs with baked-in preprocessing (``ExportWrapper``) all call it.
    """
    return (pixels / 255.0 - mean) / std


_SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I")
_VIA_PILLOW = {"P": "palette", "CMYK": "CMYK", "YCbCr": "YCbCr", "LAB": "LAB", "HSV": "HSV", "1": "bilevel"}


def to_rgb(array: np.ndarray, source: str = "array", channel_order: str = "rgb",
           hwc: bool = False) -> tuple[np.ndarray, list[str]]:
    """Any image array -> ``[H, W, 3]`` uint8 RGB, with a note for each conversion made (see the module doc).

    ``channel_order="bgr"`` swaps channels (OpenCV arrays). ``hwc``: the layout is known to be HWC (a decoded
    image), so a shape that looks channels-first (a grey+alpha image 1, 3 or 4 rows high) is not refused.
    """
    notes: list[str] = []
    a = np.asarray(array)
    if not hwc and a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[2] not in (1, 3, 4):
        raise InputError(f"{source}: array of shape {a.shape} looks channels-first; pass [H, W, C] (HWC) images")
    if a.size == 0 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 2, 3, 4)):
        raise InputError(f"{source}: expected an [H, W] or [H, W, 1|3|4] image, got shape {a.shape}")
    if a.dtype == np.uint16:
        a = (a.astype(np.float32) / 257.0).round().astype(np.uint8)
        notes.append("16-bit image scaled to 8-bit")
    elif np.issubdtype(a.dtype, np.floating):
        scale = 255.0 if a.max(initial=0.0) <= 1.0 else 1.0
        a = (a.astype(np.float32) * scale).round().clip(0, 255).astype(np.uint8)
        notes.append("float image converted to uint8")
    elif a.dtype == np.bool_:
        raise InputError(f"{source}: boolean arrays are masks, not images")
    elif a.dtype != np.uint8:
        a = a.clip(0, 255).astype(np.uint8)
        notes.append(f"{array.dtype} image clipped to uint8")
    if a.ndim == 2 or a.shape[2] == 1:
        a = np.repeat(a.reshape(a.shape[0], a.shape[1], 1), 3, axis=2)
        notes.append("grayscale image converted to 3 channels")
    elif a.shape[2] == 2:
        a = np.repeat(a[:, :, :1], 3, axis=2)
        notes.append("grayscale+alpha image: alpha dropped, converted to 3 channels")
    elif a.shape[2] == 4:
        a = a[:, :, :3]
        notes.append("alpha channel dropped")
    if channel_order == "bgr":
        a = a[:, :, ::-1]
    elif channel_order != "rgb":
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    return np.ascontiguousarray(a), notes


def pil_to_rgb(img: Image.Image, source: str = "PIL image") -> tuple[np.ndarray, list[str]]:
    """A PIL image -> RGB uint8 and notes: EXIF orientation applied, then the mode handled as described above."""
    notes: list[str] = []
    if img.getexif().get(0x0112, 1) != 1:  # 0x0112: the EXIF orientation tag
        img = ImageOps.exif_transpose(img)
        notes.append("rotated upright by its EXIF orientation")
    if img.mode in _SIXTEEN_BIT:
        arr = np.asarray(img)
        arr = arr.astype(np.uint16) if img.mode != "I" else arr.clip(0, 65535).astype(np.uint16)
    elif img.mode in _VIA_PILLOW:
        arr = np.asarray(img.convert("RGBA" if "transparency" in img.info else "RGB"))
        notes.append(f"{_VIA_PILLOW[img.mode]} image converted to RGB")
    else:
        arr = np.asarray(img)
    rgb, more = to_rgb(arr, source, hwc=True)
    return rgb, notes + more


def open_image(path: str | os.PathLike) -> Image.Image:
    """``Image.open`` on the file's bytes in memory: Pillow reads chunks by the lengths the file claims, and from a
    real file a claimed length of gigabytes allocates that much up front (a 86-byte PNG did); from memory a read
    gets at most what is there."""
    return Image.open(io.BytesIO(Path(path).read_bytes()))


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, list[str]]:
    """Decode an image file as RGB uint8 ``[H, W, 3]`` plus the conversions made; :class:`InputError` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: not a readable image ({e}); the file may be truncated or corrupt: skip it or "
                         f"re-export it as PNG/JPEG") from None
    return read_image_bytes(data, str(path))


def read_image_bytes(data: bytes, source: str) -> tuple[np.ndarray, list[str]]:
    """Decode an encoded image (the bytes of a file or an object named ``source`` in errors) as :func:`read_image`
    does; :class:`InputError` otherwise. Decoding from memory: see :func:`open_image`."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return pil_to_rgb(img, source)
    except MemoryError:
        raise InputError(f"{source}: decoding it needs more memory than there is; the file is corrupt or claims a "
                         f"huge size: skip it or re-export it") from None
    except Image.DecompressionBombError as e:
        raise InputError(f"{source}: {e}; downscale the image (or raise PIL.Image.MAX_IMAGE_PIXELS)") from None
    except UnidentifiedImageError:  # its message names the in-memory buffer, not the file
        raise InputError(f"{source}: not a readable image (Pillow recognises no image format in it); "
                         f"the file may be truncated, corrupt or not an image: skip it or re-export it as "
                         f"PNG/JPEG") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{source}: not a readable image ({e}); the file may be truncated or corrupt: skip it or "
                         f"re-export it as PNG/JPEG") from None
