"""Network architectures. `build_model(arch, num_classes, in_channels)`; MAC counting.

compact: a VGG-style CNN with batch norm, ~47 M multiply-adds per 48x48 face, sized to train on a
         2-core CPU in about two hours and to classify well over 1,000 faces/s there.
resnet:  a ResNet-18-style network (64-512 channels) for GPU runs.
ensemble: several trained networks in one model (`emotiscope export A B C`, training/ensemble.py);
         not trained as such.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class CompactCNN(nn.Module):
    """Stages of 3x3 conv-BN-ReLU at 48, 24, 12 and 6 px, max-pool between, global average pool."""

    def __init__(self, num_classes: int, in_channels: int = 1,
                 widths: tuple[int, ...] = (24, 48, 96, 144), depths: tuple[int, ...] = (1, 2, 2, 2),
                 dropout: float = 0.3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        for i, (width, depth) in enumerate(zip(widths, depths, strict=True)):
            if i:
                layers.append(nn.MaxPool2d(2))
            for _ in range(depth):
                layers.append(conv_bn(cin, width))
                cin = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(x)).flatten(1)
        return self.classifier(self.dropout(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class ResNetFER(nn.Module):
    """ResNet-18 layout for 48x48 input: stem at full resolution, stages at 48, 24, 12, 6 px."""

    def __init__(self, num_classes: int, in_channels: int = 1,
                 widths: tuple[int, ...] = (64, 128, 256, 512), blocks: tuple[int, ...] = (2, 2, 2, 2),
                 dropout: float = 0.3) -> None:
        super().__init__()
        self.stem = conv_bn(in_channels, widths[0])
        stages, cin = [], widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n):
                stages.append(BasicBlock(cin, width, 2 if (i and j == 0) else 1))
                cin = width
        self.features = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.features(self.stem(x))).flatten(1)
        return self.classifier(self.dropout(x))


class EnsembleNet(nn.Module):
    """Views of members averaged in probability: log(mean over every view v of every member i of
    softmax(member_i(v(x) * scale_i + shift_i) / T_i)).

    `members`: one dict per member, {"arch", "model_args", "scale", "shift", "temperature",
    "tta"}; scale and shift re-normalise the ensemble's input to the member's own normalisation,
    T is the member's calibration temperature, and tta "flip" gives the member two views, the face
    and its mirror image (each counts as much as another member's one view; "none": the face).
    The output is a log-probability, so a softmax of it (at temperature 1) is the mean probability."""

    def __init__(self, num_classes: int, in_channels: int = 1, members: list[dict] | None = None) -> None:
        super().__init__()
        if not members:
            raise ConfigError("an ensemble is made from trained models with `emotiscope export "
                              "A B C -o ensemble.onnx`, not trained with --arch ensemble")
        self.members = nn.ModuleList(
            build_model(m["arch"], num_classes, in_channels, **m.get("model_args", {})) for m in members)
        self.affine = [(float(m.get("scale", 1.0)), float(m.get("shift", 0.0)),
                        float(m.get("temperature", 1.0))) for m in members]
        self.mirrored = [m.get("tta", "none") == "flip" for m in members]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logp = []
        for net, (scale, shift, t), mirrored in zip(self.members, self.affine, self.mirrored, strict=True):
            z = x * scale + shift
            logp += [torch.log_softmax(net(v) / t, dim=1) for v in ((z, z.flip(-1)) if mirrored else (z,))]
        return torch.logsumexp(torch.stack(logp), dim=0) - math.log(len(logp))


ARCHS: dict[str, type[nn.Module]] = {"compact": CompactCNN, "resnet": ResNetFER}
TRAINABLE = tuple(ARCHS)
ARCHS["ensemble"] = EnsembleNet


def build_model(arch: str, num_classes: int, in_channels: int = 1, **kwargs) -> nn.Module:
    """Instantiate an architecture by name; kwargs are its constructor arguments."""
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(TRAINABLE)}")
    try:
        return ARCHS[arch](num_classes=num_classes, in_channels=in_channels, **kwargs)
    except (TypeError, ValueError) as exc:  # an unknown argument, stages of different lengths
        given = ", ".join(f"{k}={v}" for k, v in kwargs.items())
        raise ConfigError(f"--arch {arch} cannot be built with {given} ({exc}); give --widths and "
                          "--depths with one value per stage each, e.g. --widths 24,48,96,144 "
                          "--depths 1,2,2,2") from None


def count_macs(model: nn.Module, size: int = 48, channels: int = 1) -> int:
    """Multiply-accumulates for one input (conv and linear layers); FLOPs are about 2x this."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        if isinstance(module, nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            total += output.numel() * k
        elif isinstance(module, nn.Linear):
            total += module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, channels, size, size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total
