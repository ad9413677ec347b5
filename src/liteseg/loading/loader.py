"""``liteseg.load``: any PP-LiteSeg artefact -> a ready PyTorch model plus its metadata.

Accepted: PaddleSeg ``.pdparams`` (2.5 - 2.8 layouts), inference-model folders, ``.pdmodel`` and Paddle 3 ``.json``
paths and ``.tar``/``.tgz`` archives (FastDeploy, PaddleX), liteseg ``.safetensors``, PyTorch ``.pt``/``.pth``
state dicts.
"""
from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from ..errors import ArchitectureError, FormatError, LitesegError
from ..formats import inference_model as im_format
from ..formats.native import load_native
from ..formats.pickle_scan import scan_torch_file
from ..formats.pdparams import infer_config, normalize_paddle_keys, read_pdparams
from ..meta import ModelMeta
from ..models.layers import paddle_conv_init
from ..models.registry import build_model
from .config_check import check_config
from . import zoo

_AUX_HEAD = re.compile(r"^seg_heads\.[1-9]\d*\.")
_CLASSIFIER = re.compile(r"^seg_heads\.\d+\.conv_out\.weight$")


@dataclass
class LoadReport:
    """What loading did: tensors loaded, kept at their defaults, re-initialised or ignored."""

    loaded: int = 0
    kept_default: list[str] = field(default_factory=list)
    reinitialized: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{self.loaded} tensors loaded"]
        aux = [k for k in self.kept_default if _AUX_HEAD.match(k)]
        if aux:
            heads = ", ".join(sorted({".".join(k.split(".")[:2]) for k in aux}))
            parts.append(f"{len(aux)} kept at init ({heads}: the auxiliary training heads, which inference models "
                         f"do not contain and inference does not use)")
        other = [k for k in self.kept_default if not _AUX_HEAD.match(k)]
        if other:
            parts.append(f"{len(other)} kept at init ({_brief(other)})")
        if self.reinitialized:
            parts.append(f"{len(self.reinitialized)} re-initialised ({_brief(self.reinitialized)})")
        if self.ignored:
            parts.append(f"{len(self.ignored)} ignored ({_brief(self.ignored)})")
        return "; ".join([", ".join(parts), *self.notes])


def _brief(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")


@dataclass
class LoadedModel:
    """A model in eval mode with its metadata; unpacks as ``model, meta = liteseg.load(...)``."""

    model: nn.Module
    meta: ModelMeta
    report: LoadReport
    load_seconds: float = 0.0

    def __iter__(self) -> Iterator[Any]:
        return iter((self.model, self.meta))


def apply_state_dict(model: nn.Module, state: Mapping[str, Any], *, source: str = "",
                     strict: bool = True, reinit_head: bool = False,
                     optional: tuple[str, ...] = ()) -> LoadReport:
    """Copy ``state`` (liteseg names, numpy or torch values) into ``model`` with checks and a report.

    Missing ``_scale`` stays 1.0 and missing ``num_batches_tracked`` stays 0. Keys matching an ``optional``
    regex (e.g. aux heads of an inference model) keep their init. Other missing or unexpected keys fail when
    ``strict``. Shape mismatches always fail, except the classifiers when ``reinit_head`` is set.
    """
    own = model.state_dict()
    report = LoadReport()
    new: dict[str, torch.Tensor] = {}
    mismatched = []
    for key, value in state.items():
        if key not in own:
            report.ignored.append(key)
            continue
        tensor = torch.as_tensor(np.asarray(value)) if isinstance(value, np.ndarray) else torch.as_tensor(value)
        if tuple(tensor.shape) != tuple(own[key].shape):
            if reinit_head and _CLASSIFIER.match(key):
                report.reinitialized.append(key)
                continue
            mismatched.append(f"{key}: file {list(tensor.shape)} vs model {list(own[key].shape)}")
            continue
        new[key] = tensor.to(own[key].dtype)
    if mismatched:
        hint = ""
        if any(_CLASSIFIER.match(m.split(":")[0]) for m in mismatched):
            hint = (" The number of classes differs: pass the file's num_classes, or reinit_head=True "
                    "(--reinit-head) to fine-tune with new classifiers.")
        raise ArchitectureError(f"{source}: {len(mismatched)} tensors have the wrong shape: "
                                f"{'; '.join(mismatched[:5])}.{hint}")
    missing = [k for k in own if k not in new and k not in report.reinitialized]
    hard_missing = []
    for key in missing:
        if key.endswith("num_batches_tracked"):
            continue
        if key.endswith("._scale") or any(re.search(p, key) for p in optional):
            report.kept_default.append(key)
        else:
            hard_missing.append(key)
    if strict and (hard_missing or report.ignored):
        detail = []
        if hard_missing:
            detail.append(f"missing {len(hard_missing)}: {_brief(hard_missing)}")
        if report.ignored:
            detail.append(f"unexpected {len(report.ignored)}: {_brief(report.ignored)}")
        raise ArchitectureError(f"{source}: the weights do not fit the model ({'; '.join(detail)}); is this "
                                f"the right architecture? Use strict=False to load what fits.")
    report.kept_default.extend(hard_missing)
    with torch.no_grad():
        for key, tensor in new.items():
            own[key].copy_(tensor)
    model.load_state_dict(own)
    report.loaded = len(new)
    if report.reinitialized:
        for name, module in model.named_modules():
            if f"{name}.weight" in report.reinitialized and isinstance(module, nn.Conv2d):
                paddle_conv_init(module)
    return report


def _build(arch: str, kwargs: dict[str, Any], num_classes: int | None, reinit_head: bool, source: str) -> nn.Module:
    kwargs = dict(kwargs)
    if num_classes is not None and num_classes != kwargs.get("num_classes"):
        if not reinit_head:
            raise ArchitectureError(f"{source}: the weights have {kwargs.get('num_classes')} classes but "
                                    f"num_classes={num_classes} was asked for; pass reinit_head=True "
                                    f"(--reinit-head) to re-initialise the classifiers")
        kwargs["num_classes"] = num_classes
    return build_model(arch, **kwargs)


def _check_arch(arch: str | None, found: str, source: str) -> None:
    if arch is not None and arch != found:
        raise ArchitectureError(f"{source}: the weights are a {found}, not a {arch}")


def load(source: str | os.PathLike, *, arch: str | None = None, num_classes: int | None = None,
         reinit_head: bool = False, strict: bool = True, device: str | torch.device = "cpu") -> LoadedModel:
    """Load any PP-LiteSeg artefact; returns the model in eval mode, its metadata and a load report.

    ``arch`` and ``num_classes`` are checks (or, with ``reinit_head``, a new class count for fine-tuning);
    the architecture itself is recovered from the file.
    """
    start = time.perf_counter()
    path = Path(source)
    text = os.fspath(source)
    name = None if path.exists() else zoo.canonical_name(text)
    if name is not None:
        loaded = load(zoo.get_weights(name), arch=arch, num_classes=num_classes, reinit_head=reinit_head,
                      strict=strict, device=device)
        if name not in zoo.SHIPPED:  # the shipped file carries its own metadata (and the record's size, below)
            extra = zoo.weights_meta(name)
            loaded.meta.license, loaded.meta.metrics = extra["license"], extra["metrics"]
            loaded.meta.extra.update(extra["extra"])
        loaded.load_seconds = time.perf_counter() - start
        return loaded
    if not path.exists():
        raise FormatError(f"{text}: no such file or folder, and not a published weight name; {zoo.name_hint(text)} "
                          f"(a model is a .pdparams, .safetensors, .pt, an inference model folder, a .tgz or a "
                          f"weight name)")
    if path.is_dir() or path.suffix in im_format.PROGRAM_SUFFIXES or im_format.is_archive(path):
        loaded = _load_inference_model(path, arch, num_classes, reinit_head, strict)
    elif path.suffix == ".pdparams":
        loaded = _load_pdparams(path, arch, num_classes, reinit_head, strict)
    elif path.suffix == ".safetensors":
        loaded = _load_native(path, arch, num_classes, reinit_head, strict)
    elif path.suffix in (".pt", ".pth", ".ckpt"):
        loaded = _load_torch(path, arch, num_classes, reinit_head, strict)
    elif path.suffix.lower() == ".onnx":
        raise FormatError(f"{text}: an ONNX graph is not loaded as a PyTorch model; run it with an ONNX backend "
                          f"(--backend onnxruntime or openvino, the default for .onnx in the CLI; "
                          f"create_backend(path) in Python), or load the weights it was exported from")
    else:
        raise FormatError(f"{text}: unknown model file type {path.suffix!r}; expected .pdparams, .safetensors, "
                          f".pt/.pth, .pdmodel, .json (Paddle 3), an inference model folder or a .tar/.tgz archive")
    shipped = zoo.shipped_name(path)
    if shipped is not None:
        loaded.meta.extra = {**zoo.record_extra(shipped), "shipped_default": shipped == zoo.DEFAULT_NAME,
                             **loaded.meta.extra}
    loaded.model.to(device).eval()
    loaded.load_seconds = time.perf_counter() - start
    return loaded


def _finish(model: nn.Module, arch: str, meta_kwargs: dict[str, Any], report: LoadReport) -> LoadedModel:
    config = dict(model.config) if hasattr(model, "config") else {}
    meta = ModelMeta(arch=arch, num_classes=config.get("num_classes", 0), config=config, **meta_kwargs)
    return LoadedModel(model, meta, report)


def _load_pdparams(path: Path, arch, num_classes, reinit_head, strict) -> LoadedModel:
    state = normalize_paddle_keys(read_pdparams(path), str(path))
    found, kwargs = infer_config(state, str(path))
    _check_arch(arch, found, str(path))
    model = _build(found, kwargs, num_classes, reinit_head, str(path))
    report = apply_state_dict(model, state, source=str(path), strict=strict, reinit_head=reinit_head)
    return _finish(model, found, dict(source=str(path), source_format="pdparams"), report)


def _load_inference_model(path: Path, arch, num_classes, reinit_head, strict) -> LoadedModel:
    im = im_format.read_inference_model(path)
    found, kwargs = im_format.architecture(im)
    _check_arch(arch, found, str(path))
    model = _build(found, kwargs, num_classes, reinit_head, str(path))
    state = im_format.to_state_dict(im, model)
    report = apply_state_dict(model, state, source=str(path), strict=strict, reinit_head=reinit_head,
                              optional=(_AUX_HEAD.pattern,))
    report.notes.extend(im.notes)
    mean, std = im_format.deploy_normalization(im.deploy)
    output_op = im.deploy.get("output_op") or im.info.output_op
    meta = dict(source=str(path), source_format="paddle_inference", mean=mean, std=std,
                input_shape=[int(d) for d in im.info.feed_shape] or [-1, 3, -1, -1],
                output_op=str(output_op).lower(),
                extra={"program_format": im.info.program_format,
                       ("pir_version" if im.info.program_format == "PIR" else "paddle_version"): im.info.version,
                       "program_file": im.program_file, "feed": im.info.feed_name, "fetch": im.info.fetch_name,
                       "transforms": im.deploy.get("transforms") or []})
    if im.model_name:
        meta["extra"]["model_name"] = im.model_name
    return _finish(model, found, meta, report)


def _load_native(path: Path, arch, num_classes, reinit_head, strict) -> LoadedModel:
    state, meta = load_native(path)
    saved = meta.get("meta", {})
    found = meta.get("arch") or saved.get("arch")
    config = dict(meta.get("config") or saved.get("config") or {})
    if not found or not config:
        raise FormatError(f"{path}: liteseg metadata lacks the architecture; re-convert the file")
    _check_arch(arch, found, str(path))
    check_config(found, config, state, str(path))
    model = _build(found, config, num_classes, reinit_head, str(path))
    report = apply_state_dict(model, state, source=str(path), strict=strict, reinit_head=reinit_head)
    loaded = _finish(model, found, dict(source=str(path), source_format="safetensors"), report)
    loaded.meta = _merge_saved_meta(loaded.meta, saved, num_classes)
    return loaded


def _load_torch(path: Path, arch, num_classes, reinit_head, strict) -> LoadedModel:
    scan_torch_file(path)  # torch's unpickler crashes on deep nesting too
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for bad/unsafe files
        raise FormatError(f"{path}: not a loadable PyTorch state dict ({type(e).__name__}: {e})") from None
    saved = data.get("meta") if isinstance(data, dict) and isinstance(data.get("meta"), dict) else {}
    for key in ("model", "state_dict", "model_state"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise FormatError(f"{path}: expected a state dict, found {type(data).__name__}")
    state = normalize_paddle_keys({k: v.numpy() if torch.is_tensor(v) else v for k, v in data.items()}, str(path))
    found, kwargs = infer_config(state, str(path))
    _check_arch(arch, found, str(path))
    model = _build(found, kwargs, num_classes, reinit_head, str(path))
    report = apply_state_dict(model, state, source=str(path), strict=strict, reinit_head=reinit_head)
    loaded = _finish(model, found, dict(source=str(path), source_format="torch"), report)
    if saved:  # a liteseg trainer checkpoint: its metadata (mean/std, classes, palette, training config, ...)
        loaded.meta = _merge_saved_meta(loaded.meta, saved, num_classes)
    return loaded


def _merge_saved_meta(meta: ModelMeta, saved: dict[str, Any], num_classes: int | None) -> ModelMeta:
    """``meta`` (what the weights say) updated with the metadata a liteseg file stored beside them."""
    saved = {k: v for k, v in saved.items() if k not in ("arch", "num_classes", "config", "source", "source_format")}
    if len(saved.get("class_names") or []) != meta.num_classes:
        saved.pop("class_names", None)  # new classifiers (reinit_head): the stored names no longer apply
        saved.pop("palette", None)
    return ModelMeta.from_dict({**meta.to_dict(), **saved})


def resolve_model(source: Any, meta: ModelMeta | None = None) -> LoadedModel:
    """nn.Module, LoadedModel or anything :func:`load` accepts (path or weight name) -> LoadedModel."""
    if isinstance(source, LoadedModel):
        return source
    if isinstance(source, nn.Module):
        meta = meta or getattr(source, "meta", None)
        if meta is None:
            config = getattr(source, "config", {})
            meta = ModelMeta(arch=type(source).__name__, num_classes=config.get("num_classes", 0), config=config,
                             trained=False)
        return LoadedModel(source.eval(), meta, LoadReport())
    if isinstance(source, (str, os.PathLike)):
        return load(source)
    raise LitesegError(f"cannot make a model from a {type(source).__name__}; pass a path, nn.Module or LoadedModel")

