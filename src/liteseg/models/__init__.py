"""PP-LiteSeg architecture: STDC backbone, SPPM, UAFM family, FLD decoder, seg heads, registry."""
from .heads import PPLiteSegHead, SegHead
from .pp_liteseg import PPLiteSeg, pp_liteseg_b, pp_liteseg_t
from .registry import build_model, list_models, model_entrypoint, register_model
from .sppm import SPPM, AdaptiveAvgPool, adaptive_avg_pool2d_matmul
from .stdc import STDCNet, stdc1, stdc2
from .uafm import UAFM, UAFM_TYPES, UAFM_ChAtten, UAFM_ChAtten_S, UAFM_SpAtten, UAFM_SpAtten_S

__all__ = [
    "PPLiteSeg", "PPLiteSegHead", "SegHead", "SPPM", "AdaptiveAvgPool", "adaptive_avg_pool2d_matmul",
    "STDCNet", "stdc1", "stdc2", "UAFM", "UAFM_SpAtten", "UAFM_SpAtten_S", "UAFM_ChAtten", "UAFM_ChAtten_S",
    "UAFM_TYPES", "pp_liteseg_t", "pp_liteseg_b", "build_model", "list_models", "model_entrypoint",
    "register_model",
]
