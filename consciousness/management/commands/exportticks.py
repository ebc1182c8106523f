"""manage.py exportticks: write the persisted history to stdout in the Tick Data Format."""

from __future__ import annotations

import csv
import json

from django.core.management.base import BaseCommand, CommandError

from consciousness.selectors import tick_data_iter

CSV_COLUMNS = (
    "tick_number",
    "timestamp",
    "scup",
    "entropy",
    "mood",
    "neural_activity",
    "consciousness_unity",
    "memory_pressure",
    "active_processes",
    "neural.firing_rate",
    "neural.connectivity",
    "consciousness.multi-state",
    "consciousness.entanglement",
    "chaos.lyapunov",
    "chaos.fractal_dim",
)


def csv_row(tick: dict) -> list:
    """One tick flattened: subsystems as dotted columns, active processes joined by spaces."""
    row = [tick[name] for name in CSV_COLUMNS[:8]]
    row.append(" ".join(tick["active_processes"]))
    for column in CSV_COLUMNS[9:]:
        subsystem, figure = column.split(".", 1)
        row.append(tick["subsystems"][subsystem][figure])
    return row


class Command(BaseCommand):
    help = "Write persisted ticks to stdout: one JSON object a line (jsonl) or CSV with a header."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--since", type=int, help="first tick_number to export")
        parser.add_argument("--until", type=int, help="last tick_number to export")
        parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")

    def handle(self, *args, since=None, until=None, format="jsonl", **options) -> None:
        if since is not None and until is not None and since > until:
            raise CommandError(f"--since {since} is after --until {until}")
        out = self.stdout
        if format == "csv":
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(CSV_COLUMNS)
            for tick in tick_data_iter(since=since, until=until):
                writer.writerow(csv_row(tick))
        else:
            for tick in tick_data_iter(since=since, until=until):
                out.write(json.dumps(tick, separators=(",", ":")))
