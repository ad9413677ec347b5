"""``liteseg train --resume``: the run continues as it was, from its own saved config, with explicit changes only."""
from __future__ import annotations

import logging
import os
from typing import Sequence

from ..config import Config, load_config, output_dir_of
from . import checkpoint as ckpt

log = logging.getLogger(__name__)


def resume_config(path: str | os.PathLike | None, overrides: Sequence[str], resume: str) -> Config:
    """The config of a resumed run: the checkpoint's saved config, then the ``key=value`` overrides (logged).

    The YAML file ``path`` is not re-read: it (or a ``train.output_dir`` override) only says where the run is
    when ``resume`` is ``auto``. Without a checkpoint (``auto`` on a new folder) it is a fresh run from ``path``.
    """
    checkpoint = ckpt.resolve_resume(resume, output_dir_of(path, overrides))
    if checkpoint is None:
        return load_config(path, overrides)
    saved = ckpt.load_checkpoint(checkpoint)["config"]
    config = load_config(None, overrides, base=saved)
    note = f"; {os.fspath(path)} only located the run, its values are not re-read" if path is not None else ""
    log.info("resuming %s with the run's saved config%s", checkpoint, note)
    return config
