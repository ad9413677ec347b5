"""The README's test command is CI's script, and that script sets up a fresh machine (browser, ffmpeg, torch first)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_test_command_is_the_ci_script():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("Run the tests", 1)[1]
    assert re.search(r"```bash\n(.*?)\n```", section, re.S).group(1) == "bash .ci/run"
    setup = readme.split("## Set up", 1)[1].split("## ", 1)[0]
    assert len(re.findall(r"```bash\n", setup)) == 2  # the set-up command and the test command, nothing else


def test_ci_script_installs_what_the_tests_need_in_order():
    script = (ROOT / ".ci" / "run").read_text()
    subprocess.run(["bash", "-n", str(ROOT / ".ci" / "run")], check=True)
    for package in ("chromium", "chromium-driver", "ffmpeg"):
        assert f"missing+=({package})" in script
    steps = ["pip install -q torch==2.13.0", 'pip install -q -e ".[dev]"', "lint-imports", "python -m pytest -q"]
    positions = [script.index(step) for step in steps]
    assert positions == sorted(positions)
