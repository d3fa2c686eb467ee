"""``manage.py runworker channel [channel ...] [--layer alias]``: run a Worker.

The application is ``settings.ASGI_APPLICATION``; its ``"channel"`` scopes
(usually a ``ChannelNameRouter``) handle the messages. Once the worker listens
it writes one line to stdout saying so; SIGINT or SIGTERM stop it cleanly.
The application's lifespan (``ProtocolTypeRouter``'s hooks) runs around the
work: startup before the worker listens, shutdown after it stopped. A failed
startup or shutdown ends the command with an error saying why.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from channels import DEFAULT_CHANNEL_LAYER
from channels.exceptions import InvalidChannelLayerError
from channels.layers import channel_layers, get_channel_layer
from channels.lifespan import LifespanFailed
from channels.routing import get_default_application
from channels.worker import Worker

__all__ = ["Command"]


class Command(BaseCommand):
    """Run a worker that consumes the named channels through ASGI_APPLICATION."""

    help = "Run a worker that consumes the named channels through ASGI_APPLICATION."
    #: The class run; a subclass of this command may swap in its own Worker.
    worker_class: type[Worker] = Worker

    def add_arguments(self, parser: ArgumentParser) -> None:
        """Declare the channels to consume and ``--layer``."""
        parser.add_argument(
            "--layer",
            default=DEFAULT_CHANNEL_LAYER,
            help="the CHANNEL_LAYERS alias of the layer to consume (default: %(default)s)",
        )
        parser.add_argument("channels", nargs="+", help="the channels to consume")

    # Any: Django passes the parsed options through as arbitrary values.
    def handle(self, *args: Any, **options: Any) -> None:
        """Build the worker and run it until SIGINT or SIGTERM."""
        alias: str = options["layer"]
        channels: list[str] = options["channels"]
        try:
            layer = get_channel_layer(alias)
        except InvalidChannelLayerError as exc:
            raise CommandError(str(exc)) from exc
        if layer is None:
            configured = ", ".join(repr(name) for name in channel_layers.configs) or "none"
            raise CommandError(
                f"CHANNEL_LAYERS has no layer {alias!r}: pass --layer with a configured "
                f"alias (configured: {configured}); got --layer {alias!r}"
            )
        try:
            application = get_default_application()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
        verbose = options["verbosity"] >= 1
        # By keyword, as upstream's command calls its worker_class.
        worker = self.worker_class(application=application, channels=channels, channel_layer=layer)
        try:
            worker.run(on_ready=lambda: self._say(verbose, _listening(alias, channels)))
        except LifespanFailed as exc:
            raise CommandError(str(exc)) from exc
        self._say(verbose, "Worker stopped.")

    def _say(self, verbose: bool, line: str) -> None:
        # Flushed at once: a supervisor (or a test) waits for the ready line.
        if verbose:
            self.stdout.write(line)
            self.stdout.flush()


def _listening(alias: str, channels: list[str]) -> str:
    return (
        f"Worker listening on {', '.join(channels)} (channel layer {alias!r}); "
        "stop it with SIGINT (CONTROL-C) or SIGTERM."
    )
