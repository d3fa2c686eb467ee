"""Import a module named in settings, telling a wrong name from a broken module."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["ModuleMissing", "import_settings_module"]


class ModuleMissing(Exception):
    """The module named in a setting, or one of its parent packages, does not exist."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def import_settings_module(module_path: str) -> ModuleType:
    """Import ``module_path``.

    Raises:
        ModuleMissing: ``module_path`` or a parent package does not exist, so
            the setting is wrong. An ImportError raised while the module runs
            (say, a dependency it lacks) propagates unchanged.
    """
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_path != missing and not module_path.startswith(missing + "."):
            raise
        raise ModuleMissing(missing) from exc
