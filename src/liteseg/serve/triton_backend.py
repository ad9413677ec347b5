"""The Triton Python-backend model of ``liteseg export --format triton`` (and of ``liteseg serve --engine triton``).

The repository's ``model.py`` re-exports :class:`TritonPythonModel`; the weights are ``<version>/model.safetensors``
beside it. Each request is answered on its own (a bad image fails only its request, with ``INVALID_ARG``: HTTP 400),
and the good images of a dynamic batch go through the model together.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..inference.segmenter import Segmenter
from .errors import ApiError
from .tensors import INPUTS, PROBS, output_tensors, probabilities_segmenter, request_image, requested_outputs

WEIGHTS = "model.safetensors"


class TritonPythonModel:
    """Triton's Python-backend interface: ``initialize``, ``execute`` and ``finalize``."""

    def initialize(self, args: dict[str, Any]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        weights = Path(args["model_repository"]) / args["model_version"] / WEIGHTS
        threads = int(params.get("threads", "0")) or None
        self.segmenter = Segmenter(str(weights), threads=threads, keep_image=False,
                                   batch_size=max(1, int(config.get("max_batch_size", 1))))
        self.with_probs = probabilities_segmenter(self.segmenter)
        self.max_pixels = int(params.get("max_pixels", str(4096 * 4096)))

    def execute(self, requests: list[Any]) -> list[Any]:
        import triton_python_backend_utils as pb_utils

        answers: list[Any] = [None] * len(requests)
        plain: list[tuple[int, Any, list[str]]] = []
        for i, request in enumerate(requests):
            try:
                inputs = {}
                for name in INPUTS:
                    tensor = pb_utils.get_input_tensor_by_name(request, name)
                    if tensor is not None:
                        inputs[name] = tensor.as_numpy()
                rgb, _ = request_image(inputs, self.max_pixels)
                names = requested_outputs(list(request.requested_output_names()))
                if PROBS in names:
                    answers[i] = self._response(self.with_probs.predict_rgb([rgb])[0], names)
                else:
                    plain.append((i, rgb, names))
            except ApiError as e:
                answers[i] = self._error(e)
        try:
            results = self.segmenter.predict_rgb([rgb for _, rgb, _ in plain])
        except Exception as e:  # the model failed: every request of the batch gets the error, Triton keeps serving
            failure = ApiError(500, "inference_failed", f"the model failed ({type(e).__name__}: {e})")
            results = [failure] * len(plain)
        for (i, _, names), result in zip(plain, results):
            answers[i] = self._error(result) if isinstance(result, ApiError) else self._response(result, names)
        return answers

    @staticmethod
    def _response(result: Any, names: list[str]) -> Any:
        import triton_python_backend_utils as pb_utils

        return pb_utils.InferenceResponse([pb_utils.Tensor(n, v[None]) for n, v in output_tensors(result,
                                                                                                   names).items()])

    @staticmethod
    def _error(error: ApiError) -> Any:
        import triton_python_backend_utils as pb_utils

        code = pb_utils.TritonError.INTERNAL if error.status >= 500 else pb_utils.TritonError.INVALID_ARG
        return pb_utils.InferenceResponse(error=pb_utils.TritonError(f"{error.code}: {error.message}", code))

    def finalize(self) -> None:
        self.segmenter.backend.close()
