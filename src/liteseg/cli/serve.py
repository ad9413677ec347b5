"""``liteseg serve [--model M]``: the HTTP API and web page (FastAPI + uvicorn, ``pip install 'liteseg[serve]'``)."""
from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import shutil
import tempfile

from ..inference.backend_names import backend_help
from . import options
from .options import DEVICE_HELP

log = logging.getLogger("liteseg")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the model over HTTP (JSON/PNG API, metrics, web page)",
                       description="Serve a model over HTTP: POST /v1/segment, GET /v1/model, /healthz, /readyz, "
                                   "/metrics, a web page at / and the OpenAPI schema at /openapi.json.")
    p.add_argument("--model", "-m", help="model file (any format liteseg.load accepts, or .onnx); default: the "
                                         "shipped default model, PP-LiteSeg-T for CamVid street scenes (11 classes, "
                                         "480x360)")
    p.add_argument("--imgsz", metavar="WxH|native", type=options.imgsz,
                   help="run at this size, aspect kept (default: the model's own, e.g. 480x360; native: each "
                        "image's own); labels come back at the original size")
    p.add_argument("--backend", help=backend_help())
    p.add_argument("--device", help=f"{DEVICE_HELP} (default: cpu)")
    p.add_argument("--threads", type=options.threads, help="CPU threads for the backend (0: default)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=options.port, default=8000, help="port (default 8000)")
    p.add_argument("--engine", default="fastapi", choices=["fastapi", "triton"],
                   help="fastapi: liteseg's own server (default); triton: NVIDIA Triton through PyTriton "
                        "(pip install 'liteseg[triton]'), HTTP on --port, gRPC on --grpc-port, metrics on "
                        "--metrics-port")
    p.add_argument("--grpc-port", type=options.port, default=8001, help="--engine triton: gRPC port (default 8001)")
    p.add_argument("--metrics-port", type=options.port, default=8002,
                   help="--engine triton: Prometheus metrics port (default 8002)")
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
    p.add_argument("--max-aspect", type=options.float_range(1.0), default=20.0,
                   help="largest aspect ratio (long side / short side) accepted, else 413 (default 20)")
    p.add_argument("--max-batch-pixels", type=options.positive_int, default=4096 * 4096,
                   help="pixels per model batch; larger batches are split (default 16777216)")
    p.add_argument("--max-uploads", type=options.positive_int, default=128,
                   help="request bodies being received at once per worker, apart from --max-queue (default 128)")
    p.add_argument("--min-upload-kbs", type=options.float_range(0.0, low_open=True), default=16.0,
                   help="KiB/s an upload must keep up after its first 10 s, else 408 (default 16)")
    p.add_argument("--shutdown-timeout", type=options.float_range(0.0), default=30.0,
                   help="seconds in-flight requests get to finish on Ctrl+C / SIGTERM (default 30)")
    p.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> None:
    """serve's checks: the inference options, the serve extra installed, the port free."""
    options.check_inference(args)
    options.require_modules(("fastapi", "serve"), ("uvicorn", "serve"), ("python_multipart", "serve"),
                            ("prometheus_client", "serve"), what="liteseg serve")
    options.check_port_free(args.host, args.port)


def run(args: argparse.Namespace) -> int:
    if args.engine == "triton":
        return run_triton(args)
    import uvicorn

    from ..inference.about import describe
    from ..serve.app import CONFIG_ENV, ServeConfig, build_segmenter, config_to_env, create_app
    from ..serve.guard import LOOPBACK_HOSTS
    from ..serve.slow_clients import HeaderTimeoutProtocol
    from ..serve.telemetry import MULTIPROC_ENV, OWN_DIR_ENV

    config = ServeConfig(model=args.model, backend=args.backend, device=args.device, threads=args.threads,
                         max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
                         max_pixels=args.max_pixels, max_upload_mb=args.max_upload_mb, max_aspect=args.max_aspect,
                         max_batch_pixels=args.max_batch_pixels, max_uploads=args.max_uploads,
                         min_upload_kbs=args.min_upload_kbs, imgsz=args.imgsz,
                         allowed_hosts=sorted(LOOPBACK_HOSTS) if _is_loopback(args.host) else None)
    if not _is_loopback(args.host):
        log.warning("warning: binding %s makes the API reachable from other machines; it has no authentication",
                    args.host)
    segmenter = build_segmenter(config)  # fail here, with a clear message, on a bad model or backend
    print(f"model: {describe(segmenter.meta)}")
    options = dict(host=args.host, port=args.port, timeout_graceful_shutdown=args.shutdown_timeout,
                   log_level="info", access_log=False, http=HeaderTimeoutProtocol)
    print(f"serving {args.model or 'the default model'} ({segmenter.backend.name}) on "
          f"http://{args.host}:{args.port}/  (API schema: /openapi.json, Ctrl+C to stop)", flush=True)
    if args.workers == 1:
        uvicorn.run(create_app(config, segmenter), **options)
    else:
        del segmenter  # each worker process loads its own copy
        os.environ[CONFIG_ENV] = config_to_env(config)
        own_dir = MULTIPROC_ENV not in os.environ  # one set of /metrics numbers across the workers
        if own_dir:
            os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="liteseg-metrics-")
            os.environ[OWN_DIR_ENV] = "1"
        try:
            uvicorn.run("liteseg.serve.app:app_from_env", factory=True, workers=args.workers, **options)
        finally:
            if own_dir:
                shutil.rmtree(os.environ.pop(MULTIPROC_ENV), ignore_errors=True)
    return 0


def run_triton(args: argparse.Namespace) -> int:
    """``--engine triton``: Triton (through PyTriton) serving the model's Python-backend repository."""
    from ..errors import LitesegError
    from ..loading.zoo import default_model
    from ..serve.triton import TritonOptions, serve_triton

    if args.workers != 1 or args.backend not in (None, "torch") or args.device:
        raise LitesegError("--engine triton runs the torch model on CPU in one Triton model instance; drop "
                           "--workers, --backend and --device")
    options.require_modules(("pytriton", "triton"),
                            what="liteseg serve --engine triton (nvidia-pytriton, which needs numpy < 2)")
    for port in (args.grpc_port, args.metrics_port):
        options.check_port_free(args.host, port)
    if not _is_loopback(args.host):
        log.warning("warning: binding %s makes Triton reachable from other machines; it has no authentication",
                    args.host)
    config = TritonOptions(host=args.host, http_port=args.port, grpc_port=args.grpc_port,
                           metrics_port=args.metrics_port, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                           max_pixels=args.max_pixels, threads=args.threads)
    print(f"serving {args.model or 'the default model'} in Triton as 'liteseg': HTTP http://{args.host}:{args.port}/"
          f"v2/models/liteseg, gRPC {args.host}:{args.grpc_port}, metrics http://{args.host}:{args.metrics_port}/"
          "metrics (Ctrl+C to stop)", flush=True)
    serve_triton(args.model or default_model(), config)
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
