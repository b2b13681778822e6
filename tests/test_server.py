"""The web service (emotiscope.server) and `emotiscope serve`, through FastAPI's test client."""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")

from fastapi.testclient import TestClient  # noqa: E402
from fixtures.bad_images import JP2_SIGNATURE, tiff_bytes  # noqa: E402
from fixtures.tiny_model import make_nan_model  # noqa: E402

from emotiscope.errors import ImageTooLargeError, InputError, UnsupportedImageError  # noqa: E402
from emotiscope.images import load_image, sample_image_path  # noqa: E402
from emotiscope.server import create_app  # noqa: E402
from emotiscope.server.http_errors import input_status  # noqa: E402
from emotiscope.server.routes import STATIC  # noqa: E402


def face_photo_path() -> Path:
    """The package's sample photo, else matplotlib's Grace Hopper portrait."""
    if sample_image_path().is_file():
        return sample_image_path()
    cbook = pytest.importorskip("matplotlib.cbook")
    return Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


@pytest.fixture(scope="module")
def photo() -> bytes:
    return face_photo_path().read_bytes()


@pytest.fixture(scope="module")
def client(recognizer):
    with TestClient(create_app(recognizer)) as test_client:
        yield test_client


def png_header(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk declaring width x height, and no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)))


def assert_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["status"] == status and error["message"]
    assert "Traceback" not in response.text
    return error


# ---- POST /v1/analyze ------------------------------------------------------------------------

def test_analyze_multipart_returns_every_face_with_all_probabilities(client, recognizer, photo):
    response = client.post("/v1/analyze", files={"file": ("photo.jpg", photo, "image/jpeg")})
    assert response.status_code == 200
    body = response.json()
    height, width = load_image(photo).shape[:2]
    assert body["image"] == {"width": width, "height": height, "format": "jpeg"}
    assert body["labels"] == list(recognizer.labels)
    expected = recognizer(photo)
    assert len(body["faces"]) == len(expected) >= 1
    for face, want in zip(body["faces"], expected, strict=True):
        assert face["box"] == want.box.as_dict()
        assert face["label"] == want.label == max(face["scores"], key=face["scores"].get)
        assert face["score"] == pytest.approx(face["scores"][face["label"]])
        assert list(face["scores"]) == list(recognizer.labels)
        assert sum(face["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert {"queue", "decode", "detect", "classify", "total"} <= set(body["timings_ms"])


def test_analyze_raw_body_gives_the_same_faces_as_multipart(client, photo):
    raw = client.post("/v1/analyze", content=photo, headers={"Content-Type": "image/jpeg"})
    form = client.post("/v1/analyze", files={"file": ("p.jpg", photo, "image/jpeg")})
    untyped = client.post("/v1/analyze", content=photo)
    assert raw.status_code == form.status_code == untyped.status_code == 200
    assert raw.json()["faces"] == form.json()["faces"] == untyped.json()["faces"]


@pytest.mark.parametrize(("query", "media", "magic"), [
    ("annotate=true", "image/jpeg", b"\xff\xd8\xff"),
    ("annotate=1&format=png", "image/png", b"\x89PNG"),
    ("annotate=True&format=jpeg", "image/jpeg", b"\xff\xd8\xff"),
])
def test_annotate_returns_the_annotated_image(client, photo, query, media, magic):
    response = client.post(f"/v1/analyze?{query}", content=photo)
    assert response.status_code == 200
    assert response.headers["content-type"] == media
    assert response.content.startswith(magic)
    assert int(response.headers["x-emotiscope-faces"]) >= 1
    annotated, original = load_image(response.content), load_image(photo)
    assert annotated.shape == original.shape
    assert not np.array_equal(annotated, original)  # boxes were drawn


@pytest.mark.parametrize("value", ["false", "0", "FALSE"])
def test_annotate_false_returns_json(client, photo, value):
    response = client.post(f"/v1/analyze?annotate={value}", content=photo)
    assert response.status_code == 200 and response.json()["faces"]


@pytest.mark.parametrize("value", ["yes", "on", "no", "", "2", "truee", "t"])
def test_booleans_are_parsed_strictly(client, photo, value):
    error = assert_error(client.post(f"/v1/analyze?annotate={value}", content=photo), 422)
    assert "true, false, 1 or 0" in error["message"]


def test_unknown_annotation_format_is_422(client, photo):
    error = assert_error(client.post("/v1/analyze?annotate=true&format=gif", content=photo), 422)
    assert "jpeg or png" in error["message"]


# ---- refusing bad input --------------------------------------------------------------------

@pytest.mark.parametrize(("body", "content_type"), [
    (b"hello, not an image", "image/jpeg"),
    (b"/etc/passwd", "application/octet-stream"),      # a path is never opened
    (b"https://example.com/face.jpg", "image/png"),    # nor a URL fetched
    (b"%PDF-1.4 ...", None),
])
def test_non_images_are_415(client, body, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    assert_error(client.post("/v1/analyze", content=body, headers=headers), 415)


def test_non_image_content_type_is_415(client, photo):
    response = client.post("/v1/analyze", content=photo, headers={"Content-Type": "text/plain"})
    assert_error(response, 415)


def test_multipart_without_a_file_part_is_422_and_opens_nothing(client):
    # A text field naming a file on the server is not an upload: nothing is opened.
    body = (b'--xyz\r\nContent-Disposition: form-data; name="file"\r\n\r\n'
            + str(sample_image_path()).encode() + b"\r\n--xyz--\r\n")
    response = client.post("/v1/analyze", content=body,
                           headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert "no file part" in assert_error(response, 422)["message"]


@pytest.mark.parametrize("cut", [0, 200, 3000])
def test_corrupt_or_empty_images_are_422(client, photo, cut):
    error = assert_error(client.post("/v1/analyze", content=photo[:cut]), 422)
    assert "Traceback" not in error["message"]


def test_upload_over_the_declared_size_limit_is_413(recognizer, photo):
    with TestClient(create_app(recognizer, max_upload_bytes=1000)) as small:
        big = photo * 3  # well past the limit: refused from Content-Length, before reading
        assert "request body is larger" in assert_error(
            small.post("/v1/analyze", content=big), 413)["message"]
        assert_error(small.post("/v1/analyze", files={"file": ("p.jpg", big)}), 413)
    with TestClient(create_app(recognizer, max_upload_bytes=len(photo) - 1)) as tight:
        error = assert_error(tight.post("/v1/analyze", files={"file": ("p.jpg", photo)}), 413)
        assert "p.jpg is larger than" in error["message"]


def test_streamed_upload_over_the_limit_is_413(recognizer, photo):
    def chunks(data):  # no Content-Length: the size is only known while streaming
        for start in range(0, len(data), 4096):
            yield data[start:start + 4096]
    with TestClient(create_app(recognizer, max_upload_bytes=1000)) as small:
        response = small.post("/v1/analyze", content=chunks(photo * 3))
        assert "request body is larger" in assert_error(response, 413)["message"]
    with TestClient(create_app(recognizer, max_upload_bytes=len(photo))) as exact:
        assert exact.post("/v1/analyze", content=chunks(photo)).status_code == 200


def test_pixel_limit_is_413(recognizer, photo):
    height, width = load_image(photo).shape[:2]
    with TestClient(create_app(recognizer, max_pixels=width * height - 1)) as limited:
        error = assert_error(limited.post("/v1/analyze", content=photo), 413)
        assert f"{width}x{height}" in error["message"]


def test_decompression_bomb_is_refused_from_its_header(client):
    bomb = png_header(100_000, 100_000)  # 10 gigapixels declared in 33 bytes
    error = assert_error(client.post("/v1/analyze", content=bomb), 413)
    assert "100000x100000" in error["message"]


def _png(pixels: np.ndarray) -> bytes:
    import cv2

    return cv2.imencode(".png", pixels)[1].tobytes()


@pytest.mark.parametrize(("body", "status", "words"), [
    (JP2_SIGNATURE + bytes(64), 415, "JPEG 2000"),                          # refused format
    (tiff_bytes(np.zeros((8, 8, 5), np.uint8)), 415, "TIFF with 5 channels"),  # refused layout
    (b"\x00\x01garbage that is no image at all", 415, "not an image format"),
    (_png(np.zeros((3, 400), np.uint8)), 422, "aspect ratio above 50:1"),    # a strip
    (png_header(64, 64), 422, "cannot be decoded"),                        # header, no pixels
])
def test_refusals_say_the_decoders_own_reason(client, body, status, words):
    error = assert_error(client.post("/v1/analyze", content=body), status)
    assert words in error["message"] and error["message"].startswith("the uploaded image")
    assert "\n" not in error["message"]


def test_input_errors_map_to_sensible_statuses():
    assert input_status(ImageTooLargeError("big")) == 413
    assert input_status(UnsupportedImageError("avif")) == 415
    assert input_status(InputError("corrupt")) == 422


def test_pixel_limit_after_decoding_is_413(recognizer, monkeypatch):
    # A header that hides the true size: the limit checked on the decoded image still gives 413.
    monkeypatch.setattr("emotiscope.server.analysis.declared_size", lambda data: None)
    with TestClient(create_app(recognizer, max_pixels=100)) as limited:
        error = assert_error(limited.post("/v1/analyze", content=_png(np.zeros((20, 20), np.uint8))),
                             413)
    assert "20x20" in error["message"]


def test_unknown_routes_and_methods_answer_json(client):
    assert_error(client.get("/v1/nothing"), 404)
    assert_error(client.get("/v1/analyze"), 405)


def test_an_internal_error_is_a_bare_500_without_traceback(recognizer, photo):
    class Broken:
        labels, classifier, detector = recognizer.labels, recognizer.classifier, recognizer.detector

        def detect(self, image):
            raise RuntimeError("secret detail /home/user/model.onnx")

    app = create_app(Broken())
    with TestClient(app, raise_server_exceptions=False) as broken:
        error = assert_error(broken.post("/v1/analyze", content=photo), 500)
    assert "secret" not in error["message"] and "RuntimeError" not in error["message"]


def test_a_model_that_outputs_nan_is_a_json_500_with_one_log_line(tmp_path, photo, caplog):
    from emotiscope.pipeline import EmotionRecognizer

    (tmp_path / "secret-dir").mkdir()
    nan = EmotionRecognizer(model=make_nan_model(tmp_path / "secret-dir" / "nan.onnx"))
    with TestClient(create_app(nan), raise_server_exceptions=False) as broken:
        caplog.clear()
        error = assert_error(broken.post("/v1/analyze", content=photo), 500)
        batch = broken.post("/v1/analyze/batch", files=[("file", ("a.jpg", photo, "image/jpeg"))])
    assert "NaN" in error["message"] and "nan.onnx" in error["message"]
    assert str(tmp_path) not in error["message"]  # the server's folders are not published
    assert batch.status_code == 200 and batch.json()["results"][0]["error"]["status"] == 500
    logged = [r for r in caplog.records if r.name.startswith("emotiscope")]
    assert len(logged) == 2 and all(r.exc_info is None for r in logged)  # one line a request
    assert all("\n" not in r.getMessage() for r in logged)


# ---- concurrency -----------------------------------------------------------------------------

class Blocking:
    """A recognizer whose detect() waits until released, to hold a working place."""

    def __init__(self, inner):
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def detect(self, image):
        if image.shape[0] > 64:  # not the start-up warm-up
            self.entered.set()
            assert self.release.wait(20)
        return self.inner.detect(image)


def test_requests_beyond_the_queue_get_503_with_retry_after(recognizer, photo):
    blocking = Blocking(recognizer)
    app = create_app(blocking, max_concurrency=1, queue_limit=1)
    with TestClient(app) as busy:
        results = {}

        def post(key):
            results[key] = busy.post("/v1/analyze", content=photo)

        workers = [threading.Thread(target=post, args=(k,)) for k in ("first", "second")]
        workers[0].start()
        assert blocking.entered.wait(20)
        workers[1].start()
        deadline = time.monotonic() + 20
        while busy.get("/healthz").json()["waiting"] < 1:  # the loop answers while work blocks
            assert time.monotonic() < deadline, "second request never queued"
            time.sleep(0.02)
        refused = busy.post("/v1/analyze", content=photo)
        blocking.release.set()
        for worker in workers:
            worker.join(30)
    error = assert_error(refused, 503)
    assert refused.headers["retry-after"] == "1" and "busy" in error["message"]
    assert results["first"].status_code == results["second"].status_code == 200
    assert results["second"].json()["timings_ms"]["queue"] > 0


def test_a_request_whose_client_hung_up_while_queued_is_not_analysed(recognizer, photo):
    httpx = pytest.importorskip("httpx")
    from fixtures.server import running

    blocking = Blocking(recognizer)
    calls = []
    real_detect = blocking.detect
    blocking.detect = lambda image: calls.append(image.shape) or real_detect(image)
    with running(create_app(blocking, max_concurrency=1)) as url:
        first = threading.Thread(target=httpx.post, args=(url + "/v1/analyze",),
                                 kwargs={"content": photo, "timeout": 30})
        first.start()
        assert blocking.entered.wait(20)
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port))) as quitter:
            quitter.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg"
                            b"\r\nContent-Length: %d\r\n\r\n" % len(photo) + photo)
            deadline = time.monotonic() + 20
            while httpx.get(url + "/healthz").json()["waiting"] < 1:
                assert time.monotonic() < deadline, "second request never queued"
                time.sleep(0.02)
        blocking.release.set()  # the quitter has closed its connection
        first.join(30)
        deadline = time.monotonic() + 20
        while httpx.get(url + "/healthz").json()["in_flight"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert len([shape for shape in calls if shape[0] > 64]) == 1


# ---- batch, model card, health, page ---------------------------------------------------------

def test_batch_gives_one_result_per_image_and_errors_in_place(client, photo):
    files = [("file", ("a.jpg", photo, "image/jpeg")), ("file", ("notes.txt", b"hi", "text/plain")),
             ("file", ("b.jpg", photo, "image/jpeg"))]
    response = client.post("/v1/analyze/batch", files=files)
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["filename"] for r in results] == ["a.jpg", "notes.txt", "b.jpg"]
    assert results[0]["faces"] and results[0]["faces"] == results[2]["faces"]
    assert results[1]["error"]["status"] == 415 and "faces" not in results[1]


def test_batch_needs_multipart_and_limits_the_file_count(recognizer, photo):
    with TestClient(create_app(recognizer, max_batch_files=2)) as small:
        assert_error(small.post("/v1/analyze/batch", content=photo), 415)
        files = [("file", (f"{i}.jpg", photo, "image/jpeg")) for i in range(3)]
        assert_error(small.post("/v1/analyze/batch", files=files), 400)
        files = [("file", ("a.jpg", photo, "image/jpeg"))] * 2
        assert small.post("/v1/analyze/batch", files=files).status_code == 200


def test_batch_refuses_the_annotated_image_options_instead_of_ignoring_them(client, photo):
    files = [("file", ("a.jpg", photo, "image/jpeg"))]
    for query in ("annotate=true", "format=png", "annotate=1&format=jpeg"):
        error = assert_error(client.post(f"/v1/analyze/batch?{query}", files=files), 422)
        assert "/v1/analyze" in error["message"] and "JSON only" in error["message"]
    assert client.post("/v1/analyze/batch?other=1", files=files).status_code == 200


def test_media_types_ignore_case_in_analyze_and_batch(client, photo):
    body = (b"--xyz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
            b"Content-Type: image/jpeg\r\n\r\n" + photo + b"\r\n--xyz--\r\n")
    headers = {"Content-Type": "Multipart/Form-Data; boundary=xyz"}
    one = client.post("/v1/analyze", content=body, headers=headers)
    batch = client.post("/v1/analyze/batch", content=body, headers=headers)
    assert one.status_code == batch.status_code == 200
    assert batch.json()["results"][0]["faces"] == one.json()["faces"]


def test_model_card_comes_from_the_model_file(client, recognizer, tiny_model_path):
    response = client.get("/v1/model")
    assert response.status_code == 200
    card = response.json()
    info = recognizer.classifier.info
    assert card["labels"] == list(info.labels)
    assert card["sha256"] == info.sha256 and card["name"] == tiny_model_path.name
    assert card["input"] == info.spec.to_dict() and card["arch"] == info.metadata["arch"]
    assert set(card["colours"]) == set(info.labels)
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in card["colours"].values())
    assert str(tiny_model_path.parent) not in response.text  # no local paths leak


def test_model_card_gives_the_smallest_face_looked_for(tiny_model_path):
    from emotiscope.pipeline import EmotionRecognizer

    recognizer = EmotionRecognizer(model=tiny_model_path, detector="haar", min_face=33)
    with TestClient(create_app(recognizer)) as test_client:
        assert test_client.get("/v1/model").json()["min_face"] == 33


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "model": "tiny.onnx", "uploading": 0,
                               "in_flight": 0, "waiting": 0, "queue_limit": 256,
                               "held_bytes": 0}


def test_the_model_loads_once_at_start_up(tiny_model_path, monkeypatch):
    import emotiscope.pipeline as pipeline

    built = []
    real = pipeline.EmotionRecognizer
    monkeypatch.setattr(pipeline, "EmotionRecognizer",
                        lambda **kw: built.append(kw) or real(**kw))
    app = create_app(model=tiny_model_path, detector="haar", workers=1)
    assert built == []
    with TestClient(app) as started:
        assert len(built) == 1 and built[0]["options"].model == tiny_model_path
        for _ in range(3):
            assert started.get("/v1/model").status_code == 200
    assert len(built) == 1


def test_page_and_its_files_are_served_without_any_cdn(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    referenced = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert "/static/app.js" in referenced and "/static/style.css" in referenced
    for path in referenced:
        assert client.get(path).status_code == 200, path
    for name in sorted(p.name for p in STATIC.iterdir()):
        text = (STATIC / name).read_text()
        assert not re.search(r"https?://(?!127\.0\.0\.1)", text), f"{name} loads from elsewhere"
        for module in re.findall(r'from "\./([^"]+)"', text):
            assert client.get(f"/static/{module}").status_code == 200, module


def test_openapi_document_and_offline_docs_page(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/analyze", "/v1/analyze/batch", "/v1/model", "/healthz"} <= set(spec["paths"])
    body = spec["paths"]["/v1/analyze"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body and "image/jpeg" in body
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/static/docs.js" in docs.text


def test_every_image_format_reported_is_named_in_the_schema(client):
    from emotiscope.images import encode_image

    named = client.get("/openapi.json").json()["components"]["schemas"]["ImageOut"][
        "properties"]["format"]["description"]
    image = np.full((24, 32, 3), 90, np.uint8)
    for suffix in (".jpg", ".png", ".webp", ".bmp", ".tiff", ".ppm", ".pam"):
        body = client.post("/v1/analyze", content=encode_image(image, suffix)).json()
        assert re.search(rf"\b{body['image']['format']}\b", named), (suffix, named)


def test_static_files_cannot_escape_their_folder(client):
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/..%2fapp.py"):
        assert client.get(path).status_code == 404


# ---- `emotiscope serve` --------------------------------------------------------------------

def test_serve_binds_to_localhost_by_default(tiny_model_path, monkeypatch):
    from emotiscope.cli import main
    from emotiscope.server import runner

    seen = {}
    monkeypatch.setattr(runner, "bind", lambda host, port: seen.update(host=host, port=port)
                        or socket.socket())
    monkeypatch.setattr(runner, "serve", lambda app, sock, **kw: seen.update(kw, app=app))
    assert main(["serve", "--model", str(tiny_model_path), "--max-upload-mb", "2",
                 "--workers-threads", "3", "--body-timeout", "7"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 8000
    config = seen["app"].state.config
    assert config.max_upload_bytes == 2 * 1024 * 1024 and config.max_concurrency == 3
    assert config.body_timeout_s == 7 and config.max_pending_bytes >= 256 * 1024 * 1024


def test_serve_without_the_extra_says_how_to_install_it(monkeypatch, capsys):
    import importlib.util

    from emotiscope.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "uvicorn" else real(name, *a))
    assert main(["serve"]) == 1
    err = capsys.readouterr().err
    assert "uvicorn" in err and "pip install \".[serve]\"" in err


@pytest.mark.parametrize("args", [["--port", "0"], ["--port", "70000"], ["--max-upload-mb", "0"],
                                  ["--workers-threads", "0"], ["--queue-limit", "-1"],
                                  ["--body-timeout", "0"], ["--max-pending-mb", "-1"]])
def test_serve_rejects_bad_options(args, capsys):
    from emotiscope.cli import main

    assert main(["serve", *args]) == 2
    assert "error:" in capsys.readouterr().err


def test_serve_model_error_is_a_clean_exit(tmp_path, capsys):
    from emotiscope.cli import main

    assert main(["serve", "--model", str(tmp_path / "missing.onnx")]) == 1
    assert "missing.onnx" in capsys.readouterr().err


def test_json_errors_are_valid_json_everywhere(client):
    for response in (client.post("/v1/analyze", content=b"x"), client.get("/nope")):
        json.loads(response.text)


def test_an_assumed_face_crop_is_marked_in_the_json(tiny_model_path, photo):
    from fixtures.detectors import FixedDetector

    from emotiscope.images import encode_image
    from emotiscope.pipeline import EmotionRecognizer

    face = load_image(photo)[68:195, 107:212][::3, ::3]  # Grace Hopper, about 35x43: a crop
    rec = EmotionRecognizer(model=tiny_model_path, detector=FixedDetector([]))
    with TestClient(create_app(rec)) as crop_client:
        body = crop_client.post("/v1/analyze", content=encode_image(face, ".png")).json()
        (found,) = body["faces"]
        assert found["assumed"] is True and found["box"] == {"x": 0, "y": 0, "w": 35, "h": 43}
        flat = encode_image(np.full((48, 48, 3), 128, np.uint8), ".png")
        assert crop_client.post("/v1/analyze", content=flat).json()["faces"] == []
    schema = create_app(rec).openapi()["components"]["schemas"]["FaceOut"]
    assert "assumed" in schema["properties"]


def test_the_face_schema_is_how_faces_are_written():
    from emotiscope.server.schemas import FaceOut
    from emotiscope.types import Box, FaceEmotion

    face = FaceEmotion(Box(1, 2, 3, 4), "happy", {"happy": 0.75, "sad": 0.25}, track_id=3)
    assert set(FaceOut.model_fields) == set(face.as_dict())
    assert FaceOut.model_validate(face.as_dict()).model_dump() == face.as_dict()
