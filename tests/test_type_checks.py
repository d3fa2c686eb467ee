"""The type checkers reject what they must: tests/type_tests/rejected_lines.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REJECTED = ROOT / "tests" / "type_tests" / "rejected_lines.py"
BIN = Path(sys.executable).parent


def _marked_lines() -> set[int]:
    lines = REJECTED.read_text().splitlines()
    return {number for number, line in enumerate(lines, start=1) if line.endswith("# rejected")}


def _error_lines(output: str, pattern: str) -> set[int]:
    return {int(match) for match in re.findall(pattern, output)}


@pytest.mark.slow
def test_mypy_rejects_each_marked_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", str(REJECTED.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    found = _error_lines(result.stdout, r"rejected_lines\.py:(\d+): error:")
    assert found == _marked_lines(), result.stdout


@pytest.mark.slow
def test_pyright_rejects_each_marked_line(tmp_path: Path) -> None:
    # The project's configuration excludes this file, so give pyright one
    # without the exclusion, with the same strictness.
    config = {
        "typeCheckingMode": "strict",
        "pythonVersion": "3.11",
        "stubPath": str(ROOT / "typings"),
        "venvPath": str(ROOT),
        "venv": ".venv",
        "extraPaths": [str(ROOT)],
    }
    (tmp_path / "pyrightconfig.json").write_text(json.dumps(config))
    result = subprocess.run(
        [str(BIN / "pyright"), "--project", str(tmp_path / "pyrightconfig.json"), str(REJECTED)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    found = _error_lines(result.stdout, r"rejected_lines\.py:(\d+):\d+ - error:")
    assert found == _marked_lines(), result.stdout
