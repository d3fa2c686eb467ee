"""The HTTP pages: the lobby, and a room's page (its chat runs over a websocket)."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from chat.forms import LobbyForm

__all__ = ["lobby", "room"]


@require_http_methods(["GET", "POST"])
def lobby(request: HttpRequest) -> HttpResponse:
    """Show the lobby form; on a valid POST keep the name in the session and enter the room."""
    if request.method == "POST":
        form = LobbyForm(request.POST)
        if form.is_valid():
            name: str = form.cleaned_data["name"]
            room_name: str = form.cleaned_data["room"]
            request.session["display_name"] = name
            return redirect("room", room=room_name)
    else:
        form = LobbyForm(
            initial={
                "name": request.session.get("display_name", ""),
                "room": request.GET.get("room", "lobby"),
            }
        )
    return render(request, "chat/lobby.html", {"form": form})


@require_GET
def room(request: HttpRequest, room: str) -> HttpResponse:
    """Show a room; without a display name yet, send the visitor to the lobby first."""
    name = request.session.get("display_name")
    if not isinstance(name, str):
        return redirect(f"{reverse('lobby')}?{urlencode({'room': room})}")
    return render(request, "chat/room.html", {"room": room, "name": name})
