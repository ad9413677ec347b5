"""``liteseg --help`` answers without torch; ``import liteseg`` stays light (no datasets, plots, ONNX, web stack)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from liteseg.cli.main import COMMANDS

HEAVY = ["torch", "numpy", "PIL", "liteseg.data", "matplotlib", "onnx", "onnxruntime", "openvino", "fastapi"]


def _imported_after(code: str) -> list[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"]] + [[name, "--help"] for name in COMMANDS], ids=lambda a: " ".join(a))
def test_help_parses_arguments_before_importing_anything_heavy(argv):
    code = f"from liteseg.cli.main import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert _imported_after(code) == []


def test_import_liteseg_is_light_and_the_public_names_still_resolve():
    assert _imported_after("import liteseg") == []
    loaded = _imported_after("import liteseg\nliteseg.load, liteseg.Segmenter, liteseg.create_model, liteseg.ModelMeta"
                             "\nfrom liteseg import list_models, list_weights, SegResult")
    assert loaded == ["torch", "numpy", "PIL"]


def test_unknown_attribute_is_an_attribute_error():
    import liteseg

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        liteseg.nope  # noqa: B018
    assert {"load", "Segmenter", "__version__"} <= set(dir(liteseg))
