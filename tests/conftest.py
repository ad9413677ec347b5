"""Shared test fixtures: the ../shared reference data (skipped when absent, an error under CI=true)."""
from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LITESEG_SHARED", REPO.parent / "shared"))

torch.set_num_threads(min(2, torch.get_num_threads()))


def _missing(reason: str, in_ci: str) -> None:
    """The one rule for absent prerequisites: skip locally, fail under CI=true (where a skip hides a regression)."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; {in_ci}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def _require(path: Path) -> Path:
    if not path.exists():
        _missing(f"{path} not available", "CI must run with ../shared beside the checkout")
    return path


def load_benchmark(name: str) -> Any:
    """``benchmarks/<name>.py`` imported as a module (the scripts are not a package), to call its functions."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def require_module(name: str) -> Any:
    """Import a third-party [dev] dependency (never one of liteseg's own modules: their ImportError is a bug)."""
    if name == "liteseg" or name.startswith("liteseg."):
        raise ValueError(f"require_module({name!r}): import liteseg's own modules directly")
    try:
        return importlib.import_module(name)
    except ImportError as e:
        _missing(f"{name} is not installed ({e})", "CI installs every [dev] dependency: pip install -e '.[dev]'")


def require_executable(name: str) -> str:
    """Path of a program the tests drive (chromium, chromedriver), under the same skip/fail rule."""
    path = shutil.which(name)
    if path is None:
        _missing(f"{name} not installed", "bash .ci/run (the README's test command) installs it")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _require(SHARED)


@pytest.fixture(scope="session")
def fixture_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "fixtures" / "pp_liteseg_t")


@pytest.fixture(scope="session")
def camvid_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "data" / "camvid")


@pytest.fixture(scope="session")
def cityscapes_dir(shared_dir: Path) -> Path:
    return _require(shared_dir / "data" / "cityscapes_sample")


@pytest.fixture(scope="session")
def fixture_inputs(fixture_dir: Path) -> dict[str, np.ndarray]:
    with np.load(fixture_dir / "inputs.npz") as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="session")
def fixture_logits(fixture_dir: Path) -> dict[str, np.ndarray]:
    with np.load(fixture_dir / "logits_256x512.npz") as a, np.load(fixture_dir / "logits_512x1024_stride8.npz") as b:
        return {"256x512": a["logits"], "512x1024_stride8": b["logits"]}


@pytest.fixture(scope="session")
def fixture_model(fixture_dir: Path):
    """The fixture weights loaded from .pdparams (eval mode); tests must not modify it."""
    import liteseg

    return liteseg.load(fixture_dir / "weights.pdparams").model


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fill every weight and BN statistic like the PaddleSeg fixture did (conv N(0, sqrt(2/fan_in)), BN gamma
    U(0.5, 1.5), beta N(0, 0.1), mean N(0, 0.2), var U(0.5, 2)) so outputs are far from uniform; in place."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.normal_(0, (2 / fan_in) ** 0.5, generator=g)
                if m.bias is not None:
                    m.bias.normal_(0, 0.05, generator=g)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
                m.running_mean.normal_(0, 0.2, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
    return model


def pytest_collection_modifyitems(config, items):
    """Run the OpenVINO tests last: once OpenVINO's runtime is loaded, the exit of a later child process
    (DataLoader workers, torchrun, a browser) can crash this interpreter, which would take the run with it."""
    items.sort(key=lambda item: "openvino" in item.nodeid)


# The Triton tests need nvidia-pytriton, which needs numpy < 2: .ci/run runs them in their own virtual environment.
collect_ignore = [] if importlib.util.find_spec("pytriton") else ["triton"]
