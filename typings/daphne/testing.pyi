# Stubs for the part of daphne.testing that channels.testing.live uses.
import multiprocessing
from collections.abc import Callable, Mapping
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

from channels.types import ASGIApplication

class DaphneProcess(multiprocessing.Process):
    host: str
    port: Synchronized[int]
    ready: Event
    errors: multiprocessing.Queue[tuple[BaseException, str]]
    def __init__(
        self,
        host: str,
        get_application: Callable[[], ASGIApplication],
        kwargs: Mapping[str, object] | None = None,
        setup: Callable[[], object] | None = None,
        teardown: Callable[[], object] | None = None,
        port: int | None = None,
    ) -> None: ...
