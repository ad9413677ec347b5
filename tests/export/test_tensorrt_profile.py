"""TensorRT shape profile: parsing, validation, storage in the ONNX metadata (CPU only; no engine is built)."""
from __future__ import annotations

import pytest

from liteseg.cli.main import main
from liteseg.export.metadata import ExportInfo, load_onnx, read_metadata
from liteseg.export.tensorrt import (TensorRTError, build_engine, input_dims, ort_trt_provider_options,
                                     parse_trt_profile)

from ..conftest import require_module

PROFILE = "1x3x256x256:1x3x512x1024:1x3x1024x2048"


def test_parse_profile():
    assert parse_trt_profile(PROFILE) == [[1, 3, 256, 256], [1, 3, 512, 1024], [1, 3, 1024, 2048]]
    assert parse_trt_profile("1,3,64,64:4,3,64,64:8,3,64,64", [-1, 3, 64, 64])[2] == [8, 3, 64, 64]


@pytest.mark.parametrize("text,message", [
    ("1x3x256x256:1x3x512x1024", "MIN:OPT:MAX"),
    ("1x3x256:1x3x512x1024:1x3x1024x2048", "N,3,H,W"),
    ("1x1x256x256:1x1x512x1024:1x1x1024x2048", "N,3,H,W"),
    ("1x3x0x256:1x3x512x1024:1x3x1024x2048", "positive"),
    ("1x3xAx256:1x3x512x1024:1x3x1024x2048", "N,3,H,W"),
    ("1x3x512x256:1x3x256x1024:1x3x1024x2048", "H must satisfy min <= opt <= max"),
    ("2x3x256x256:1x3x512x1024:1x3x1024x2048", "N must satisfy"),
])
def test_bad_profiles_are_rejected(text, message):
    with pytest.raises(TensorRTError, match=message):
        parse_trt_profile(text)


def test_profile_must_respect_fixed_dimensions():
    with pytest.raises(TensorRTError, match="fixes H = 512"):
        parse_trt_profile(PROFILE, [1, 3, 512, -1])
    with pytest.raises(TensorRTError, match="fixes N = 1"):
        parse_trt_profile("1x3x64x64:2x3x64x64:4x3x64x64", [1, 3, -1, -1])


def test_nhwc_input_and_ort_provider_options():
    info = ExportInfo(preprocess=True, input_layout="nhwc", trt_profile=parse_trt_profile(PROFILE))
    assert input_dims([1, 3, 256, 512], info) == [1, 256, 512, 3]
    assert ort_trt_provider_options(info) == {"trt_profile_min_shapes": "x:1x256x256x3",
                                              "trt_profile_opt_shapes": "x:1x512x1024x3",
                                              "trt_profile_max_shapes": "x:1x1024x2048x3"}


def test_export_cli_stores_the_profile(fixture_dir, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(fixture_dir / "weights.pdparams"), "-o", str(out), "--no-verify",
                 "--trt-profile", PROFILE]) == 0
    assert "TensorRT profile (min:opt:max): " + PROFILE in capsys.readouterr().out
    _, info = read_metadata(load_onnx(out), str(out))
    assert info.trt_profile == [[1, 3, 256, 256], [1, 3, 512, 1024], [1, 3, 1024, 2048]]


def test_export_cli_rejects_a_bad_profile_before_exporting(fixture_dir, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(fixture_dir / "weights.pdparams"), "-o", str(out), "--input-shape", "1,3,512,512",
                 "--trt-profile", PROFILE]) == 2
    assert "fixes H = 512" in capsys.readouterr().err and not out.exists()


def test_engine_needs_tensorrt_or_a_profile(fixture_dir, tmp_path):
    require_module("onnx")
    try:
        import tensorrt  # noqa: F401
        has_trt = True
    except ImportError:
        has_trt = False
    out = tmp_path / "m.onnx"
    assert main(["export", str(fixture_dir / "weights.pdparams"), "-o", str(out), "--no-verify"]) == 0
    with pytest.raises(TensorRTError, match="tensorrt package" if not has_trt else "no TensorRT profile"):
        build_engine(out, tmp_path / "m.engine")
