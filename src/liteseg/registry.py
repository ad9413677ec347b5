"""One small registry for everything liteseg looks up by name: models, weights, backends, export formats and
writers, dataset kinds, losses.

An entry is an object, or a lazy ``"package.module:attribute"`` (or ``"package.module"``) string imported when
it is looked up, so a registry can list names whose code (and optional dependencies) is not loaded yet. Adding one is one line::

    BACKENDS.add("onnxruntime", "liteseg.inference.ort_backend:factory", package="onnxruntime", extra="onnx")

An unknown name gets a ``did you mean ...?`` suggestion; an entry whose optional ``package`` is missing gets the
install command of its ``extra``.
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import LitesegError, install_hint

T = TypeVar("T")


def close_names(name: str, choices: list[str] | tuple[str, ...]) -> list[str]:
    """Up to three of ``choices`` that look like a mistyped ``name`` (difflib), closest first."""
    return difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """``"did you mean 'x'?"`` for the close choices, else ``"choose one of a, b, c"``."""
    close = close_names(name, choices)
    if close:
        return f"did you mean {' or '.join(map(repr, close))}?"
    return f"choose one of {', '.join(choices)}"


@dataclass
class Entry(Generic[T]):
    """One registered name: its target (an object, or a lazy ``"module:attribute"`` / ``"module"``), the optional
    ``packages`` it needs (and the pyproject ``extra`` that installs them) and free-form ``info``."""

    name: str
    target: T | str
    packages: tuple[str, ...] = ()
    extra: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Names -> entries of one ``kind`` (``"backend"``, ``"model"``, ...); errors are ``error`` instances."""

    def __init__(self, kind: str, error: type[Exception] = LitesegError) -> None:
        self.kind = kind
        self.error = error
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, target: T | str, *, package: str | tuple[str, ...] = (), extra: str | None = None,
            aliases: tuple[str, ...] = (), **info: Any) -> None:
        """Register ``target`` (or lazy ``"module:attribute"``) under ``name`` and ``aliases``; ``package``: the
        optional package(s) a lazy target imports, ``extra``: the pyproject extra that installs them."""
        if name in self._entries or name in self._aliases:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        packages = (package,) if isinstance(package, str) else tuple(package)
        self._entries[name] = Entry(name, target, packages, extra, info)
        self._aliases.update((alias, name) for alias in aliases)

    def register(self, name: str | None = None, **info: Any) -> Callable[[T], T]:
        """Decorator form of :meth:`add`; the name defaults to the decorated function's or class's name."""
        def decorate(obj: T) -> T:
            self.add(name or getattr(obj, "__name__"), obj, **info)
            return obj

        return decorate

    def canonical(self, name: str) -> str | None:
        """The registered name ``name`` stands for (itself or an alias), or None."""
        name = self._aliases.get(name, name)
        return name if name in self._entries else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.canonical(name) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names (aliases not repeated) matching a shell-style ``pattern``, in registration order."""
        return [n for n in self._entries if fnmatch.fnmatch(n, pattern)]

    def aliases(self) -> dict[str, str]:
        """alias -> registered name."""
        return dict(self._aliases)

    def hint(self, name: str) -> str:
        """What to tell a user who typed ``name``: the close names, else every name."""
        return did_you_mean(name, [*self._entries, *self._aliases])

    def entry(self, name: str) -> Entry[T]:
        """The entry of ``name`` (or an alias), not loaded; an error with a suggestion for an unknown name."""
        found = self.canonical(name)
        if found is None:
            raise self.error(f"unknown {self.kind} {name!r}; {self.hint(name)}")
        return self._entries[found]

    def get(self, name: str) -> T:
        """The object registered as ``name``, importing a lazy entry (Python caches the module; an install hint
        when its optional package is missing; any other ImportError propagates)."""
        entry = self.entry(name)
        if not isinstance(entry.target, str):
            return entry.target
        module, _, attribute = entry.target.partition(":")
        try:
            loaded = importlib.import_module(module)
        except ModuleNotFoundError as e:
            missing = (e.name or "").split(".")[0]
            if missing not in entry.packages:
                raise
            how = install_hint(entry.extra) if entry.extra else f"pip install {missing}"
            raise self.error(f"{self.kind} {entry.name!r} needs an optional dependency that is missing "
                             f"({missing}); install it with: {how}") from None
        return getattr(loaded, attribute) if attribute else loaded

    def available(self, name: str) -> bool:
        """Whether ``name`` loads here (False only when its optional package is missing)."""
        try:
            self.get(name)
        except self.error:
            if name not in self:
                raise
            return False
        return True
