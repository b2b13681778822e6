"""Batch augmentation in torch, on uint8-range float faces N x C x S x S (before normalisation)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .config import AugmentConfig


def random_affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Per-sample rotation, scale and shift with one grid_sample call (edges replicated)."""
    n = x.shape[0]
    u = lambda: torch.rand(n, generator=gen, device=x.device) * 2 - 1  # noqa: E731
    angle = u() * math.radians(cfg.rotate)
    scale = 1 + u() * cfg.scale
    tx, ty = u() * cfg.shift * 2, u() * cfg.shift * 2  # affine_grid units: the side spans 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_crop(x: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Pad by `pad` pixels (reflect) and crop back to the original size at a random offset."""
    n, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=x.device)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    idx_n = torch.arange(n, device=x.device)[:, None, None, None]
    idx_c = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[idx_n, idx_c, rows, cols]


def random_erase(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With probability p per face, fill one box of 2-20% of the area with uniform noise."""
    n, _, h, w = x.shape
    dev = x.device
    area = (0.02 + torch.rand(n, generator=gen, device=dev) * 0.18) * h * w
    aspect = torch.exp((torch.rand(n, generator=gen, device=dev) * 2 - 1) * math.log(3))
    eh = (area * aspect).sqrt().clamp(1, h).long()
    ew = (area / aspect).sqrt().clamp(1, w).long()
    y0 = (torch.rand(n, generator=gen, device=dev) * (h - eh + 1)).long()
    x0 = (torch.rand(n, generator=gen, device=dev) * (w - ew + 1)).long()
    ys, xs = torch.arange(h, device=dev), torch.arange(w, device=dev)
    inside = ((ys[None, :, None] >= y0[:, None, None]) & (ys[None, :, None] < (y0 + eh)[:, None, None])
              & (xs[None, None, :] >= x0[:, None, None]) & (xs[None, None, :] < (x0 + ew)[:, None, None]))
    inside &= (torch.rand(n, generator=gen, device=dev) < p)[:, None, None]
    noise = torch.rand(x.shape, generator=gen, device=dev) * 255
    return torch.where(inside[:, None], noise, x)


def _chosen(n: int, p: float, gen: torch.Generator, dev) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=dev) < p


def _grain(x: torch.Tensor, low: float, high: float, gen: torch.Generator) -> torch.Tensor:
    """Gaussian sensor noise shaped like x, of one sigma per face drawn from low-high grey levels."""
    noise = torch.randn(x.shape, generator=gen, device=x.device)
    return noise * (low + torch.rand(x.shape[0], 1, 1, 1, generator=gen, device=x.device) * (high - low))


def random_blur(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With probability p per face, a Gaussian blur of sigma 0.4-1.6 px (separable, 7 taps)."""
    n, c, h, w = x.shape
    dev = x.device
    sigma = 0.4 + torch.rand(n, generator=gen, device=dev) * 1.2
    taps = torch.arange(-3, 4, device=dev, dtype=x.dtype)
    k = torch.exp(-taps[None] ** 2 / (2 * sigma[:, None] ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (n*c) x 7
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (3, 3, 0, 0), mode="replicate"), k[:, None, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, 3, 3), mode="replicate"), k[:, None, :, None], groups=n * c)
    return torch.where(_chosen(n, p, gen, dev)[:, None, None, None], y.reshape(n, c, h, w), x)


def random_lowres(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With probability p per face, down-sample to 35-80 % of the side (area) and back (bilinear);
    one factor per batch."""
    n, _, h, w = x.shape
    factor = 0.35 + float(torch.rand(1, generator=gen, device=x.device)) * 0.45
    small = F.interpolate(x, size=(max(4, round(h * factor)), max(4, round(w * factor))),
                          mode="area")
    y = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    return torch.where(_chosen(n, p, gen, x.device)[:, None, None, None], y, x)


def random_dark(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With probability p per face, low light: gamma 1.5-3 darkening, then Gaussian noise of
    sigma 2-8 grey levels (a dim face from a camera that raised its gain)."""
    n = x.shape[0]
    dev = x.device
    gamma = 1.5 + torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 1.5
    y = (255 * (x / 255).clamp(0, 1) ** gamma + _grain(x, 2, 8, gen)).clamp(0, 255)
    return torch.where(_chosen(n, p, gen, dev)[:, None, None, None], y, x)


# The JPEG standard's luminance quantisation table (ITU T.81, Annex K), scaled by quality as
# libjpeg does.
JPEG_LUMA = (16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
             14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
             18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
             49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99)


def _dct_matrix(dev, dtype) -> torch.Tensor:
    k, i = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
    d = torch.cos((2 * i + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    d[0] /= math.sqrt(2)
    return d.to(dev, dtype)  # orthonormal DCT-II: coefficients = d @ block @ d.T


def jpeg_round_trip(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Each face through JPEG at its quality (1-100; every channel coded as luminance: 8x8 DCT,
    the standard table's quantisation, inverse DCT, rounded to grey levels)."""
    n, c, h, w = x.shape
    dev = x.device
    quality = quality.to(dev, torch.float32).clamp(1, 100)
    scale = torch.where(quality < 50, 5000 / quality, 200 - 2 * quality)
    table = torch.tensor(JPEG_LUMA, device=dev, dtype=torch.float32).reshape(1, 8, 8)
    step = ((table * scale[:, None, None] + 50) / 100).floor().clamp(1, 255)[:, None, None, None]
    ph, pw = -h % 8, -w % 8
    y = F.pad(x.float(), (0, pw, 0, ph), mode="replicate") - 128
    blocks = y.reshape(n, c, (h + ph) // 8, 8, (w + pw) // 8, 8).transpose(3, 4)  # n c by bx 8 8
    d = _dct_matrix(dev, blocks.dtype)
    blocks = d.T @ (torch.round((d @ blocks @ d.T) / step) * step) @ d
    y = blocks.transpose(3, 4).reshape(n, c, h + ph, w + pw)[:, :, :h, :w]
    return (y + 128).round().clamp(0, 255).to(x.dtype)


def random_jpeg(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With probability p per face, a JPEG round trip at quality 15-75 (jpeg_round_trip)."""
    quality = 15 + torch.rand(x.shape[0], generator=gen, device=x.device) * 60
    return torch.where(_chosen(x.shape[0], p, gen, x.device)[:, None, None, None],
                       jpeg_round_trip(x, quality), x)


def bilateral(x: torch.Tensor, sigma_range: torch.Tensor, radius: int = 2,
              sigma_space: float = 3.0) -> torch.Tensor:
    """Edge-preserving smoothing, as cv2.bilateralFilter(face, 2 * radius + 1, sigma_range,
    sigma_space) computes it: each pixel becomes the mean of its round neighbourhood weighted by
    distance and by likeness of grey level (`sigma_range`: one per face, grey levels)."""
    n, c, h, w = x.shape
    k = 2 * radius + 1
    dy, dx = torch.meshgrid(torch.arange(k, device=x.device) - radius,
                            torch.arange(k, device=x.device) - radius, indexing="ij")
    near = (dy**2 + dx**2).flatten() <= radius**2
    space = torch.exp(-(dy**2 + dx**2).flatten()[near].to(x.dtype) / (2 * sigma_space**2))
    around = F.unfold(F.pad(x, (radius,) * 4, mode="replicate"), k)
    around = around.reshape(n, c, k * k, h, w)[:, :, near]
    sr = sigma_range.to(x.dtype).reshape(n, 1, 1, 1, 1)
    weight = space[None, None, :, None, None] * torch.exp(-(around - x[:, :, None]) ** 2 / (2 * sr**2))
    return (weight * around).sum(2) / weight.sum(2)


def random_smooth(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With probability p per face, edge-preserving smoothing (bilateral, 5 px, sigma 10-40 grey
    levels): skin texture and grain gone, edges kept, as a phone's noise reduction or a cleanly
    downscaled studio photo leaves a face."""
    sigma = 10 + torch.rand(x.shape[0], generator=gen, device=x.device) * 30
    chosen = _chosen(x.shape[0], p, gen, x.device)
    y = x.clone()
    y[chosen] = bilateral(x[chosen], sigma[chosen])  # only those: ~0.35 ms a face on one CPU core
    return y


def random_noise(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With probability p per face, Gaussian sensor noise of sigma 2-10 grey levels at the face's
    own brightness (a small sensor's grain; `dark` adds noise to a darkened face)."""
    y = (x + _grain(x, 2, 10, gen)).clamp(0, 255)
    return torch.where(_chosen(x.shape[0], p, gen, x.device)[:, None, None, None], y, x)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Flip, affine, random crop, real-photo degradations (low resolution, blur, low light, JPEG,
    smoothing, noise), brightness/contrast jitter, random erasing; values stay 0..255."""
    n = x.shape[0]
    dev = x.device
    if cfg.flip > 0:
        flip = torch.rand(n, generator=gen, device=dev) < cfg.flip
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if cfg.rotate or cfg.shift or cfg.scale:
        x = random_affine(x, cfg, gen)
    if cfg.crop_pad > 0:
        x = random_crop(x, cfg.crop_pad, gen)
    if cfg.lowres > 0:
        x = random_lowres(x, cfg.lowres, gen)
    if cfg.blur > 0:
        x = random_blur(x, cfg.blur, gen)
    if cfg.dark > 0:
        x = random_dark(x, cfg.dark, gen)
    if cfg.jpeg > 0:
        x = random_jpeg(x, cfg.jpeg, gen)
    if cfg.smooth > 0:
        x = random_smooth(x, cfg.smooth, gen)
    if cfg.noise > 0:
        x = random_noise(x, cfg.noise, gen)
    if cfg.jitter > 0:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        contrast = 1 + (torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 2 - 1) * cfg.jitter
        bright = (torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 2 - 1) * cfg.jitter * 64
        x = ((x - mean) * contrast + mean + bright).clamp(0, 255)
    if cfg.erase > 0:
        x = random_erase(x, cfg.erase, gen)
    return x
