"""The error of a training run that cannot start or continue."""
from __future__ import annotations

from ..errors import LitesegError


class TrainingError(LitesegError):
    """Training cannot start or continue (diverged loss, occupied output folder, incompatible resume)."""
