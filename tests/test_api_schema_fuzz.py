"""schemathesis over the served OpenAPI schema: every operation, as an anonymous client and as a writer.

Each operation of `/api/schema/` (new ones too: the walk is over the schema, not a list here) gets
generated requests, valid and invalid, and methods it does not have, through the real WSGI application.
Every answer must be no 5xx, a status code the schema documents for the operation (405 for a method it
lacks), with the documented content type, headers and body. No runtick runs here, so posted runs stay
queued: the queue's bound and the write throttles are reached, and their 429s are checked too.
"""

from __future__ import annotations

import base64
import io

import pytest
import schemathesis
from django.contrib.auth.models import Permission, User
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from PIL import Image
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from processes.models import MemoryConsolidation, ProcessRun
from tests.factories import history_make

# the WSGI handler closes connections around each request, as a server's would: no test transaction can span it
pytestmark = [pytest.mark.django_db(transaction=True)]

# examples per operation and identity, on top of schemathesis's own boundary and unsupported-method cases
MAX_EXAMPLES = 30
# rows every {id} operation should also meet: a completed run with a picture, a queued run, a consolidation
PICTURED, QUEUED = 1, 2
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}  # served by the framework for every path, documented nowhere


def method_not_served_is_405(ctx, response, case) -> bool | None:
    """A method the schema does not list for a path is a 405 with Allow, for anyone (never a 403 or 429)."""
    method = response.request.method.upper()
    documented = case.operation.schema.raw_schema["paths"][case.operation.path]
    if method in IMPLICIT_METHODS or method.lower() in documented:
        return None
    assert response.status_code == 405, f"{method} {response.request.url}: {response.status_code}, not 405"
    assert response.headers.get("allow"), f"{method} {response.request.url}: 405 without Allow"
    return True


# no runtick runs here: "the engine did not answer in time" (503 with Retry-After) is what these must say
NEEDS_THE_ENGINE = {("POST", "/api/engine/control/")}


def no_server_error_but_an_absent_engine(ctx, response, case) -> bool | None:
    """No 5xx, except the documented 503 with Retry-After of an operation that waits for the engine."""
    method = response.request.method.upper()
    if (method, case.operation.path) in NEEDS_THE_ENGINE and response.status_code == 503:
        assert response.headers.get("retry-after"), f"{method} {case.operation.path}: 503 without Retry-After"
        return True
    return not_a_server_error(ctx, response, case)


CHECKS = [
    no_server_error_but_an_absent_engine,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    method_not_served_is_405,
]


def _picture() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(autouse=True)
def objects(settings):
    settings.DAWN_OPEN_WRITES = False
    cache.clear()  # the write throttles start afresh
    history_make(30)
    pictured = ProcessRun.objects.create(
        pk=PICTURED, script="neural_analyzer", process_id="neural_analyzer_000001", status="completed",
        output={"analysis": {}, "metrics": {}, "visualization": _picture()},
    )
    ProcessRun.objects.create(
        pk=QUEUED, script="chaos_engine", process_id="chaos_engine_000002", status="queued"
    )
    MemoryConsolidation.objects.create(
        pk=PICTURED, run=pictured, label="calm", centroid=[0.1], weight=1.0, support=3, source_tick_start=1,
        source_tick_end=3,
    )
    yield
    cache.clear()


@pytest.fixture
def writer_token() -> str:
    """A user holding every permission of the project's apps (so every write there is), and their DRF token."""
    user = User.objects.create_user("writer", password="pw")
    project = Permission.objects.filter(content_type__app_label__in=["consciousness", "processes"])
    user.user_permissions.set(project)
    return Token.objects.create(user=user).key


# Loaded when the module is collected: schemathesis's fixture-made (lazy) schemas fail under pytest 9.2.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Random ids seldom exist: an {id} also names the fixture's rows, so 200s, 202s and 409s come too."""
    if not path_parameters or "id" not in path_parameters:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, *({**path_parameters, "id": pk} for pk in (PICTURED, QUEUED))])


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_an_anonymous_client_as_documented(case):
    case.call_and_validate(checks=CHECKS)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_a_writer_as_documented(case, writer_token):
    case.call_and_validate(headers={"Authorization": f"Token {writer_token}"}, checks=CHECKS)
