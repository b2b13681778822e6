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


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Flip, affine, random crop, brightness/contrast jitter, random erasing; values stay 0..255."""
    n = x.shape[0]
    dev = x.device
    if cfg.flip > 0:
        flip = torch.rand(n, generator=gen, device=dev) < cfg.flip
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if cfg.rotate or cfg.shift or cfg.scale:
        x = random_affine(x, cfg, gen)
    if cfg.crop_pad > 0:
        x = random_crop(x, cfg.crop_pad, gen)
    if cfg.jitter > 0:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        contrast = 1 + (torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 2 - 1) * cfg.jitter
        bright = (torch.rand(n, 1, 1, 1, generator=gen, device=dev) * 2 - 1) * cfg.jitter * 64
        x = ((x - mean) * contrast + mean + bright).clamp(0, 255)
    if cfg.erase > 0:
        x = random_erase(x, cfg.erase, gen)
    return x
