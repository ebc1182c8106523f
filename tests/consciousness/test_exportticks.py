"""exportticks through call_command: the persisted history, as JSON lines or CSV."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from tests.factories import history_make

pytestmark = [pytest.mark.django_db, pytest.mark.both_shapes]


def export(*args: str) -> str:
    out = io.StringIO()
    call_command("exportticks", *args, stdout=out)
    return out.getvalue()


def test_jsonl_is_one_tick_a_line_in_order_within_the_range():
    ticks = history_make(40)
    lines = export("--since", "10", "--until", "19").splitlines()
    assert [json.loads(line) for line in lines] == ticks[9:19]


def test_csv_has_a_header_and_flattened_subsystems():
    ticks = history_make(5)
    rows = list(csv.DictReader(io.StringIO(export("--format", "csv"))))
    assert [int(r["tick_number"]) for r in rows] == [1, 2, 3, 4, 5]
    assert float(rows[2]["chaos.fractal_dim"]) == ticks[2]["subsystems"]["chaos"]["fractal_dim"]
    assert float(rows[2]["consciousness.multi-state"]) == ticks[2]["subsystems"]["consciousness"]["multi-state"]
    assert rows[2]["mood"] == ticks[2]["mood"]


def test_an_empty_range_is_empty_and_a_reversed_one_is_an_error():
    history_make(5)
    assert export("--since", "100") == ""
    with pytest.raises(CommandError, match="after --until"):
        call_command("exportticks", "--since", "5", "--until", "2", stdout=io.StringIO())
