"""Case `arch`: the released ResNet-32 (models/resnet_cifar.py:resnet32_cifar10) -- widths, shortcut type, layer list,
plus dense forward logits on synth weights/inputs so a reimplementation can check the whole network; and the
released VGG-19 (models/vgg_cifar.py:vgg19_cifar10) layer list.

Run (DIR holds released/jackpot; writes DIR/fixtures/jackpot/arch):
    python tests/conformance/drivers/jackpot/arch.py --work DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F

DRIVER = "tests/conformance/drivers/jackpot/arch.py"
R = None  # the sibling _released helper, bound by _setup() in main(): importing this file only defines things


def _setup() -> None:
    """Parse --work DIR, import the sibling _released helper and bind DIR's paths."""
    global R
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import _released
    R = _released
    R.configure(R.work_arg())


def main() -> None:
    _setup()
    out = R.ROOT / "fixtures" / "jackpot" / "arch"
    torch.manual_seed(0)
    R.deterministic(torch)
    ns = R.load()
    s = R.synth()
    with R.quiet():
        model = ns["models"].resnet32_cifar10()
    sd, shapes = R.pretrained_state(model, seed=0)
    model.load_state_dict(sd, strict=False)  # dense: b_mask is all ones before set_prune_rate

    blocks = {}
    for stage in ("layer1", "layer2", "layer3"):
        for i, blk in enumerate(getattr(model, stage)):
            name = f"{stage}.{i}"
            sc = blk.shortcut
            info = {"inplanes": blk.inplanes, "planes": blk.planes, "stride": blk.stride,
                    "conv1": list(blk.conv1.weight.shape), "conv2": list(blk.conv2.weight.shape),
                    "conv1_stride": list(blk.conv1.stride), "shortcut_module": type(sc).__name__,
                    "shortcut_has_params": any(True for _ in sc.parameters())}
            if type(sc).__name__ == "LambdaLayer":
                x = torch.from_numpy(s.values(7, i, (2, blk.inplanes, 8, 8)).copy())
                pad = blk.planes - blk.inplanes
                ref = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, pad // 2, pad - pad // 2))  # option A, driver-side reference
                got = sc(x)
                info.update({"option_A_equal": bool(torch.equal(got, ref)), "pad_channels_before_after":
                             [pad // 2, pad - pad // 2], "subsample": "x[:, :, ::2, ::2]"})
            else:
                info["shortcut"] = "identity (empty nn.Sequential)"
            blocks[name] = info

    x, _ = (torch.from_numpy(s.values(1000, 0, (16, 3, 32, 32)).copy()), None)
    model.eval()
    with torch.no_grad():
        logits_eval = model(x).numpy()
    model.train()
    with torch.no_grad():
        logits_train = model(x).numpy()

    with R.quiet():
        vgg = ns["models"].vgg19_cifar10()
    arch = {
        "resnet32_cifar10": {
            "layers": R.layer_list(model),
            "stem": {"conv1": list(model.conv1.weight.shape), "stride": list(model.conv1.stride),
                     "padding": list(model.conv1.padding), "bias": model.conv1.bias is not None},
            "stage_widths": [32, 64, 128], "blocks_per_stage": 5,
            "blocks": blocks,
            "head": {"pool": type(model.avgpool).__name__, "fc_module": "PretrainConv 1x1 (conv2d) with bias",
                     "fc_weight_shape": list(model.fc.weight.shape), "fc_bias": model.fc.bias is not None,
                     "output": "fc(avgpool(x)).flatten(1)"},
            "conv_bias": any(m.bias is not None for n, m in R.prunable(model) if n != "fc"),
            "n_conv_weights_excluding_fc": int(sum(m.weight.numel() for n, m in R.prunable(model) if n != "fc")),
            "n_fc_weights": int(model.fc.weight.numel()),
            "bn_modules": sum(1 for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)),
            "forward_dense_logits": {"input": "synth.values(1000, 0, (16,3,32,32))",
                                     "eval_mode_bn_defaults": logits_eval.tolist(),
                                     "train_mode_batch_stats": logits_train.tolist()},
        },
        "vgg19_cifar10": {
            "layers": R.layer_list(vgg),
            "features": [type(m).__name__ for m in vgg.features],
            "conv_bias": any(m.bias is not None for n, m in R.prunable(vgg) if n != "classifier"),
            "classifier": "PretrainConv 1x1 512->10 with bias, applied to the 1x1 map after the 5th max-pool; "
                          "output flatten(1)",
        },
    }
    case = {
        "repository": R.REPO, "commit": R.COMMIT,
        "command": R.command(DRIVER),
        "driver": DRIVER,
        "released_function": ("models/resnet_cifar.py:ResBasicBlock (lines 17-51: LambdaLayer F.pad option A), "
                              "ResNet (54-95: inplanes 32, stages 32/64/128), resnet32_cifar10; "
                              "models/vgg_cifar.py:VGG, vgg19_cifar10; utils/builder.py:Builder.conv (bias=False), "
                              "conv1x1_fc (bias=True)"),
        "inputs": {"weights": {"seed": 0, "levels": None,
                               "names_shapes_in_order": [[k, list(v)] for k, v in shapes.items()],
                               "classifier_bias": "zeros"},
                   "batchnorm": "module defaults", "masks": "dense (b_mask all ones; set_prune_rate not called)",
                   "shortcut_probe": "synth.values(7, block_index_in_stage, (2, inplanes, 8, 8))",
                   "torch_manual_seed": 0, "shims": R.SHIMS},
        "expected": arch,
        "notes": ("Released 'resnet32_cifar10' = GraSP-style ResNet-32 with 32/64/128 channels (stem 32), option-A "
                  "shortcuts: stride-2 blocks use x[:, :, ::2, ::2] zero-padded by (planes-inplanes)//2 channels on "
                  "each side (16/16 for 32->64, 32/32 for 64->128); no projection conv, so no shortcut weights. "
                  "Convs have no bias; the classifier is a 1x1 conv with bias on the 1x1 avg-pooled map."),
    }
    R.write_case(out, case)
    print({k: (v["shortcut_module"], v.get("option_A_equal"), v["stride"]) for k, v in blocks.items()
           if k.endswith(".0")}, arch["resnet32_cifar10"]["n_conv_weights_excluding_fc"])
    print(arch["vgg19_cifar10"]["features"][-6:], arch["vgg19_cifar10"]["conv_bias"], logits_eval[0][:3])


if __name__ == "__main__":
    main()
