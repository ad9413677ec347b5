"""Shared test fixtures: the ../shared reference data (skipped when absent, an error under CI=true)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LITESEG_SHARED", REPO.parent / "shared"))

torch.set_num_threads(min(2, torch.get_num_threads()))


def _require(path: Path) -> Path:
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{path} is missing; CI must run with ../shared beside the checkout")
        pytest.skip(f"{path} not available")
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
