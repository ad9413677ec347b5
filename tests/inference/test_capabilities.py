"""Every backend x ``--device`` x ``--half`` through predict, val and serve: it runs, or gets one clear error.

The expected table below is written out independently of what the backend classes declare; runs are checked
against the model's own argmax. Run here: torch with --half, torch-opt, onnxruntime, openvino (one small ONNX
export for the session; plain torch runs through predict, val and serve in their own tests). torch-compile compiles
for minutes (tests/inference/test_compiled_backend.py runs it) and the edge backends need their own exports
(tests/export/test_edge.py): their refusals are tested here, their runs there.
"""
from __future__ import annotations

import io
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import liteseg
from liteseg.cli import options
from liteseg.cli.main import main
from liteseg.formats.native import save_native
from liteseg.inference import capabilities

from ..conftest import randomize_, require_module

# backend -> (device types it runs on, --half)
EXPECTED = {"torch": ({"cpu", "cuda", "mps"}, True), "torch-opt": ({"cpu", "cuda"}, True),
            "torch-compile": ({"cpu", "cuda"}, True), "onnxruntime": ({"cpu"}, False),
            "openvino": ({"cpu"}, False), "executorch": ({"cpu"}, False), "litert": ({"cpu"}, False),
            "ncnn": ({"cpu"}, False)}
DEVICES = (None, "cpu", "cuda", "mps")
H, W = 32, 64


def _present(device: str | None) -> bool:
    if device == "cuda":
        return torch.cuda.is_available()
    if device == "mps":
        return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return True


def _runs(backend: str, device: str | None, half: bool) -> bool:
    devices, has_half = EXPECTED[backend]
    return (device or "cpu") in devices and _present(device) and (has_half or not half)


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> dict[str, Path]:
    """A randomised 4-class PP-LiteSeg-T (weights and a dynamic ONNX export), one image and its label list."""
    require_module("onnxruntime")
    from liteseg.export.onnx import export_onnx

    root = tmp_path_factory.mktemp("capabilities")
    model = randomize_(liteseg.create_model("pp_liteseg_t", num_classes=4), seed=3).eval()
    save_native(root / "m.safetensors", model.state_dict(), {"arch": "pp_liteseg_t", "config": model.config,
                                                              "meta": {}})
    export_onnx(model, root / "m.onnx", verify=False)
    image = np.random.RandomState(0).randint(0, 256, (H, W, 3), dtype=np.uint8)
    (root / "img").mkdir()
    Image.fromarray(image).save(root / "img" / "a.png")
    x = torch.from_numpy((image.astype(np.float32) / 255 - 0.5) / 0.5).permute(2, 0, 1)[None]
    with torch.no_grad():
        argmax = model(x).argmax(1)[0].numpy().astype(np.uint8)
    Image.fromarray(argmax).save(root / "label.png")
    (root / "list.txt").write_text(f"{root / 'img' / 'a.png'} {root / 'label.png'}\n")
    return {"weights": root / "m.safetensors", "onnx": root / "m.onnx", "image": root / "img" / "a.png",
            "list": root / "list.txt", "argmax": root / "label.png", "root": root}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _argv(command: str, backend: str, device: str | None, half: bool, files: dict[str, Path], out: Path
          ) -> list[str]:
    model = files["onnx"] if backend in ("onnxruntime", "openvino") else files["weights"]
    tail = ["--backend", backend, "--model", str(model)] + (["--device", device] if device else [])
    if command == "predict":
        return ["predict", str(files["image"]), "-o", str(out), "--save", "labels", *tail] + ["--half"] * half
    if command == "val":
        return ["val", "--data", f"list:{files['list']}", "-o", str(out), "--num-workers", "0", *tail]
    return ["serve", "--port", str(_free_port()), *tail]


def test_what_each_backend_declares_is_the_expected_table():
    for backend, (devices, half) in EXPECTED.items():
        try:
            declared = capabilities.capabilities(backend)
        except liteseg.LitesegError as e:  # optional package missing: the refusal names the extra
            assert "pip install" in str(e)
            continue
        assert (set(declared.devices), declared.half) == (devices, half), backend
    assert capabilities.capabilities("onnxruntime").image_input and not capabilities.capabilities("torch").image_input
    assert capabilities.capabilities("ncnn").batching is False


def test_refused_combinations_are_one_clear_error_before_any_model_loads(files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    refused = 0
    for backend in EXPECTED:
        for device in DEVICES:
            for half in (False, True):
                if _runs(backend, device, half):
                    continue
                for command in ("predict", "val", "serve"):
                    if half and command != "predict":  # --half is a predict option
                        continue
                    argv = _argv(command, backend, device, half, files, tmp_path / "out")
                    argv[argv.index("--model") + 1] = str(files["list"])  # not a model: refused before loading
                    assert main(argv) == 2, argv
                    err = capsys.readouterr().err
                    lines = [line for line in err.splitlines() if line.strip()]
                    assert len(lines) == 1 and lines[0].startswith(options.ERROR_PREFIX), (argv, err)
                    assert "--device" in err or "--half" in err or "pip install" in err, (argv, err)
                    refused += 1
    assert refused >= 40 and list(tmp_path.iterdir()) == []


def test_python_api_gets_the_same_errors(files):
    with pytest.raises(liteseg.LitesegError, match="--half: backend onnxruntime has no half-precision mode"):
        liteseg.Segmenter(str(files["onnx"]), half=True)
    with pytest.raises(liteseg.LitesegError, match="--device mps: backend onnxruntime runs on cpu only"):
        liteseg.Segmenter(str(files["onnx"]), device="mps")


def _agreement(labels: np.ndarray, files: dict[str, Path]) -> float:
    return float((labels == np.asarray(Image.open(files["argmax"]))).mean())


@pytest.mark.parametrize("backend, device, half", [  # torch without --half: predict's own tests
    ("torch", "cpu", True), ("torch-opt", "cpu", False), ("torch-opt", "cpu", True), ("onnxruntime", "cpu", False),
    ("openvino", "cpu", False)])
def test_predict_runs_every_allowed_combination(backend, device, half, files, tmp_path):
    require_module(backend if backend in ("onnxruntime", "openvino") else "torch")
    assert main(_argv("predict", backend, device, half, files, tmp_path / "out")) == 0
    labels = np.asarray(Image.open(tmp_path / "out" / "labels" / "a.png"))
    assert _agreement(labels, files) >= (0.98 if half else 0.999)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])  # torch: tests/cli/test_val.py, tests/serve
def test_val_and_serve_run_on_the_cpu(backend, files, tmp_path, monkeypatch):
    require_module("fastapi")
    require_module(backend)
    assert main(_argv("val", backend, "cpu", False, files, tmp_path / "val")) == 0
    assert (tmp_path / "val" / "metrics.json").exists()
    from fastapi.testclient import TestClient

    answers = []

    def run_app(app, **_):  # instead of uvicorn: one request through the app serve built
        with TestClient(app, base_url="http://127.0.0.1") as client:
            answers.append(client.post("/v1/segment?format=labels", content=files["image"].read_bytes(),
                                       headers={"Content-Type": "image/png"}))

    monkeypatch.setattr("uvicorn.run", run_app)
    assert main(_argv("serve", backend, "cpu", False, files, tmp_path)) == 0
    assert answers[0].status_code == 200
    assert _agreement(np.asarray(Image.open(io.BytesIO(answers[0].content))), files) >= 0.999


def test_val_picks_cuda_by_capability(files, tmp_path, monkeypatch, capsys):
    """With a CUDA device (faked), val runs every backend that declares CUDA on it, the others on the CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    chosen = {}

    def create_backend(model, backend, **options):
        chosen[backend] = options.get("device")
        raise liteseg.LitesegError("stop here")

    monkeypatch.setattr("liteseg.inference.backends.create_backend", create_backend)
    for backend in ("torch", "torch-opt", "onnxruntime"):
        assert main(_argv("val", backend, None, False, files, tmp_path / backend)) == 2
    assert chosen == {"torch": "cuda", "torch-opt": "cuda", "onnxruntime": "cpu"}
    assert capsys.readouterr().err.count("stop here") == 3
