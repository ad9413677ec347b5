"""The Triton tests, run by ``.ci/run`` in the numpy<2 virtual environment that has nvidia-pytriton (the main suite
does not collect this folder: tests/conftest.py's ``collect_ignore``). One server per module: start-up dominates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import liteseg
from liteseg.formats.native import save_native

from ..conftest import randomize_, require_module

require_module("pytriton")
require_module("tritonclient.grpc")

NUM_CLASSES = 5


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    model = randomize_(liteseg.create_model("pp_liteseg_t", num_classes=NUM_CLASSES), seed=3).eval()
    path = tmp_path_factory.mktemp("triton_model") / "tiny.safetensors"
    save_native(path, model.state_dict(), {"arch": "pp_liteseg_t", "config": model.config, "meta": {}})
    return path


def reference_labels(model_file: Path, image: np.ndarray) -> np.ndarray:
    """The model's own argmax on the normalised image (independent of the serving code)."""
    loaded = liteseg.load(model_file)
    mean, std = (torch.tensor(v)[:, None, None] for v in (loaded.meta.mean, loaded.meta.std))
    x = (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - mean) / std
    with torch.no_grad():
        out = loaded.model(x[None])
    return (out[0] if isinstance(out, (list, tuple)) else out)[0].argmax(0).numpy().astype(np.uint8)
