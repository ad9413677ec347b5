"""PP-LiteSeg: STDC encoder -> FLD decoder (SPPM + UAFMs) -> seg heads, with the registered T/B variants."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .heads import PPLiteSegHead, SegHead
from .layers import paddle_default_init
from .registry import register_model
from .stdc import BACKBONES, STDCNet


def _broadcast(values: Sequence[int], n: int, name: str) -> list[int]:
    values = list(values)
    if len(values) == 1:
        values = values * n
    if len(values) != n:
        raise ValueError(f"{name} needs 1 or {n} values (one per backbone index), got {values}")
    return values


class PPLiteSeg(nn.Module):
    """PaddleSeg's ``PPLiteSeg`` with identical constructor arguments and parameter names.

    ``forward`` returns, in eval mode, the full-resolution logits ``[N, C, H, W]`` of ``seg_heads.0``; in
    train mode the three logit maps (main, 1/16 aux, 1/32 aux), each resized to the input size.
    ``return_list=True`` returns a list in eval mode too, like PaddleSeg.
    """

    def __init__(self, num_classes: int, backbone: str | STDCNet = "STDC2",
                 backbone_indices: Sequence[int] = (2, 3, 4), arm_type: str = "UAFM_SpAtten",
                 cm_bin_sizes: Sequence[int] = (1, 2, 4), cm_out_ch: int = 128,
                 arm_out_chs: Sequence[int] = (64, 96, 128), seg_head_inter_chs: Sequence[int] = (64, 64, 64),
                 resize_mode: str = "bilinear", return_list: bool = False,
                 backbone_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        if isinstance(backbone, str):
            if backbone not in BACKBONES:
                raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
            backbone_name = backbone
            backbone = BACKBONES[backbone](**(backbone_kwargs or {}))
        else:
            backbone_name = type(backbone).__name__
        n = len(backbone_indices)
        if not 0 < n <= len(backbone.feat_channels):
            raise ValueError(f"backbone_indices {list(backbone_indices)} do not fit a backbone with "
                             f"{len(backbone.feat_channels)} outputs")
        arm_out_chs = _broadcast(arm_out_chs, n, "arm_out_chs")
        seg_head_inter_chs = _broadcast(seg_head_inter_chs, n, "seg_head_inter_chs")
        self.config = dict(num_classes=num_classes, backbone=backbone_name, backbone_indices=list(backbone_indices),
                           arm_type=arm_type, cm_bin_sizes=list(cm_bin_sizes), cm_out_ch=cm_out_ch,
                           arm_out_chs=arm_out_chs, seg_head_inter_chs=seg_head_inter_chs,
                           resize_mode=resize_mode, backbone_kwargs=dict(backbone_kwargs or {}))
        self.num_classes = num_classes
        self.backbone_indices = list(backbone_indices)
        self.return_list = return_list
        self.backbone = backbone
        backbone_out_chs = [backbone.feat_channels[i] for i in backbone_indices]
        self.ppseg_head = PPLiteSegHead(backbone_out_chs, arm_out_chs, list(cm_bin_sizes), cm_out_ch, arm_type,
                                        resize_mode)
        self.seg_heads = nn.ModuleList(
            [SegHead(c, m, num_classes) for c, m in zip(arm_out_chs, seg_head_inter_chs)]
        )
        self.init_weights()

    def init_weights(self) -> None:
        """PaddleSeg's initialisation: STDC N(0, 0.001); decoder and heads Paddle's default conv init."""
        if isinstance(self.backbone, STDCNet):
            self.backbone.init_weights()
        paddle_default_init(self.ppseg_head)
        paddle_default_init(self.seg_heads)

    def forward_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Decoder outputs ``[o_8, o_16, o_32]`` (stride 8 first)."""
        feats = self.backbone(x)
        return self.ppseg_head([feats[i] for i in self.backbone_indices])

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        size = x.shape[2:]
        feats = self.forward_features(x)
        if self.training:
            return [F.interpolate(head(f), size, mode="bilinear", align_corners=False)
                    for head, f in zip(self.seg_heads, feats)]
        logits = F.interpolate(self.seg_heads[0](feats[0]), size, mode="bilinear", align_corners=False)
        return [logits] if self.return_list else logits


@register_model
def pp_liteseg_t(num_classes: int = 19, **kwargs: Any) -> PPLiteSeg:
    """PP-LiteSeg-T: STDC1, arm_out_chs (32, 64, 128), seg_head_inter_chs (32, 64, 64)."""
    args = dict(backbone="STDC1", arm_out_chs=(32, 64, 128), seg_head_inter_chs=(32, 64, 64))
    args.update(kwargs)
    return PPLiteSeg(num_classes, **args)


@register_model
def pp_liteseg_b(num_classes: int = 19, **kwargs: Any) -> PPLiteSeg:
    """PP-LiteSeg-B: STDC2, arm_out_chs (64, 96, 128), seg_head_inter_chs (64, 64, 64)."""
    args = dict(backbone="STDC2", arm_out_chs=(64, 96, 128), seg_head_inter_chs=(64, 64, 64))
    args.update(kwargs)
    return PPLiteSeg(num_classes, **args)
