from django.contrib import admin
from django.urls import include, path
from rest_framework.routers import DefaultRouter

from consciousness.api import HealthView, StateView, TickHistoryView
from dawn_site.views import dashboard
from processes.api import ConsolidationViewSet, ProcessCatalogueView, RunViewSet

router = DefaultRouter(trailing_slash=True)
router.register("runs", RunViewSet, basename="run")
router.register("consolidations", ConsolidationViewSet, basename="consolidation")

handler404 = "dawn_site.errors.json_404"
handler500 = "dawn_site.errors.json_500"

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("admin/", admin.site.urls),
    path("api/state/", StateView.as_view(), name="state"),
    path("api/ticks/", TickHistoryView.as_view(), name="ticks"),
    path("api/processes/", ProcessCatalogueView.as_view(), name="processes"),
    # the picture's own URL has no trailing slash (it names a file); the router serves the slashed one too
    path(
        "api/runs/<int:pk>/visualization.png", RunViewSet.as_view({"get": "visualization"}), name="run-visualization"
    ),
    path("api/", include(router.urls)),
    path("health/", HealthView.as_view(), name="health"),
]
