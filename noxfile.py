"""The Django matrix: the test suite on the oldest and newest supported Django.

``make matrix`` (part of ``make test``) runs every session here. Django 6
needs Python 3.12 or newer: the newest such interpreter on PATH is used, or
one from pyenv when PATH has none.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True


def _newest_python(minimum: tuple[int, int]) -> str:
    names = [f"python3.{minor}" for minor in range(20, minimum[1] - 1, -1)]
    for name in names:
        found = shutil.which(name)
        if found and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0:
            return found
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = sorted(
        Path(pyenv_root, "versions").glob("3.*/bin/python3"),
        key=lambda path: tuple(int(p) for p in path.parent.parent.name.split(".")[:2]),
        reverse=True,
    )
    for candidate in candidates:
        version = tuple(int(p) for p in candidate.parent.parent.name.split(".")[:2])
        if version >= minimum:
            return str(candidate)
    return names[-1]  # not found: nox reports it as a missing interpreter


@nox.session(python="3.11")
def django42(session: nox.Session) -> None:
    """Run the suite on Django 4.2 LTS."""
    session.install("-e", ".[dev]", "Django>=4.2,<4.3")
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)


@nox.session(python=_newest_python((3, 12)))
def django6(session: nox.Session) -> None:
    """Run the suite on the newest Django 6."""
    session.install("-e", ".[dev]", "Django>=6,<7")
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)
