"""Every class users subclass has ``type`` as its run-time metaclass.

Libraries give their consumers (and middleware, layers...) metaclasses of
their own, as djangochannelsrestframework does; a Protocol or ABC among our
run-time bases would make such a subclass fail with "metaclass conflict".
The Protocols are still checked statically: see tests/type_tests.
"""

from __future__ import annotations

import pytest

from channels.auth import AuthMiddleware
from channels.consumer import AsyncConsumer, SyncConsumer
from channels.generic.http import AsyncHttpConsumer
from channels.generic.websocket import (
    AsyncJsonWebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)
from channels.layers import BaseChannelLayer, InMemoryChannelLayer
from channels.layers.redis import RedisChannelLayer, RedisPubSubChannelLayer
from channels.middleware import BaseMiddleware
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter
from channels.security.websocket import OriginValidator, WebsocketDenier
from channels.sessions import CookieMiddleware, InstanceSessionWrapper, SessionMiddleware
from channels.testing import (
    ApplicationCommunicator,
    ChannelsLiveServerTestCase,
    HttpCommunicator,
    WebsocketCommunicator,
)
from channels.worker import Worker

SUBCLASSED: list[type] = [
    AsyncConsumer,
    SyncConsumer,
    WebsocketConsumer,
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    AsyncJsonWebsocketConsumer,
    AsyncHttpConsumer,
    BaseMiddleware,
    CookieMiddleware,
    SessionMiddleware,
    AuthMiddleware,
    InstanceSessionWrapper,
    ProtocolTypeRouter,
    URLRouter,
    ChannelNameRouter,
    OriginValidator,
    WebsocketDenier,
    BaseChannelLayer,
    InMemoryChannelLayer,
    RedisChannelLayer,
    RedisPubSubChannelLayer,
    ApplicationCommunicator,
    WebsocketCommunicator,
    HttpCommunicator,
    ChannelsLiveServerTestCase,
    Worker,
]


class LibraryMeta(type):
    """A metaclass as a library brings one: it records the classes it builds."""

    built: list[str] = []  # shared on purpose: the record of every class

    def __new__(
        mcs, name: str, bases: tuple[type, ...], namespace: dict[str, object]
    ) -> LibraryMeta:
        cls = super().__new__(mcs, name, bases, namespace)
        mcs.built.append(name)
        return cls


@pytest.mark.parametrize("base", [pytest.param(cls, id=cls.__name__) for cls in SUBCLASSED])
class TestRunTimeMetaclass:
    def test_the_metaclass_is_type(self, base: type) -> None:
        assert type(base) is type

    def test_a_subclass_may_bring_its_own_metaclass(self, base: type) -> None:
        subclass = LibraryMeta(f"Library{base.__name__}", (base,), {})
        assert issubclass(subclass, base)
        assert type(subclass) is LibraryMeta
        assert f"Library{base.__name__}" in LibraryMeta.built
