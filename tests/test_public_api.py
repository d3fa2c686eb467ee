"""The drop-in surface: every public name upstream Channels 4.2 documents is here."""

from __future__ import annotations

import importlib

import pytest

# Module -> the names DESIGN.md lists for it (upstream's public surface), plus
# this project's documented additions.
DROP_IN: dict[str, set[str]] = {
    "channels": {"DEFAULT_CHANNEL_LAYER", "__version__"},
    "channels.consumer": {"AsyncConsumer", "SyncConsumer", "get_handler_name"},
    "channels.generic.websocket": {
        "WebsocketConsumer",
        "AsyncWebsocketConsumer",
        "JsonWebsocketConsumer",
        "AsyncJsonWebsocketConsumer",
    },
    "channels.generic.http": {"AsyncHttpConsumer"},
    "channels.routing": {
        "ProtocolTypeRouter",
        "URLRouter",
        "ChannelNameRouter",
        "get_default_application",
    },
    "channels.middleware": {"BaseMiddleware"},
    "channels.sessions": {
        "CookieMiddleware",
        "SessionMiddleware",
        "SessionMiddlewareStack",
        "InstanceSessionWrapper",
    },
    "channels.auth": {"AuthMiddleware", "AuthMiddlewareStack", "login", "logout", "get_user"},
    "channels.security.websocket": {
        "OriginValidator",
        "AllowedHostsOriginValidator",
        "WebsocketDenier",
    },
    "channels.layers": {
        "BaseChannelLayer",
        "InMemoryChannelLayer",
        "ChannelLayerManager",
        "channel_layers",
        "get_channel_layer",
        "ChannelLayer",
        "GroupChannelLayer",
        "FlushableChannelLayer",
        "ClosableChannelLayer",
        "FullChannelLayer",
    },
    "channels.db": {"database_sync_to_async", "aclose_old_connections"},
    "channels.exceptions": {
        "StopConsumer",
        "AcceptConnection",
        "DenyConnection",
        "ChannelFull",
        "MessageTooLarge",
        "InvalidChannelLayerError",
        "RequestAborted",
        "RequestTimeout",
    },
    "channels.utils": {"await_many_dispatch"},
    "channels.worker": {"Worker"},
    "channels.apps": {"ChannelsConfig"},
    "channels.testing": {
        "ApplicationCommunicator",
        "WebsocketCommunicator",
        "HttpCommunicator",
        "ChannelsLiveServerTestCase",
    },
}


@pytest.mark.parametrize("module_name", sorted(DROP_IN))
def test_module_exports_the_drop_in_names(module_name: str) -> None:
    module = importlib.import_module(module_name)
    exported = set(module.__all__)
    missing = DROP_IN[module_name] - exported
    assert not missing, f"{module_name}.__all__ lacks {sorted(missing)}"
    for name in exported:
        assert hasattr(module, name), f"{module_name}.__all__ names {name!r}, which is absent"


def test_runworker_command_exists() -> None:
    module = importlib.import_module("channels.management.commands.runworker")
    assert hasattr(module, "Command")
