"""The HTTP face through Django's test client: every route, the OpenAPI schema, error shapes, strict inputs."""

from __future__ import annotations

import base64
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient

from consciousness.engine.tick import TICK_COLUMNS
from processes.models import MemoryConsolidation, ProcessRun
from processes.serializers import RunSerializer
from tests.factories import history_make

pytestmark = [pytest.mark.django_db, pytest.mark.both_shapes, pytest.mark.usefixtures("open_writes")]

# sample values for the names routes take (an id is the fixture's object of that route, else "1")
SAMPLE_KWARGS = {"format": "json", "app_label": "processes", "model_name": "processrun", "url": "nothing"}


def _routes(resolver: URLResolver, namespace: str = "", params: frozenset = frozenset()):
    """(name, its URL kwargs) for every named route in the URL conf, included ones too."""
    for entry in resolver.url_patterns:
        names = params | frozenset(entry.pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from _routes(entry, inner, names)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", names


def _paths(ids: dict[str, str]) -> list[str]:
    paths = set()
    for name, params in _routes(get_resolver()):
        own_id = ids.get(name.split("-")[0], "1")
        kwargs = {p: own_id if p in ("pk", "object_id") else SAMPLE_KWARGS.get(p, "1") for p in params}
        paths.add(reverse(name, kwargs=kwargs))
    return sorted(paths)


@pytest.fixture
def objects():
    history_make(20)
    run = ProcessRun.objects.create(script="memory_consolidator", process_id="memory_consolidator_000001", status="completed")
    pattern = MemoryConsolidation.objects.create(
        run=run, label="calm", centroid=[0.1], weight=1.0, support=3, source_tick_start=1, source_tick_end=3
    )
    return {"run": str(run.pk), "consolidation": str(pattern.pk), "admin:processes_processrun_change": str(run.pk)}


def test_every_route_answers_get_head_options_and_html_without_a_server_error(client, objects):
    client.force_login(get_user_model().objects.create_superuser("admin", "a@example.com", "pw"))
    paths = _paths(objects)
    assert {"/api/runs/", f"/api/runs/{objects['run']}/cancel/", "/api/schema/", "/metrics", "/health/"} <= set(paths)
    failures = []
    for path in paths:
        for method, headers in (("get", {}), ("head", {}), ("options", {}), ("get", {"HTTP_ACCEPT": "text/html"})):
            response = getattr(client, method)(path, **headers)
            # /health/'s 503 is its answer for stale ticks (these age while the loop runs), not a failure
            if response.status_code >= 500 and not (path == "/health/" and response.status_code == 503):
                failures.append(f"{method.upper()} {path} {headers}: {response.status_code}")
    assert not failures, "\n".join(failures)


def test_the_browsable_api_renders_lists_details_and_actions_as_html(client, objects):
    for path in ("/api/runs/", f"/api/runs/{objects['run']}/", f"/api/runs/{objects['run']}/cancel/", "/api/ticks/"):
        for response in (client.get(path, HTTP_ACCEPT="text/html"), client.options(path, HTTP_ACCEPT="text/html")):
            assert response["Content-Type"].startswith("text/html"), path
            assert response.status_code in (200, 405) and b"Django REST framework" in response.content, path


def test_schema_is_valid_openapi_3_with_every_endpoint_and_its_errors(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)  # drf-spectacular's validation against the OpenAPI 3 JSON Schema; raises if invalid
    paths = schema["paths"]
    for path in (
        "/api/state/", "/api/ticks/", "/api/processes/", "/api/runs/", "/api/runs/{id}/", "/health/", "/api/engine/control/"
    ):
        assert path in paths, path
    post = paths["/api/runs/"]["post"]
    assert {"202", "400", "413", "415"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunStartRequest")
    assert "409" in paths["/api/runs/{id}/cancel/"]["post"]["responses"]
    control = paths["/api/engine/control/"]["post"]
    assert {"202", "400", "409", "503"} <= set(control["responses"])
    assert control["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ControlRequestRequest")
    assert {p["name"] for p in paths["/api/engine/control/"]["get"]["parameters"]} >= {"action", "outcome", "cursor"}
    components = schema["components"]["schemas"]
    tick = components["Tick"]["properties"]
    assert set(tick) == {c for c in TICK_COLUMNS if "." not in c} | {"subsystems"}
    assert components["Run"]["properties"]["created_at"]["type"] == "number"
    assert set(components["Error"]["properties"]) == {"error", "fields", "path"}


def test_swagger_ui_and_redoc_pages_load_their_assets_from_this_host(client):
    for path in ("/api/docs/", "/api/redoc/"):
        page = client.get(path).content.decode()
        assert "/static/drf_spectacular_sidecar/" in page, path
        assert not re.search(r'(src|href)="(https?:)?//', page), path  # nothing linked from another host


def test_run_serializer_gives_the_process_output_format_the_stream_sends():
    run = ProcessRun.objects.create(script="chaos_engine", process_id="chaos_engine_000001", parameters={"steps": 3})
    run.refresh_from_db()
    assert RunSerializer(run).data == run.as_process_output()
    assert RunSerializer(run).data["script"] == "chaos_engine.py"


@pytest.mark.parametrize("name", ["chaos_engine.py", "chaos_engine"])
def test_a_script_is_accepted_with_or_without_py_and_always_written_with_it(name):
    api = APIClient()
    run = api.post("/api/runs/", {"script": name}, format="json").json()
    assert run["script"] == "chaos_engine.py"
    assert isinstance(run["created_at"], float)
    for query in ("chaos_engine.py", "chaos_engine"):
        assert [r["id"] for r in api.get(f"/api/runs/?script={query}").json()["results"]] == [run["id"]]
    assert api.get("/api/runs/?script=nonsense.py").status_code == 400


@pytest.mark.parametrize(
    "path, names",
    [
        ("/api/ticks/?colour=red", ["colour"]),
        ("/api/runs/?scripts=chaos_engine&sort=id", ["scripts", "sort"]),
        ("/api/consolidations/?label=calm", ["label"]),
    ],
)
def test_unknown_query_parameters_are_a_400_naming_them(path, names):
    response = APIClient().get(path)
    assert response.status_code == 400
    body = response.json()
    assert sorted(body["fields"]) == names and "unknown query parameter" in body["fields"][names[0]][0]


@pytest.mark.parametrize("size", ["1001", "0", "-5", "many"])
def test_page_sizes_outside_the_cap_are_a_400_saying_the_range(size):
    response = APIClient().get(f"/api/ticks/?page_size={size}")
    assert response.status_code == 400 and "1 to 1000" in response.json()["fields"]["page_size"][0]


def _cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("cursor", ["abc", "%%%", "é", _cursor("p=abc"), _cursor("o=-3"), _cursor("r=x"), _cursor("o=999999999")])
def test_forged_cursors_are_a_400(cursor):
    history_make(5)
    response = APIClient().get("/api/ticks/", {"cursor": cursor})
    assert response.status_code == 400 and "cursor" in response.json()["fields"]


def test_a_real_cursor_still_pages():
    history_make(15)
    first = APIClient().get("/api/ticks/?page_size=10").json()
    assert len(APIClient().get(first["next"]).json()["results"]) == 5


def test_a_body_over_the_upload_limit_is_a_json_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"script": "chaos_engine", "parameters": {"pad": "x" * 2000}})
    response = APIClient().post("/api/runs/", body, content_type="application/json")
    assert response.status_code == 413 and "larger than 1000 bytes" in response.json()["error"]
    assert ProcessRun.objects.count() == 0


@pytest.mark.parametrize("depth", [40, 5000])
def test_deeply_nested_json_is_a_400(depth):
    body = '{"script": "chaos_engine", "parameters": {"x": ' + "[" * depth + "]" * depth + "}}"
    response = APIClient().post("/api/runs/", body, content_type="application/json")
    assert response.status_code == 400 and "nested deeper" in response.json()["error"]


def test_nan_in_a_body_is_a_400():
    response = APIClient().post("/api/runs/", '{"script": "chaos_engine", "parameters": {"x": NaN}}', content_type="application/json")
    assert response.status_code == 400 and "NaN" in response.json()["error"]


def test_a_form_encoded_post_is_a_415_asking_for_json():
    poster = APIClient()
    poster.force_authenticate(get_user_model().objects.create_superuser("poster", "p@example.com", "pw"))
    response = poster.post("/api/runs/", {"script": "chaos_engine"}, format="multipart")
    assert response.status_code == 415 and "Unsupported media type" in response.json()["error"]
    response = poster.post("/api/runs/", "script=chaos_engine", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and response["Content-Type"] == "application/json"


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/nothing/", "/api/runs/999999/", "/health/x/", "/api/runs/x/y/z"])
def test_api_and_health_paths_answer_json_errors_whatever_debug_says(settings, debug, path):
    settings.DEBUG = debug
    response = APIClient().get(path, HTTP_ACCEPT="application/json")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json" and "error" in response.json()


@pytest.mark.parametrize("debug", [False, True])
def test_a_server_error_on_api_and_health_is_json_whatever_debug_says(settings, monkeypatch, debug):
    settings.DEBUG = debug

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("consciousness.api.current_tick", broken)
    monkeypatch.setattr("consciousness.api.health_report", broken)
    monkeypatch.setattr("consciousness.api.metrics_text", broken)
    api = APIClient(raise_request_exception=False)
    for path in ("/api/state/", "/health/", "/metrics"):
        response = api.get(path, HTTP_ACCEPT="text/html")
        assert response.status_code == 500, path
        assert response.json() == {"error": "internal server error"}, path


def test_a_browser_gets_a_plain_not_found_page_and_the_debug_page_only_when_asked(client, settings):
    settings.DEBUG = False
    page = client.get("/no/such/page", HTTP_ACCEPT="text/html")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
    assert b"Not Found" in page.content and b"URLconf" not in page.content and b"settings" not in page.content
    settings.DEBUG = True
    assert b"URLconf" in client.get("/no/such/page", HTTP_ACCEPT="text/html").content
