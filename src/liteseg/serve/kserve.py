"""KServe v2 / Open Inference Protocol on ``liteseg serve``: health, model metadata and ``infer`` (JSON and the
binary tensor extension), so ``tritonclient.http`` and other v2 clients work unchanged. The tensors are those of
:mod:`liteseg.serve.tensors`; in JSON an ``IMAGE`` element is the base64 of the file.
"""
from __future__ import annotations

import base64
import binascii
import json
import struct
from typing import Any, Awaitable, Callable, Coroutine

import numpy as np
from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..inference.segmenter import SegResult, Segmenter
from .errors import ApiError
from .state import ServeState
from .tensors import (IMAGE, LABELS, MODEL_NAME, PIXELS, PROBS, labels_dtype, output_tensors,
                      probabilities_segmenter, request_image, requested_outputs, unknown_model)

HEADER_LENGTH = "Inference-Header-Content-Length"
DATATYPES = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
             "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
             "FP32": np.float32, "FP64": np.float64}
_NAMES = {np.dtype(v): k for k, v in DATATYPES.items()}


def v2_error(error: ApiError) -> JSONResponse:
    """The protocol's error body, ``{"error": message}`` (with liteseg's ``code``), and the error's status."""
    return JSONResponse({"error": error.message, "code": error.code}, status_code=error.status,
                        headers=error.headers)


def model_metadata(segmenter: Segmenter, backend: str) -> dict[str, Any]:
    """``GET /v2/models/liteseg``: the inputs and outputs of :mod:`liteseg.serve.tensors`."""
    labels = _NAMES[labels_dtype(segmenter.meta.num_classes)]
    return {"name": MODEL_NAME, "versions": ["1"], "platform": f"liteseg_{backend}",
            "inputs": [{"name": IMAGE, "datatype": "BYTES", "shape": [1]},
                       {"name": PIXELS, "datatype": "UINT8", "shape": [-1, -1, 3]}],
            "outputs": [{"name": LABELS, "datatype": labels, "shape": [-1, -1]},
                        {"name": PROBS, "datatype": "FP32", "shape": [segmenter.meta.num_classes, -1, -1]}]}


class _V2Route(APIRoute):
    """A v2 route: an :class:`ApiError` it raises is answered in the protocol's error body (:func:`v2_error`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as e:
                return v2_error(e)

        return answer


def v2_router(state: ServeState, version: str) -> APIRouter:
    """The v2 routes over ``state``'s model and batcher."""
    router = APIRouter(route_class=_V2Route)
    probs_segmenter: list[Segmenter] = []  # built on first use, on the served backend

    def model(name: str) -> Segmenter:
        if name != MODEL_NAME:
            raise unknown_model(name)
        return state.loaded_segmenter()

    @router.get("/v2", summary="v2: server metadata")
    async def server_metadata() -> dict[str, Any]:
        return {"name": "liteseg", "version": version, "extensions": ["binary_tensor_data"]}

    @router.get("/v2/health/live", summary="v2: liveness")
    async def live() -> dict[str, bool]:
        return {"live": True}

    @router.get("/v2/health/ready", summary="v2: readiness (503 until the model is loaded)")
    async def server_ready() -> Response:
        state.ready_batcher()
        return JSONResponse({"ready": True})

    @router.get("/v2/models/{name}", summary="v2: model metadata")
    async def metadata(name: str) -> Response:
        seg = model(name)
        return JSONResponse(model_metadata(seg, seg.backend.name))

    @router.get("/v2/models/{name}/ready", summary="v2: model readiness")
    async def model_ready(name: str) -> Response:
        model(name)
        return JSONResponse({"name": MODEL_NAME, "ready": True})

    @router.post("/v2/models/{name}/infer", summary="v2: segment one image (JSON or binary tensors)")
    async def infer(name: str, request: Request) -> Response:
        seg = model(name)
        slots = state.slots
        body = await slots.body(request, state.config.max_upload_bytes)
        with slots.admit(state.ready_batcher()):
            header, rgb, outputs, binary_out = await run_in_threadpool(decode_infer_request, request, body,
                                                                       state.config.max_pixels)
            del body
            if PROBS in outputs and not probs_segmenter:
                probs_segmenter.append(probabilities_segmenter(seg))
            # on the batcher's thread either way: the process keeps one OpenMP team (liteseg.serve.openmp)
            predict = probs_segmenter[0].predict_rgb if PROBS in outputs else None
            tensors = output_tensors(await run_inference(state.ready_batcher().segment(rgb, predict)), outputs)
            return await run_in_threadpool(infer_response, header.get("id"), tensors, binary_out)

    return router


async def run_inference(pending: Awaitable[SegResult]) -> SegResult:
    """The batcher's answer, or a 500 ``inference_failed`` when the model raised."""
    try:
        return await pending
    except ApiError:
        raise
    except Exception as e:
        raise ApiError(500, "inference_failed", f"the model failed on this image ({type(e).__name__}: {e}); the "
                       "server keeps running") from None


def decode_infer_request(request: Request, body: bytes, max_pixels: int
                         ) -> tuple[dict[str, Any], np.ndarray, list[str], bool]:
    """The JSON header, RGB image, requested output names and whether to answer in binary (one thread hop)."""
    header, inputs, outputs, binary_out = parse_infer_request(request, body)
    rgb, _ = request_image(inputs, max_pixels)
    return header, rgb, outputs, binary_out


def parse_infer_request(request: Request, body: bytes
                        ) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str], bool]:
    """The JSON header, input arrays, requested output names and whether to answer in binary."""
    declared = request.headers.get(HEADER_LENGTH)
    try:
        split = int(declared) if declared is not None else len(body)
        if not 0 <= split <= len(body):
            raise ValueError(f"{HEADER_LENGTH} {split} is outside the {len(body)}-byte body")
        header = json.loads(body[:split])
        if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
            raise ValueError("the body must be a JSON object with an 'inputs' list")
        binary = memoryview(body)[split:]
        inputs: dict[str, np.ndarray] = {}
        for spec in header["inputs"]:
            array, used = _input_array(spec, binary)
            binary = binary[used:]
            inputs[str(spec["name"])] = array
        requested = header.get("outputs") or []
        names = [str(o["name"]) for o in requested]
        binary_out = bool((header.get("parameters") or {}).get("binary_data_output")) or any(
            (o.get("parameters") or {}).get("binary_data") for o in requested)
    except ApiError:
        raise
    except (ValueError, KeyError, TypeError, struct.error, binascii.Error) as e:
        raise ApiError(400, "invalid_request", f"not a valid v2 inference request ({type(e).__name__}: {e}); see "
                       "the Open Inference Protocol, or use tritonclient") from None
    return header, inputs, requested_outputs(names), binary_out


def _input_array(spec: dict[str, Any], binary: memoryview) -> tuple[np.ndarray, int]:
    """One input tensor from its JSON spec (``data``) or from the front of ``binary``; and the bytes it used."""
    name, datatype, shape = str(spec["name"]), str(spec["datatype"]), [int(d) for d in spec["shape"]]
    if datatype != "BYTES" and datatype not in DATATYPES:
        raise ApiError(400, "invalid_datatype", f"input {name}: unknown datatype {datatype!r}")
    size = (spec.get("parameters") or {}).get("binary_data_size")
    if size is not None:
        raw = bytes(binary[:int(size)])
        if len(raw) != int(size):
            raise ValueError(f"input {name}: binary_data_size {size} exceeds the binary data sent")
        array = _bytes_elements(raw) if datatype == "BYTES" else np.frombuffer(raw, DATATYPES[datatype])
        used = int(size)
    elif datatype == "BYTES":
        array = np.array([base64.b64decode(str(s), validate=True) for s in np.ravel(spec["data"])], dtype=object)
        used = 0
    else:
        array, used = np.asarray(spec["data"]).ravel().astype(DATATYPES[datatype]), 0
    if array.size != int(np.prod(shape)):
        raise ApiError(400, "invalid_shape", f"input {name}: shape {shape} needs {int(np.prod(shape))} elements, "
                       f"the data has {array.size}")
    return array.reshape(shape), used


def _bytes_elements(raw: bytes) -> np.ndarray:
    """The binary BYTES encoding (4-byte little-endian length, then the bytes, per element) as an object array."""
    items, offset = [], 0
    while offset < len(raw):
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise ValueError("a BYTES element is longer than the data sent")
        items.append(raw[offset:offset + length])
        offset += length
    return np.array(items, dtype=object)


def infer_response(request_id: Any, tensors: dict[str, np.ndarray], binary: bool) -> Response:
    """The v2 response: JSON data, or a JSON header followed by the raw little-endian tensors."""
    outputs, chunks = [], []
    for name, array in tensors.items():
        entry: dict[str, Any] = {"name": name, "datatype": _NAMES[array.dtype], "shape": list(array.shape)}
        if binary:
            chunk = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            entry["data"] = array.ravel().tolist()
        outputs.append(entry)
    body: dict[str, Any] = {"model_name": MODEL_NAME, "model_version": "1", "outputs": outputs}
    if request_id is not None:
        body["id"] = request_id
    if not binary:
        return JSONResponse(body)
    header = json.dumps(body).encode()
    return Response(header + b"".join(chunks), media_type="application/octet-stream",
                    headers={HEADER_LENGTH: str(len(header))})
