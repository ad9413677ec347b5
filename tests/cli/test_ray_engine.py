"""``predict --engine ray`` / ``val --engine ray`` and the Ray Data API on one 2-CPU Ray head (loopback only).

The head starts once for the module as on a real cluster (``ray start --head``); every job connects to it with
``--address`` (``HOST:PORT`` or ``auto``; ``ray://`` through a Ray Client server only with ``-m ray_client``, as it
is flaky in Ray 2.60), with random weights.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import liteseg
from liteseg.cli.main import main
from liteseg.formats.native import save_native
from liteseg.meta import ModelMeta
from liteseg.utils.net import free_ports

from ..conftest import randomize_, require_module

KINDS = ("labels", "color", "overlay")
N_GOOD = 16


RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # the head's servers listen on loopback only
           "RAY_worker_register_timeout_seconds": "600",  # worker processes start slowly on a loaded machine
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),  # this module's head, and only it
           "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",  # the head stops at once (no 30 s drain)
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}  # the S3 emulator's credentials, for the driver and the workers


@dataclass
class Head:
    address: str  # HOST:PORT of the head's GCS
    client: str  # ray://HOST:PORT of its Ray Client server


@pytest.fixture(scope="module")
def ray_head(request, tmp_path_factory):
    saved = {name: os.environ.get(name) for name in RAY_ENV}
    os.environ.update(RAY_ENV)  # before ray is imported: this process joins the head on loopback
    require_module("ray")
    port, client_port, env_agent_port = free_ports(3)
    client = any(item.get_closest_marker("ray_client") for item in request.session.items)
    log = tmp_path_factory.mktemp("ray") / "head.log"
    with log.open("wb") as out:
        head = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
             f"--port={port}", "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
             *([f"--ray-client-server-port={client_port}",  # a fixed agent port, else the client server gets 0
                f"--runtime-env-agent-port={env_agent_port}"] if client else [])],
            stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while "Ray runtime started" not in log.read_text(errors="replace"):
        assert head.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
        time.sleep(0.2)
    yield Head(f"127.0.0.1:{port}", f"ray://127.0.0.1:{client_port}")
    head.terminate()
    head.wait(timeout=120)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name)
        else:
            os.environ[name] = value


@pytest.fixture()
def torch_threads():
    """Single-process runs with --threads set torch's thread count for this whole process: restore it."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _model(path: Path, num_classes: int) -> Path:
    model = randomize_(liteseg.create_model("pp_liteseg_t", num_classes=num_classes), seed=num_classes)
    meta = ModelMeta(arch="pp_liteseg_t", num_classes=num_classes, config=dict(model.config), trained=False)
    save_native(path, model.state_dict(), {"arch": "pp_liteseg_t", "config": dict(model.config),
                                           "meta": meta.to_dict()})
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return _model(tmp_path_factory.mktemp("model") / "m.safetensors", 4)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("imgs")
    (root / "sub").mkdir()
    rng = np.random.RandomState(0)
    for i in range(N_GOOD):
        Image.fromarray(rng.randint(0, 255, (48, 64, 3), dtype=np.uint8)).save(
            root / ("sub" if i % 4 == 0 else "") / f"{i:02d}.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return root


def _outputs(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _busy_worker() -> int | None:
    """A Ray actor process of this module's head that is running a batch (its process title says ``.__call__``)."""
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
            if title.startswith("ray::PredictWorker.__call__") and _ours(int(proc.name)):
                return int(proc.name)
        except (OSError, ValueError):
            continue
    return None


def _ours(pid: int) -> bool:
    """Whether ``pid`` descends from this process (the raylet of the head started here is its parent)."""
    while pid > 1:
        if pid == os.getpid():
            return True
        stat = Path(f"/proc/{pid}/stat").read_text()
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return False


@pytest.fixture(scope="module")
def predicted(ray_head, images, model_file, tmp_path_factory):
    """Single-process predict (--threads 1) and predict --engine ray on 2 workers whose busy one is killed (-9)."""
    base = tmp_path_factory.mktemp("predict")
    threads = torch.get_num_threads()
    assert main(["predict", str(images), "--model", str(model_file), "-o", str(base / "ref"), "--threads", "1"]) == 1
    torch.set_num_threads(threads)
    killed: list[int] = []

    def kill_a_busy_worker() -> None:
        deadline = time.monotonic() + 600
        while not killed and time.monotonic() < deadline:
            pid = _busy_worker()
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = main(["predict", str(images), "--model", str(model_file), "-o", str(base / "ray"), "--engine", "ray",
                     "--address", ray_head.address, "--workers", "2", "--threads", "1"])
    killer.join(timeout=1)
    return base, code, killed, printed.getvalue()


def test_ray_predict_survives_a_killed_worker_with_single_process_bytes(predicted):
    base, code, killed, _ = predicted
    assert killed, "no worker was ever seen running a batch"
    assert code == 1  # one unreadable file, as single-process predict
    ours, reference = _outputs(base / "ray"), _outputs(base / "ref")
    assert sorted(ours) == sorted(reference) and len(ours) == 3 * N_GOOD + 1  # no partial or temporary files
    assert ours == reference  # label, colour and overlay bytes (and the legend)


def test_ray_predict_summary_counts_every_image_once(predicted):
    text = predicted[3]
    assert f"{N_GOOD} image(s) segmented, 1 failed" in text
    assert re.search(r"skipped: \S*broken\.png: not a readable image", text)
    per_worker = [int(n) for n in re.findall(r"worker \S+: (\d+) image\(s\), [\d.]+ img/s", text)]
    assert sum(per_worker) == N_GOOD + 1 and len(per_worker) >= 2  # the lost batch is counted once, not twice


def test_ray_options_need_the_ray_engine(images, model_file, tmp_path, capsys):
    assert main(["predict", str(images), "--model", str(model_file), "-o", str(tmp_path / "o"), "--resume"]) == 2
    assert "--resume: only with --engine ray" in capsys.readouterr().err


def test_ray_val_merges_worker_confusions_into_the_single_process_metrics(ray_head, camvid_dir, tmp_path,
                                                                         torch_threads):
    root = tmp_path / "camvid"
    root.mkdir()
    lines = (camvid_dir / "val.txt").read_text().splitlines()[:6]  # two batches at least
    (root / "val.txt").write_text("".join(" ".join(str(camvid_dir / p) for p in ln.split()) + "\n" for ln in lines))
    model = _model(tmp_path / "m11.safetensors", 11)
    common = ["val", "--model", str(model), "--data", f"camvid:{root}", "--scales", "0.25", "--flip",
              "--threads", "1"]
    assert main([*common, "-o", str(tmp_path / "local"), "--num-workers", "0", "--device", "cpu"]) == 0
    assert main([*common, "-o", str(tmp_path / "ray"), "--engine", "ray", "--workers", "2",
                 "--address", ray_head.address]) == 0
    local, ours = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("local", "ray"))
    assert ours["confusion"] == local["confusion"] and ours["metrics"] == local["metrics"]
    assert ours["num_images"] == 6 and ours["protocol"]["engine"] == "ray"
    assert len(set(np.argmax(local["confusion"], axis=1))) > 1  # random weights, yet not one class everywhere


@pytest.fixture()
def joined(ray_head):
    """This process joined to the module's head, as a user's script with ``ray.init(address)``."""
    ray = require_module("ray")
    ray.init(address=ray_head.address, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_segment_batch_on_a_ray_dataset_and_write_results(joined, model_file, tmp_path):
    from liteseg.inference.preprocess import normalize
    from liteseg.inference.ray_data import SegmentBatch, write_results

    rng = np.random.RandomState(1)
    rows = [{"image": rng.randint(0, 255, (32 + 8 * i, 40, 3), dtype=np.uint8), "path": f"/x/img{i}.jpg"}
            for i in range(3)]
    ds = joined.data.from_items(rows).map_batches(
        SegmentBatch, fn_constructor_kwargs={"model": str(model_file), "threads": 1, "probs": True},
        compute=joined.data.ActorPoolStrategy(size=1), batch_size=2, num_cpus=1)
    written = []
    loaded = liteseg.load(model_file)
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        written += write_results(batch, tmp_path, class_names=loaded.meta.class_names, palette=loaded.meta.palette)
        for i, labels in enumerate(batch["labels"]):
            with torch.inference_mode():
                out = loaded.model(torch.from_numpy(normalize(np.asarray(batch["image"][i]), loaded.meta)))
            logits = (out[0] if isinstance(out, (list, tuple)) else out)[0].numpy()
            top2 = np.sort(logits, axis=0)[-2:]
            clear = top2[1] - top2[0] > 1e-3  # away from near-ties
            np.testing.assert_array_equal(labels[clear], logits.argmax(axis=0)[clear])
            np.testing.assert_allclose(batch["probs"][i].astype(np.float32).sum(axis=0), 1.0, atol=5e-3)
            png = tmp_path / "labels" / f"{Path(str(batch['path'][i])).stem}.png"
            np.testing.assert_array_equal(np.asarray(Image.open(png)), labels)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(
        f"{kind}/img{i}.png" for kind in ("labels", "color") for i in range(3))


def test_gpu_workers_on_a_cluster_without_gpus_are_refused(ray_head, images, model_file, tmp_path, capsys):
    assert main(["predict", str(images), "--model", str(model_file), "-o", str(tmp_path / "o"), "--engine", "ray",
                 "--address", ray_head.address, "--gpus-per-worker", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--gpus-per-worker 0.5: the Ray cluster has no GPUs (2 CPUs); leave the option out" in err
    assert "Traceback" not in err and not (tmp_path / "o" / "labels").exists()


@pytest.fixture()
def s3_images(images):
    """The test images in a bucket of a local S3 emulator (moto's server on loopback), as an ``s3://`` URI."""
    boto3 = require_module("boto3")
    (port,) = free_ports()
    server = require_module("moto.server").ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=f"http://{endpoint}")
    client.create_bucket(Bucket="frames")
    for path in sorted(images.rglob("*.png")):
        client.put_object(Bucket="frames", Key=f"run1/{path.relative_to(images).as_posix()}", Body=path.read_bytes())
    yield f"s3://frames/run1?endpoint_override={endpoint}&scheme=http"
    server.stop()


def test_resume_from_s3_skips_finished_images_and_redoes_partial_ones(ray_head, predicted, s3_images, model_file,
                                                                     capsys):
    """One job for three things: ``--resume``, an ``s3://`` source (moto's server) and ``--address auto``."""
    base = predicted[0]
    out = base / "resumed"
    shutil.copytree(base / "ray", out)
    (out / "color" / "05.png").unlink()  # a job stopped between two outputs of one image
    (out / "labels" / ".07.x1y2.tmp.png").write_bytes(b"half a png")  # and one killed in the middle of a write
    kept = {p: p.stat().st_mtime_ns for p in (out / "labels" / "01.png", out / "overlay" / "sub" / "04.jpg")}
    options = ["--model", str(model_file), "--engine", "ray", "--workers", "1", "--threads", "1",
               "--address", "auto"]  # the head 'ray start' runs on this machine
    argv = ["predict", s3_images, "-o", str(out), *options]
    assert main(argv) == 2 and "not empty" in capsys.readouterr().err  # never overwrites silently
    assert main([*argv, "--resume"]) == 1
    text = capsys.readouterr().out
    assert f"resume: {N_GOOD - 1} of {N_GOOD + 1} image(s) already done, 2 to go; removed 1 partial file(s)" in text
    assert "1 image(s) segmented, 1 failed" in text
    assert re.search(r"skipped: s3://frames/run1/broken\.png: not a readable image", text)
    assert _outputs(out) == _outputs(base / "ref")  # the object's outputs are the local file's, byte for byte
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    missing = s3_images.replace("/run1?", "/run2?")
    assert main(["predict", missing, "-o", str(base / "none"), *options]) == 2
    assert f"{missing}: no such object or prefix" in capsys.readouterr().err and not (base / "none").exists()


@pytest.mark.ray_client
def test_ray_predict_through_ray_client(ray_head, images, model_file, tmp_path, torch_threads):
    out = tmp_path / "out"
    assert main(["predict", str(images / "sub"), "--model", str(model_file), "-o", str(out), "--engine", "ray",
                 "--address", ray_head.client, "--workers", "1", "--threads", "1"]) == 0
    reference = tmp_path / "ref"
    assert main(["predict", str(images / "sub"), "--model", str(model_file), "-o", str(reference),
                 "--threads", "1"]) == 0
    assert _outputs(out) == _outputs(reference) and len(_outputs(out)) == 3 * 4 + 1
