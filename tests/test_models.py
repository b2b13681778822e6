from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from emotiscope.errors import ConfigError  # noqa: E402
from emotiscope.training.models import TRAINABLE, build_model, count_macs  # noqa: E402


@pytest.mark.parametrize("arch", ["compact", "resnet"])
def test_forward_on_a_tiny_batch(arch):
    torch.manual_seed(0)
    model = build_model(arch, num_classes=7).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, 48, 48))
    assert out.shape == (2, 7)
    assert bool(torch.isfinite(out).all())


def test_compact_trains_one_step_with_other_class_and_channel_counts():
    model = build_model("compact", num_classes=3, in_channels=3)
    out = model(torch.randn(4, 3, 48, 48))
    assert out.shape == (4, 3)
    out.sum().backward()
    assert model.classifier.weight.grad is not None


def test_model_args_reach_the_architecture():
    small = build_model("compact", 7, widths=(8, 8, 8, 8), depths=(1, 1, 1, 1))
    assert small.classifier.in_features == 8
    assert count_macs(small) < count_macs(build_model("compact", 7))


def test_compact_costs_at_most_100_mflops():
    macs = count_macs(build_model("compact", 7))
    assert 10e6 < macs <= 50e6  # FLOPs ~ 2 x MACs


def test_resnet_is_the_larger_model():
    assert count_macs(build_model("resnet", 7)) > 5 * count_macs(build_model("compact", 7))


def test_count_macs_exact_on_a_hand_model():
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    # conv: 2 x 4 x 4 outputs x (3 x 3 x 1) taps = 288; linear: 32 x 3 = 96
    assert count_macs(model, size=4) == 384


def test_count_macs_restores_training_mode_and_removes_hooks():
    model = build_model("compact", 7).train()
    count_macs(model)
    assert model.training
    assert all(not m._forward_hooks for m in model.modules())


def test_unknown_arch_names_the_choices():
    with pytest.raises(ConfigError) as err:
        build_model("vgg99", 7)
    message = str(err.value)
    assert "'vgg99'" in message and all(name in message for name in TRAINABLE)
    assert "ensemble" not in message  # made by `export A B C`, not chosen with --arch


@pytest.mark.parametrize("arch, kwargs", [("resnet", {"depths": [1, 1, 1, 1]}),
                                          ("compact", {"blocks": [1, 1, 1, 1]}),
                                          ("compact", {"widths": [8, 8, 8], "depths": [1, 1, 1, 1]})])
def test_arguments_that_do_not_fit_the_arch_are_one_line_errors(arch, kwargs):
    with pytest.raises(ConfigError, match=f"--arch {arch} cannot be built with") as err:
        build_model(arch, 7, **kwargs)
    assert "\n" not in str(err.value)
