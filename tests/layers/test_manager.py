from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from django.test import override_settings

from channels.exceptions import InvalidChannelLayerError
from channels.layers import (
    ChannelLayerManager,
    InMemoryChannelLayer,
    channel_layers,
    get_channel_layer,
)

IN_MEMORY = "channels.layers.InMemoryChannelLayer"


class TestLookup:
    def test_default_alias(self) -> None:
        layer = get_channel_layer()
        assert isinstance(layer, InMemoryChannelLayer)
        assert get_channel_layer() is layer

    def test_unknown_alias_is_none(self) -> None:
        assert get_channel_layer("nope") is None
        assert "nope" not in channel_layers

    def test_config_is_passed_to_the_backend(self) -> None:
        with override_settings(
            CHANNEL_LAYERS={"default": {"BACKEND": IN_MEMORY, "CONFIG": {"capacity": 7}}}
        ):
            layer = get_channel_layer()
            assert isinstance(layer, InMemoryChannelLayer)
            assert layer.capacity == 7

    def test_changing_the_setting_drops_cached_layers(self) -> None:
        before = get_channel_layer()
        with override_settings(CHANNEL_LAYERS={"default": {"BACKEND": IN_MEMORY}}):
            inside = get_channel_layer()
            assert inside is not before
        assert get_channel_layer() is not inside

    def test_set_swaps_a_layer_and_returns_the_old_one(self) -> None:
        manager = ChannelLayerManager()
        replacement = InMemoryChannelLayer()
        assert manager.set("default", replacement) is None
        assert manager["default"] is replacement
        another = InMemoryChannelLayer()
        assert manager.set("default", another) is replacement

    def test_make_test_backend_reads_test_config(self) -> None:
        with override_settings(
            CHANNEL_LAYERS={
                "default": {"BACKEND": IN_MEMORY, "TEST_CONFIG": {"expiry": 3}},
            }
        ):
            layer = channel_layers.make_test_backend("default")
            assert isinstance(layer, InMemoryChannelLayer)
            assert layer.expiry == 3


def _make(config: dict[str, object]) -> None:
    with override_settings(CHANNEL_LAYERS={"default": config}):
        ChannelLayerManager().make_backend("default")


class TestBadSettings:
    def test_missing_backend(self) -> None:
        with pytest.raises(
            InvalidChannelLayerError,
            match=re.escape("CHANNEL_LAYERS['default'] has no BACKEND: set it to the dotted path"),
        ):
            _make({"CONFIG": {}})

    def test_routing_key(self) -> None:
        with pytest.raises(InvalidChannelLayerError, match=r"has a ROUTING key.*remove it"):
            _make({"BACKEND": IN_MEMORY, "ROUTING": "x.routing"})

    def test_backend_module_missing(self) -> None:
        with pytest.raises(
            InvalidChannelLayerError,
            match=re.escape(
                "cannot import BACKEND 'nosuch.layers.Layer' for CHANNEL_LAYERS['default']: "
                "there is no module 'nosuch'"
            ),
        ):
            _make({"BACKEND": "nosuch.layers.Layer"})

    def test_backend_class_missing(self) -> None:
        with pytest.raises(
            InvalidChannelLayerError,
            match=re.escape("module 'channels.layers' has no class 'NoSuchLayer'"),
        ):
            _make({"BACKEND": "channels.layers.NoSuchLayer"})

    @pytest.mark.parametrize(
        "backend",
        [pytest.param("InMemoryChannelLayer", id="not-dotted"), pytest.param(42, id="not-str")],
    )
    def test_backend_not_a_dotted_path(self, backend: object) -> None:
        with pytest.raises(InvalidChannelLayerError, match="BACKEND must be a dotted path"):
            _make({"BACKEND": backend})

    def test_backend_not_callable(self) -> None:
        with pytest.raises(
            InvalidChannelLayerError, match=re.escape("module 'channels' has no class 'layers'")
        ):
            _make({"BACKEND": "channels.layers"})

    def test_config_not_a_mapping(self) -> None:
        # A TypeError, as upstream's ``backend(**config)`` raises.
        with pytest.raises(TypeError, match=r"CONFIG must be a dict .*; got \['capacity', 3\]"):
            _make({"BACKEND": IN_MEMORY, "CONFIG": ["capacity", 3]})

    def test_missing_test_config(self) -> None:
        with (
            override_settings(CHANNEL_LAYERS={"default": {"BACKEND": IN_MEMORY}}),
            pytest.raises(InvalidChannelLayerError, match="has no TEST_CONFIG"),
        ):
            channel_layers.make_test_backend("default")

    def test_import_error_inside_the_backend_module(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "broken_layer_backend.py").write_text(
            "import a_dependency_that_is_not_installed\n"
        )
        monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
        with pytest.raises(InvalidChannelLayerError) as info:
            _make({"BACKEND": "broken_layer_backend.Layer"})
        info.match(
            re.escape(
                "cannot import BACKEND 'broken_layer_backend.Layer' for CHANNEL_LAYERS['default']: "
                "importing module 'broken_layer_backend' raised ModuleNotFoundError: "
                "No module named 'a_dependency_that_is_not_installed'"
            )
        )
        cause = info.value.__cause__
        assert isinstance(cause, ModuleNotFoundError)
        assert cause.name == "a_dependency_that_is_not_installed"


class _SendOnly:
    """A test double with only what the code under test calls, as apps write them."""

    def __init__(self, **config: object) -> None:
        self.config = config

    async def group_send(self, group: str, message: dict[str, object]) -> None:
        """Record nothing: the test only builds the layer."""


def make_send_only(**config: object) -> _SendOnly:
    """A BACKEND that is a factory function, not a class."""
    return _SendOnly(factory=True, **config)


class TestWhatBackendBuilds:
    """As upstream, whatever BACKEND builds from CONFIG is the layer."""

    def test_a_partial_test_double(self) -> None:
        with override_settings(
            CHANNEL_LAYERS={
                "default": {"BACKEND": f"{__name__}._SendOnly", "CONFIG": {"capacity": 1}}
            }
        ):
            layer: object = get_channel_layer()
            assert isinstance(layer, _SendOnly)
            assert layer.config == {"capacity": 1}

    def test_a_factory_function(self) -> None:
        with override_settings(
            CHANNEL_LAYERS={"default": {"BACKEND": f"{__name__}.make_send_only"}}
        ):
            layer: object = get_channel_layer()
            assert isinstance(layer, _SendOnly)
            assert layer.config == {"factory": True}
