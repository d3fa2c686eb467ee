"""Import a module named in settings, saying whether the name is wrong or the module broken."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["SettingsImportError", "import_settings_module"]


class SettingsImportError(Exception):
    """The module named in a setting could not be imported; ``reason`` says why.

    Callers raise their own configuration error with the reason, chained to
    the ImportError behind it, as upstream wraps every ImportError.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def import_settings_module(module_path: str) -> ModuleType:
    """Import ``module_path``.

    Raises:
        SettingsImportError: ``module_path`` or a parent package does not exist
            (the setting is wrong), or importing it raised an ImportError (say,
            a dependency it lacks); chained to that ImportError.
    """
    try:
        return importlib.import_module(module_path)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_path == missing or module_path.startswith(missing + "."):
            raise SettingsImportError(f"there is no module {missing!r}") from exc
        raise SettingsImportError(
            f"importing module {module_path!r} raised ModuleNotFoundError: {exc}"
        ) from exc
    except ImportError as exc:
        raise SettingsImportError(
            f"importing module {module_path!r} raised {type(exc).__name__}: {exc}"
        ) from exc
