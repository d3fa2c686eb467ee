from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_ships_py_typed(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("typed_channels-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "channels/py.typed" in names
    assert "channels/layers/in_memory.py" in names
    assert not any(name.startswith("tests/") for name in names)
