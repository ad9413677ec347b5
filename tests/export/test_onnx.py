"""ONNX export: dynamic and fixed shapes, opsets, output modes, metadata, verification."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from liteseg.inference.backends import create_backend
from liteseg.errors import LitesegError
from liteseg.export.onnx import ExportError, default_opset, export_onnx, ort_session
from liteseg.utils.shapes import parse_shape

from ..conftest import load_benchmark, require_module

onnx = require_module("onnx")

SMALL = [(2, 3, 40, 56)]


@pytest.fixture(scope="module")
def dynamic_onnx(tmp_path_factory, fixture_model):
    path = tmp_path_factory.mktemp("onnx") / "dynamic.onnx"
    export_onnx(fixture_model, path, verify=False)
    return path


@pytest.fixture(scope="module")
def fixed_onnx(tmp_path_factory, fixture_model):
    path = tmp_path_factory.mktemp("onnx") / "fixed.onnx"
    report = export_onnx(fixture_model, path, input_shape="1,3,256,512", opset=11)
    assert report.verification.passed and report.info.sppm_pool == "native"
    return path


def _torch(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("shape", [(1, 3, 512, 512), (1, 3, 360, 480), (2, 3, 250, 333), (1, 3, 375, 500),
                                   (1, 3, 17, 23)])
def test_dynamic_export_matches_pytorch(dynamic_onnx, fixture_model, shape):
    x = np.random.default_rng(sum(shape)).standard_normal(shape).astype(np.float32)
    out = ort_session(dynamic_onnx).run(None, {"x": x})[0]
    assert out.shape == (shape[0], 19, *shape[2:])
    assert np.abs(out - _torch(fixture_model, x)).max() <= 1e-4


def test_dynamic_graph_has_runtime_resizes_and_matmul_pooling(dynamic_onnx):
    model = onnx.load(dynamic_onnx)
    resizes = [n for n in model.graph.node if n.op_type == "Resize"]
    assert len(resizes) == 7
    for node in resizes:
        attrs = {a.name: a.s for a in node.attribute}
        assert attrs["coordinate_transformation_mode"] == b"half_pixel"
        assert attrs["mode"] == b"linear"
    ops = {n.op_type for n in model.graph.node}
    assert "MatMul" in ops and "GlobalAveragePool" not in ops
    # the bin bounds are divisions of non-negative sizes: one Div each, no floor-division sign fix-up
    assert not ops & {"Mod", "Xor", "Not", "Where"}
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["batch", "", "height", "width"]
    assert model.opset_import[0].version == default_opset()


def test_fixed_export_matches_the_original(fixed_onnx, fixture_inputs, fixture_logits):
    model = onnx.load(fixed_onnx)
    assert model.opset_import[0].version == 11
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 256, 512]
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("GlobalAveragePool") == 1 and "MatMul" not in ops
    out = ort_session(fixed_onnx).run(None, {"x": fixture_inputs["256x512"]})[0]
    assert np.abs(out - fixture_logits["256x512"]).max() <= 1e-4


def test_fixed_model_refuses_other_sizes_clearly(fixed_onnx):
    backend = create_backend(fixed_onnx, "onnxruntime")
    assert backend.fixed_hw == (256, 512)
    with pytest.raises(LitesegError, match=r"exported for input 1x3x256x512 and cannot run 1x3x512x512"):
        backend(np.zeros((1, 3, 512, 512), np.float32))
    with pytest.raises(LitesegError, match="batch 1"):
        backend(np.zeros((2, 3, 256, 512), np.float32))


def test_fixed_shape_that_does_not_divide_falls_back_to_exact_pooling(tmp_path, fixture_model):
    report = export_onnx(fixture_model, tmp_path / "m.onnx", input_shape="1,3,40,200")
    assert report.info.sppm_pool == "mixed" and report.verification.passed
    assert any("exact matrix form" in n for n in report.notes)


def test_opset11_dynamic_export(tmp_path, fixture_model):
    report = export_onnx(fixture_model, tmp_path / "m.onnx", opset=11, verify_shapes_=[(2, 3, 250, 333)])
    assert report.verification.passed and report.verification.max_abs_diff <= 1e-4


@pytest.mark.parametrize("options, out_shape, dtype", [
    ({"output": "probs"}, (2, 19, 40, 56), np.float32),
    ({"output": "labels"}, (2, 40, 56), np.int64),
    ({"output": "labels", "labels_dtype": "uint8"}, (2, 40, 56), np.uint8),
    ({"output_size": "stride"}, (2, 19, 5, 7), np.float32),
    ({"output": "labels", "output_size": "stride"}, (2, 5, 7), np.int64),
    ({"include_preprocess": True}, (2, 19, 40, 56), np.float32),
    ({"include_preprocess": True, "input_layout": "nhwc", "output": "labels"}, (2, 40, 56), np.int64),
])
def test_output_modes(tmp_path, fixture_model, options, out_shape, dtype):
    path = tmp_path / "m.onnx"
    report = export_onnx(fixture_model, path, verify_shapes_=SMALL, **options)
    assert report.verification.passed
    session = ort_session(path)
    inp = session.get_inputs()[0]
    if options.get("include_preprocess"):
        shape = (2, 40, 56, 3) if options.get("input_layout") == "nhwc" else (2, 3, 40, 56)
        x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        assert inp.type == "tensor(uint8)"
    else:
        x = np.random.default_rng(0).standard_normal((2, 3, 40, 56)).astype(np.float32)
    out = session.run(None, {"x": x})[0]
    assert out.shape == out_shape and out.dtype == dtype
    assert session.get_outputs()[0].name == options.get("output", "logits")


def test_stride_output_is_the_logits_before_the_final_resize(tmp_path, fixture_model):
    path = tmp_path / "m.onnx"
    export_onnx(fixture_model, path, output_size="stride", verify=False)
    x = np.random.default_rng(0).standard_normal((1, 3, 250, 333)).astype(np.float32)
    out = ort_session(path).run(None, {"x": x})[0]
    assert out.shape == (1, 19, 32, 42)  # ceil(250/8), ceil(333/8)
    with torch.no_grad():
        ref = fixture_model.seg_heads[0](fixture_model.forward_features(torch.from_numpy(x))[0]).numpy()
    assert np.abs(out - ref).max() <= 1e-4


def test_fp16_and_simplify(tmp_path, fixture_model):
    require_module("onnxslim")
    report = export_onnx(fixture_model, tmp_path / "m.onnx", fp16=True, simplify=True, verify_shapes_=SMALL)
    assert report.info.fp16 and report.verification.passed
    model = onnx.load(tmp_path / "m.onnx")
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)


def test_metadata_travels_with_the_file(dynamic_onnx):
    backend = create_backend(dynamic_onnx, "onnxruntime")
    assert backend.meta.num_classes == 19 and backend.meta.mean == [0.5, 0.5, 0.5]
    assert backend.meta.input_shape == [-1, 3, -1, -1] and backend.fixed_hw is None
    assert backend.output_kind == "logits" and backend.info.sppm_pool == "matmul"


def test_existing_file_and_bad_arguments_are_refused(tmp_path, fixture_model):
    path = tmp_path / "m.onnx"
    path.write_bytes(b"keep")
    with pytest.raises(ExportError, match="already exists"):
        export_onnx(fixture_model, path)
    assert path.read_bytes() == b"keep"
    with pytest.raises(ExportError, match="N,3,H,W"):
        export_onnx(fixture_model, tmp_path / "n.onnx", input_shape="1,512,512")
    for bad in ("1,512,512", "1,4,64,64", "1,3,-1,64", "1,3,0,64"):  # one rule: 4 dims, RGB, fixed sizes > 0
        with pytest.raises(LitesegError, match="N,3,H,W"):
            parse_shape(bad)
    assert parse_shape("1x3x-1x64", dynamic=True) == [1, 3, -1, 64] and parse_shape((2, 3, 8, 8)) == [2, 3, 8, 8]
    with pytest.raises(LitesegError, match="unknown output"):
        export_onnx(fixture_model, tmp_path / "n.onnx", output="scores")
    with pytest.raises(ExportError, match="opset 9"):
        export_onnx(fixture_model, tmp_path / "n.onnx", opset=9)


def test_onnx_ab_benchmark_alternates_graphs(dynamic_onnx, fixed_onnx, capsys):
    module = load_benchmark("onnx_ab")
    assert module.main([str(fixed_onnx), str(dynamic_onnx), "--shape", "1,3,256,512", "--calls", "3",
                        "--threads", "1"]) == 0
    rows = capsys.readouterr().out.splitlines()[2:]
    assert len(rows) == 2 and rows[0].split()[3] == "1.000x"
    nodes, diff = int(rows[1].split()[1]), float(rows[1].split()[-1])
    assert nodes > int(rows[0].split()[1]) and diff <= 1e-4  # the dynamic graph: more nodes, same logits
