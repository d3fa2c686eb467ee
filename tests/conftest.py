from __future__ import annotations

from collections.abc import Iterator

import pytest
from asgiref.sync import SyncToAsync
from django.db import connections


@pytest.fixture(scope="session", autouse=True)
def close_worker_thread_connections(django_db_setup: None) -> Iterator[None]:
    """Close the connections async tests opened in asgiref's worker thread, before teardown.

    ``sync_to_async`` from an async test runs in one shared thread whose
    connections outlive the test; left open, PostgreSQL refuses to drop the
    test database ("being accessed by other users").
    """
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()
