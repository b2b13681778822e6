from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from emotiscope.training.augment import (  # noqa: E402
    AugmentConfig,
    augment_batch,
    bilateral,
    jpeg_round_trip,
    random_affine,
    random_blur,
    random_crop,
    random_dark,
    random_erase,
    random_jpeg,
    random_lowres,
    random_noise,
    random_smooth,
)

OFF = dict(flip=0, rotate=0, shift=0, scale=0, crop_pad=0, erase=0, jitter=0)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def faces(n: int = 8, size: int = 48, seed: int = 0) -> torch.Tensor:
    """uint8-range float faces N x 1 x S x S with structure (not symmetric left-right)."""
    return torch.randint(0, 256, (n, 1, size, size), generator=gen(seed)).float()


def test_default_augment_keeps_shape_dtype_and_range():
    x = faces(16)
    y = augment_batch(x, AugmentConfig(), gen())
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0 and float(y.max()) <= 255
    assert not torch.equal(y, x)


def test_augment_is_deterministic_for_a_seed():
    x = faces()
    a = augment_batch(x, AugmentConfig(), gen(5))
    b = augment_batch(x, AugmentConfig(), gen(5))
    c = augment_batch(x, AugmentConfig(), gen(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_everything_off_is_identity():
    x = faces()
    torch.testing.assert_close(augment_batch(x, AugmentConfig(**OFF), gen()), x)


def test_flip_with_p1_flips_every_face():
    x = faces()
    y = augment_batch(x, AugmentConfig(**{**OFF, "flip": 1.0}), gen())
    assert torch.equal(y, x.flip(-1))


def test_identity_affine_changes_nothing():
    x = faces()
    # grid_sample at the identity grid: exact up to float rounding (far below one grey level)
    torch.testing.assert_close(random_affine(x, AugmentConfig(**OFF), gen()), x, atol=1e-2, rtol=0)


def test_affine_moves_pixels():
    x = faces()
    y = random_affine(x, AugmentConfig(**{**OFF, "rotate": 15.0, "shift": 0.1}), gen())
    assert y.shape == x.shape
    assert (y - x).abs().mean() > 10


def test_random_crop_is_a_shifted_window_of_the_padded_face():
    x = faces(6, size=12)
    pad = 3
    y = random_crop(x, pad, gen())
    padded = torch.nn.functional.pad(x, (pad,) * 4, mode="reflect")
    offsets = set()
    for i in range(len(x)):
        matches = [(oy, ox) for oy in range(2 * pad + 1) for ox in range(2 * pad + 1)
                   if torch.equal(y[i], padded[i, :, oy:oy + 12, ox:ox + 12])]
        assert matches, f"face {i} is not a window of its padded face"
        offsets.add(matches[0])
    assert len(offsets) > 1  # offsets are random per face


def test_erase_with_p1_changes_a_box_of_2_to_20_percent():
    x = torch.full((32, 1, 48, 48), 255.0)  # noise is < 255, so every erased pixel differs
    y = random_erase(x, 1.0, gen())
    changed = (y != x).flatten(1).sum(1).float() / (48 * 48)
    assert bool((changed > 0).all())
    assert float(changed.max()) <= 0.21
    assert float(y.min()) >= 0 and float(y.max()) <= 255


def test_erase_with_p0_changes_nothing():
    x = faces()
    assert torch.equal(random_erase(x, 0.0, gen()), x)


def test_jitter_stays_in_range():
    x = torch.cat([torch.zeros(4, 1, 48, 48), torch.full((4, 1, 48, 48), 255.0)])
    x[:, :, :24] = 128
    y = augment_batch(x, AugmentConfig(**{**OFF, "jitter": 0.9}), gen())
    assert float(y.min()) >= 0 and float(y.max()) <= 255
    assert not torch.equal(y, x)


def smooth_faces(n: int = 8) -> torch.Tensor:
    """Faces with fine detail (a checkerboard) on a mid-grey gradient."""
    ys, xs = torch.meshgrid(torch.arange(48), torch.arange(48), indexing="ij")
    base = 60 + 2.5 * xs + 60 * ((ys + xs) % 2)
    return base.float().expand(n, 1, 48, 48).clone()


def detail(x: torch.Tensor) -> torch.Tensor:
    """Per-face energy of neighbouring-pixel differences (fine detail)."""
    return (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(1, 2, 3))


@pytest.mark.parametrize("degrade", [random_blur, random_lowres, random_dark, random_jpeg,
                                     random_smooth, random_noise])
def test_real_photo_degradations_off_at_p0_and_in_range_at_p1(degrade):
    x = smooth_faces()
    assert torch.equal(degrade(x, 0.0, gen()), x)
    y = degrade(x, 1.0, gen())
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 255
    assert not torch.equal(y, x)


@pytest.mark.parametrize("degrade", [random_blur, random_lowres])
def test_blur_and_lowres_remove_fine_detail(degrade):
    x = smooth_faces()
    assert bool((detail(degrade(x, 1.0, gen())) < 0.6 * detail(x)).all())


def test_dark_darkens_and_adds_noise():
    x = torch.full((8, 1, 48, 48), 128.0)
    y = random_dark(x, 1.0, gen())
    assert bool((y.mean(dim=(1, 2, 3)) < 95).all())  # gamma >= 1.5: 128 -> at most ~ 91
    assert bool((y.std(dim=(1, 2, 3)) > 1).all())


def test_bilateral_matches_opencvs_bilateral_filter():
    import cv2
    import numpy as np

    rng = np.random.default_rng(1)
    face = cv2.GaussianBlur(rng.uniform(0, 255, (48, 48)), (0, 0), 1.0) * 2 - 100
    face = (face + rng.normal(0, 8, face.shape)).clip(0, 255).round().astype(np.uint8)
    theirs = cv2.bilateralFilter(face, 5, 30, 3).astype(float)
    ours = bilateral(torch.from_numpy(face).float()[None, None], torch.tensor([30.0]))[0, 0].numpy()
    inner = (slice(2, -2), slice(2, -2))  # OpenCV mirrors the border, we replicate it
    assert np.abs(theirs - face)[inner].mean() > 2  # the filter did something
    assert np.abs(ours - theirs)[inner].max() < 1.0


def test_smooth_removes_texture_and_keeps_edges():
    ys, xs = torch.meshgrid(torch.arange(48), torch.arange(48), indexing="ij")
    step = torch.where(xs < 24, 60.0, 190.0)
    x = (step + 5 * ((ys + xs) % 2 * 2 - 1)).expand(8, 1, 48, 48).clone()  # grain on an edge
    y = random_smooth(x, 1.0, gen())
    flat = (slice(None), slice(None), slice(None), slice(2, 20))
    assert bool((detail(y[flat]) < 0.6 * detail(x[flat])).all())
    height = y[..., 28:].mean(dim=(1, 2, 3)) - y[..., :20].mean(dim=(1, 2, 3))
    assert bool((height > 0.95 * 130).all())  # the edge is as high as before


def test_noise_adds_grain_and_keeps_brightness():
    x = torch.full((8, 1, 48, 48), 128.0)
    y = random_noise(x, 1.0, gen())
    assert bool(((y.mean(dim=(1, 2, 3)) - 128).abs() < 2).all())
    sd = y.std(dim=(1, 2, 3))
    assert bool(((sd > 1.5) & (sd < 11)).all())


@pytest.mark.parametrize("size", [48, 44])
def test_jpeg_matches_opencvs_jpeg_at_the_same_quality(size):
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    x = np.stack([cv2.GaussianBlur(rng.uniform(0, 255, (size, size)), (0, 0), 1.5) * 2 - 100
                  for _ in range(6)]).clip(0, 255).round()
    quality = [15, 30, 45, 55, 60, 75]  # both sides of libjpeg's scaling at 50
    ours = jpeg_round_trip(torch.from_numpy(x[:, None]).float(), torch.tensor(quality)).numpy()
    for face, mine, q in zip(x.astype(np.uint8), ours[:, 0], quality, strict=True):
        _, data = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, q])
        theirs = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE).astype(float)
        lost = np.abs(theirs - face).mean()  # what compression changed
        assert lost > 1 and np.abs(mine - theirs).mean() < 0.15 * lost


def test_degradations_hit_about_p_of_the_faces():
    x = smooth_faces(400)
    changed = (random_blur(x, 0.3, gen()) != x).flatten(1).any(1).float().mean()
    assert 0.2 < float(changed) < 0.4


def test_degradations_are_reachable_from_augment_batch():
    x = smooth_faces()
    y = augment_batch(x, AugmentConfig(**{**OFF, "blur": 1.0, "dark": 1.0, "lowres": 1.0}), gen())
    assert float(y.mean()) < float(x.mean()) - 40 and not torch.equal(y, x)
    for kind in ("smooth", "noise"):
        assert not torch.equal(augment_batch(x, AugmentConfig(**{**OFF, kind: 1.0}), gen()), x)
