"""Scenarios: AsyncConsumer and SyncConsumer dispatch, as_asgi() and get_handler_name."""

from __future__ import annotations

from channels.consumer import AsyncConsumer, get_handler_name

from ._harness import Observation, raised, scenario


@scenario
def handler_names() -> Observation:
    """The method name a message type maps to, and what is refused."""
    seen: dict[str, Observation] = {}
    for message_type in ["chat.message", "a.b.c", "_private", "x._y"]:
        try:
            seen[message_type] = get_handler_name({"type": message_type})
        except Exception as exc:
            seen[message_type] = raised(exc)
    try:
        get_handler_name({"text": "no type"})
    except Exception as exc:
        seen["missing"] = raised(exc)
    return seen


@scenario
def as_asgi_carries_class_and_kwargs() -> Observation:
    """What routes and libraries read on the application as_asgi() returns."""

    class Echo(AsyncConsumer):
        pass

    app = Echo.as_asgi()
    return {
        "consumer_class": app.consumer_class is Echo,
        "consumer_initkwargs": dict(app.consumer_initkwargs),
        "name": app.__name__,
    }
