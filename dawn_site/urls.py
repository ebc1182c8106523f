from django.contrib import admin
from django.urls import path

from consciousness.api import HealthView, StateView, TickHistoryView

handler404 = "dawn_site.errors.json_404"
handler500 = "dawn_site.errors.json_500"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/state/", StateView.as_view(), name="state"),
    path("api/ticks/", TickHistoryView.as_view(), name="ticks"),
    path("health/", HealthView.as_view(), name="health"),
]
