"""The runs admin: read-only, the picture shown, script output escaped."""

import base64
import io

import pytest
from django.contrib.auth import get_user_model
from PIL import Image

from processes.models import MemoryConsolidation, ProcessRun

pytestmark = [pytest.mark.django_db, pytest.mark.both_shapes]


def png_base64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 40, 40)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


@pytest.fixture
def run():
    return ProcessRun.objects.create(
        script="neural_analyzer",
        process_id="neural_analyzer_000001",
        status="completed",
        trigger="every 50 ticks",
        output={"analysis": "<script>alert(1)</script> density 0.4", "metrics": {"density": 0.4}, "visualization": png_base64()},
        consciousness_impact={"scup_change": 1.5, "mood_influence": "positive"},
    )


def test_runs_are_listed_and_filtered(admin_client, run):
    for query in ("", "?script=neural_analyzer", "?status=completed", "?trigger=every+50+ticks", "?q=neural"):
        response = admin_client.get(f"/admin/processes/processrun/{query}")
        assert response.status_code == 200, query
        assert b"neural_analyzer_000001" in response.content


def test_a_run_shows_its_picture_and_escaped_output_read_only(admin_client, run):
    page = admin_client.get(f"/admin/processes/processrun/{run.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert f'src="data:image/png;base64,{run.output["visualization"]}"' in content
    assert "<script>alert(1)</script>" not in content and "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "Save" not in content
    assert admin_client.get("/admin/processes/processrun/add/").status_code == 403
    assert admin_client.post(f"/admin/processes/processrun/{run.pk}/delete/").status_code == 403
    assert ProcessRun.objects.filter(pk=run.pk).exists()


def test_consolidations_are_listed_read_only(admin_client, run):
    MemoryConsolidation.objects.create(
        run=run, label="pattern 1 (bright)", centroid=[0.1, 0.2], weight=0.5, support=50, source_tick_start=1, source_tick_end=100
    )
    listing = admin_client.get("/admin/processes/memoryconsolidation/?run__script=neural_analyzer")
    assert listing.status_code == 200 and b"pattern 1 (bright)" in listing.content
    assert admin_client.get("/admin/processes/memoryconsolidation/add/").status_code == 403
