"""``liteseg serve [--model M]``: the HTTP API and web page (FastAPI + uvicorn, ``pip install 'liteseg[serve]'``)."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import shutil
import tempfile

from . import options

log = logging.getLogger("liteseg")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the model over HTTP (JSON/PNG API, metrics, web page)",
                       description="Serve a model over HTTP: POST /v1/segment, GET /v1/model, /healthz, /readyz, "
                                   "/metrics, a web page at / and the OpenAPI schema at /docs.")
    p.add_argument("--model", "-m", help="model file (any format liteseg.load accepts, or .onnx); default: the "
                                         "shipped default model, PP-LiteSeg-T for CamVid street scenes (11 classes, "
                                         "480x360)")
    p.add_argument("--imgsz", metavar="WxH|native", type=options.imgsz,
                   help="run at this size, aspect kept (default: the model's own, e.g. 480x360; native: each "
                        "image's own); labels come back at the original size")
    p.add_argument("--backend", help="torch, onnxruntime or openvino (default: torch; onnxruntime for .onnx)")
    p.add_argument("--device", help="torch device, e.g. cpu or cuda:0")
    p.add_argument("--threads", type=options.threads, help="CPU threads for the backend (0: default)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=options.port, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=options.positive_int, default=1,
                   help="server processes, each loading the model (default 1)")
    p.add_argument("--max-batch", type=options.positive_int, default=8,
                   help="images per model batch (default 8; 1 disables batching)")
    p.add_argument("--max-wait-ms", type=options.float_range(0.0), default=5.0,
                   help="how long the first image of a batch waits for more (default 5 ms)")
    p.add_argument("--max-queue", type=options.positive_int, default=64,
                   help="image requests being received, queued or segmented per worker before 503 + "
                        "Retry-After (default 64)")
    p.add_argument("--max-pixels", type=options.positive_int, default=4096 * 4096,
                   help="largest image (width x height) accepted, else 413 (default 16777216)")
    p.add_argument("--max-upload-mb", type=options.float_range(0.0, low_open=True), default=20.0,
                   help="largest request body in MiB, else 413 (default 20)")
    p.add_argument("--shutdown-timeout", type=options.float_range(0.0), default=30.0,
                   help="seconds in-flight requests get to finish on Ctrl+C / SIGTERM (default 30)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..inference.about import describe
    from ..serve.app import CONFIG_ENV, ServeConfig, build_segmenter, config_to_env, create_app
    from ..serve.telemetry import MULTIPROC_ENV

    config = ServeConfig(model=args.model, backend=args.backend, device=args.device, threads=args.threads,
                         max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                         max_pixels=args.max_pixels, max_upload_mb=args.max_upload_mb, imgsz=args.imgsz)
    if not _is_loopback(args.host):
        log.warning("warning: binding %s makes the API reachable from other machines; it has no authentication",
                    args.host)
    segmenter = build_segmenter(config)  # fail here, with a clear message, on a bad model or backend
    print(f"model: {describe(segmenter.meta)}")
    options = dict(host=args.host, port=args.port, timeout_graceful_shutdown=args.shutdown_timeout,
                   log_level="info", access_log=False)
    print(f"serving {args.model or 'the default model'} ({segmenter.backend.name}) on "
          f"http://{args.host}:{args.port}/  (API docs: /docs, Ctrl+C to stop)", flush=True)
    if args.workers == 1:
        uvicorn.run(create_app(config, segmenter), **options)
    else:
        del segmenter  # each worker process loads its own copy
        os.environ[CONFIG_ENV] = config_to_env(config)
        own_dir = MULTIPROC_ENV not in os.environ  # one set of /metrics numbers across the workers
        if own_dir:
            os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="liteseg-metrics-")
        try:
            uvicorn.run("liteseg.serve.app:app_from_env", factory=True, workers=args.workers, **options)
        finally:
            if own_dir:
                shutil.rmtree(os.environ.pop(MULTIPROC_ENV), ignore_errors=True)
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
