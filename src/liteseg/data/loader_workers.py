"""Keeping DataLoader worker processes from leaving a process-wide trap behind."""
from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator

from torch.utils.data._utils import signal_handling


@contextlib.contextmanager
def restore_sigchld() -> Iterator[None]:
    """Put back the SIGCHLD handler that a multi-worker DataLoader replaces and never restores.

    PyTorch installs a Python SIGCHLD handler for its workers and leaves it installed for the life of the
    process. With OpenVINO's runtime threads loaded, the exit of any later child process (a subprocess, a
    browser) then crashed the interpreter (segfault). Restoring the handler after the loader is done avoids that;
    the next multi-worker DataLoader installs its own again.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGCHLD)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGCHLD) is not previous:
            signal.signal(signal.SIGCHLD, previous)
            signal_handling._SIGCHLD_handler_set = False
