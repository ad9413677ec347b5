"""Exceptions with messages that name the file, the problem and what to do."""
from __future__ import annotations


class LitesegError(Exception):
    """Base class for errors liteseg reports to users (the CLI prints them without a traceback)."""


class FormatError(LitesegError):
    """A model file is missing, truncated, corrupt or of an unsupported kind."""


class UnsafePickleError(FormatError):
    """A pickle asked for a Python object outside the allow-list (possibly malicious)."""


class ArchitectureError(LitesegError):
    """Weights do not fit the requested or recovered architecture (shape/class-count mismatch)."""


class DatasetError(LitesegError):
    """A dataset is missing, malformed or holds a bad sample (unreadable file, size mismatch, bad label values)."""


class WriteError(LitesegError):
    """An output file could not be written in full (disk full, file-size limit, ...); nothing was published."""


class InputError(LitesegError):
    """An input image or video could not be used (missing, unreadable, or an array of the wrong shape)."""


def install_hint(extra: str) -> str:
    """How to install the optional extra ``extra`` of pyproject.toml, from PyPI or from a checkout."""
    return f"pip install 'liteseg[{extra}]' (from a checkout: pip install -e '.[{extra}]')"
