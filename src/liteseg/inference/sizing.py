"""The size the network runs an image at: the model's own resolution, aspect kept, unless told otherwise.

Sources, strongest first: a fixed-shape model's input shape (stretched, or letterboxed where the model's record
says ``resize_mode: letterbox``); ``imgsz`` (``"WxH"`` or ``"native"``); a deploy config's ``Resize``
(``target_size``, stretched as PaddleSeg does); the model's ``input_size`` record (``meta.extra``, ``[H, W]``, e.g.
360x480 (HxW) for the shipped CamVid model), fitted with ``s = min(W_m / W, H_m / H)`` (the model's size swapped
for portrait images).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import LitesegError
from ..meta import ModelMeta

Imgsz = tuple[int, int] | str | None  # (W, H), "native" or None (the model's size)


@dataclass(frozen=True)
class Plan:
    """How one image size is run: the network input's (H, W), where the image sits in it (letterbox: top, left,
    h, w; None when it fills it) and what was done, in words (said once per run)."""

    net_hw: tuple[int, int]
    box: tuple[int, int, int, int] | None = None
    how: str = ""


def parse_imgsz(value: Any, option: str = "imgsz") -> Imgsz:
    """``"WxH"`` / ``(W, H)`` -> (W, H); ``"native"`` -> "native"; None -> None. LitesegError naming ``option``."""
    if value is None or value == "native":
        return value
    try:
        if isinstance(value, str):
            dims = tuple(int(v) for v in value.lower().replace(" ", "").split("x"))
        else:
            dims = tuple(int(v) for v in value)
        if len(dims) != 2 or min(dims) < 1:
            raise ValueError
    except (TypeError, ValueError):
        raise LitesegError(f"{option} {value!r}: expected WxH (e.g. 480x360) or native") from None
    return dims[0], dims[1]


def model_size(meta: ModelMeta) -> tuple[tuple[int, int], str] | None:
    """The model's own (W, H) and where it comes from, or None (a model that runs at any size as it is)."""
    if meta.fixed_hw:
        return (meta.fixed_hw[1], meta.fixed_hw[0]), "fixed"
    for t in meta.extra.get("transforms") or []:
        if isinstance(t, dict) and t.get("type") == "Resize" and t.get("target_size"):
            w, h = t["target_size"]
            return (int(w), int(h)), "resize"
    size = meta.extra.get("input_size")  # [H, W]
    if isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size):
        return (size[1], size[0]), "size"
    return None


def describe_size(meta: ModelMeta) -> str:
    """``"480x360"`` (fixed / record), or "any size" for a model without one."""
    found = model_size(meta)
    return f"{found[0][0]}x{found[0][1]}" if found else "any size"


def fit(hw: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of an (H, W) image scaled by ``min(W_m / W, H_m / H)``, ``size`` = (W_m, H_m) swapped for portrait."""
    (h, w), (wm, hm) = hw, size
    if (h > w) != (hm > wm) and h != w and wm != hm:
        wm, hm = hm, wm
    s = min(wm / w, hm / h)
    return max(1, round(h * s)), max(1, round(w * s))


def plan(hw: tuple[int, int], meta: ModelMeta, imgsz: Imgsz = None) -> Plan | None:
    """How to run an image of (H, W) ``hw``; None: at its own size."""
    h, w = hw
    found = model_size(meta)
    if found and found[1] == "fixed":
        (wf, hf), _ = found
        if (hf, wf) == (h, w):
            return None
        if meta.extra.get("resize_mode") == "letterbox":
            fh, fw = _fit_inside(hw, (wf, hf))
            top, left = (hf - fh) // 2, (wf - fw) // 2
            return Plan((hf, wf), (top, left, fh, fw), f"letterboxed {w}x{h} into {wf}x{hf}, the model's fixed input "
                                                      f"shape, as it was trained (aspect kept, padded)")
        return Plan((hf, wf), None, f"stretched {w}x{h} to {wf}x{hf}, the model's fixed input shape (aspect not "
                                    f"kept; labels resized back)")
    if imgsz == "native":
        return None
    if imgsz is not None:
        size, whose = imgsz, "--imgsz"
    elif found and found[1] == "resize":
        (wr, hr), _ = found
        if (hr, wr) == (h, w):
            return None
        return Plan((hr, wr), None, f"resized {w}x{h} to {wr}x{hr}, the deploy config's Resize; --imgsz to change")
    elif found:
        size, whose = found[0], "the model's size"
    else:
        return None
    target = fit(hw, size)
    if target == (h, w):
        return None
    return Plan(target, None, f"resized {w}x{h} to {target[1]}x{target[0]}, {whose} ({size[0]}x{size[1]}, aspect "
                              f"kept); labels at {w}x{h}" + ("; --imgsz to change" if whose != "--imgsz" else ""))


def _fit_inside(hw: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """(h, w) of the largest aspect-kept copy of an (H, W) image inside (W_m, H_m), never swapped."""
    (h, w), (wm, hm) = hw, size
    s = min(wm / w, hm / h)
    return min(hm, max(1, round(h * s))), min(wm, max(1, round(w * s)))
