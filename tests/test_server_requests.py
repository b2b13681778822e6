"""The web service's answers to requests a user gets slightly wrong: each is a JSON error whose
one line says what was wrong and how to send it instead; HEAD works wherever GET does."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")

from fastapi.testclient import TestClient  # noqa: E402

from emotiscope.images import encode_image  # noqa: E402
from emotiscope.server import create_app  # noqa: E402


@pytest.fixture(scope="module")
def client(recognizer):
    with TestClient(create_app(recognizer, max_batch_files=2)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def image() -> bytes:
    return encode_image(np.full((24, 32, 3), 90, np.uint8), ".png")


def error(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]["message"]
    assert "\n" not in message
    return message


def test_several_files_to_analyze_point_to_the_batch_endpoint(client, image):
    files = [("file", ("a.png", image, "image/png"))] * 2
    message = error(client.post("/v1/analyze", files=files), 400)
    assert "one image" in message and "/v1/analyze/batch" in message


def test_a_batch_over_the_file_limit_says_the_limit(client, image):
    files = [("file", (f"{i}.png", image, "image/png")) for i in range(3)]
    assert "at most 2 images" in error(client.post("/v1/analyze/batch", files=files), 400)


@pytest.mark.parametrize("content_type", ["multipart/form-data",
                                          "multipart/form-data; boundary=xyz"])
def test_a_malformed_multipart_body_says_how_to_send_one(client, content_type):
    response = client.post("/v1/analyze", content=b"garbage",
                           headers={"Content-Type": content_type})
    message = error(response, 400)
    assert "malformed multipart body" in message and "curl -F file=@" in message


def test_a_text_field_named_file_says_to_upload_a_file(client):
    body = b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\nphoto.jpg\r\n--xyz--\r\n'
    response = client.post("/v1/analyze", content=body,
                           headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    message = error(response, 422)
    assert "no file part" in message and "curl -F file=@" in message


def test_unknown_paths_list_the_endpoints(client):
    message = error(client.get("/v1/analyse"), 404)
    assert "GET /v1/analyse" in message and "POST /v1/analyze" in message


def test_a_wrong_method_names_the_right_one(client):
    message = error(client.get("/v1/analyze"), 405)
    assert "GET /v1/analyze" in message and "POST" in message
    assert "GET" in error(client.delete("/healthz"), 405).split("accepts")[1]


@pytest.mark.parametrize("path", ["/", "/docs", "/healthz", "/v1/model", "/openapi.json"])
def test_head_works_wherever_get_does(client, path):
    response = client.head(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == client.get(path).headers["content-type"]


def test_head_routes_stay_out_of_the_openapi_document(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert all("head" not in methods for methods in paths.values())


@pytest.mark.parametrize(("value", "magic"), [("PNG", b"\x89PNG"), ("Jpeg", b"\xff\xd8\xff")])
def test_the_annotation_format_ignores_case_like_annotate(client, image, value, magic):
    response = client.post(f"/v1/analyze?annotate=TRUE&format={value}", content=image)
    assert response.status_code == 200, response.text
    assert response.content.startswith(magic)
