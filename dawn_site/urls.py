from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from consciousness.api import EngineControlView, HealthView, StateView, TickHistoryView, metrics_view
from dawn_site.views import dashboard
from processes.api import ConsolidationViewSet, ProcessCatalogueView, RunViewSet


class SwaggerView(SpectacularSwaggerView):
    # its HTML-only renderer has no page for OPTIONS' metadata: answer 405 there instead of failing
    http_method_names = ["get", "head"]


router = DefaultRouter(trailing_slash=True)
router.register("runs", RunViewSet, basename="run")
router.register("consolidations", ConsolidationViewSet, basename="consolidation")

handler400 = "dawn_site.errors.error_400"
handler403 = "dawn_site.errors.error_403"
handler404 = "dawn_site.errors.error_404"
handler500 = "dawn_site.errors.error_500"

urlpatterns = [
    path("", dashboard, name="dashboard"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "api/redoc/", SpectacularRedocView.as_view(url_name="schema", template_name="dawn_site/redoc.html"), name="redoc"
    ),
    path("api/state/", StateView.as_view(), name="state"),
    path("api/ticks/", TickHistoryView.as_view(), name="ticks"),
    path("api/engine/control/", EngineControlView.as_view(), name="engine-control"),
    path("api/processes/", ProcessCatalogueView.as_view(), name="processes"),
    # the picture's own URL has no trailing slash (it names a file); the router serves the slashed one too
    path(
        "api/runs/<int:pk>/visualization.png", RunViewSet.as_view({"get": "visualization"}), name="run-visualization"
    ),
    path("api/", include(router.urls)),
    path("health/", HealthView.as_view(), name="health"),
    path("metrics", metrics_view, name="metrics"),
]
