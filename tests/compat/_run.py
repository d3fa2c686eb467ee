"""Run every compat scenario in this interpreter and write the observations as JSON.

Usage: ``python -I tests/compat/_run.py OUTPUT.json``. Run by ``test_compat.py``
with this package's interpreter and with ``.venv-upstream``'s; ``-I`` keeps the
project root off ``sys.path``, so ``channels`` is the one that venv installed.
Django is configured here, with a throwaway SQLite database, so a scenario
sees the same settings on both sides.
"""

from __future__ import annotations

import importlib
import json
import sys
import tempfile
from pathlib import Path

_COMPAT = Path(__file__).resolve().parent


def _configure_django(database: Path) -> None:
    import django
    from django.conf import settings
    from django.core.management import call_command

    settings.configure(
        SECRET_KEY="compat-scenarios-only",
        USE_TZ=True,
        ALLOWED_HOSTS=["testserver", "localhost", ".example.com", "*.bad.example"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "channels",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(database)}},
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
    )
    django.setup()
    call_command("migrate", verbosity=0)


def main(output: Path) -> None:
    """Run every ``scenarios_*`` module's scenarios and write ``{name: observation}``."""
    # The scenario modules form the package ``compat``; its parent holds only tests.
    sys.path.insert(0, str(_COMPAT.parent))
    with tempfile.TemporaryDirectory() as scratch:
        _configure_django(Path(scratch, "db.sqlite3"))
        harness = importlib.import_module("compat._harness")
        for module in sorted(_COMPAT.glob("scenarios_*.py")):
            importlib.import_module(f"compat.{module.stem}")
        observations = {
            name: harness.observe(function) for name, function in harness.SCENARIOS.items()
        }
    output.write_text(json.dumps(observations, indent=1, sort_keys=True))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
