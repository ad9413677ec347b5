"""Crafted pickles that crashed the unpickler (and torch's) with SIGSEGV end in a FormatError instead; so does
a tiny model file whose config asks for a huge model (checked under an address-space limit)."""
from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile

import pytest
import torch
from safetensors.torch import save_file

from liteseg.errors import FormatError
from liteseg.formats.pickle_scan import scan_pickle

DEEP = b"\x80\x02})" + b"\x85" * 200_000 + b"K\x01s."  # {((((...()...),): 1}, 200,000 tuples deep
_INFO = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # building the 50M-class model took 23.7 GB
from liteseg.cli.main import main
for path in sys.argv[1:]:
    print(path.rsplit("/", 1)[-1], main(["info", path]), flush=True)
"""


def test_deep_pickles_are_refused_not_crashed(tmp_path, fixture_dir):
    pdparams = tmp_path / "deep.pdparams"
    pdparams.write_bytes(DEEP)
    model_dir = tmp_path / "inference"  # the same bytes as the .pdiparams.info of an inference model
    shutil.copytree(fixture_dir / "inference", model_dir)
    (model_dir / "model.pdiparams.info").write_bytes(DEEP)
    torch.save({"w": torch.zeros(1)}, tmp_path / "ok.pt")
    pt = tmp_path / "deep.pt"  # and as the data.pkl of a torch archive
    with zipfile.ZipFile(tmp_path / "ok.pt") as src, zipfile.ZipFile(pt, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, DEEP if name.endswith("data.pkl") else src.read(name))
    huge = tmp_path / "huge.safetensors"
    save_file({"x": torch.zeros(1)}, str(huge), metadata={"liteseg": json.dumps(
        {"format_version": 1, "arch": "pp_liteseg_t", "config": {"num_classes": 50_000_000}, "meta": {}})})
    run = subprocess.run([sys.executable, "-c", _INFO, str(pdparams), str(model_dir), str(pt), str(huge)],
                         capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode != -11, "segmentation fault"
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["deep.pdparams", "2", "inference", "2", "deep.pt", "2", "huge.safetensors", "2"], \
        run.stdout + run.stderr
    assert run.stderr.count("nests containers more than 100 deep") == 3, run.stderr
    assert "config.num_classes is 50000000" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize("data", [
    pickle.dumps({(1, 2): 3}, protocol=2),  # a tuple key: hashing recurses into it
    pickle.dumps({frozenset([1]): 2}, protocol=4),
    b"\x80\x02]" + b"(]" * 150 + b"e" * 150 + b".",  # a list 150 deep
])
def test_container_keys_and_deep_nesting_are_refused(data):
    with pytest.raises(FormatError, match="refusing to load"):
        scan_pickle(data, "x.pdparams")


def test_weight_file_shapes_pass(fixture_dir):
    scan_pickle(pickle.dumps({"a": [1, {"b": (1.0, None)}], b"k": 2, 3: "v"}, protocol=2), "ok")
    scan_pickle((fixture_dir / "weights.pdparams").read_bytes(), "weights.pdparams")
