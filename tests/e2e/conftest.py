"""Fixtures for the end-to-end tests: the chat demo behind real ASGI servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e._servers import SERVERS, ChatServer, chat_environment, migrate, serving


@pytest.fixture(scope="session")
def chat_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh SQLite database for the demo, migrated once per run."""
    database = tmp_path_factory.mktemp("chat") / "db.sqlite3"
    migrate(chat_environment(database))
    return database


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="module", params=SERVERS)
def chat_server(
    request: pytest.FixtureRequest, chat_database: Path, log_dir: Path
) -> Iterator[ChatServer]:
    """The demo with the in-memory layer, served by each server in turn."""
    server: str = request.param
    with serving(server, chat_environment(chat_database), log_dir) as running:
        yield running
