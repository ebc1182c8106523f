"""The admin as a browsable, read-only history of the engine and of who controlled it."""

from django.contrib import admin

from consciousness.engine import TICK_FIGURES
from consciousness.models import EngineControl, EngineSnapshot, Tick


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Tick)
class TickAdmin(ReadOnlyAdmin):
    list_display = ("tick_number", "recorded_at", *TICK_FIGURES)
    list_filter = ("mood",)
    search_fields = ("=tick_number", "mood")
    date_hierarchy = "recorded_at"
    show_full_result_count = False  # counting a long history on every page is slow
    list_per_page = 100


@admin.register(EngineSnapshot)
class EngineSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("run", "epoch", "seed", "tick_number", "started_at", "saved_at")
    exclude = ("state",)


@admin.register(EngineControl)
class EngineControlAdmin(ReadOnlyAdmin):
    list_display = (
        "applied_at", "action", "ticks", "rate", "outcome", "tick_number", "paused", "tick_rate", "label"
    )
    list_filter = ("action", "outcome")
    search_fields = ("=tick_number", "label")
    date_hierarchy = "applied_at"
    list_select_related = ("requested_by",)
