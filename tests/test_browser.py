"""The page in a real headless Chromium: upload a photo, then live mode on a fake camera.

Needs Debian's `chromium` (.ci/run installs it) and Playwright for Python (the dev extra);
Playwright drives the system browser, it never downloads one. Screenshots are written to
artifacts/ (or $EMOTISCOPE_ARTIFACTS) for people to look at.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from emotiscope.images import sample_image_path

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("EMOTISCOPE_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "artifacts"))
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 60_000

if not (Path(CHROMIUM).is_file() or shutil.which("chromium")):
    pytest.skip("chromium is not installed (apt-get install -y chromium; .ci/run does it)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip install -e '.[dev]')")
pytest.importorskip("uvicorn", reason="the [serve] extra is not installed")


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """RGB frames (even sides) -> a YUV4MPEG2 file, 4:2:0: what Chromium's fake camera plays."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def server_url(recognizer):
    """The service on a free 127.0.0.1 port, in a thread, for this module's tests."""
    from fixtures.server import running

    from emotiscope.server import create_app

    with running(create_app(recognizer)) as url:
        yield url


@pytest.fixture(scope="module")
def camera_video(tmp_path_factory) -> Path:
    from fixtures.videos import two_face_frames

    return write_y4m(tmp_path_factory.mktemp("camera") / "two_faces.y4m", two_face_frames(20))


@pytest.fixture()
def page(camera_video):
    args = [*BROWSER_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera_video}"]
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        tab = browser.new_page(viewport={"width": 1200, "height": 900})
        tab.set_default_timeout(TIMEOUT_MS)
        problems: list[str] = []
        tab.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        tab.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
        tab.problems = problems
        yield tab
        browser.close()


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def upload(page, server_url, recognizer, photo, state: str) -> list:
    """Upload `photo` on the page and wait until its result shows with `state` (a CSS
    attribute selector); returns the faces the recognizer finds in it."""
    expected = recognizer(photo)
    assert expected, "the sample photo should have faces"
    page.goto(server_url + "/")
    page.wait_for_selector("#model-info:has-text('tiny.onnx')")
    page.set_input_files("#file-input", str(photo))
    page.wait_for_selector(f"#photo-result[data-faces='{len(expected)}']{state}")
    return expected


def test_upload_a_photo_shows_the_face_table(page, server_url, recognizer):
    photo = sample_image_path()
    expected = upload(page, server_url, recognizer, photo, ":not([hidden])")
    rows = page.locator("#faces-table tbody tr")
    assert rows.count() == len(expected)
    for i, face in enumerate(expected):
        row = rows.nth(i)
        assert row.get_attribute("data-label") == face.label
        assert row.locator(".bar").count() == len(recognizer.labels)
        assert f"{face.label} {round(face.score * 100)}%" in row.inner_text()
    canvas = page.locator("#photo-canvas")
    assert canvas.get_attribute("width") == str(load_size(photo)[0])
    assert page.get_attribute("#photo-result", "data-drawn-by") == "page"
    screenshot(page, "browser-photo.png")
    assert page.problems == []


def test_nothing_of_a_result_shows_before_an_upload(page, server_url):
    page.goto(server_url + "/")
    page.wait_for_selector("#model-info:has-text('tiny.onnx')")
    for part in ("#photo-result", "#faces-table", "#download", "#photo-canvas"):
        assert not page.locator(part).is_visible(), f"{part} is shown before any upload"
    assert page.problems == []


def test_a_failed_upload_clears_the_previous_photo(page, server_url, recognizer, tmp_path):
    photo = sample_image_path()
    page.goto(server_url + "/")
    page.wait_for_selector("#model-info:has-text('tiny.onnx')")
    page.set_input_files("#file-input", str(photo))
    page.wait_for_selector(f"#photo-result[data-faces='{len(recognizer(photo))}']:not([hidden])")
    assert page.locator("#download").is_visible()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"this is not an image")
    page.set_input_files("#file-input", str(bad))
    page.wait_for_selector("#photo-status.error")
    assert "broken.jpg" in page.inner_text("#photo-status")
    for part in ("#photo-result", "#faces-table", "#download", "#photo-canvas"):
        assert not page.locator(part).is_visible(), f"{part} still shown after a failed upload"
    assert page.locator("#faces-table tbody tr").count() == 0
    assert page.get_attribute("#photo-canvas", "width") == "0"
    screenshot(page, "browser-failed-upload.png")
    # the browser logs the refused request (HTTP 415) itself; nothing else may go wrong
    assert [p for p in page.problems if "status of 415" not in p] == []


def test_live_camera_draws_boxes_and_pause_stops_sending(page, server_url):
    page.goto(server_url + "/")
    page.click("#tab-live")
    page.click("#cam-start")
    page.wait_for_selector("#overlay:not([data-faces-drawn='0'])")
    page.wait_for_selector("#live-status:not([data-frames='0']):not([data-frames='1'])"
                           ":not([data-frames='2'])")
    assert int(page.get_attribute("#overlay", "data-faces-drawn")) == 2  # two faces in the video
    screenshot(page, "browser-live.png")

    page.click("#cam-pause")
    time.sleep(0.5)  # a frame already in flight may still land
    frames = page.get_attribute("#live-status", "data-frames")
    time.sleep(1.5)  # 7 frames would be sent in this time at 5 per second
    assert page.get_attribute("#live-status", "data-frames") == frames
    assert page.inner_text("#cam-pause") == "Resume"
    page.click("#cam-pause")
    page.wait_for_selector(f"#live-status:not([data-frames='{frames}'])")
    page.click("#cam-stop")
    assert page.get_attribute("#overlay", "data-faces-drawn") == "0"
    assert page.problems == []


# The n-th /v1/analyze request waits window.analyzeDelays[n] ms (the last one for all later
# requests) before it is sent; window.analyzeLoad counts the requests in flight, the most at
# once, and those answered.
SLOW_ANALYZE = """
(() => {
  const send = window.fetch.bind(window), delays = window.analyzeDelays;
  window.analyzeLoad = { now: 0, most: 0, total: 0, done: 0 };
  window.fetch = async (url, options) => {
    if (!String(url).startsWith("/v1/analyze")) return send(url, options);
    const load = window.analyzeLoad;
    const delay = delays[Math.min(load.total, delays.length - 1)];
    load.now += 1; load.total += 1; load.most = Math.max(load.most, load.now);
    try {
      await new Promise((resolve) => setTimeout(resolve, delay));
      const response = await send(url, options);
      await response.clone().arrayBuffer();
      return response;
    } finally {
      load.now -= 1; load.done += 1;
    }
  };
})();
"""


def slow_analyze(*delays_ms: int) -> str:
    return f"window.analyzeDelays = {list(delays_ms)};" + SLOW_ANALYZE


def test_live_camera_never_has_two_frames_in_flight(page, server_url):
    page.add_init_script(slow_analyze(300))
    page.goto(server_url + "/")
    page.click("#tab-live")
    page.click("#cam-start")
    page.wait_for_selector("#live-status:not([data-frames='0'])")
    for _ in range(3):  # each return to the camera tab, resume and restart asks for a frame
        page.click("#tab-photo")
        page.click("#tab-live")
    page.click("#cam-pause")
    page.click("#cam-pause")
    page.click("#cam-stop")
    page.click("#cam-start")
    time.sleep(1.5)
    load = page.evaluate("window.analyzeLoad")
    assert load["most"] == 1, f"{load['most']} frames were in flight at once"
    assert page.problems == []


def test_the_last_photo_chosen_is_shown_when_an_earlier_answer_comes_later(
        page, server_url, recognizer, tmp_path):
    page.add_init_script(slow_analyze(1500, 0))  # the first photo's answer comes last
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((90, 120, 3), 200, np.uint8))
    page.goto(server_url + "/")
    page.wait_for_selector("#model-info:has-text('tiny.onnx')")
    page.set_input_files("#file-input", str(sample_image_path()))
    page.set_input_files("#file-input", str(blank))
    deadline = time.monotonic() + 30  # (wait_for_function would need eval, which the CSP bars)
    while page.evaluate("window.analyzeLoad.done") < 2:
        assert time.monotonic() < deadline, "the two photos were not both answered"
        time.sleep(0.1)
    time.sleep(0.3)  # the first answer's handling, had it been shown
    assert page.get_attribute("#photo-result", "data-faces") == "0"
    assert "120×90 pixels" in page.inner_text("#photo-caption")
    assert page.get_attribute("#photo-canvas", "width") == "120"
    assert page.problems == []


def test_no_face_hint_quotes_the_servers_smallest_face(page, server_url, tmp_path):
    def card_with_min_face(route):  # as from `emotiscope serve --min-face 33`
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "min_face": 33})

    page.route("**/v1/model", card_with_min_face)
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((90, 120, 3), 200, np.uint8))
    page.goto(server_url + "/")
    page.wait_for_selector("#model-info:has-text('tiny.onnx')")
    page.set_input_files("#file-input", str(blank))
    page.wait_for_selector("#photo-result[data-faces='0']:not([hidden])")
    assert page.inner_text("#photo-status") == (
        "No face found. Faces should be at least 33 pixels wide and tall.")
    assert page.problems == []


def tiff_photo(path: Path) -> Path:
    """The sample photo as a TIFF: the server reads it, Chromium cannot decode it."""
    cv2.imwrite(str(path.with_suffix(".tif")), cv2.imread(str(sample_image_path())))
    return path.with_suffix(".tif")


def turned_webp(path: Path) -> Path:
    """The sample photo upside down, as a WebP whose EXIF orientation (3) turns it upright:
    the server applies it, Chromium does not (and the size is the same either way)."""
    pil = pytest.importorskip("PIL.Image")
    exif = pil.Exif()
    exif[0x0112] = 3
    pil.open(sample_image_path()).rotate(180).save(path.with_suffix(".webp"), "WEBP",
                                                     exif=exif.tobytes())
    return path.with_suffix(".webp")


@pytest.mark.parametrize("make", [tiff_photo, turned_webp])
def test_a_photo_the_browser_shows_otherwise_is_drawn_by_the_server(
        page, server_url, recognizer, tmp_path, make):
    photo = make(tmp_path / "photo")
    expected = upload(page, server_url, recognizer, photo, "[data-drawn-by]")
    assert page.get_attribute("#photo-result", "data-drawn-by") == "server"
    assert page.locator("#faces-table tbody tr").count() == len(expected)
    assert page.get_attribute("#photo-canvas", "width") == str(load_size(photo)[0])
    assert "Drawn by the server" in page.inner_text("#photo-caption")
    assert page.locator("#photo-status.error").count() == 0
    screenshot(page, f"browser-server-drawn-{photo.suffix[1:]}.png")
    assert page.problems == []


def test_the_docs_page_examples_name_the_servers_address(page, server_url):
    page.goto(server_url + "/docs")
    page.wait_for_selector("#endpoints h2")
    examples = page.inner_text("#examples")
    assert examples.count(server_url + "/v1/analyze") == 4 and ":8000" not in examples
    assert page.problems == []


def load_size(path: Path) -> tuple[int, int]:
    from emotiscope.images import load_image

    height, width = load_image(path).shape[:2]
    return width, height
