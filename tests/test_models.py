"""Tests for ticketbench.models: the CIFAR networks in timm's registry and the backbone helpers."""

from __future__ import annotations

import math

import pytest
import timm
import torch
import torch.nn as nn

from ticketbench.errors import ConfigError
from ticketbench.masks import POLICIES, prunable_names
from ticketbench.models import (
    WEIGHT_STANDARDISED,
    ShortcutA,
    classifier_names,
    conv_linear_layers,
    create_model,
    list_backbones,
    stem_name,
)

# name -> (stem conv, classifier) as the papers' code names them.
CIFAR_MODELS = {
    "cifar_resnet18": ("conv1", "fc"),
    "cifar_resnet20": ("conv1", "fc"),
    "cifar_resnet32": ("conv1", "fc"),
    "cifar_resnet56": ("conv1", "fc"),
    "cifar_wrn32_2": ("conv1", "fc"),
    "cifar_wrn32_2a": ("conv1", "fc"),
    "cifar_mobilenet_v1": ("conv1", "linear"),
    "cifar_vgg16_bn": ("features.0", "classifier"),
    "cifar_vgg19_bn": ("features.0", "classifier"),
}
CIFAR_NAMES = sorted(CIFAR_MODELS)


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    # Batch-2 32x32 convs gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's
    # synchronisation made each forward ~100x slower; restore the setting for other test modules.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def x32() -> torch.Tensor:
    torch.manual_seed(0)
    return torch.randn(2, 3, 32, 32)


def test_all_cifar_models_are_in_timms_registry():
    assert timm.list_models("cifar_*") == CIFAR_NAMES
    assert list_backbones("cifar_*") == CIFAR_NAMES
    # No url/hf_hub entry, so timm must not advertise weights for them.
    assert timm.list_models("cifar_*", pretrained=True) == []


@pytest.mark.parametrize("num_classes", [10, 100])
@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_forward_shape(name, num_classes, x32):
    model = create_model(name, num_classes=num_classes).eval()
    with torch.no_grad():
        assert model(x32).shape == (2, num_classes)


@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_single_channel_input(name):
    model = timm.create_model(name, num_classes=10, in_chans=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_pretrained_cfg_names_real_modules(name):
    model = timm.create_model(name)
    cfg, modules = model.pretrained_cfg, dict(model.named_modules())
    stem, head = CIFAR_MODELS[name]
    assert cfg["input_size"] == (3, 32, 32) and cfg["num_classes"] == 10
    assert not cfg.get("url") and not cfg.get("hf_hub_id")
    assert (cfg["first_conv"], cfg["classifier"]) == (stem, head)
    assert isinstance(modules[stem], nn.Conv2d) and modules[stem].in_channels == 3
    assert isinstance(modules[head], nn.Linear)
    assert stem_name(model) == stem
    assert classifier_names(model) == [head]


@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_timm_model_surface(name, x32):
    model = create_model(name, num_classes=10).eval()
    head = CIFAR_MODELS[name][1]
    assert model.get_classifier() is dict(model.named_modules())[head]
    with torch.no_grad():
        feats = model.forward_features(x32)
        assert feats.shape[:2] == (2, model.num_features)
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
        model.reset_classifier(3)
        assert model(x32).shape == (2, 3)
    assert classifier_names(model) == [head]


@pytest.mark.parametrize("name", CIFAR_NAMES)
def test_batchnorm_starts_as_identity_affine(name):
    bns = [m for m in timm.create_model(name).modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns
    assert all(torch.all(bn.weight == 1) and torch.all(bn.bias == 0) for bn in bns)


def test_conv_init_is_kaiming_normal():
    torch.manual_seed(0)
    conv = timm.create_model("cifar_resnet20").layer3[1].conv1  # 64x64x3x3, fan_in 576
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 576), rel=0.05)
    assert conv.weight.mean().abs().item() < 0.005


@pytest.mark.parametrize(
    "name, kwargs, expected, rel",
    [
        ("cifar_resnet20", {}, 0.27e6, 0.02),
        ("cifar_wrn32_2", {}, 1.86e6, 0.03),
        ("cifar_resnet18", {}, 11.17e6, 0.02),
        ("cifar_vgg16_bn", {}, 14.7e6, 0.03),
        # Structure-LTH Table 1/A2.
        ("cifar_mobilenet_v1", {}, 3.21e6, 0.01),
    ],
)
def test_parameter_counts(name, kwargs, expected, rel):
    assert n_params(create_model(name, num_classes=10, **kwargs)) == pytest.approx(expected, rel=rel)


def test_option_a_shortcut_is_parameter_free():
    shortcut = ShortcutA(16, 32, stride=2)
    assert n_params(shortcut) == 0
    out = shortcut(torch.ones(1, 16, 32, 32))
    assert out.shape == (1, 32, 16, 16)
    # Identity on the kept channels, zeros on the padded ones, split over both sides.
    assert out[:, 8:24].eq(1).all() and out[:, :8].eq(0).all() and out[:, 24:].eq(0).all()

    model = timm.create_model("cifar_resnet20")
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 and not any("shortcut" in n for n in convs)
    assert sum(isinstance(m, ShortcutA) for m in model.modules()) == 2


def test_wrn_shortcut_b_adds_projections_and_a_removes_them():
    model_b = timm.create_model("cifar_wrn32_2")
    model_a = timm.create_model("cifar_wrn32_2", shortcut="A")
    projections = {n: m for n, m in model_b.named_modules() if n.endswith("shortcut.0")}
    assert sorted(projections) == ["layer2.0.shortcut.0", "layer3.0.shortcut.0"]
    assert all(m.kernel_size == (1, 1) for m in projections.values())
    assert not any(n.endswith("shortcut.0") for n, _ in model_a.named_modules())
    # 32*64 + 64*128 projection weights plus two BNs (2*64 + 2*128).
    assert n_params(model_b) - n_params(model_a) == 32 * 64 + 64 * 128 + 2 * 64 + 2 * 128
    assert model_b.conv1.out_channels == 32


def test_caller_kwargs_override_architecture_args():
    model = timm.create_model("cifar_resnet20", shortcut="B")
    assert any(n.endswith("shortcut.0") for n, _ in model.named_modules())


def test_unknown_shortcut_is_a_config_error():
    with pytest.raises(ConfigError, match="shortcut"):
        timm.create_model("cifar_resnet20", shortcut="C")


def test_create_model_drops_none_kwargs(x32):
    # shortcut=None would be rejected by the model, so passing proves it was dropped.
    model = create_model("cifar_resnet20", num_classes=10, shortcut=None, drop_rate=None, pretrained=None)
    assert model(x32).shape == (2, 10)


def test_unknown_backbone_suggests_close_matches():
    with pytest.raises(ConfigError, match="backbone") as info:
        create_model("cifar_resnet2", num_classes=10)
    assert "cifar_resnet20" in str(info.value)
    assert info.value.key == "backbone" and info.value.value == "cifar_resnet2"


def test_weight_standardised_backbone_is_refused():
    assert any(isinstance(m, WEIGHT_STANDARDISED) for m in timm.create_model("test_nfnet").modules())
    with pytest.raises(ConfigError, match="weight-standardis") as info:
        create_model("test_nfnet", num_classes=10)
    assert info.value.key == "backbone"


@pytest.mark.parametrize("make", [timm.create_model, lambda n, **kw: create_model(n, num_classes=10, **kw)])
def test_pretrained_weights_are_refused(make):
    with pytest.raises(ConfigError, match="no pretrained weights"):
        make("cifar_vgg16_bn", pretrained=True)
    with pytest.raises(ConfigError, match="no pretrained weights"):
        make("cifar_resnet20", pretrained=True)


@pytest.mark.parametrize(
    "name, kwargs, stem, heads",
    [
        ("test_resnet", {}, "conv1.0", ["fc"]),
        ("test_vit", {"img_size": 32}, "patch_embed.proj", ["head"]),
        ("resnet18", {}, "conv1", ["fc"]),
    ],
)
def test_timm_backbones_on_cifar_input(name, kwargs, stem, heads, x32):
    model = create_model(name, num_classes=10, **kwargs).eval()
    with torch.no_grad():
        assert model(x32).shape == (2, 10)
    assert stem_name(model) == stem
    assert classifier_names(model) == heads


def test_helpers_without_pretrained_cfg():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    assert stem_name(model) == "0"
    assert classifier_names(model) == ["4"]
    with pytest.raises(ValueError):
        stem_name(nn.Linear(2, 2))


def test_helpers_follow_tuple_and_stale_cfgs():
    model = timm.create_model("cifar_resnet20")
    model.pretrained_cfg = dict(model.pretrained_cfg, first_conv="nope", classifier=("fc", "missing"))
    assert stem_name(model) == "conv1"
    assert classifier_names(model) == ["fc"]
    model.pretrained_cfg = dict(model.pretrained_cfg, classifier="gone")
    assert classifier_names(model) == ["fc"]  # falls back to get_classifier()
    model.reset_classifier(0)
    assert classifier_names(model) == []


def test_conv_linear_layers_in_module_order_with_subclasses():
    layers = conv_linear_layers(timm.create_model("cifar_resnet20"))
    names = list(layers)
    assert names[0] == "conv1" and names[-1] == "fc" and len(names) == 20
    ws_layers = conv_linear_layers(timm.create_model("test_nfnet"))
    assert any(isinstance(m, WEIGHT_STANDARDISED) for m in ws_layers.values())


@pytest.mark.parametrize(
    "name, channels", [("cifar_resnet20", [16, 16, 32, 64]), ("cifar_vgg16_bn", [64, 128, 256, 512, 512])]
)
def test_features_only(name, channels):
    model = timm.create_model(name, features_only=True).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1] for o in outs] == channels


# The two Structure-LTH networks added for the grid: name -> (stem conv, classifier).
STRUCTURE_LTH_MODELS = {"cifar_mobilenet_v1": ("conv1", "linear"), "resnet50_cifar_stem": ("conv1", "fc")}


def test_structure_lth_models_are_listed():
    assert "cifar_mobilenet_v1" in timm.list_models("cifar_*")
    assert set(STRUCTURE_LTH_MODELS) <= set(list_backbones())
    assert list_backbones("resnet50_cifar*") == ["resnet50_cifar_stem"]


@pytest.mark.parametrize("name", sorted(STRUCTURE_LTH_MODELS))
def test_structure_lth_models_forward(name):
    stem, head = STRUCTURE_LTH_MODELS[name]
    torch.manual_seed(0)
    model = create_model(name, num_classes=7).eval()
    with torch.no_grad():
        for size in (32, 64):
            assert model(torch.randn(2, 3, size, size)).shape == (2, 7)
    gray = create_model(name, num_classes=10, in_chans=1).eval()
    with torch.no_grad():
        assert gray(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    modules = dict(gray.named_modules())
    assert stem_name(gray) == stem and modules[stem].in_channels == 1
    assert classifier_names(gray) == [head] and isinstance(modules[head], nn.Linear)
    assert not any(m.bias is not None for m in modules.values() if isinstance(m, nn.Conv2d))


def test_mobilenet_v1_layout():
    model = create_model("cifar_mobilenet_v1", num_classes=10)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1) and model.conv1.out_channels == 32
    assert len(model.layers) == 13
    widths = [block.conv2.out_channels for block in model.layers]
    assert widths == [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    for block in model.layers:
        dw, pw = block.conv1, block.conv2
        assert dw.groups == dw.in_channels == dw.out_channels and dw.kernel_size == (3, 3)
        assert pw.groups == 1 and pw.kernel_size == (1, 1)
    # Four stride-2 blocks take a 32x32 input to the 2x2 map of the reference code.
    with torch.no_grad():
        assert model.eval().forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 1024, 2, 2)
    assert model.linear.in_features == 1024


def test_mobilenet_v1_features_only():
    model = timm.create_model("cifar_mobilenet_v1", features_only=True).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 32, 32))
    assert [o.shape[1:] for o in outs] == [
        (32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (1024, 2, 2)
    ]


@pytest.mark.parametrize("num_classes, in_chans", [(1000, 3), (200, 1)])
def test_resnet50_cifar_stem_is_resnet50_with_a_3x3_stem(num_classes, in_chans):
    ref = timm.create_model("resnet50", num_classes=num_classes, in_chans=in_chans)
    model = create_model("resnet50_cifar_stem", num_classes=num_classes, in_chans=in_chans)
    # Only the stem kernel shrinks, from 7x7 to 3x3.
    stem_difference = ref.conv1.weight.numel() - ref.conv1.weight[..., :3, :3].numel()
    assert n_params(model) == n_params(ref) - stem_difference
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, nn.Identity)
    assert ref.conv1.kernel_size == (7, 7) and isinstance(ref.maxpool, nn.MaxPool2d)
    # The reference code starts every BN at weight 1, so timm's zero-init of the last BN is off.
    assert all(torch.all(m.weight == 1) for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_resnet50_cifar_stem_feature_strides_and_refused_stems():
    model = timm.create_model("resnet50_cifar_stem")
    assert model.pretrained_cfg["num_classes"] == 200 and model.pretrained_cfg["input_size"] == (3, 64, 64)
    assert [f["reduction"] for f in model.feature_info] == [1, 1, 2, 4, 8]
    with torch.no_grad():
        assert model.eval().forward_features(torch.randn(1, 3, 64, 64)).shape == (1, 2048, 8, 8)
    with pytest.raises(ConfigError, match="stem_type"):
        timm.create_model("resnet50_cifar_stem", stem_type="deep")
    with pytest.raises(ConfigError, match="output_stride"):
        timm.create_model("resnet50_cifar_stem", output_stride=32)
    with pytest.raises(ConfigError, match="no pretrained weights"):
        timm.create_model("resnet50_cifar_stem", pretrained=True)


@pytest.mark.parametrize("name", sorted(STRUCTURE_LTH_MODELS))
def test_structure_lth_models_prunable_names(name):
    model = create_model(name, num_classes=10)
    stem, head = (f"{n}.weight" for n in STRUCTURE_LTH_MODELS[name])
    convs = {f"{n}.weight" for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    # Neither net has a linear layer besides the classifier, so jackpot reduces to the convs.
    expected = {"prac": convs, "structure_lth": convs - {stem}, "openlth": convs | {head}, "jackpot": convs,
                "convs_only": convs, "openlth_vgg": convs,
                # The released Structure-LTH code skips a module named conv1: a ResNet's stem, none of VGG's convs.
                "structure_lth_released": convs - {"conv1.weight"}}
    assert set(expected) == set(POLICIES.names())
    for policy, names in expected.items():
        assert set(prunable_names(model, policy)) == names, policy
    assert stem in convs and stem not in prunable_names(model, "structure_lth")
