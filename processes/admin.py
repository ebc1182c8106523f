"""Read-only admin of runs (with their pictures) and of memory consolidations."""

import json

from django.contrib import admin
from django.utils.html import format_html

from consciousness.admin import ReadOnlyAdmin
from processes.models import MemoryConsolidation, ProcessRun


@admin.register(ProcessRun)
class ProcessRunAdmin(ReadOnlyAdmin):
    list_display = ("process_id", "script", "status", "trigger", "tick_number", "created_at", "duration")
    list_filter = ("script", "status", "trigger")
    search_fields = ("process_id", "reason")
    date_hierarchy = "created_at"
    exclude = ("output", "context", "parameters", "consciousness_impact")
    readonly_fields = ("picture", "analysis", "output_json", "impact_json", "parameters_json", "context_json")

    @admin.display(description="duration (s)")
    def duration(self, run: ProcessRun):
        if run.start_time and run.end_time:
            return round((run.end_time - run.start_time).total_seconds(), 3)
        return None

    @admin.display(description="visualization")
    def picture(self, run: ProcessRun):
        image = (run.output or {}).get("visualization")
        if not isinstance(image, str) or not image.isascii():
            return "-"
        return format_html('<img src="data:image/png;base64,{}" style="max-width:512px" alt="visualization">', image)

    @admin.display(description="analysis")
    def analysis(self, run: ProcessRun):
        return (run.output or {}).get("analysis", "-")

    @staticmethod
    def _json(value) -> str:
        # format_html escapes it: script output is never trusted as markup
        return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True)[:20000])

    @admin.display(description="output")
    def output_json(self, run: ProcessRun):
        shown = {k: v for k, v in (run.output or {}).items() if k != "visualization"}
        return self._json(shown)

    @admin.display(description="consciousness impact")
    def impact_json(self, run: ProcessRun):
        return self._json(run.consciousness_impact)

    @admin.display(description="parameters")
    def parameters_json(self, run: ProcessRun):
        return self._json(run.parameters)

    @admin.display(description="context")
    def context_json(self, run: ProcessRun):
        return self._json(run.context)


@admin.register(MemoryConsolidation)
class MemoryConsolidationAdmin(ReadOnlyAdmin):
    list_display = ("id", "label", "weight", "support", "source_tick_start", "source_tick_end", "run", "created_at")
    list_filter = ("run__script",)
    search_fields = ("label",)
