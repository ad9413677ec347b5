"""Where weights come from: PaddleSeg's published PP-LiteSeg weights (downloaded on demand into a cache, or
taken from a local file), the model shipped in the package, and the fallbacks used until one is shipped."""
from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from ..data.palettes import CAMVID_CLASSES, CAMVID_PALETTE
from ..errors import LitesegError
from ..meta import ModelMeta
from ..models.registry import build_model
from ..utils.io import atomic_path
from .loader import LoadedModel, LoadReport, load

log = logging.getLogger("liteseg")

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEFAULT_WEIGHTS = ASSETS / "pp_liteseg_t_camvid.safetensors"
_FIXTURE = Path("fixtures") / "pp_liteseg_t" / "weights.pdparams"


def _shared_candidates() -> list[Path]:
    found = []
    if os.environ.get("LITESEG_SHARED"):
        found.append(Path(os.environ["LITESEG_SHARED"]))
    found.append(Path.cwd().parent / "shared")
    found.append(Path(__file__).resolve().parents[3].parent / "shared")  # beside a source checkout
    return found


def default_model() -> str | LoadedModel:
    """The shipped default model; until one is shipped, the best weights at hand, clearly marked untrained.

    Order: ``liteseg/assets/pp_liteseg_t_camvid.safetensors``; the random-weight PaddleSeg fixture in
    ``../shared`` (or ``$LITESEG_SHARED``); a seeded randomly initialised PP-LiteSeg-T with CamVid classes.
    """
    if DEFAULT_WEIGHTS.is_file():
        return str(DEFAULT_WEIGHTS)
    for shared in _shared_candidates():
        if (shared / _FIXTURE).is_file():
            loaded = load(shared / _FIXTURE)
            loaded.meta.trained = False
            log.warning("warning: no trained default model is shipped yet; using the random-weight PaddleSeg "
                        "fixture %s: outputs show the pipeline, not real segmentation", shared / _FIXTURE)
            return loaded
    torch.manual_seed(0)
    model = build_model("pp_liteseg_t", num_classes=len(CAMVID_CLASSES)).eval()
    meta = ModelMeta(arch="pp_liteseg_t", num_classes=len(CAMVID_CLASSES), config=model.config,
                     class_names=list(CAMVID_CLASSES), palette=[list(c) for c in CAMVID_PALETTE],
                     source="random initialisation", trained=False)
    log.warning("warning: no trained default model is shipped yet and no reference weights were found; using a "
                "randomly initialised PP-LiteSeg-T: outputs show the pipeline, not real segmentation")
    return LoadedModel(model, meta, LoadReport())


_PADDLESEG = "https://paddleseg.bj.bcebos.com/dygraph"
_NC = "non-commercial: trained on {} (dataset terms); PaddleSeg code Apache-2.0"


@dataclass(frozen=True)
class Weights:
    """A published weight file and what is known about it (torchvision-style metadata)."""

    name: str
    arch: str
    dataset: str
    url: str
    num_classes: int
    metrics: dict[str, Any] = field(default_factory=dict)
    protocol: str = ""
    config: str = ""
    license: str = ""
    sha256: str | None = None  # PaddleSeg publishes none; recorded at first download

    @property
    def file_name(self) -> str:
        return f"{self.name}{Path(self.url).suffix}"


def _cityscapes(variant: str, scale: str, miou: float, flip: float, ms_flip: tuple[float, float] | None) -> Weights:
    stdc = {"t": "stdc1", "b": "stdc2"}[variant]
    config = f"pp_liteseg_{stdc}_cityscapes_1024x512_scale{scale}_160k"
    metrics = {"miou": miou, "miou_flip": flip}
    if ms_flip:
        metrics.update(miou_ms_flip_legacy=ms_flip[0], miou_ms_flip_current=ms_flip[1])
    res = {"0.5": "512x1024", "0.75": "768x1536", "1.0": "1024x2048"}[scale]
    return Weights(f"cityscapes_{variant}_{scale}", f"pp_liteseg_{variant}", "cityscapes",
                   f"{_PADDLESEG}/cityscapes/{config}/model.pdparams", 19, metrics,
                   f"Cityscapes val, test scale {scale} ({res}), PaddleSeg", config, _NC.format("Cityscapes"))


WEIGHTS: dict[str, Weights] = {w.name: w for w in [
    _cityscapes("t", "0.5", 73.10, 73.89, None),
    _cityscapes("t", "0.75", 76.03, 76.74, None),
    _cityscapes("t", "1.0", 77.04, 77.73, (77.46, 77.91)),
    _cityscapes("b", "0.5", 75.25, 75.65, None),
    _cityscapes("b", "0.75", 78.75, 79.23, None),
    _cityscapes("b", "1.0", 79.04, 79.52, (79.85, 80.08)),
    Weights("camvid_t", "pp_liteseg_t", "camvid", f"{_PADDLESEG}/camvid/pp_liteseg_stdc1_camvid_960x720_10k/"
            "model.pdparams", 11, {"miou": 73.30, "miou_flip": 73.89, "miou_ms_flip_legacy": 73.66},
            "CamVid test, 960x720, PaddleSeg", "pp_liteseg_stdc1_camvid_960x720_10k", _NC.format("CamVid")),
    Weights("camvid_b", "pp_liteseg_b", "camvid", f"{_PADDLESEG}/camvid/pp_liteseg_stdc2_camvid_960x720_10k/"
            "model.pdparams", 11, {"miou": 75.10, "miou_flip": 75.85, "miou_ms_flip_legacy": 75.48},
            "CamVid test, 960x720, PaddleSeg", "pp_liteseg_stdc2_camvid_960x720_10k", _NC.format("CamVid")),
    Weights("fastdeploy_b_cityscapes", "pp_liteseg_b", "cityscapes",
            "https://bj.bcebos.com/paddlehub/fastdeploy/PP_LiteSeg_B_STDC2_cityscapes_without_argmax_infer.tgz", 19,
            {"miou": 79.04, "miou_flip": 79.52, "miou_ms_flip_legacy": 79.85},
            "Cityscapes val, 1024x2048 (FastDeploy README)", "pp_liteseg_stdc2_cityscapes_1024x512_scale1.0_160k",
            _NC.format("Cityscapes")),
]}


# Weights shipped inside the package (no download): name -> file.
SHIPPED = {"camvid": DEFAULT_WEIGHTS}


def list_weights() -> list[str]:
    """Names accepted by ``create_model(..., weights=NAME)`` and ``liteseg.load(NAME)``."""
    return sorted(set(WEIGHTS) | {name for name, path in SHIPPED.items() if path.is_file()})


def cache_dir() -> Path:
    """``$LITESEG_HOME/weights`` (default ``~/.cache/liteseg/weights``)."""
    return Path(os.environ.get("LITESEG_HOME", Path.home() / ".cache" / "liteseg")) / "weights"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _verify(path: Path, expected: str | None) -> None:
    record = path.with_name(path.name + ".sha256")
    if expected is None and record.is_file():
        expected = record.read_text().split()[0]
    if expected is None:
        return
    actual = _sha256(path)
    if actual != expected.lower():
        raise LitesegError(f"{path}: sha256 {actual} does not match the expected {expected}; the file is corrupt "
                           f"or was replaced. Delete it to download it again")


def _download(url: str, target: Path, progress: bool) -> None:
    try:
        with urllib.request.urlopen(url, timeout=30) as response, atomic_path(target) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=target.name,
                                            disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    f.write(chunk)
                    bar.update(len(chunk))
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise LitesegError(f"cannot download {url} ({getattr(e, 'reason', e)}). Without network access, download "
                           f"it elsewhere and put it at {target} (or set LITESEG_HOME), or pass the local file "
                           f"path instead of the weight name") from None


def get_weights(name: str, *, url: str | None = None, sha256: str | None = None, progress: bool = True) -> Path:
    """Local path of published weights ``name``: from the cache, else downloaded (``url`` may be a local
    ``file://`` URL). A known ``sha256`` (given, or recorded beside the file at first download) is verified."""
    if name not in WEIGHTS:
        raise LitesegError(f"unknown weights {name!r}; available: {', '.join(list_weights())} (or a file path)")
    entry = WEIGHTS[name]
    target = cache_dir() / entry.file_name
    expected = sha256 or entry.sha256
    if not target.is_file():
        log.info("downloading %s from %s", name, url or entry.url)
        _download(url or entry.url, target, progress)
        if expected is None:  # nothing to check against yet: record the hash for later loads
            with atomic_path(target.with_name(target.name + ".sha256")) as tmp:
                tmp.write_text(f"{_sha256(target)}  {target.name}\n")
            return target
    _verify(target, expected)
    return target


def weights_meta(name: str) -> dict[str, Any]:
    """Metadata of published weights, merged into the loaded model's ``ModelMeta``."""
    w = WEIGHTS[name]
    return {"license": w.license, "metrics": {**w.metrics, "protocol": w.protocol}, "extra": {
        "weights": w.name, "url": w.url, "paddleseg_config": w.config, "dataset": w.dataset}}
