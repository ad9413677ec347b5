"""``liteseg serve --engine triton`` as a real CLI process: tritonclient over HTTP and gRPC, the same labels as
liteseg's own server (REST, KServe v2, PaddleX) and the model, 4xx for bad input, healthy after, loopback only."""
from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from PIL import Image
from tritonclient.utils import InferenceServerException

import liteseg
from liteseg.serve.app import ServeConfig, create_app
from liteseg.utils.net import free_ports

from ..serve.conftest import ThreadedServer, png_bytes
from .conftest import NUM_CLASSES, reference_labels

IMAGES = [np.random.RandomState(s).randint(0, 256, (h, w, 3), dtype=np.uint8)
          for s, (h, w) in enumerate([(40, 56), (33, 47)])]


@pytest.fixture(scope="module")
def engine(model_file, tmp_path_factory):
    http, grpc, metrics = free_ports(3)
    log = tmp_path_factory.mktemp("engine") / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "liteseg", "serve", "--engine", "triton", "--model",
                                    str(model_file), "--port", str(http), "--grpc-port", str(grpc),
                                    "--metrics-port", str(metrics), "--max-pixels", "40000"],
                                   stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())
    client = httpclient.InferenceServerClient(f"127.0.0.1:{http}")
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                if client.is_model_ready("liteseg"):
                    break
            except Exception:  # not listening yet
                pass
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        yield {"pid": process.pid, "http": client, "grpc": grpcclient.InferenceServerClient(f"127.0.0.1:{grpc}"),
               "metrics": metrics, "ports": (http, grpc, metrics)}
    finally:
        client.close()
        process.terminate()
        process.wait(60)


def _infer(module, client, name, array, datatype, outputs=("LABELS",)):
    tensor = module.InferInput(name, [1, *array.shape], datatype)
    tensor.set_data_from_numpy(array[None])
    return client.infer("liteseg", [tensor], outputs=[module.InferRequestedOutput(o) for o in outputs])


def test_http_and_grpc_answer_the_models_labels(engine, model_file):
    for image in IMAGES:
        expected = reference_labels(model_file, image)
        encoded = np.array([png_bytes(image)], dtype=object)
        for module, client in ((httpclient, engine["http"]), (grpcclient, engine["grpc"])):
            for name, array, datatype in (("PIXELS", image, "UINT8"), ("IMAGE", encoded, "BYTES")):
                labels = _infer(module, client, name, array, datatype).as_numpy("LABELS")
                assert labels.dtype == np.uint8
                np.testing.assert_array_equal(labels[0], expected)
    both = _infer(httpclient, engine["http"], "PIXELS", IMAGES[0], "UINT8", ("LABELS", "PROBS"))
    probs = both.as_numpy("PROBS")[0]
    assert probs.shape == (NUM_CLASSES, 40, 56)
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(0), both.as_numpy("LABELS")[0])


def test_every_surface_gives_identical_labels(engine, model_file):
    """REST /v1/segment, KServe v2 and PaddleX on liteseg's server, and Triton: one answer."""
    image = IMAGES[1]
    triton = _infer(grpcclient, engine["grpc"], "IMAGE", np.array([png_bytes(image)], dtype=object),
                    "BYTES").as_numpy("LABELS")[0]
    with ThreadedServer(create_app(ServeConfig(), liteseg.Segmenter(str(model_file)))) as server:
        rest = httpx.post(f"{server.url}/v1/segment", params={"format": "labels"}, content=png_bytes(image),
                          headers={"Content-Type": "image/png"}, timeout=60)
        v2 = httpclient.InferenceServerClient(server.url.removeprefix("http://"))
        tensor = httpclient.InferInput("PIXELS", list(image.shape), "UINT8")
        tensor.set_data_from_numpy(image)
        kserve = v2.infer("liteseg", [tensor], outputs=[httpclient.InferRequestedOutput("LABELS")])
        paddlex = httpx.post(f"{server.url}/semantic-segmentation", timeout=60,
                             json={"image": base64.b64encode(png_bytes(image)).decode()}).json()["result"]
    answers = {"rest": np.asarray(Image.open(io.BytesIO(rest.content))), "v2": kserve.as_numpy("LABELS"),
               "paddlex": np.array(paddlex["labelMap"]).reshape(paddlex["size"]), "triton": triton}
    for name, labels in answers.items():
        np.testing.assert_array_equal(labels, reference_labels(model_file, image), err_msg=name)


CORRUPT = png_bytes(IMAGES[0])[:80]


@pytest.mark.parametrize("name, array, datatype, text", [
    ("IMAGE", np.array([CORRUPT], dtype=object), "BYTES", "invalid_image"),
    ("PIXELS", IMAGES[0].astype(np.float32), "FP32", "UINT8"),
    ("PIXELS", IMAGES[0][:, :, :2].copy(), "UINT8", "PIXELS"),  # refused by Triton itself
    ("PIXELS", np.zeros((250, 250, 3), np.uint8), "UINT8", "max-pixels"),
], ids=["corrupt", "dtype", "shape", "oversize"])
def test_bad_input_is_400_and_triton_stays_healthy(engine, name, array, datatype, text):
    with pytest.raises(InferenceServerException) as error:
        _infer(httpclient, engine["http"], name, array, datatype)
    assert error.value.status() == "400" and text in error.value.message()
    with pytest.raises(InferenceServerException) as grpc_error:
        _infer(grpcclient, engine["grpc"], name, array, datatype)
    assert text in grpc_error.value.message()
    assert engine["http"].is_server_ready() and engine["http"].is_model_ready("liteseg")
    assert _infer(httpclient, engine["http"], "PIXELS", IMAGES[1], "UINT8").as_numpy("LABELS").shape == (1, 33, 47)


def test_unknown_model_metrics_and_loopback(engine):
    with pytest.raises(InferenceServerException) as error:
        engine["http"].infer("nope", [httpclient.InferInput("PIXELS", [1, 1, 1, 3], "UINT8")])
    assert error.value.status() in ("400", "404") and "nope" in error.value.message()
    metrics = httpx.get(f"http://127.0.0.1:{engine['metrics']}/metrics", timeout=30).text
    assert 'nv_inference_request_success{model="liteseg",version="1"}' in metrics
    listening = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout.split("\n")
    local = {line.split()[3].rsplit(":", 1)[1]: line.split()[3].rsplit(":", 1)[0] for line in listening if line}
    assert all(local[str(port)] in ("127.0.0.1", "[::ffff:127.0.0.1]") for port in engine["ports"]), local


def _descendants(pid: int) -> list[int]:
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def test_the_stub_runs_on_this_interpreters_libpython(engine):
    """The Python-backend stub loads libpython from this interpreter's LIBDIR (liteseg sets LD_LIBRARY_PATH), not
    a system libpython of another build."""
    stubs = [pid for pid in _descendants(engine["pid"])
             if b"triton_python_backend_stub" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert stubs, "no Python-backend stub process found"
    maps = Path(f"/proc/{stubs[0]}/maps").read_text()
    libpython = {line.split()[-1] for line in maps.splitlines() if "libpython" in line}
    libdir = sysconfig.get_config_var("LIBDIR")
    assert libpython and all(Path(lib).parent == Path(libdir) for lib in libpython), (libpython, libdir)
