"""Reading images and label maps with errors that name the file and the problem."""
from __future__ import annotations

import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError, InputError
from ..images import open_image, read_image as decode_image


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(H, W) of an image file, read from its header only."""
    try:
        with Image.open(path) as img:
            w, h = img.size
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"{path}: not a readable image ({e})") from None
    return h, w


def read_image(path: str | os.PathLike) -> np.ndarray:
    """A dataset image as uint8 RGB ``[H, W, 3]``, decoded by liteseg's one decoder (:func:`liteseg.images.read_image`:
    16-bit scaled, grey repeated, palette coloured, alpha dropped, EXIF orientation applied); a DatasetError if not."""
    try:
        return decode_image(path)[0]
    except InputError as e:
        raise DatasetError(str(e)) from None


def _grey_channel(path: str | os.PathLike, rgb: np.ndarray) -> np.ndarray:
    """The class indices of an RGB mask whose channels are equal (R=G=B, as ``cv2.imwrite`` writes a 3-channel
    array); a colour mask is refused, since its colours are not class indices."""
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return np.ascontiguousarray(rgb[..., 0])
    raise DatasetError(f"{path}: label is a colour (RGB) image; labels must be single-channel class-index maps "
                       f"(mode L or P): map each colour to its class index and save it as an 8-bit PNG")


def label_file_info(path: str | os.PathLike) -> tuple[str, str]:
    """(format, mode) of a label file from its header, e.g. ("PNG", "L") or ("JPEG", "RGB")."""
    try:
        with Image.open(path) as img:
            return img.format or "", img.mode
    except (FileNotFoundError, UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        return "", ""


def read_label(path: str | os.PathLike) -> np.ndarray:
    """Decode a label map as uint8 ``[H, W]`` class indices, without any colour conversion.

    Palette ("P") PNGs give their palette indices, as in PaddleSeg. Grey RGB masks (R=G=B) give their one channel;
    colour labels are refused: convert them to index maps first.
    """
    try:
        with open_image(path) as img:
            if img.mode in ("RGB", "RGBA"):
                label = _grey_channel(path, np.asarray(img.convert("RGB")))
            elif img.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
                raise DatasetError(f"{path}: label is a {img.mode} image; labels must be single-channel class-index "
                                   f"maps (mode L or P)")
            else:
                label = np.asarray(img)
    except FileNotFoundError:
        raise DatasetError(f"{path}: no such file") from None
    except MemoryError:
        raise DatasetError(f"{path}: decoding this label needs more memory than there is; the file is corrupt or "
                           f"claims a huge size") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"{path}: not a readable label image ({e}); the file may be truncated or corrupt") from None
    if label.dtype != np.uint8:
        top = int(label.max()) if label.size else 0
        if label.min() < 0 or top > 255:
            raise DatasetError(f"{path}: label values up to {top} do not fit 0-255; store class indices in an 8-bit PNG")
        label = label.astype(np.uint8)
    return label
