"""ChannelsLiveServerTestCase: a real daphne server for browser and client tests.

Needs the ``daphne`` extra. The server runs the project's ASGI_APPLICATION
(with static files served, as ``runserver`` does) in a forked process, so the
test database and settings of the test run are the server's too.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import ClassVar

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

    _server_process: DaphneProcess
    _port: int
    _live_server_modified_settings: modify_settings

    @property
    def live_server_url(self) -> str:
        """The server's HTTP address, such as ``http://localhost:40123``."""
        return f"http://{self.host}:{self._port}"

    @property
    def live_server_ws_url(self) -> str:
        """The server's websocket address, such as ``ws://localhost:40123``."""
        return f"ws://{self.host}:{self._port}"

    def _pre_setup(self) -> None:
        for connection in connections.all():
            if isinstance(connection, SQLiteDatabaseWrapper) and connection.is_in_memory_db():
                raise ImproperlyConfigured(
                    "ChannelsLiveServerTestCase cannot use an in-memory SQLite database: "
                    "the server runs in another process; set DATABASES[...]['TEST']['NAME'] "
                    "to a file"
                )
        super()._pre_setup()  # type: ignore[misc]  # django-stubs omit this hook
        self._live_server_modified_settings = modify_settings(ALLOWED_HOSTS={"append": self.host})
        self._live_server_modified_settings.enable()
        # The child inherits open sockets on fork: close ours first so the two
        # processes never share a database connection.
        connections.close_all()
        serve_static = self.serve_static
        get_application: Callable[[], ASGIApplication] = lambda: _make_application(serve_static)  # noqa: E731
        self._server_process = self.ProtocolServerProcess(self.host, get_application)
        with warnings.catch_warnings():
            # Python 3.12+ warns that forking a threaded process may deadlock;
            # the child only runs the server, which is what daphne supports.
            warnings.filterwarnings(
                "ignore", "This process .* is multi-threaded", DeprecationWarning
            )
            self._server_process.start()
        if not self._server_process.ready.wait(self.startup_timeout):
            self._stop_server()
            raise RuntimeError(
                f"the live daphne server did not start within {self.startup_timeout} seconds"
            )
        self._port = self._server_process.port.value

    def _stop_server(self) -> None:
        self._server_process.terminate()
        self._server_process.join(timeout=self.startup_timeout)
        self._server_process.close()
        self._live_server_modified_settings.disable()

    def _post_teardown(self) -> None:
        self._stop_server()
        super()._post_teardown()  # type: ignore[misc]  # django-stubs omit this hook
