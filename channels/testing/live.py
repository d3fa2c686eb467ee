"""ChannelsLiveServerTestCase: a real daphne server for browser and client tests.

Needs the ``daphne`` extra. The server runs the project's ASGI_APPLICATION
(with static files served, as ``runserver`` does) in a forked process, so the
test database and settings of the test run are the server's too.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from asgiref.sync import SyncToAsync
from daphne.testing import DaphneProcess
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabaseWrapper
from django.test import TransactionTestCase
from django.test.utils import modify_settings

from channels.routing import get_default_application
from channels.types import ASGIApplication

__all__ = ["ChannelsLiveServerTestCase"]


def _reset_thread_pools() -> None:
    """Give asgiref fresh thread pools in the forked server process.

    Threads do not survive fork: pools inherited from the test process count
    worker threads that no longer exist, and work sent to them never runs.
    """
    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)
    SyncToAsync.context_to_thread_executor = weakref.WeakKeyDictionary()


def _make_application(serve_static: bool) -> ASGIApplication:
    application = get_default_application()
    if serve_static:
        # Django's handler wraps any ASGI app; its stubs name only ASGIHandler.
        return ASGIStaticFilesHandler(application)  # type: ignore[arg-type]
    return application


class ChannelsLiveServerTestCase(TransactionTestCase):
    """A TransactionTestCase that serves the ASGI application on a live daphne server.

    ``live_server_url`` and ``live_server_ws_url`` give its addresses. The
    database must be one a second process can open (not in-memory SQLite).
    """

    host: ClassVar[str] = "localhost"
    serve_static: ClassVar[bool] = True
    startup_timeout: ClassVar[float] = 10.0
    ProtocolServerProcess: ClassVar[type[DaphneProcess]] = DaphneProcess

    _server_process: ClassVar[DaphneProcess]
    _port: ClassVar[int]
    _live_server_modified_settings: ClassVar[modify_settings]

    @property
    def live_server_url(self) -> str:
        """The server's HTTP address, such as ``http://localhost:40123``."""
        return f"http://{self.host}:{self._port}"

    @property
    def live_server_ws_url(self) -> str:
        """The server's websocket address, such as ``ws://localhost:40123``."""
        return f"ws://{self.host}:{self._port}"

    @classmethod
    def setUpClass(cls) -> None:
        """Start one server for the whole class, after the test database exists."""
        for connection in connections.all():
            if isinstance(connection, SQLiteDatabaseWrapper) and connection.is_in_memory_db():
                raise ImproperlyConfigured(
                    "ChannelsLiveServerTestCase cannot use an in-memory SQLite database: "
                    "the server runs in another process; set DATABASES[...]['TEST']['NAME'] "
                    "to a file"
                )
        super().setUpClass()
        cls._live_server_modified_settings = modify_settings(ALLOWED_HOSTS={"append": cls.host})
        cls._live_server_modified_settings.enable()
        # The child inherits open sockets on fork: close ours first so the two
        # processes never share a database connection.
        connections.close_all()
        serve_static = cls.serve_static
        get_application: Callable[[], ASGIApplication] = lambda: _make_application(serve_static)  # noqa: E731
        cls._server_process = cls.ProtocolServerProcess(
            cls.host, get_application, setup=_reset_thread_pools
        )
        with warnings.catch_warnings():
            # Python 3.12+ warns that forking a threaded process may deadlock;
            # the child only runs the server, which is what daphne supports.
            warnings.filterwarnings(
                "ignore", "This process .* is multi-threaded", DeprecationWarning
            )
            cls._server_process.start()
        if not cls._server_process.ready.wait(cls.startup_timeout):
            cls._stop_server()
            raise RuntimeError(
                f"the live daphne server did not start within {cls.startup_timeout} seconds"
            )
        cls._port = cls._server_process.port.value

    @classmethod
    def _stop_server(cls) -> None:
        cls._server_process.terminate()
        cls._server_process.join(timeout=cls.startup_timeout)
        cls._server_process.close()
        cls._live_server_modified_settings.disable()

    @classmethod
    def tearDownClass(cls) -> None:
        """Stop the server."""
        cls._stop_server()
        super().tearDownClass()
