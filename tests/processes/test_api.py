"""The processes REST API through APIClient: the catalogue, starting, following and cancelling runs."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from rest_framework.test import APIClient

from processes.models import MemoryConsolidation, ProcessRun
from processes.sandbox import Outcome
from processes.scripts import SCRIPTS
from processes.scripts.specs import SPECS

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.django_db, pytest.mark.both_shapes, pytest.mark.usefixtures("open_writes")]


@pytest.fixture
def api():
    return APIClient()


def test_catalogue_lists_the_five_with_schemas_and_rules(api):
    body = api.get("/api/processes/").json()
    assert body["max_concurrent"] == 3
    by_name = {p["name"]: p for p in body["processes"]}
    assert set(by_name) == set(SCRIPTS)
    assert by_name["neural_analyzer"]["trigger"] == {"every": 50, "window": 20, "cooldown": 0}
    assert by_name["chaos_engine"]["trigger"]["entropy_below"] == 0.2
    assert by_name["neural_analyzer"]["parameters"]["properties"]["threshold"]["type"] == "number"
    assert all(p["description"] for p in body["processes"])
    # the JSON Schemas as declared, for a JSON-Schema form library to render
    assert {name: p["parameters"] for name, p in by_name.items()} == {name: SPECS[name].parameters for name in SCRIPTS}
    assert by_name["chaos_engine"]["parameters"]["properties"]["map"]["enum"] == ["logistic", "tent"]
    for p in body["processes"]:
        Draft202012Validator.check_schema(p["parameters"])


def test_validating_a_run_request_imports_neither_the_script_nor_pillow():
    # the web process checks parameters against the numpy-free specs, never by importing the script
    code = (
        "import sys, django\n"
        "django.setup()\n"
        "from processes import services\n"
        "print(services.run_validate(script='chaos_engine', parameters={'map': 'tent'})[1]['map'])\n"
        "print(sorted(m for m in sys.modules if m.startswith(('processes.scripts.', 'PIL')) and m != 'processes.scripts.specs'))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dawn_site.settings"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["tent", "[]"]


def test_post_queues_a_run_and_answers_202_in_the_process_output_format(api):
    response = api.post("/api/runs/", {"script": "neural_analyzer", "parameters": {"threshold": 0.4}}, format="json")
    assert response.status_code == 202
    run = response.json()
    assert run["status"] == "queued" and run["script"] == "neural_analyzer.py"
    assert run["process_id"] == f"neural_analyzer_{run['id']:06d}"
    assert run["parameters"]["threshold"] == 0.4 and run["parameters"]["window"] == 128  # defaults applied
    assert run["trigger"] == "manual"
    assert api.get(f"/api/runs/{run['id']}/").json() == run


@pytest.mark.parametrize(
    "body, field",
    [
        ({"script": "rm -rf /"}, "script"),
        ({"script": "../../etc/passwd"}, "script"),
        ({"script": "processes.scripts.neural_analyzer"}, "script"),
        ({"script": "_common"}, "script"),
        ({"script": "specs"}, "script"),
        ({"script": "toolkit"}, "script"),
        ({"script": 42}, "script"),
        ({"parameters": {}}, "script"),
        ({"script": "neural_analyzer", "parameters": {"threshold": "high"}}, "parameters.threshold"),
        ({"script": "neural_analyzer", "parameters": {"threshold": 7}}, "parameters.threshold"),
        ({"script": "neural_analyzer", "parameters": {"threshold": True}}, "parameters.threshold"),
        ({"script": "neural_analyzer", "parameters": {"window": True}}, "parameters.window"),
        ({"script": "chaos_engine", "parameters": {"map": "sine"}}, "parameters.map"),
        ({"script": "neural_analyzer", "parameters": {"colour": "red"}}, "parameters.colour"),
        ({"script": "neural_analyzer", "parameters": [1, 2]}, "parameters"),
        ({"script": "neural_analyzer", "priority": 1}, "priority"),
    ],
)
def test_bad_requests_answer_400_naming_the_field_and_start_nothing(api, body, field):
    response = api.post("/api/runs/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert ProcessRun.objects.count() == 0


def test_malformed_json_is_a_json_400(api):
    response = api.post("/api/runs/", "{not json", content_type="application/json")
    assert response.status_code == 400 and "error" in response.json()
    assert ProcessRun.objects.count() == 0


def test_cancel_a_queued_run_then_cancelling_again_is_a_conflict(api):
    run = api.post("/api/runs/", {"script": "chaos_engine"}, format="json").json()
    cancelled = api.post(f"/api/runs/{run['id']}/cancel/", {}, format="json")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "cancelled"
    again = api.post(f"/api/runs/{run['id']}/cancel/", {}, format="json")
    assert again.status_code == 409 and "already finished" in again.json()["error"]
    assert api.post("/api/runs/999999/cancel/", {}, format="json").status_code == 404


def test_runs_filter_by_script_status_and_trigger(api):
    for script in ("neural_analyzer", "chaos_engine", "chaos_engine"):
        api.post("/api/runs/", {"script": script}, format="json")
    ProcessRun.objects.filter(script="neural_analyzer").update(trigger="every 50 ticks")
    assert len(api.get("/api/runs/?script=chaos_engine").json()["results"]) == 2
    assert len(api.get("/api/runs/?status=queued").json()["results"]) == 3
    assert len(api.get("/api/runs/?trigger=every 50 ticks").json()["results"]) == 1
    assert api.get("/api/runs/?status=sleeping").status_code == 400
    assert len(api.get("/api/runs/?created_after=946684800").json()["results"]) == 3  # epoch seconds, 2000-01-01
    assert api.get("/api/runs/?created_before=946684800").json()["results"] == []
    iso = api.get("/api/runs/?created_after=2000-01-01T00:00:00Z")
    assert iso.status_code == 400 and "epoch seconds" in iso.json()["fields"]["created_after"][0]


def test_consolidations_are_listed_with_their_run(api):
    run = ProcessRun.objects.create(script="memory_consolidator", process_id="memory_consolidator_000001", status="completed")
    MemoryConsolidation.objects.create(
        run=run, label="calm", centroid=[0.1, 0.2], weight=0.5, support=10, source_tick_start=1, source_tick_end=100
    )
    listing = api.get("/api/consolidations/").json()["results"]
    assert listing[0]["process_id"] == "memory_consolidator_000001"
    assert listing[0]["source_tick_start"] == 1 and listing[0]["source_tick_end"] == 100
    assert api.get(f"/api/consolidations/{listing[0]['id']}/").json()["label"] == "calm"


def test_run_statuses_are_the_sandbox_outcomes_between_queued_running_and_abandoned():
    assert ProcessRun.Status.values == ["queued", "running", *(o.value for o in Outcome), "abandoned"]
    assert [o.value for o in Outcome] == ["completed", "failed", "timeout", "cancelled"]
