"""Coverage-guided runs with atheris (libFuzzer): ``python -m fuzz NAME --engine atheris``.

libFuzzer enforces the same contract as the built-in engine: an exception other than ``LitesegError`` is a
crash, ``-timeout`` catches hangs and ``-rss_limit_mb`` memory growth. It stops at the first violation and
writes the input under ``artifacts``.
"""
from __future__ import annotations

import random
import sys
from pathlib import Path

from .runner import _rss_mb, limit_memory


def main(name: str, runs: int, seed: int, timeout: float, artifacts: Path, max_seconds: float = 0) -> None:
    import atheris

    with atheris.instrument_imports(include=["liteseg"]):
        import liteseg.data.io  # noqa: F401  (every module a harness reaches, instrumented for coverage)
        import liteseg.images  # noqa: F401
        import liteseg.inference.onnx_graph  # noqa: F401
        import liteseg.formats.deploy  # noqa: F401
        import liteseg.formats.inference_model  # noqa: F401
        import liteseg.formats.native  # noqa: F401
        import liteseg.formats.pdiparams  # noqa: F401
        import liteseg.formats.pdparams  # noqa: F401
        import liteseg.formats.pir  # noqa: F401
        import liteseg.formats.pir_info  # noqa: F401
        import liteseg.formats.program  # noqa: F401
        import liteseg.serve.codecs  # noqa: F401
    from liteseg.errors import LitesegError

    from .targets import HARNESSES

    harness = HARNESSES[name]
    corpus = artifacts / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, data in enumerate(harness.seeds()):
        (corpus / f"seed-{i}").write_bytes(data[: harness.max_len])

    def one_input(data: bytes) -> None:
        try:
            harness.target(data)
        except LitesegError:
            pass

    def custom_mutator(data: bytes, max_size: int, mseed: int) -> bytes:
        rng = random.Random(mseed)
        if harness.mutators and rng.random() < 0.3:
            try:
                return rng.choice(harness.mutators)(data, rng)[:max_size]
            except Exception:  # a mutant the format's own writer refuses: fall back to libFuzzer's mutations
                pass
        return atheris.Mutate(data, max_size)

    rss_limit = int(_rss_mb() + harness.rss_cap_mb)
    limit_memory(harness.rss_cap_mb)
    args = [sys.argv[0], f"-runs={runs}", f"-seed={seed}", f"-timeout={max(1, int(timeout))}",
            f"-rss_limit_mb={rss_limit}", f"-max_len={harness.max_len}", f"-artifact_prefix={artifacts}/",
            "-print_final_stats=1", str(corpus)] + ([f"-max_total_time={int(max_seconds)}"] if max_seconds else [])
    atheris.Setup(args, one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
