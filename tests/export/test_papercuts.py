"""Export papercuts (issue 25): an argmax package converts to labels, each surface's overwrite spelling, and the
INT8 model's own mIoU in ``liteseg info``."""
from __future__ import annotations


import numpy as np
import pytest
import torch
from PIL import Image

import liteseg
from liteseg.cli.main import main
from liteseg.errors import FormatError, LitesegError
from liteseg.export.onnx import ExportError, export_onnx
from liteseg.formats.native import save_native
from liteseg.inference.backends import TorchBackend, create_backend
from liteseg.loading import LoadedModel
from liteseg.loading.loader import LoadReport
from liteseg.meta import ModelMeta
from liteseg.quantize import (QuantizeReport, compare_int8, list_images, list_labelled, quantize_onnx,
                              record_int8_metrics)

from ..conftest import _require, randomize_, require_module
from ..formats.pir_variants import assemble


def test_argmax_package_converts_to_a_labels_graph_unless_asked(shared_dir, fixture_inputs, tmp_path, capsys):
    require_module("onnxruntime")
    folder = assemble(_require(shared_dir / "fixtures" / "pp_liteseg_t_pir"), "inference_argmax", tmp_path / "pkg")
    out = tmp_path / "m.onnx"
    assert main(["convert", str(folder), "-o", str(out), "--input-shape", "1,3,64,128"]) == 0
    text = capsys.readouterr().out
    assert "output labels: kept from the source, whose output op is argmax" in text and "--output-kind" in text
    backend = create_backend(out, "onnxruntime")
    x = np.ascontiguousarray(fixture_inputs["256x512"][:, :, 96:160, 192:320])
    with torch.no_grad():
        expected = liteseg.load(folder).model(torch.from_numpy(x)).argmax(1).numpy()
    assert backend.output_kind == "labels" and (backend(x) == expected).mean() > 0.99



def test_convert_output_kind_chooses_the_graph_output(fixture_dir, tmp_path, monkeypatch):
    """The choice reaches the exporter (one real export above is enough suite time)."""
    from liteseg.export import onnx

    asked = []
    monkeypatch.setattr(onnx, "export_onnx", lambda loaded, out, **kw: asked.append(kw["output"]) or _Done())
    assert main(["convert", str(fixture_dir / "inference"), "-o", str(tmp_path / "p.onnx"), "--output-kind",
                 "probs"]) == 0
    assert main(["convert", str(fixture_dir / "inference"), "-o", str(tmp_path / "default.onnx")]) == 0
    assert asked == ["probs", "logits"]  # a logits source stays logits
    assert main(["convert", str(fixture_dir / "inference"), "-o", str(tmp_path / "m.safetensors"),
                 "--output-kind", "labels"]) == 2


class _Done:
    def summary(self) -> str:
        return "wrote"


def test_python_overwrite_errors_name_overwrite_true(fixture_model, tmp_path):
    out = tmp_path / "exists.onnx"
    out.write_bytes(b"precious")
    for call, error in [(lambda: export_onnx(fixture_model, out), ExportError),
                        (lambda: save_native(out, {}, {}), FormatError),
                        (lambda: quantize_onnx(tmp_path / "any.onnx", out, []), LitesegError)]:
        with pytest.raises(error, match="pass overwrite=True") as e:
            call()
        assert "--force" not in str(e.value)
    meta = ModelMeta(arch="pp_liteseg_t", num_classes=2)
    result = liteseg.Segmenter(TorchBackend(torch.nn.Conv2d(3, 2, 1), meta))(np.zeros((8, 8, 3), np.uint8))
    result.save(tmp_path, stem="x", kinds=("labels",))
    with pytest.raises(FileExistsError, match=r"x_labels\.png: already exists; .*pass overwrite=True"):
        result.save(tmp_path, stem="x", kinds=("labels",))
    assert out.read_bytes() == b"precious"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8")
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(root / f"{i}.png")
        Image.fromarray(rng.integers(0, 3, (32, 48), dtype=np.uint8)).save(root / f"{i}_label.png")
    (root / "val.txt").write_text("".join(f"{i}.png {i}_label.png\n" for i in range(2)))
    model = randomize_(liteseg.create_model("pp_liteseg_t", num_classes=3)).eval()
    meta = ModelMeta(arch="pp_liteseg_t", num_classes=3, metrics={"miou": 0.7777, "protocol": "FP32 on val"})
    export_onnx(LoadedModel(model, meta, LoadReport()), root / "fp32.onnx", verify=False)
    return root


def _info(path, capsys) -> str:
    assert main(["info", str(path)]) == 0
    return next(line for line in capsys.readouterr().out.splitlines() if line.startswith("metrics:"))


def test_int8_info_shows_its_own_measured_miou_or_says_it_was_not_measured(labelled, tmp_path, capsys):
    require_module("onnxruntime")
    fp32 = labelled / "fp32.onnx"
    assert "miou 0.7777" in _info(fp32, capsys)
    unmeasured = tmp_path / "unmeasured.onnx"
    quantize_onnx(fp32, unmeasured, list_images(labelled, 1))
    line = _info(unmeasured, capsys)
    assert line.startswith("metrics:     not measured for this INT8 model") and "FP32 source: miou 0.7777" in line
    pairs = list_labelled(labelled / "val.txt")
    report = compare_int8(fp32, unmeasured, QuantizeReport(unmeasured, 1), labelled=pairs)
    record_int8_metrics(report, "val.txt")  # what 'liteseg quantize --eval-list val.txt' does (tests/test_quantize.py)
    line = _info(unmeasured, capsys)
    assert line.startswith(f"metrics:     miou {report.int8_miou:.4f}") and "measured by liteseg quantize on 2" in line
    assert "0.7777" not in line
