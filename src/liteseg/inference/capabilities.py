"""What each backend can do, and the one check of the options (``--device``, ``--half``, ``--batch-size``) against it.

Backends declare a :class:`Capabilities` record on their class (``Backend.capabilities``). ``--device`` means the
same everywhere: a torch-style device (``cpu``, ``cuda``, ``cuda:N``, ``mps``); a backend with its own device
names (OpenVINO's plugins) maps it inside. :func:`check_backend_options` is called by ``create_backend`` (so the
Python API gets the same errors) and by the CLI before any model is loaded (predict, val, serve, benchmark).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..errors import LitesegError
from .backend_names import BACKENDS

if TYPE_CHECKING:
    from .backends import Backend

DEVICE_TYPES = ("cpu", "cuda", "mps")


@dataclass(frozen=True)
class Capabilities:
    """What a backend class can do."""

    devices: tuple[str, ...] = ("cpu",)  # device types it runs on (see DEVICE_TYPES)
    half: bool = False  # --half: fp16 on CUDA, bf16 on CPU
    batching: bool = True  # several images per call (else one: a fixed-shape export)
    image_input: bool = False  # runs graphs that take uint8 images (normalisation built in)
    output_kinds: tuple[str, ...] = ("logits",)  # what its models may output: logits, probs, labels


def backend_class(name: str) -> type[Backend] | None:
    """The class of backend ``name`` (its module imported), None for a backend registered without one.

    Raises LitesegError for an unknown name (with a suggestion) or a backend whose optional package is missing
    (with the install command)."""
    from . import backends

    backends.BACKENDS.get(name)  # imports the backend's module, or the clear error
    found = [c for c in _subclasses(backends.Backend) if c.name == name and c.__module__.startswith("liteseg.")]
    return found[0] if found else None


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def capabilities(name: str) -> Capabilities | None:
    """The capabilities backend ``name`` declares (None: a backend registered without a class)."""
    cls = backend_class(name)
    return None if cls is None else cls.capabilities


def default_device(name: str) -> str:
    """``cuda`` where backend ``name`` runs on CUDA and a CUDA device is usable, else ``cpu``."""
    import torch

    caps = capabilities(name)
    return "cuda" if caps is not None and "cuda" in caps.devices and torch.cuda.is_available() else "cpu"


def check_backend_options(name: str, device: str | None = None, half: bool = False, batch_size: int = 1) -> None:
    """Refuse ``--device`` / ``--half`` / ``--batch-size`` values backend ``name`` cannot honour, and devices this
    machine does not have: one LitesegError naming the option, the reason and what to use instead."""
    caps = capabilities(name)
    if device:
        kind = device_type(device)
        if caps is not None and kind not in caps.devices:
            others = _backends_with(lambda c: kind in c.devices)
            raise LitesegError(f"--device {device}: backend {name} runs on {' or '.join(caps.devices)} only; drop "
                               f"--device, or use a backend that runs on {kind}: {', '.join(others)}")
        check_device_present(device)
    if half and caps is not None and not caps.half:
        others = _backends_with(lambda c: c.half)
        raise LitesegError(f"--half: backend {name} has no half-precision mode (an exported graph runs in the "
                           f"precision it was exported with); drop --half, or use {', '.join(others)}")
    if batch_size > 1 and caps is not None and not caps.batching:
        raise LitesegError(f"--batch-size {batch_size}: backend {name} runs one image per call (a fixed-shape "
                           f"export); drop --batch-size")


def device_type(device: str) -> str:
    """The type of ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``mps``: torch's spelling): cpu, cuda or mps."""
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise LitesegError(f"--device {device!r}: not a device liteseg knows; use cpu, cuda, cuda:N or mps") from None
    if kind not in DEVICE_TYPES:
        raise LitesegError(f"--device {device}: liteseg runs on cpu, cuda or mps, not {kind}")
    return kind


def check_device_present(device: str) -> None:
    """Refuse a CUDA or MPS device this machine does not have."""
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise LitesegError(f"--device {device}: this torch ({torch.__version__}) has no usable CUDA device; "
                               f"use --device cpu, or install a CUDA build of torch")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise LitesegError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise LitesegError(f"--device {device}: MPS is not available here; use --device cpu")


def _backends_with(wanted: Callable[[Capabilities], bool]) -> list[str]:
    """The backends whose capabilities satisfy ``wanted``, among those readable without importing an optional
    package (core backends, and optional ones already loaded)."""
    names = []
    for name in BACKENDS.names():
        entry = BACKENDS.entry(name)
        module = entry.target.partition(":")[0] if isinstance(entry.target, str) else ""
        if entry.packages and module not in sys.modules:
            continue
        caps = capabilities(name)
        if caps is not None and wanted(caps):
            names.append(name)
    return names
