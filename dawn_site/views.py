"""The live dashboard at /: a page of the project's static files, built on the JS stream client."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie  # the page's run form sends the token back, for when writes need a session
def dashboard(request: HttpRequest) -> HttpResponse:
    """The dashboard page; everything live on it comes over /ws and the REST API."""
    return render(request, "dawn/dashboard.html")
