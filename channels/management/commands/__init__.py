"""The management commands channels adds: ``runworker``."""

from __future__ import annotations

__all__: list[str] = []
