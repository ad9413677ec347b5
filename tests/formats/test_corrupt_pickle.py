"""A corrupt .pdparams is one clear error: no interpreter-level SystemError, whatever opcode the damage forms."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def test_corrupt_bytearray_opcode_gives_one_clean_error(fixture_dir, tmp_path):
    # One byte of the fixture turned into BYTEARRAY8 whose 8-byte length is the following bytes (about 7.5e18):
    # C's unpickler then printed "SystemError: deallocated bytearray object has exported buffers".
    data = bytearray((fixture_dir / "weights.pdparams").read_bytes()[:50000])
    data[4251] = 0x96
    bad = tmp_path / "corrupt.pdparams"
    bad.write_bytes(bytes(data))
    proc = subprocess.run([sys.executable, "-m", "liteseg", "info", str(bad)], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 2
    assert "SystemError" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and "corrupt" in proc.stderr and len(proc.stderr.splitlines()) == 1
