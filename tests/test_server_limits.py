"""The web service under abusive clients, on a real uvicorn server on 127.0.0.1: slow uploads,
the body deadline, the memory budget for bodies, refused uploads that plain clients must still
read, hang-ups, unparsable requests, the published model card and a taken port."""

from __future__ import annotations

import json
import logging
import select
import socket
import time
import urllib.error
import urllib.request
from contextlib import ExitStack

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("python_multipart")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from fixtures.server import running  # noqa: E402
from fixtures.tiny_model import make_tiny_model  # noqa: E402

from emotiscope.images import encode_image  # noqa: E402
from emotiscope.server import create_app  # noqa: E402

KB = 1024


@pytest.fixture(scope="module")
def small_png() -> bytes:
    return encode_image(np.full((64, 64, 3), 128, np.uint8), ".png")


def address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def start_upload(url: str, declared: int, sent: bytes, extra: bytes = b"") -> socket.socket:
    """A raw connection that declares `declared` body bytes and has sent only `sent`."""
    sock = socket.create_connection(address(url), timeout=10)
    sock.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: t\r\nContent-Type: image/png\r\n"
                 b"Content-Length: %d\r\n%s\r\n" % (declared, extra) + sent)
    return sock


def read_response(sock: socket.socket, timeout: float = 10.0) -> tuple[int, dict, dict]:
    """(status, headers, JSON body) of the one response on `sock`, which must then close.

    A server that closes while the client is still sending may end the connection with a
    reset rather than a FIN once the answer is out (the kernel's rule for unread input); a
    reset after the whole answer counts as the close, one before it fails the test."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        data += _more(sock, data)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    assert "content-length" in headers, f"a response without Content-Length: {head!r}"
    length = int(headers["content-length"])
    while len(body) < length:
        body += _more(sock, body)
    try:
        assert sock.recv(65536) == b"", "the connection stayed open after the response"
    except ConnectionResetError:
        pass
    assert len(body) == length, "bytes after the response's body"
    return int(lines[0].split()[1]), headers, json.loads(body)


def _more(sock: socket.socket, got: bytes) -> bytes:
    chunk = sock.recv(65536)
    assert chunk, f"connection closed before a whole response ({len(got)} bytes of this part)"
    return chunk


def wait_for(url: str, key: str, value: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (now := httpx.get(url + "/healthz").json()[key]) != value:
        assert time.monotonic() < deadline, f"healthz {key} is {now}, never {value}"
        time.sleep(0.02)


def assert_json_error(status: int, headers: dict, body: dict, want: int) -> str:
    assert status == want, body
    assert headers["content-type"] == "application/json"
    assert body["error"]["status"] == want and body["error"]["message"]
    return body["error"]["message"]


# ---- slow uploads, deadline, memory budget ----------------------------------------------------

def test_slow_uploads_hold_no_queue_place(recognizer, small_png):
    # Before: each trickling upload took a queue place before its body arrived, so 20 of them
    # filled a queue of 2 and every normal request got 503.
    app = create_app(recognizer, max_concurrency=1, queue_limit=2, body_timeout_s=30)
    with running(app) as url, ExitStack() as stack:
        for _ in range(20):
            stack.enter_context(start_upload(url, 1000, b"\x89"))
        wait_for(url, "uploading", 20)
        for _ in range(3):
            response = httpx.post(url + "/v1/analyze", content=small_png, timeout=10)
            assert response.status_code == 200, response.text
        health = httpx.get(url + "/healthz").json()
        assert health["uploading"] == 20 and health["in_flight"] == 0


def test_a_trickling_body_gets_408_json_at_its_deadline(recognizer):
    app = create_app(recognizer, body_timeout_s=1.0)
    with running(app) as url:
        start = time.monotonic()
        with start_upload(url, 1000, b"\x89") as sock:
            while not select.select([sock], [], [], 0.2)[0]:  # a byte every 0.2 s
                assert time.monotonic() - start < 5, "no answer after the deadline"
                sock.sendall(b"x")
            status, headers, body = read_response(sock)
        elapsed = time.monotonic() - start
        wait_for(url, "uploading", 0)
    message = assert_json_error(status, headers, body, 408)
    assert 0.9 < elapsed < 3.0
    assert "within 1 s" in message and "of 1000 bytes" in message and "--body-timeout" in message


def test_bodies_held_in_memory_stay_within_the_budget(recognizer, small_png):
    app = create_app(recognizer, max_upload_bytes=100 * KB, max_batch_bytes=100 * KB,
                     max_pending_bytes=300 * KB)
    with running(app) as url:
        held = start_upload(url, 150 * KB, b"\0" * (140 * KB))
        other = start_upload(url, 150 * KB, b"\0" * (140 * KB))
        wait_for(url, "held_bytes", 280 * KB)
        declared = httpx.post(url + "/v1/analyze", content=b"\0" * (50 * KB), timeout=10)
        streamed = httpx.post(url + "/v1/analyze", timeout=10,  # chunked: counted as it comes
                              content=(b"\0" * (10 * KB) for _ in range(5)))
        assert httpx.get(url + "/healthz").json()["held_bytes"] == 280 * KB
        held.close()  # its bytes are given back: a new upload fits again
        wait_for(url, "held_bytes", 140 * KB)
        accepted = httpx.post(url + "/v1/analyze", content=small_png, timeout=10)
        other.close()
        wait_for(url, "held_bytes", 0)
    for refused in (declared, streamed):
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "memory budget" in refused.json()["error"]["message"]
    assert accepted.status_code == 200, accepted.text


def test_the_budget_must_hold_the_largest_request():
    from emotiscope.errors import ConfigError

    with pytest.raises(ConfigError, match="--max-pending-mb"):
        create_app(object(), max_upload_bytes=100 * KB, max_pending_bytes=200 * KB)


# ---- refused uploads reach plain clients; hang-ups; unparsable requests -----------------------

def test_an_over_limit_upload_reads_as_413_json_in_urllib(recognizer):
    # Before: the server closed the socket with the body unread, and urllib (which reads the
    # answer only after sending everything) got "connection reset by peer".
    app = create_app(recognizer, max_upload_bytes=1024 * KB)
    with running(app) as url:
        for _ in range(2):
            request = urllib.request.Request(url + "/v1/analyze", data=b"\0" * (11 * 1024 * KB),
                                             headers={"Content-Type": "image/jpeg"})
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=30)
            assert caught.value.code == 413
            body = json.loads(caught.value.read())
            assert "larger than the 1.0 MB limit" in body["error"]["message"]


def test_a_huge_declared_body_is_refused_without_reading_it(recognizer):
    app = create_app(recognizer, max_upload_bytes=100 * KB)
    with running(app) as url:
        with start_upload(url, 10**12, b"") as sock:  # far over what is worth draining
            assert_json_error(*read_response(sock, timeout=5), 413)
        with start_upload(url, 200 * KB, b"", b"Expect: 100-continue\r\n") as sock:
            sock.settimeout(5)
            answer = sock.recv(65536)  # the refusal, never "100 Continue"
            assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_client_hanging_up_mid_upload_is_one_quiet_log_line(recognizer, caplog):
    app = create_app(recognizer)
    with caplog.at_level(logging.INFO), running(app) as url:
        with start_upload(url, 50 * KB, b"\0" * (10 * KB)):
            wait_for(url, "held_bytes", 10 * KB)
        wait_for(url, "held_bytes", 0)
        wait_for(url, "uploading", 0)
    records = [r for r in caplog.records if r.name.startswith(("emotiscope", "uvicorn"))]
    assert [r.levelno for r in records] == [logging.INFO], [r.getMessage() for r in records]
    assert "closed the connection during its upload" in records[0].getMessage()
    assert records[0].exc_info is None


@pytest.mark.parametrize("length", [b"abc", b"-5", b"1e3", b"12, 13"])
def test_a_malformed_content_length_gets_the_json_error_shape(recognizer, length):
    with running(create_app(recognizer)) as url:
        with socket.create_connection(address(url), timeout=5) as sock:
            sock.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: t\r\nContent-Length: " + length
                         + b"\r\n\r\nhello")
            message = assert_json_error(*read_response(sock), 400)
    assert "Content-Length" in message


# ---- what the server publishes; `serve` on a taken port ---------------------------------------

def test_the_model_card_names_files_but_no_paths(tmp_path):
    from fastapi.testclient import TestClient

    from emotiscope.pipeline import EmotionRecognizer

    metadata = {
        "labels": ["happy", "sad"], "arch": "tiny-test", "version": "test",
        "input": {"size": 48, "channels": 1, "mean": 0.5, "std": 0.25, "margin": 0.1},
        "training": {"command": "emotiscope train /home/ann/fer --init-from "
                                "/home/ann/runs/teacher.onnx --out=/home/ann/runs --epochs 5",
                     "config": {"data": "/home/ann/fer", "val": None, "lr": 0.05,
                                "distill": "C:\\Users\\ann\\teacher.onnx"}},
        "metrics": {"validation": {"accuracy": 0.5, "source": "/home/ann/fer val split"}}}
    model = make_tiny_model(tmp_path / "m.onnx", labels=("happy", "sad"), metadata=metadata)
    with TestClient(create_app(EmotionRecognizer(model=model))) as client:
        response = client.get("/v1/model")
    card = response.json()
    assert "/home/ann" not in response.text and "Users" not in response.text
    assert card["training"]["command"] == ("emotiscope train fer --init-from teacher.onnx "
                                           "--out=runs --epochs 5")
    assert card["training"]["config"] == {"data": "fer", "val": None, "lr": 0.05,
                                          "distill": "teacher.onnx"}
    assert card["metrics"]["validation"] == {"accuracy": 0.5, "source": "fer val split"}
    assert card["labels"] == ["happy", "sad"] and card["name"] == "m.onnx"


def test_serve_on_a_taken_port_is_one_line_naming_port(tiny_model_path, capsys):
    from emotiscope.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port), "--model", str(tiny_model_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"port {port}" in err and "--port" in err, err
    assert "Traceback" not in err
