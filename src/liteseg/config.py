"""Training configuration: a dataclass schema, YAML files with ``_base_`` inheritance, ``key=value`` overrides.

Unknown keys and wrongly typed values raise :class:`ConfigError` naming the key, the file and the valid keys.
``Config.to_dict()`` is the fully resolved configuration that every run saves beside its checkpoints.
"""
from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LitesegError
from .registry import close_names, did_you_mean


class ConfigError(LitesegError):
    """A configuration file or override is invalid (unknown key, wrong type, impossible value)."""


@dataclass
class ModelConfig:
    """Which network to train and where its starting weights come from."""

    name: str = "pp_liteseg_t"  # a registered model (liteseg.list_models())
    num_classes: int | None = None  # default: the dataset's class count
    pretrained: str | None = None  # full PaddleSeg/liteseg model; classifiers re-initialised if classes differ
    backbone_pretrained: str | None = None  # ImageNet STDC weights (PaddleSeg PP_STDCNet1/2 .pdparams)


@dataclass
class DataConfig:
    """Datasets, given as ``liteseg.data.build_dataset`` specs (``camvid:/root``, ``cityscapes:/root``, ...)."""

    train: str = ""
    val: str | None = None  # default: the train spec
    train_split: str = "train"
    val_split: str = "val"
    val_scale: float = 1.0  # test scale of the periodic evaluation (PaddleSeg aug_eval scales)
    val_limit: int = 0  # evaluate on the first N val images only (0 = all); for quick periodic checks
    class_names: list[str] | None = None  # list:/folders: datasets only (camvid/cityscapes know theirs)
    ignore_index: int = 255  # list:/folders:/camvid: datasets (Cityscapes trainIds fix 255)
    label_map: dict[int, int] | None = None  # list:/folders: raw mask value -> class, e.g. {255: 1} for 0/255 masks
    palette: list[list[int]] | None = None  # one [r, g, b] per class (list:/folders:); default: generated
    uncoloured: list[int] | None = None  # classes overlays leave uncoloured; default: [0] for list:/folders: data
    skip_bad: bool = False  # leave unusable samples out (logged) instead of stopping
    allow: list[str] = field(default_factory=list)  # data-check findings to train despite, e.g. [jpeg_masks]
    batch_size: int = 4  # per process (PaddleSeg batch_size is per GPU)
    num_workers: int = 0


@dataclass
class AugmentConfig:
    """Training transforms, in PaddleSeg's order: scale, pad+crop, flip, distort, normalise."""

    min_scale_factor: float = 0.5
    max_scale_factor: float = 2.0
    scale_step_size: float = 0.25
    crop_size: list[int] = field(default_factory=lambda: [1024, 512])  # [width, height]
    flip_prob: float = 0.5
    distort: bool = True
    brightness_range: float = 0.5
    brightness_prob: float = 0.5
    contrast_range: float = 0.5
    contrast_prob: float = 0.5
    saturation_range: float = 0.5
    saturation_prob: float = 0.5
    hue_range: float = 18.0
    hue_prob: float = 0.5
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])


@dataclass
class OptimizerConfig:
    """SGD with momentum; L2 weight decay on every trainable parameter (PaddleSeg ``sgd``)."""

    lr: float = 0.005
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    foreach: bool = True  # one multi-tensor update for all parameters (same numbers as the per-tensor loop, faster)


@dataclass
class SchedulerConfig:
    """Linear warmup then poly decay, per iteration (see ``training.schedulers.warmup_poly_lr``)."""

    warmup_iters: int = 1000
    warmup_start_lr: float = 1e-5
    power: float = 0.9
    end_lr: float = 0.0
    horizon: str = "total"  # "total" (PaddleSeg 2.5) or "after_warmup" (PaddleSeg 2.8)


# the names of liteseg.training.losses.LOSSES (tests/training/test_losses.py checks that they agree)
LOSS_TYPES = ("ohem", "ce")


@dataclass
class LossConfig:
    """One loss per output (main, 1/16 aux, 1/32 aux), summed with ``coefs``."""

    type: str = "ohem"  # one of LOSS_TYPES
    thresh: float = 0.7
    min_kept: int = 130000  # per process, like PaddleSeg (per GPU)
    coefs: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])  # ignore index: the dataset's
    # one per class: a weighted mean over the pixels (PaddleSeg CE weight); "auto": from the train histogram
    class_weights: list[float] | str | None = None


@dataclass
class TrainConfig:
    """The iteration loop: length, intervals, checkpoints, precision and parallelism."""

    iters: int = 160000
    seed: int = 0
    output_dir: str = "runs/train"
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    num_threads: int = 0  # CPU threads for torch (0 = torch's default); 1 is fastest for tiny crops on busy CPUs
    log_interval: int = 10
    eval_interval: int = 1000  # 0 disables periodic evaluation
    save_interval: int = 1000
    keep_checkpoints: int = 5
    tensorboard: bool = False
    plot: bool = True
    amp: str = "off"  # "off", "bf16", "fp16" (fp16 only on CUDA, with a GradScaler)
    channels_last: bool = False
    accum_steps: int = 1
    ema_decay: float = 0.0  # > 0 keeps an EMA of the weights, used for evaluation and saved beside them
    sync_bn: bool = True  # with more than one process
    dist_backend: str = "auto"  # "auto" (nccl on CUDA, gloo on CPU), "nccl" or "gloo"


@dataclass
class Config:
    """A complete training configuration."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        import yaml  # PyYAML is imported where it is used: `liteseg train --help` needs only the schema

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def validate(self) -> "Config":
        """Check values that types cannot express; raises :class:`ConfigError`."""
        t, a = self.train, self.augment
        checks = [
            (bool(self.data.train), "data.train", "is empty; set the training dataset, e.g. data.train=camvid:/data/camvid"),
            (t.iters > 0, "train.iters", f"must be > 0, got {t.iters}"),
            (self.data.batch_size > 0, "data.batch_size", f"must be > 0, got {self.data.batch_size}"),
            (self.data.num_workers >= 0, "data.num_workers", f"must be >= 0, got {self.data.num_workers}"),
            (self.data.val_limit >= 0, "data.val_limit", f"must be >= 0, got {self.data.val_limit}"),
            (self.data.val_scale > 0, "data.val_scale", f"must be > 0, got {self.data.val_scale}"),
            (t.log_interval > 0, "train.log_interval", f"must be > 0, got {t.log_interval}"),
            (t.eval_interval >= 0, "train.eval_interval", f"must be >= 0, got {t.eval_interval}"),
            (t.save_interval > 0, "train.save_interval", f"must be > 0, got {t.save_interval}"),
            (t.keep_checkpoints > 0, "train.keep_checkpoints", f"must be > 0, got {t.keep_checkpoints}"),
            (t.num_threads >= 0, "train.num_threads", f"must be >= 0, got {t.num_threads}"),
            (t.accum_steps > 0, "train.accum_steps", f"must be > 0, got {t.accum_steps}"),
            (0.0 <= t.ema_decay < 1.0, "train.ema_decay", f"must be in [0, 1), got {t.ema_decay}"),
            _choice("train.amp", t.amp, ("off", "bf16", "fp16")),
            _choice("train.dist_backend", t.dist_backend, ("auto", "nccl", "gloo")),
            (len(a.crop_size) == 2 and min(a.crop_size) > 0, "augment.crop_size",
             f"must be [width, height] with positive values, got {a.crop_size}"),
            (0 < a.min_scale_factor <= a.max_scale_factor, "augment.min_scale_factor",
             f"must be > 0 and <= max_scale_factor, got {a.min_scale_factor} / {a.max_scale_factor}"),
            (a.scale_step_size >= 0, "augment.scale_step_size", f"must be >= 0, got {a.scale_step_size}"),
            (len(a.mean) == 3 and len(a.std) == 3 and min(a.std) > 0, "augment.mean/std",
             f"need 3 values each (std > 0), got {a.mean} / {a.std}"),
            (self.optimizer.lr > 0, "optimizer.lr", f"must be > 0, got {self.optimizer.lr}"),
            _choice("scheduler.horizon", self.scheduler.horizon, ("total", "after_warmup")),
            (0 <= self.scheduler.warmup_iters <= t.iters, "scheduler.warmup_iters",
             f"must be >= 0 and <= train.iters ({t.iters}), got {self.scheduler.warmup_iters}"),
            _choice("loss.type", self.loss.type, LOSS_TYPES),
            (len(self.loss.coefs) > 0, "loss.coefs", "needs one coefficient per model output"),
            (0 < self.loss.thresh <= 1, "loss.thresh", f"must be in (0, 1], got {self.loss.thresh}"),
            (self.loss.class_weights in (None, "auto") or (isinstance(self.loss.class_weights, list)
                                                           and len(self.loss.class_weights) > 0
                                                           and all(w > 0 for w in self.loss.class_weights)),
             "loss.class_weights", f"must be null, auto or one positive number per class, got "
                                   f"{self.loss.class_weights!r}"),
            (self.data.palette is None or all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in self.data.palette),
             "data.palette", f"must be null or one [r, g, b] (0-255) per class, got {self.data.palette}"),
            (self.data.label_map is None or all(0 <= k <= 255 and 0 <= v <= 255 for k, v in self.data.label_map.items()),
             "data.label_map", f"must map mask values 0-255 to classes 0-255, got {self.data.label_map}"),
        ]
        for ok, key, message in checks:
            if not ok:
                raise ConfigError(f"{key} {message}")
        return self


def _choice(key: str, value: str, choices: tuple[str, ...]) -> tuple[bool, str, str]:
    """A :meth:`Config.validate` check that ``value`` is one of ``choices`` (else a suggestion)."""
    close = close_names(value, choices)
    return value in choices, key, (f"must be {', '.join(choices[:-1])} or {choices[-1]}, got {value!r}"
                                   + (f"; did you mean {close[0]!r}?" if close else ""))


def _key_hint(section: str, key: str, keys: list[str]) -> str:
    """For an unknown ``section.key``: the same key in another section, else the close keys of ``section``."""
    close = [k for k in valid_keys() if k.endswith(f".{key}")] or [f"{section}.{k}" for k in close_names(key, keys)]
    if close:
        return f"did you mean {' or '.join(map(repr, close))}?"
    return f"valid keys in {section}: {', '.join(keys)}"


def _section_keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def valid_keys() -> list[str]:
    """Every dotted key the schema accepts, e.g. ``train.iters``."""
    return [f"{s.name}.{k}" for s in dataclasses.fields(Config) for k in _section_keys(_section_type(s.name))]


def _section_type(name: str) -> type:
    return typing.get_type_hints(Config)[name]


def _coerce(value: Any, hint: Any, key: str, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for alternative in inner[:-1]:  # the first alternative that takes the value, e.g. list[float] | str
            try:
                return _coerce(value, alternative, key, where)
            except ConfigError:
                pass
        return _coerce(value, inner[-1], key, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} must be a mapping such as {{255: 1}}, got {value!r}")
        return {_coerce(int(k) if isinstance(k, str) and k.strip().isdigit() else k, args[0], f"{key} key", where):
                _coerce(v, args[1], f"{key}[{k}]", where) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: {key} must be a list, got {value!r}")
        return [_coerce(v, args[0], f"{key}[{i}]", where) for i, v in enumerate(value)]
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads 5e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)

    type_name = getattr(hint, "__name__", str(hint))
    raise ConfigError(f"{where}: {key} must be {type_name}, got {value!r}")


def _apply(config: Config, data: dict[str, Any], where: str) -> None:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of sections ({', '.join(_section_keys(Config))})")
    sections = _section_keys(Config)
    for section, values in data.items():
        if section not in sections:
            raise ConfigError(f"{where}: unknown section {section!r}; {did_you_mean(section, sections)}")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: section {section!r} must be a mapping of keys, got {values!r}")
        target = getattr(config, section)
        hints = typing.get_type_hints(type(target))
        for key, value in values.items():
            if key not in hints:
                raise ConfigError(f"{where}: unknown key {section}.{key}; {_key_hint(section, key, list(hints))}")
            setattr(target, key, _coerce(value, hints[key], f"{section}.{key}", where))


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: _base_ inheritance loops back to itself")
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    base = data.pop("_base_", None)
    if base is None:
        return data
    merged = _read_yaml(path.parent / base, seen + (path.resolve(),))
    return _deep_merge(merged, data)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_override(text: str) -> tuple[str, str, Any]:
    """``section.key=value`` -> (section, key, YAML-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. train.iters=1000")
    dotted, raw = text.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"override {text!r}: the key must be section.key; valid keys: {', '.join(valid_keys())}")
    import yaml

    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override {text!r}: cannot parse the value ({e})") from None
    return parts[0], parts[1], value


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = (),
                base: dict[str, Any] | None = None) -> Config:
    """Defaults <- ``base`` (e.g. a run's saved config) <- YAML file (and its ``_base_`` chain) <- ``key=value``
    overrides; validated."""
    config = Config()
    if base is not None:
        _apply(config, base, "saved config")
    if path is not None:
        _apply(config, _read_yaml(Path(path)), os.fspath(path))
    for text in overrides:
        section, key, value = parse_override(text)
        _apply(config, {section: {key: value}}, "command line")
    return config.validate()


def output_dir_of(path: str | os.PathLike | None, overrides: list[str] | tuple[str, ...] = ()) -> str:
    """``train.output_dir`` as the overrides, else the YAML file, else the default set it (nothing else is read)."""
    for text in reversed(overrides):
        section, key, value = parse_override(text)
        if (section, key) == ("train", "output_dir"):
            return str(value)
    if path is not None:
        value = (_read_yaml(Path(path)).get("train") or {}).get("output_dir")
        if value is not None:
            return str(value)
    return TrainConfig().output_dir


def config_from_dict(data: dict[str, Any], where: str = "config") -> Config:
    """A validated :class:`Config` from a (possibly partial) nested dict, e.g. one saved with a checkpoint."""
    config = Config()
    _apply(config, data, where)
    return config.validate()
