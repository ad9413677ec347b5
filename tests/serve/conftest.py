"""Servers for the serving tests: a small random model, uvicorn on 127.0.0.1 in a thread, always shut down."""
from __future__ import annotations

import io
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

import liteseg
from liteseg.formats.native import save_native

from ..conftest import randomize_, require_module  # noqa: E402

require_module("fastapi")
require_module("httpx")
import uvicorn  # noqa: E402

from liteseg.serve.app import ServeConfig, create_app  # noqa: E402

NUM_CLASSES = 4


@pytest.fixture(scope="session")
def serve_model() -> torch.nn.Module:
    """Randomised weights: answers compared with the model's own labels mean something (see tests/models/base.py)."""
    return randomize_(liteseg.create_model("pp_liteseg_t", num_classes=NUM_CLASSES)).eval()


@pytest.fixture(scope="session")
def serve_model_file(serve_model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("serve_model") / "tiny.safetensors"
    save_native(path, serve_model.state_dict(), {"arch": "pp_liteseg_t", "config": serve_model.config, "meta": {}})
    return path


@pytest.fixture(scope="session")
def segmenter(serve_model_file: Path) -> liteseg.Segmenter:
    return liteseg.Segmenter(str(serve_model_file), batch_size=16)


def random_image(h: int = 40, w: int = 56, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3), dtype=np.uint8)


def png_bytes(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


class ThreadedServer:
    """uvicorn serving ``app`` on a free loopback port in a background thread."""

    def __init__(self, app) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)
        self.url = ""

    def __enter__(self) -> "ThreadedServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        assert not self.thread.is_alive(), "the test server did not stop"


@pytest.fixture()
def start_server(segmenter):
    """``start_server(**config) -> url``: a server with that ServeConfig, stopped after the test."""
    servers: list[ThreadedServer] = []

    def start(**config) -> str:
        server = ThreadedServer(create_app(ServeConfig(**config), segmenter)).__enter__()
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def server_url(segmenter) -> Iterator[str]:
    """One default-configured server per test module (its own Segmenter, batching up to 8, on the session's loaded
    model: no load per module)."""
    seg = liteseg.Segmenter(segmenter.backend, batch_size=8)
    with ThreadedServer(create_app(ServeConfig(max_batch=8), seg)) as server:
        yield server.url
