"""The Django matrix: the test suite on the oldest and newest supported Python and Django.

``make matrix`` (part of ``make test``) runs every session here:

- ``django42``: Django 4.2 LTS on Python 3.11;
- ``django42_py310``: Django 4.2 LTS on Python 3.10, the oldest Python
  supported; it also runs mypy and pyright for Python 3.10, with the
  django-stubs release that Python 3.10 installs (django-stubs 6.1 needs 3.11,
  so ``.venv`` cannot check for 3.10);
- ``django6``: the newest Django 6, on the newest Python 3.12 or later.

An interpreter is taken from PATH when one there runs (a pyenv shim for a
version pyenv has not selected does not), else from pyenv's versions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.error_on_missing_interpreters = True


def _runs(python: str) -> bool:
    return subprocess.run([python, "-c", ""], capture_output=True).returncode == 0


def _pyenv_pythons() -> dict[tuple[int, int], str]:
    """pyenv's interpreters by (major, minor), the newest patch release of each."""
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    found: dict[tuple[int, int], tuple[tuple[int, ...], str]] = {}
    for candidate in Path(pyenv_root, "versions").glob("3.*/bin/python3"):
        parts = candidate.parent.parent.name.split(".")
        if not all(part.isdigit() for part in parts):
            continue  # a virtualenv or a pre-release, not a plain install
        release = tuple(int(part) for part in parts)
        key = (release[0], release[1])
        if key not in found or release > found[key][0]:
            found[key] = (release, str(candidate))
    return {key: path for key, (_, path) in found.items()}


def _python(minor: int) -> str:
    """A working Python 3.<minor>, or its name for nox to report as missing."""
    name = f"python3.{minor}"
    on_path = shutil.which(name)
    if on_path and _runs(on_path):
        return on_path
    return _pyenv_pythons().get((3, minor), name)


def _newest_python(minimum_minor: int) -> str:
    """The newest working Python 3.<minor> with minor >= ``minimum_minor``."""
    for minor in range(20, minimum_minor - 1, -1):
        found = _python(minor)
        if found != f"python3.{minor}":
            return found
    return f"python3.{minimum_minor}"  # not found: nox reports it as a missing interpreter


_DJANGO_42 = "Django>=4.2,<4.3"


def _install(session: nox.Session, django: str) -> None:
    session.install("-e", ".[dev]", django)


def _pytest(session: nox.Session) -> None:
    session.run("pytest", "-p", "no:cacheprovider", *session.posargs)


def _type_check_for_python_310(session: nox.Session) -> None:
    """mypy and pyright for Python 3.10, on this venv's packages (not .venv's)."""
    venv = Path(session.virtualenv.location)
    # mypy reads the packages of the interpreter it runs on: this venv's.
    session.run("mypy", "--python-version", "3.10", "--cache-dir", str(venv / ".mypy_cache"))
    # pyproject names the venv ".venv" under venvPath; --venvpath on the
    # command line wins over venvPath, so point it at a directory whose
    # ".venv" is this venv.
    venv_path = venv / "pyright-venvpath"
    venv_path.mkdir(exist_ok=True)
    link = venv_path / ".venv"
    if not link.is_symlink():
        link.symlink_to(venv)
    session.run("pyright", "--pythonversion", "3.10", "--venvpath", str(venv_path))


@nox.session(python=_python(11))
def django42(session: nox.Session) -> None:
    """Run the suite on Django 4.2 LTS."""
    _install(session, _DJANGO_42)
    _pytest(session)


@nox.session(python=_python(10))
def django42_py310(session: nox.Session) -> None:
    """Type check for Python 3.10, then run the suite on Django 4.2 LTS there."""
    _install(session, _DJANGO_42)
    _type_check_for_python_310(session)
    _pytest(session)


@nox.session(python=_newest_python(12))
def django6(session: nox.Session) -> None:
    """Run the suite on the newest Django 6."""
    _install(session, "Django>=6,<7")
    _pytest(session)
