"""Every registered model runs through BaseModelTester; registry behaviour."""
from __future__ import annotations

import pytest

import liteseg
from liteseg.models import register_model

from .base import BaseModelTester


def test_list_models_has_t_and_b():
    assert {"pp_liteseg_t", "pp_liteseg_b"} <= set(liteseg.list_models())
    assert liteseg.list_models("*_t") == ["pp_liteseg_t"]


def test_unknown_model_lists_known_ones():
    with pytest.raises(ValueError, match="pp_liteseg_t"):
        liteseg.create_model("pp_liteseg_x")


def test_double_registration_is_refused():
    def pp_liteseg_t():
        return None

    with pytest.raises(ValueError, match="already registered"):
        register_model(pp_liteseg_t)


for _name in liteseg.list_models():
    _cls = type(f"Test_{_name}", (BaseModelTester,), {"model_name": _name})
    globals()[_cls.__name__] = _cls
