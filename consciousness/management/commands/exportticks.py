"""manage.py exportticks: write the persisted history to stdout in the Tick Data Format."""

from __future__ import annotations

import csv
import json

from django.core.management.base import BaseCommand, CommandError

from consciousness.engine import TICK_COLUMNS, tick_flat
from consciousness.selectors import tick_data_iter


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
            # subsystems as dotted columns, active processes joined by spaces
            writer = csv.DictWriter(out, fieldnames=TICK_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for tick in tick_data_iter(since=since, until=until):
                writer.writerow(tick_flat(tick))
        else:
            for tick in tick_data_iter(since=since, until=until):
                out.write(json.dumps(tick, separators=(",", ":")))
