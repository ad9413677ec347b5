"""What this machine offers the backends: whether bfloat16 has a hardware fast path on the CPU."""
from __future__ import annotations

import platform
from pathlib import Path

import torch

_X86 = ("x86_64", "amd64", "i386", "i686")

SLOW_BF16 = ("half precision on this CPU: it has no bfloat16 hardware (AVX512-BF16 or AMX on x86, the BF16 extension "
             "on Arm), so bf16 is emulated and runs many times slower than float32 (measured: 89 ms -> 4.7 s per "
             "360x480 frame on an AVX2 CPU); run without --half (half=False), or on a GPU or a CPU with bf16")


def cpu_bf16_fast_path() -> bool:
    """Whether the CPU computes bfloat16 natively (x86: AVX512-BF16 or AMX tiles, as oneDNN needs; Arm: BF16).

    Where nothing tells (no ``/proc/cpuinfo`` on a non-x86 machine, e.g. macOS), it answers True: no warning.
    """
    if platform.machine().lower() in _X86:
        probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return True
    return "bf16" in flags
