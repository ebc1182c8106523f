"""GET /api/runs/{id}/visualization.png: the picture the stream's process events leave out."""

import base64

import numpy as np

import pytest
from rest_framework.test import APIClient

from processes.models import ProcessRun
from processes.scripts.toolkit.drawing import png_base64

pytestmark = [pytest.mark.django_db, pytest.mark.both_shapes]


def make_run(output):
    return ProcessRun.objects.create(
        script="neural_analyzer", process_id=f"neural_analyzer_{ProcessRun.objects.count() + 1:06d}",
        status="completed", trigger="manual", output=output,
    )


@pytest.mark.parametrize("path", ["/api/runs/{id}/visualization.png", "/api/runs/{id}/visualization.png/"])
def test_a_runs_picture_is_served_as_png(path):
    picture = png_base64(np.zeros((4, 4)))
    run = make_run({"analysis": "a", "visualization": picture})
    response = APIClient().get(path.format(id=run.pk))
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert response.content == base64.b64decode(picture) and response.content.startswith(b"\x89PNG")


def test_a_run_without_a_picture_or_no_run_answers_json_404():
    run = make_run({"analysis": "no picture"})
    for path in (f"/api/runs/{run.pk}/visualization.png", "/api/runs/99999/visualization.png"):
        response = APIClient().get(path)
        assert response.status_code == 404 and "error" in response.json()
