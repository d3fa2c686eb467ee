"""The lobby form: a display name and a room to join."""

from __future__ import annotations

from django import forms

from chat.rooms import ROOM_NAME

__all__ = ["LobbyForm"]


class LobbyForm(forms.Form):
    """Pick a display name (kept in the session) and a room."""

    name = forms.CharField(label="Display name", max_length=32)
    room = forms.RegexField(
        label="Room",
        regex=rf"^{ROOM_NAME}$",
        max_length=50,
        error_messages={"invalid": "Use letters, digits, hyphens and underscores."},
    )
