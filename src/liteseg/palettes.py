"""Class names and colour palettes: Cityscapes (official colours), CamVid (SegNet colours), generated."""
from __future__ import annotations

import numpy as np

CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                      "motorcycle", "bicycle")
CITYSCAPES_PALETTE = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153),
                      (153, 153, 153), (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152),
                      (70, 130, 180), (220, 20, 60), (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100),
                      (0, 80, 100), (0, 0, 230), (119, 11, 32))
# trainId -> Cityscapes labelId (for benchmark submissions)
CITYSCAPES_TRAINID_TO_LABELID = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)

CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Sidewalk", "Tree", "SignSymbol", "Fence", "Car",
                  "Pedestrian", "Bicyclist")
CAMVID_PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
                  (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192))


def generate_palette(num_classes: int) -> np.ndarray:
    """Deterministic, well-separated colours for N classes (PASCAL VOC bit-interleaving scheme), uint8 [N, 3]."""
    palette = np.zeros((num_classes, 3), dtype=np.uint8)
    for i in range(num_classes):
        c, r, g, b = i + 1, 0, 0, 0  # +1: class 0 is not black
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def default_classes(num_classes: int) -> tuple[tuple[str, ...], np.ndarray]:
    """Best-guess class names and palette: Cityscapes for 19 classes, CamVid for 11, generated otherwise."""
    if num_classes == len(CITYSCAPES_CLASSES):
        return CITYSCAPES_CLASSES, np.array(CITYSCAPES_PALETTE, dtype=np.uint8)
    if num_classes == len(CAMVID_CLASSES):
        return CAMVID_CLASSES, np.array(CAMVID_PALETTE, dtype=np.uint8)
    return tuple(f"class_{i}" for i in range(num_classes)), generate_palette(num_classes)
