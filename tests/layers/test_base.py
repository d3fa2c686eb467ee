from __future__ import annotations

import re

import pytest

from channels.layers import BaseChannelLayer


@pytest.fixture
def base() -> BaseChannelLayer:
    # Upstream code instantiates the base directly to reach its name checks.
    return BaseChannelLayer()  # type: ignore[abstract]  # deliberately, as upstream allows


class TestChannelNames:
    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("chat", id="plain"),
            pytest.param("a-b_c.d", id="punctuation"),
            pytest.param("specific.abc!", id="bang-at-end"),
            pytest.param("specific.abc!xyz-1_2.3", id="bang-part"),
            pytest.param("x" * 99, id="99-chars"),
        ],
    )
    def test_valid(self, base: BaseChannelLayer, name: str) -> None:
        assert base.require_valid_channel_name(name) is True

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("", id="empty"),
            pytest.param("has space", id="space"),
            pytest.param("caf\u00e9", id="non-ascii"),
            pytest.param("a!b!c", id="two-bangs"),
            pytest.param("!abc", id="bang-first"),
            pytest.param("chat\n", id="trailing-newline"),
            pytest.param("x" * 100, id="100-chars"),
            pytest.param("spec!\u00e9", id="non-ascii-after-bang"),
        ],
    )
    def test_invalid(self, base: BaseChannelLayer, name: str) -> None:
        with pytest.raises(TypeError, match="channel name must be a string shorter than 100"):
            base.require_valid_channel_name(name)

    def test_error_names_what_arrived(self, base: BaseChannelLayer) -> None:
        with pytest.raises(TypeError, match=re.escape("got 'bad name'")):
            base.require_valid_channel_name("bad name")

    def test_non_string(self, base: BaseChannelLayer) -> None:
        with pytest.raises(TypeError, match="got 42"):
            base.require_valid_channel_name(42)  # type: ignore[arg-type]  # the bad input under test

    def test_receive_requires_name_to_end_at_bang(self, base: BaseChannelLayer) -> None:
        with pytest.raises(TypeError, match=r"must end at the '!' \(for example 'specific\.a!'\)"):
            base.require_valid_channel_name("specific.a!b", receive=True)
        assert base.require_valid_channel_name("specific.a!", receive=True)
        assert base.require_valid_channel_name("plain", receive=True)

    def test_valid_channel_names_takes_a_non_empty_list(self, base: BaseChannelLayer) -> None:
        base.valid_channel_names(["a", "b!"])
        with pytest.raises(TypeError, match="non-empty list; got \\[\\]"):
            base.valid_channel_names([])
        with pytest.raises(TypeError, match="channel name must be"):
            base.valid_channel_names(["ok", "not ok"])

    def test_non_local_name(self, base: BaseChannelLayer) -> None:
        assert base.non_local_name("specific.abc!def") == "specific.abc!"
        assert base.non_local_name("plain") == "plain"


class TestGroupNames:
    def test_valid(self, base: BaseChannelLayer) -> None:
        assert base.require_valid_group_name("room-1_a.b") is True

    @pytest.mark.parametrize(
        "name",
        [
            pytest.param("with!bang", id="bang"),
            pytest.param("", id="empty"),
            pytest.param("g" * 100, id="too-long"),
            pytest.param("sp ace", id="space"),
        ],
    )
    def test_invalid(self, base: BaseChannelLayer, name: str) -> None:
        with pytest.raises(TypeError, match="group name must be a string shorter than 100"):
            base.require_valid_group_name(name)


class TestDeprecatedAliases:
    def test_valid_channel_name_warns_and_checks(self, base: BaseChannelLayer) -> None:
        with pytest.warns(DeprecationWarning, match="use require_valid_channel_name"):
            assert base.valid_channel_name("ok")
        with (
            pytest.warns(DeprecationWarning, match="deprecated"),
            pytest.raises(TypeError, match="channel name must be"),
        ):
            base.valid_channel_name("not ok")

    def test_valid_channel_name_applies_the_receive_rule(self, base: BaseChannelLayer) -> None:
        with (
            pytest.warns(DeprecationWarning, match="deprecated"),
            pytest.raises(TypeError, match="must end at the '!'"),
        ):
            base.valid_channel_name("specific.a!b", receive=True)

    def test_valid_group_name_warns_and_checks(self, base: BaseChannelLayer) -> None:
        with pytest.warns(DeprecationWarning, match="use require_valid_group_name"):
            assert base.valid_group_name("ok")


class TestCapacity:
    def test_default(self) -> None:
        layer = BaseChannelLayer(capacity=7)  # type: ignore[abstract]  # name/capacity helpers only
        assert layer.get_capacity("anything") == 7

    def test_glob_and_regex_first_match_wins(self) -> None:
        layer = BaseChannelLayer(  # type: ignore[abstract]  # name/capacity helpers only
            capacity=5,
            channel_capacity={
                "http.request": 200,
                re.compile(r"^websocket\.send!.*"): 20,
                "websocket.*": 10,
            },
        )
        assert layer.get_capacity("http.request") == 200
        assert layer.get_capacity("websocket.send!abc") == 20
        assert layer.get_capacity("websocket.receive") == 10
        assert layer.get_capacity("other") == 5


class TestUnimplementedMethods:
    async def test_flush_names_its_extension(self, base: BaseChannelLayer) -> None:
        with pytest.raises(NotImplementedError, match=r"flush\(\) \(the flush extension\)"):
            await base.flush()

    @pytest.mark.parametrize("method", ["group_add", "group_discard"])
    async def test_group_methods_name_their_extension(
        self, base: BaseChannelLayer, method: str
    ) -> None:
        call = getattr(base, method)("group", "channel")
        with pytest.raises(NotImplementedError, match=rf"{method}\(\) \(the groups extension\)"):
            await call

    async def test_group_send(self, base: BaseChannelLayer) -> None:
        with pytest.raises(NotImplementedError, match=r"group_send\(\) \(the groups extension\)"):
            await base.group_send("group", {"type": "x"})

    async def test_core_methods(self, base: BaseChannelLayer) -> None:
        with pytest.raises(NotImplementedError, match=r"BaseChannelLayer does not implement send"):
            await base.send("c", {"type": "x"})
        with pytest.raises(NotImplementedError, match=r"does not implement receive"):
            await base.receive("c")
        with pytest.raises(NotImplementedError, match=r"does not implement new_channel"):
            await base.new_channel()

    async def test_close_is_a_no_op(self, base: BaseChannelLayer) -> None:
        await base.close()

    def test_no_extensions(self, base: BaseChannelLayer) -> None:
        assert list(base.extensions) == []
