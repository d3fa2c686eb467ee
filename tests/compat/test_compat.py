"""Differential tests: every scenario observes the same thing on upstream Channels and here.

The scenarios (``scenarios_*.py``) run in two fresh interpreters, this
package's and ``.venv-upstream``'s (upstream channels and channels-redis, made
by ``make upstream``). Where upstream raises an exception, this package must
raise the same class or a subclass. A scenario listed in ``DIFFERENCES`` must
differ, and names the README entry under "Differences from Django Channels"
that says why.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest

from tests.compat._harness import SCENARIOS, Observation

_COMPAT = Path(__file__).resolve().parent
_ROOT = _COMPAT.parent.parent
_UPSTREAM_PYTHON = _ROOT / ".venv-upstream" / "bin" / "python"

for _module in sorted(_COMPAT.glob("scenarios_*.py")):
    importlib.import_module(f"tests.compat.{_module.stem}")

#: Scenario -> words from the README's "Differences from Django Channels" entry
#: that explains why the observations differ.
DIFFERENCES: dict[str, str] = {}


def _run_all(python: Path | str, output: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(python), "-I", str(_COMPAT / "_run.py"), str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="session")
def observations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Observation]]:
    """Run every scenario on both sides, at once: ``{"ours": {...}, "upstream": {...}}``."""
    if not _UPSTREAM_PYTHON.exists():
        pytest.fail(f"{_UPSTREAM_PYTHON} is missing: run `make upstream` first")
    scratch = tmp_path_factory.mktemp("compat")
    sides: dict[str, Path | str] = {"ours": sys.executable, "upstream": _UPSTREAM_PYTHON}
    runs = {side: _run_all(python, scratch / f"{side}.json") for side, python in sides.items()}
    result: dict[str, dict[str, Observation]] = {}
    for side, run in runs.items():
        output, _ = run.communicate(timeout=300)
        if run.returncode != 0:
            pytest.fail(f"the {side} scenario run failed:\n{output.decode(errors='replace')}")
        data = json.loads((scratch / f"{side}.json").read_text())
        result[side] = cast(dict[str, Observation], data)
    return result


def _same(upstream: Observation, ours: Observation) -> bool:
    """Whether ``ours`` shows a user what ``upstream`` does (a subclass of its exception counts)."""
    same_class = type(upstream) is type(ours)
    if isinstance(upstream, dict) and isinstance(ours, dict):
        up, our = cast("dict[str, object]", upstream), cast("dict[str, object]", ours)
        if set(up) == {"raised"} and set(our) == {"raised"}:
            return cast("list[str]", up["raised"])[0] in cast("list[str]", our["raised"])
        return up.keys() == our.keys() and all(_same(up[key], our[key]) for key in up)
    if isinstance(upstream, list) and isinstance(ours, list):
        up_items, our_items = cast("list[object]", upstream), cast("list[object]", ours)
        return len(up_items) == len(our_items) and all(map(_same, up_items, our_items))
    return same_class and upstream == ours


@pytest.mark.parametrize("name", [name for name in SCENARIOS if name not in DIFFERENCES])
def test_same_as_upstream(name: str, observations: dict[str, dict[str, Observation]]) -> None:
    upstream, ours = observations["upstream"][name], observations["ours"][name]
    assert _same(upstream, ours), f"upstream: {upstream!r}\nours:     {ours!r}"


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_documented_difference(name: str, observations: dict[str, dict[str, Observation]]) -> None:
    upstream, ours = observations["upstream"][name], observations["ours"][name]
    assert not _same(upstream, ours), f"{name} no longer differs: drop it from DIFFERENCES"
    readme = (_ROOT / "README.md").read_text()
    differences = readme.partition("## Differences from Django Channels")[2].partition("\n## ")[0]
    assert DIFFERENCES[name] in differences


def test_every_scenario_ran_on_both_sides(
    observations: dict[str, dict[str, Observation]],
) -> None:
    assert set(observations["ours"]) == set(observations["upstream"]) == set(SCENARIOS)
