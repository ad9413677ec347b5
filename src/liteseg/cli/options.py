"""Every command's options are checked here, before any work starts (so a bad value never leaves files behind).

Two layers: argparse ``type=`` validators for single values (ranges, formats), and the checks each command
owns in its ``check(args)`` (registered with ``set_defaults(check=...)``, run by ``main`` before the command),
built from the helpers here, for what depends on several options or on the machine (devices, backends, ports,
checkpoints, optional packages). Both report one ``error: ...`` line, exit code 2; unknown names and choices
get a ``did you mean ...?``.
"""
from __future__ import annotations

import argparse
import errno
import importlib.util
import socket
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn

from ..errors import LitesegError, install_hint
from ..registry import did_you_mean
from ..utils.shapes import parse_shape

ERROR_PREFIX = "error: "
DEVICE_HELP = ("cpu, cuda, cuda:N or mps, the same for every backend (each runs on the devices it declares: "
               "see docs/deployment.md, Backends)")


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one ``error: ...`` line (exit code 2) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{ERROR_PREFIX}{self.prog}: {message} (see '{self.prog} --help')\n")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        """A value outside ``choices`` (a sub-command, ``--format``, ...) gets the close ones suggested."""
        if action.choices is not None and value not in action.choices:
            choices = [str(c) for c in action.choices]
            raise argparse.ArgumentError(action, f"invalid choice {value!r}; {did_you_mean(str(value), choices)}")


# -- single values (argparse type=) -------------------------------------------------------------------------------
def _number(kind: Callable[[str], Any], text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got "
                                         f"{text!r}") from None


def int_at_least(low: int) -> Callable[[str], int]:
    """Type: an integer >= ``low``."""
    def parse(text: str) -> int:
        value = _number(int, text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def float_range(low: float, high: float | None = None, low_open: bool = False) -> Callable[[str], float]:
    """Type: a finite number in ``[low, high]`` (``(low, high]`` when ``low_open``)."""
    def parse(text: str) -> float:
        value = _number(float, text)
        bad_low = value <= low if low_open else value < low
        if value != value or bad_low or (high is not None and value > high) or value == float("inf"):
            span = f"{'(' if low_open else '['}{low:g}, {'inf)' if high is None else f'{high:g}]'}"
            raise argparse.ArgumentTypeError(f"must be in {span}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


positive_int = int_at_least(1)
count = int_at_least(0)


def threads(text: str) -> int:
    """Type: CPU threads, >= 1, or 0 for the library's default."""
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 1, or 0 for the default, got {value}")
    return value


def port(text: str) -> int:
    """Type: a TCP port 1-65535."""
    value = _number(int, text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port 1-65535, got {value}")
    return value


def input_shape(text: str) -> str:
    """Type: an input shape ``N,3,H,W`` (or ``NxCxHxW``; -1 keeps a dimension dynamic), kept as text."""
    parse_shape(text, dynamic=True, error=argparse.ArgumentTypeError)
    return text


def fixed_shape(text: str) -> list[int]:
    """Type: a fixed input shape ``N,3,H,W`` (or ``NxCxHxW``), parsed."""
    return parse_shape(text, error=argparse.ArgumentTypeError)


def slide(text: str, option: str = "--slide") -> Any:
    """Type: a sliding window ``CROP,STRIDE`` (each N or WxH), parsed."""
    from ..inference.tta import parse_slide

    try:
        return parse_slide(text, option)
    except LitesegError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def tile(text: str) -> Any:
    """Type: ``--tile CROP,STRIDE``, parsed (errors name ``--tile``)."""
    return slide(text, "--tile")


def imgsz(text: str) -> str:
    """Type: ``--imgsz WxH`` or ``native``, checked and kept as text."""
    from ..inference.sizing import parse_imgsz

    try:
        parse_imgsz(text, "--imgsz")
    except LitesegError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


# -- what depends on several options or on the machine: each command's ``check(args)`` composes these ---------
def check_inference(args: argparse.Namespace) -> None:
    """predict, val, serve: the model exists, ``--backend`` is known (filled in when None: the one the model file
    needs), and ``--device``/``--half``/``--batch-size`` are what that backend can do on this machine
    (:func:`liteseg.inference.capabilities.check_backend_options`)."""
    from ..inference.capabilities import check_backend_options

    if args.model:
        check_model(args.model)
    args.backend = resolve_backend(args.model, args.backend)
    check_backend_options(args.backend, getattr(args, "device", None), bool(getattr(args, "half", False)),
                          getattr(args, "batch_size", None) or 1)


def check_overwrite(*paths: Path | None) -> None:
    """convert, export, quantize without ``--force``: none of ``paths`` exists yet."""
    for path in paths:
        if path is not None and path.exists():
            raise LitesegError(f"{path}: already exists; pass --force to overwrite it")


def check_model(model: str) -> None:
    """A model file or folder that exists, or a shipped / published weight name."""
    import os

    from ..loading import zoo

    if not os.path.exists(model) and zoo.canonical_name(model) is None:
        raise LitesegError(f"{model}: no such model file or folder, and not a weight name; {zoo.name_hint(model)}")


def resolve_backend(model: Any, backend: str | None) -> str:
    """``--backend`` as given, else the one the model file needs (``.onnx``: ONNX Runtime, or OpenVINO)."""
    from ..inference.backends import backend_for, known_backends

    if backend is None:
        return backend_for(model)
    if backend not in known_backends():
        raise LitesegError(f"--backend: unknown backend {backend!r}; {did_you_mean(backend, known_backends())}")
    return backend


def check_port_free(host: str, number: int) -> None:
    """Refuse a port another program listens on (before the model loads and the server says it is ready)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            s.bind((host, number))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise LitesegError(f"--port {number}: already in use on {host}; stop the other server or choose "
                                   f"another --port") from None
            raise LitesegError(f"--host {host} --port {number}: cannot bind ({e.strerror or e})") from None


def require_modules(*modules: tuple[str, str], what: str) -> None:
    """``modules`` are (import name, extra) pairs; a missing one gives an install hint naming the extra."""
    missing = [(m, extra) for m, extra in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise LitesegError(f"{what} needs {', '.join(m for m, _ in missing)}: {install_hint(missing[0][1])}")


def print_error(message: str) -> None:
    print(f"{ERROR_PREFIX}{message}", file=sys.stderr)
