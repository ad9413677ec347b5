"""Model metadata carried with every loaded model: classes, palette, preprocessing, provenance, metrics."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .palettes import default_classes


@dataclass
class ModelMeta:
    """What a model needs around it: architecture, classes, normalisation, input and output conventions.

    ``mean``/``std`` apply to images scaled to [0, 1] (PaddleSeg's ``Normalize``): ``x = (img/255 - mean)/std``.
    ``input_shape`` is ``[N, 3, H, W]`` with -1 for free dimensions. ``output_op`` records what a Paddle
    inference program appended after the logits (``none``, ``argmax`` or ``softmax``); liteseg models always
    compute logits and apply it on request.
    """

    arch: str
    num_classes: int
    config: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    palette: list[list[int]] = field(default_factory=list)
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    input_shape: list[int] = field(default_factory=lambda: [-1, 3, -1, -1])
    output_op: str = "none"
    ignore_index: int = 255
    source: str = ""
    source_format: str = ""
    license: str = ""
    trained: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._check_types()
        if not self.class_names or not self.palette:
            names, palette = default_classes(self.num_classes)
            self.class_names = self.class_names or list(names)
            self.palette = self.palette or palette.tolist()
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")

    def _check_types(self) -> None:
        """ValueError for values of the wrong type (metadata read from files is untrusted)."""
        def numbers(v: Any, n: int | None, kind: type | tuple[type, ...]) -> bool:
            return isinstance(v, (list, tuple)) and (n is None or len(v) == n) and all(
                isinstance(x, kind) and not isinstance(x, bool) for x in v)

        problems = [name for name, ok in [
            ("num_classes", isinstance(self.num_classes, int) and 0 <= self.num_classes <= 65536),
            ("class_names", numbers(self.class_names, None, str)),
            ("palette", isinstance(self.palette, (list, tuple)) and all(numbers(c, 3, int) for c in self.palette)),
            ("mean", numbers(self.mean, 3, (int, float))), ("std", numbers(self.std, 3, (int, float))),
            ("input_shape", numbers(self.input_shape, 4, int)), ("ignore_index", isinstance(self.ignore_index, int)),
            ("config", isinstance(self.config, dict)), ("metrics", isinstance(self.metrics, dict)),
            ("extra", isinstance(self.extra, dict)),
            *((k, isinstance(getattr(self, k), str)) for k in ("arch", "output_op", "source", "source_format",
                                                               "license")),
        ] if not ok]
        if problems:
            raise ValueError(f"model metadata has values of the wrong type: {', '.join(problems)}")

    @property
    def fixed_hw(self) -> tuple[int, int] | None:
        """(H, W) when the model only accepts one input size, else None."""
        h, w = self.input_shape[2], self.input_shape[3]
        return (h, w) if h > 0 and w > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelMeta":
        if not isinstance(data, dict):
            raise ValueError(f"model metadata must be a mapping, not a {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        extra = {k: v for k, v in data.items() if k not in known}
        meta = cls(**{k: v for k, v in data.items() if k in known})
        meta.extra.update(extra)
        return meta
