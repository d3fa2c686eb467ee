"""Scenarios: what importing each public module loads, as code that relies on it sees.

Upstream's imports load other public modules as a side effect (``import
channels.testing`` loads ``channels.routing``), and code reaches them as
attributes afterwards. Each import runs in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys

from ._harness import Observation, scenario

# Public module -> the public modules upstream's import of it loads.
_LOADS: dict[str, list[str]] = {
    "channels.consumer": ["db", "exceptions", "layers", "utils"],
    "channels.generic.websocket": ["consumer", "db", "exceptions", "generic", "layers", "utils"],
    "channels.generic.http": ["consumer", "db", "exceptions", "generic", "layers", "utils"],
    "channels.routing": [],
    "channels.middleware": [],
    "channels.sessions": ["db"],
    "channels.auth": ["db", "middleware", "sessions"],
    "channels.security.websocket": ["consumer", "generic", "generic.websocket", "layers"],
    "channels.layers": ["exceptions"],
    "channels.worker": [],
    "channels.testing": ["routing", "testing.application", "testing.http", "testing.websocket"],
}

_CHILD = """
import sys
import django
from django.conf import settings

settings.configure(INSTALLED_APPS=[
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions", "channels",
])
django.setup()
import importlib
importlib.import_module(sys.argv[1])
import channels

def reachable(dotted):
    value = channels
    for part in dotted.split("."):
        value = getattr(value, part, None)
    return value is not None

print(" ".join(name for name in sys.argv[2:] if not reachable(name)))
"""


@scenario
def public_modules_loaded_by_each_import() -> Observation:
    """For each public module: upstream's side-effect modules not reachable after importing it."""
    missing: dict[str, Observation] = {}
    for module, loads in _LOADS.items():
        child = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD, module, *loads],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        missing[module] = child.stdout.split() if child.returncode == 0 else child.stderr[-500:]
    return missing
