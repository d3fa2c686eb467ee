"""Differential tests: every scenario observes the same thing on upstream Channels and here.

The scenarios (``scenarios_*.py``) run in two fresh interpreters, this
package's and ``.venv-upstream``'s (upstream channels and channels-redis, made
by ``make upstream``). Where upstream raises an exception, this package must
raise the same class or a subclass. A scenario listed in ``DIFFERENCES`` must
differ, and names the README entry under "Differences from Django Channels"
that says why.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest

from tests.compat._harness import SCENARIOS, Observation

_COMPAT = Path(__file__).resolve().parent
_ROOT = _COMPAT.parent.parent
_UPSTREAM_PYTHON = _ROOT / ".venv-upstream" / "bin" / "python"

for _module in sorted(_COMPAT.glob("scenarios_*.py")):
    importlib.import_module(f"tests.compat.{_module.stem}")

#: Scenario -> words from the README's "Differences from Django Channels" entry
#: that explains why the observations differ.
DIFFERENCES: dict[str, str] = {
    "routing.router_refuses_consumer_class_when_built": "Routers check their applications when",
    "routing.get_default_application_not_an_application": "names something that is not an ASGI",
    "db.database_sync_to_async_is_a_function": "`database_sync_to_async` is a function",
    "consumer.as_asgi_keywords_init_cannot_take": "refuses a keyword that its consumer's",
    "generic.channel_layer_attribute": "`self.channel_layer` is a property",
    "generic.http_consumer_str_and_malformed_headers": "encodes headers given as str",
    "generic.websocket_disconnect_without_code": "a `websocket.disconnect` without a code",
    "generic.websocket_groups_given_as_one_string": "`groups` given as one string",
    "auth.get_user_with_secret_key_fallbacks": "`SECRET_KEY_FALLBACKS` and then storing",
    "auth.login_anonymous_user_in_scope": "`login()` with an `AnonymousUser`",
    "auth.login_same_user_again": "`login()` always rotates the session key",
    "security.origin_denial_with_http_response_extension": "answers with an HTTP 403",
    "security.origin_header_unparsable": "Only a well-formed `Origin` can match",
    "security.origin_malformed_headers": "Only a well-formed `Origin` can match",
    "security.origin_several_headers": "Only a well-formed `Origin` can match",
    "security.origin_pattern_international": "international names match",
    "security.origin_patterns_given_as_one_string": "as one string raises `TypeError`",
    "security.origin_patterns_read_loosely_upstream": "logs a warning once, where upstream read",
    "security.origin_patterns_upstream_fails_on": "logs a warning once, where upstream read",
    "security.origin_port_without_scheme": "allows that port only",
    "sessions.cookie_parsing_several_headers": "Several `Cookie` headers",
    "sessions.session_emptied": "A session left empty is never",
    "sessions.session_not_saved_on_other_server_errors": "not saved on any 5xx response",
    "sessions.session_on_websocket_accept": "also saved when a websocket is accepted",
    "sessions.session_wrapper_save_types": "also saved when a websocket is accepted",
    "sessions.set_cookie_aware_datetime": "accepts an aware `datetime`",
    "layers.base_non_ascii_and_newline_names": "checked over the whole name",
    "layers.base_get_capacity_with_channel_capacity": "`channel_capacity` works on",
    "layers.in_memory_channel_capacity": "`channel_capacity` works on",
    "layers.in_memory_message_any_mapping": "any mapping is accepted",
    "layers.in_memory_send_drops_expired_messages": "on every call",
    "layers.in_memory_empty_group_after_expiry": "a group whose last membership lapsed",
    "layers.redis_pubsub_new_channel_name": "`RedisPubSubChannelLayer.new_channel(prefix)`",
    "redis_pubsub.membership_after_a_cancelled_receive": "leaves its groups with it",
    "redis_core.a_send_after_a_cancelled_receive": "a message a cancelled `receive()` had",
    "redis_pubsub.names_are_checked": "checks channel and group names",
    "redis_core.deserialize_unreadable": "cannot be decoded or decrypted raises",
    "lifespan.router_without_a_lifespan_entry": "answers the ASGI lifespan scope",
}


def _run_all(python: Path | str, output: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(python), "-I", str(_COMPAT / "_run.py"), str(output)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(scope="session")
def observations(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Observation]]:
    """Run every scenario on both sides, at once: ``{"ours": {...}, "upstream": {...}}``."""
    if not _UPSTREAM_PYTHON.exists():
        pytest.fail(f"{_UPSTREAM_PYTHON} is missing: run `make upstream` first")
    scratch = tmp_path_factory.mktemp("compat")
    sides: dict[str, Path | str] = {"ours": sys.executable, "upstream": _UPSTREAM_PYTHON}
    runs = {side: _run_all(python, scratch / f"{side}.json") for side, python in sides.items()}
    result: dict[str, dict[str, Observation]] = {}
    for side, run in runs.items():
        output, _ = run.communicate(timeout=300)
        if run.returncode != 0:
            pytest.fail(f"the {side} scenario run failed:\n{output.decode(errors='replace')}")
        data = json.loads((scratch / f"{side}.json").read_text())
        result[side] = cast(dict[str, Observation], data)
    return result


def _same(upstream: Observation, ours: Observation) -> bool:
    """Whether ``ours`` shows a user what ``upstream`` does (a subclass of its exception counts)."""
    same_class = type(upstream) is type(ours)
    if isinstance(upstream, dict) and isinstance(ours, dict):
        up, our = cast("dict[str, object]", upstream), cast("dict[str, object]", ours)
        if set(up) == {"raised"} and set(our) == {"raised"}:
            return cast("list[str]", up["raised"])[0] in cast("list[str]", our["raised"])
        return up.keys() == our.keys() and all(_same(up[key], our[key]) for key in up)
    if isinstance(upstream, list) and isinstance(ours, list):
        up_items, our_items = cast("list[object]", upstream), cast("list[object]", ours)
        return len(up_items) == len(our_items) and all(map(_same, up_items, our_items))
    return same_class and upstream == ours


@pytest.mark.parametrize("name", [name for name in SCENARIOS if name not in DIFFERENCES])
def test_same_as_upstream(name: str, observations: dict[str, dict[str, Observation]]) -> None:
    upstream, ours = observations["upstream"][name], observations["ours"][name]
    assert _same(upstream, ours), f"upstream: {upstream!r}\nours:     {ours!r}"


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_documented_difference(name: str, observations: dict[str, dict[str, Observation]]) -> None:
    upstream, ours = observations["upstream"][name], observations["ours"][name]
    assert not _same(upstream, ours), f"{name} no longer differs: drop it from DIFFERENCES"
    readme = (_ROOT / "README.md").read_text()
    differences = readme.partition("## Differences from Django Channels")[2].partition("\n## ")[0]
    assert DIFFERENCES[name] in differences


def test_every_scenario_ran_on_both_sides(
    observations: dict[str, dict[str, Observation]],
) -> None:
    assert set(observations["ours"]) == set(observations["upstream"]) == set(SCENARIOS)
