"""evaluate(): model kinds, protocols, data workers, class checks and reports on small synthetic data."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import liteseg
from liteseg.data import DatasetError, ListDataset
from liteseg.inference.backends import Backend, create_backend
from liteseg.evaluation.evaluator import evaluate
from liteseg.evaluation.report import format_table, write_report
from liteseg.errors import LitesegError
from liteseg.formats.native import save_native
from liteseg.meta import ModelMeta
from liteseg.evaluation.metrics import SegMetrics

from ..conftest import require_module

NUM_CLASSES = 4


class OracleNet(nn.Module):
    """Predicts the class written in the red channel (class * 60), pointwise, so TTA cannot change it."""

    def __init__(self) -> None:
        super().__init__()
        self.centers = nn.Parameter(((torch.arange(NUM_CLASSES) * 60 / 255 - 0.5) / 0.5).view(1, -1, 1, 1))
        self.config = {"num_classes": NUM_CLASSES}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -100 * (x[:, :1] - self.centers) ** 2


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory):
    """Five 24x32 images whose red channel encodes the class; labels are the classes with noise and ignores."""
    root = tmp_path_factory.mktemp("synthetic")
    rng = np.random.default_rng(1)
    truth, labels, lines = [], [], []
    for i in range(5):
        cls = rng.integers(0, NUM_CLASSES - 1, (24, 32)).astype(np.uint8)  # class 3 never appears
        image = np.stack([cls * 60, rng.integers(0, 255, (24, 32)), rng.integers(0, 255, (24, 32))], -1)
        label = np.where(rng.random((24, 32)) < 0.2, rng.integers(0, NUM_CLASSES - 1, (24, 32)), cls)
        label = np.where(rng.random((24, 32)) < 0.1, 255, label).astype(np.uint8)
        Image.fromarray(image.astype(np.uint8)).save(root / f"{i}.png")
        Image.fromarray(label).save(root / f"{i}_label.png")
        truth.append(cls)
        labels.append(label)
        lines.append(f"{i}.png {i}_label.png")
    (root / "list.txt").write_text("\n".join(lines) + "\n")
    expected = SegMetrics(NUM_CLASSES)
    for t, lab in zip(truth, labels):
        expected.update(t, lab)
    return root, expected


def _dataset(root):
    return ListDataset(root / "list.txt", num_classes=NUM_CLASSES)


def test_nn_module_exact_confusion_and_mode_restored(synthetic):
    root, expected = synthetic
    model = OracleNet().train()
    result = evaluate(model, _dataset(root), flip=True, scales=(1.0,), progress=False)
    assert model.training  # the trainer's mode is kept
    np.testing.assert_array_equal(result.confusion, expected.confusion)
    assert result.metrics == expected.compute()
    assert result.metrics["absent_classes"] == [3] and result.num_images == 5 and result.images_per_second > 0
    model.eval()
    evaluate(model, _dataset(root), progress=False)
    assert not model.training


def _iou_from_confusion(confusion: np.ndarray) -> np.ndarray:
    cm = np.asarray(confusion, np.float64)
    union = cm.sum(0) + cm.sum(1) - np.diag(cm)
    return np.divide(np.diag(cm), union, out=np.zeros(len(cm)), where=union > 0)


def test_exclude_absent_reaches_the_metrics(synthetic):
    """Class 3 is in neither labels nor predictions: mIoU over classes 0-2 with the flag, over all 4 without."""
    root, _ = synthetic
    kept = evaluate(OracleNet(), _dataset(root), progress=False)
    left_out = evaluate(OracleNet(), _dataset(root), exclude_absent=True, progress=False)
    iou = _iou_from_confusion(left_out.confusion)
    assert left_out.metrics["exclude_absent"] is True and left_out.metrics["absent_classes"] == [3]
    assert left_out.metrics["miou"] == pytest.approx(iou[:3].mean())
    assert kept.metrics["miou"] == pytest.approx(iou.mean()) and iou[:3].mean() > iou.mean() + 0.1


def test_every_model_kind_and_workers_agree(synthetic, tmp_path):
    root, _ = synthetic
    torch.manual_seed(0)
    model = liteseg.create_model("pp_liteseg_t", num_classes=NUM_CLASSES).eval()
    meta = ModelMeta(arch="pp_liteseg_t", num_classes=NUM_CLASSES, config=dict(model.config), trained=False)
    path = tmp_path / "m.safetensors"
    save_native(path, model.state_dict(), {"arch": "pp_liteseg_t", "config": dict(model.config),
                                           "meta": meta.to_dict()})
    ds = _dataset(root)
    reference = evaluate(model, ds, progress=False).confusion
    np.testing.assert_array_equal(evaluate(path, ds, progress=False).confusion, reference)
    np.testing.assert_array_equal(evaluate(liteseg.load(path), ds, progress=False).confusion, reference)
    backend = create_backend(path, "torch")
    np.testing.assert_array_equal(evaluate(backend, ds, num_workers=1, progress=False).confusion, reference)


class NumpyBackend(Backend):
    """A non-torch backend as evaluate sees it: numpy in, numpy out."""

    name = "numpy"

    def __init__(self, model: nn.Module, meta: ModelMeta) -> None:
        super().__init__(meta)
        self.model = model

    def __call__(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.model(torch.from_numpy(x)).numpy()


def test_numpy_backend_and_fixed_input_size(synthetic):
    root, expected = synthetic
    meta = ModelMeta(arch="oracle", num_classes=NUM_CLASSES, input_shape=[1, 3, 16, 16], source="fixed.onnx")
    backend = NumpyBackend(OracleNet(), meta)
    with pytest.raises(LitesegError, match=r"accepts only 16x16 .* --slide 16x16,STRIDE"):
        evaluate(backend, _dataset(root), progress=False)
    result = evaluate(backend, _dataset(root), slide=((16, 16), (12, 12)), flip=True, progress=False)
    np.testing.assert_array_equal(result.confusion, expected.confusion)


def test_class_count_mismatch_and_unlabelled_data(synthetic, tmp_path):
    root, _ = synthetic
    with pytest.raises(LitesegError, match="predicts 11 classes but .* has 4"):
        evaluate(liteseg.create_model("pp_liteseg_t", num_classes=11), _dataset(root), progress=False)
    (tmp_path / "list.txt").write_text(f"{root / '0.png'}\n")
    with pytest.raises(DatasetError, match="no label"):
        evaluate(OracleNet(), ListDataset(tmp_path / "list.txt", num_classes=NUM_CLASSES), progress=False)


def test_report_files_and_overwrite_protection(synthetic, tmp_path):
    root, expected = synthetic
    result = evaluate(OracleNet(), _dataset(root), progress=False)
    table = format_table(result)
    assert "mIoU" in table and "images/s" in table and "class_3" in table and "(absent)" in table
    paths = write_report(result, tmp_path / "out", model="oracle", dataset="list")
    data = json.loads(paths["metrics.json"].read_text())
    assert data["metrics"]["miou"] == pytest.approx(expected.compute()["miou"])
    assert data["confusion"] == expected.confusion.tolist() and data["num_images"] == 5
    assert "| class_0 |" in paths["report.md"].read_text()
    for name in ("confusion_matrix.png", "class_iou.png"):
        assert paths[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(LitesegError, match="already exists"):
        write_report(result, tmp_path / "out", model="oracle", dataset="list")
    write_report(result, tmp_path / "out", model="oracle", dataset="list", exist_ok=True)


SLIDE = ((16, 16), (12, 12))


@pytest.fixture(scope="session")
def exported(synthetic, tmp_path_factory):
    """One dynamic and one fixed-shape (16x16) export of a random T, shared by the backends, with the torch
    confusions they must reproduce (whole image + flip; 16x16 windows). Session-scoped: the OpenVINO tests run
    last (tests/conftest.py), after this module's other tests."""
    require_module("onnxruntime")
    from liteseg.export.onnx import export_onnx

    root, _ = synthetic
    folder = tmp_path_factory.mktemp("exported")
    torch.manual_seed(0)
    model = liteseg.create_model("pp_liteseg_t", num_classes=NUM_CLASSES).eval()
    export_onnx(model, folder / "dynamic.onnx", verify=False)
    export_onnx(model, folder / "fixed.onnx", input_shape="1,3,16,16", verify=False)
    ds = _dataset(root)
    return folder, {"flip": evaluate(model, ds, flip=True, progress=False).confusion,
                    "slide": evaluate(model, ds, slide=SLIDE, progress=False).confusion}


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_onnx_backend_matches_torch(backend, synthetic, exported):
    require_module(backend)
    root, _ = synthetic
    folder, reference = exported
    ds = _dataset(root)
    np.testing.assert_array_equal(evaluate(folder / "dynamic.onnx", ds, backend=backend, flip=True,
                                           progress=False).confusion, reference["flip"])
    np.testing.assert_array_equal(evaluate(folder / "fixed.onnx", ds, backend=backend, slide=SLIDE,
                                           progress=False).confusion, reference["slide"])


def test_worker_loader_leaves_no_sigchld_handler_behind(tmp_path):
    """DataLoader workers replace SIGCHLD; a leftover handler crashed later subprocess exits next to OpenVINO."""
    import signal

    from liteseg.data.loader_workers import restore_sigchld
    from torch.utils.data import DataLoader

    before = signal.getsignal(signal.SIGCHLD)
    with restore_sigchld():
        batches = list(DataLoader(list(range(4)), batch_size=2, num_workers=1))
    assert [b.tolist() for b in batches] == [[0, 1], [2, 3]]  # the worker really ran
    assert signal.getsignal(signal.SIGCHLD) is before


class _SizeSpy(OracleNet):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[-2:]))
        return super().forward(x)


def test_val_resizes_only_where_the_model_config_names_a_resize(synthetic):
    """The model's recorded size (what predict uses) does not change val; a deploy ``Resize`` does."""
    root, expected = synthetic
    sized = _SizeSpy()
    sized.meta = ModelMeta(arch="spy", num_classes=NUM_CLASSES, extra={"input_size": [12, 16]})
    result = evaluate(sized, _dataset(root), progress=False)
    assert set(sized.seen) == {(24, 32)} and result.metrics["miou"] == pytest.approx(expected.compute()["miou"])
    resized = _SizeSpy()
    resized.meta = ModelMeta(arch="spy", num_classes=NUM_CLASSES,
                             extra={"transforms": [{"type": "Resize", "target_size": [16, 12]}]})
    evaluate(resized, _dataset(root), progress=False)
    assert set(resized.seen) == {(12, 16)}
