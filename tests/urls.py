from __future__ import annotations

from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, URLResolver, path


def user_count(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(User.objects.count()))


urlpatterns: list[URLPattern | URLResolver] = [path("users/count/", user_count)]
