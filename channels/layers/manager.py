"""Build channel layers from ``settings.CHANNEL_LAYERS``, one per alias."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

from channels import DEFAULT_CHANNEL_LAYER
from channels._importing import SettingsImportError, import_settings_module
from channels.exceptions import InvalidChannelLayerError
from channels.layers.protocols import FullChannelLayer

__all__ = ["ChannelLayerManager", "channel_layers", "get_channel_layer"]

_EXAMPLE_BACKEND = "channels.layers.InMemoryChannelLayer"


class ChannelLayerManager:
    """Build the layers named in ``settings.CHANNEL_LAYERS`` on first use and cache them.

    The cache empties when the setting changes (``override_settings`` in tests).
    """

    def __init__(self) -> None:
        self.backends: dict[str, FullChannelLayer] = {}
        setting_changed.connect(self._reset_backends)

    def _reset_backends(self, setting: str, **kwargs: object) -> None:
        if setting == "CHANNEL_LAYERS":
            self.backends = {}

    @property
    # Any: CONFIG values are the backend's own keyword arguments.
    def configs(self) -> Mapping[str, Mapping[str, Any]]:
        """The CHANNEL_LAYERS setting: alias -> BACKEND, CONFIG, TEST_CONFIG."""
        # Values are whatever each backend's constructor takes, hence Any.
        configs: Mapping[str, Mapping[str, Any]] = getattr(settings, "CHANNEL_LAYERS", {})
        return configs

    def make_backend(self, name: str) -> FullChannelLayer:
        """Build a new layer for alias ``name`` from its CONFIG."""
        config = self.configs[name].get("CONFIG", {})
        return self._make_backend(name, config)

    def make_test_backend(self, name: str) -> FullChannelLayer:
        """Build a new layer for alias ``name`` from its TEST_CONFIG."""
        try:
            config = self.configs[name]["TEST_CONFIG"]
        except KeyError:
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{name!r}] has no TEST_CONFIG: add one with the "
                "keyword arguments for the backend in tests"
            ) from None
        return self._make_backend(name, config)

    def _make_backend(self, name: str, config: object) -> FullChannelLayer:
        entry = self.configs[name]
        if "ROUTING" in entry:
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{name!r}] has a ROUTING key, which Channels 2 and "
                "later no longer read: remove it and route with ProtocolTypeRouter "
                "in ASGI_APPLICATION"
            )
        if "BACKEND" not in entry:
            raise InvalidChannelLayerError(
                f"CHANNEL_LAYERS[{name!r}] has no BACKEND: set it to the dotted path "
                f"of a channel layer class, such as {_EXAMPLE_BACKEND!r}"
            )
        backend_path = entry["BACKEND"]
        factory = _import_backend(name, backend_path)
        if not isinstance(config, Mapping):
            raise TypeError(
                f"CHANNEL_LAYERS[{name!r}] CONFIG must be a dict of keyword arguments "
                f"for {backend_path}; got {config!r}"
            )
        # As upstream, whatever BACKEND builds is the layer: test doubles need
        # not implement every method, and a missing one fails when called.
        layer: FullChannelLayer = factory(**config)
        return layer

    def __getitem__(self, key: str) -> FullChannelLayer:
        if key not in self.backends:
            self.backends[key] = self.make_backend(key)
        return self.backends[key]

    def __contains__(self, key: object) -> bool:
        return key in self.configs

    def set(self, key: str, layer: FullChannelLayer) -> FullChannelLayer | None:
        """Use ``layer`` for alias ``key`` (in tests); return the layer it replaced."""
        old = self.backends.get(key)
        self.backends[key] = layer
        return old

    async def close_all(self) -> None:
        """Close every layer this manager holds, releasing its connections.

        Each layer is closed even when closing another fails; the first failure
        is raised afterwards. The layers stay cached: a closed layer opens new
        connections when it is used again.
        """
        failure: Exception | None = None
        for layer in list(self.backends.values()):
            # A test double built from BACKEND may have no close(): it holds nothing.
            if not hasattr(layer, "close"):
                continue
            try:
                await layer.close()
            except Exception as exc:  # the other layers still get closed
                failure = failure or exc
        if failure is not None:
            raise failure


def _import_backend(alias: str, path: object) -> Callable[..., Any]:
    # The class (or factory) takes the CONFIG keys, which are only known at
    # run time, hence Callable[..., Any].
    if not isinstance(path, str) or "." not in path:
        raise InvalidChannelLayerError(
            f"CHANNEL_LAYERS[{alias!r}] BACKEND must be a dotted path to a class, "
            f"such as {_EXAMPLE_BACKEND!r}; got {path!r}"
        )
    module_path, _, class_name = path.rpartition(".")
    try:
        module = import_settings_module(module_path)
    except SettingsImportError as exc:
        raise InvalidChannelLayerError(
            f"cannot import BACKEND {path!r} for CHANNEL_LAYERS[{alias!r}]: {exc.reason}"
        ) from exc.__cause__
    backend: object = getattr(module, class_name, None)
    if not callable(backend):
        raise InvalidChannelLayerError(
            f"cannot import BACKEND {path!r} for CHANNEL_LAYERS[{alias!r}]: "
            f"module {module_path!r} has no class {class_name!r}"
        )
    return backend


def get_channel_layer(alias: str = DEFAULT_CHANNEL_LAYER) -> FullChannelLayer | None:
    """Return the layer for ``alias``, or None when CHANNEL_LAYERS does not name it."""
    if alias not in channel_layers:
        return None
    return channel_layers[alias]


#: The process-wide manager behind get_channel_layer().
channel_layers = ChannelLayerManager()
