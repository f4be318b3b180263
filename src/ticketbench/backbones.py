"""``ticketbench backbones NAME ...``: what each pruning policy and structure method does on a timm backbone.

Answers, before a grid is planned, the questions a run would otherwise answer hours later: which layers each policy
prunes and what share of the conv and linear weights that is (a policy below 80% is refused unless asked for by
name), and which channel groups refill can remove (and why the others cannot), which convs regroup can turn into
block-sparse layers.
"""

from __future__ import annotations

import re
from collections import Counter

from .errors import ConfigError
from .stage import STAGES, Stage

# A block index: "0" in blocks.0.mlp, "b1" and "s4" in RegNet's s4.b1.conv1 (but not the 1 of conv1).
_INDEX = re.compile(r"(?<![^.])[a-z]?\d+(?=\.|$)")


def pattern_counts(names: list[str]) -> str:
    """``blocks.0.mlp.fc1, blocks.1.mlp.fc1`` -> ``blocks.*.mlp.fc1 (2)``: module names with indices folded."""
    counts = Counter(_INDEX.sub("*", n) for n in names)
    return ", ".join(f"{p} ({k})" if k > 1 else p for p, k in counts.items()) or "-"


def describe(name: str, *, num_classes: int = 10, in_chans: int = 3, image_size: int = 32) -> list[str]:
    """The lines ``ticketbench backbones`` prints for one backbone."""
    import torch

    from .masks import MIN_COVERAGE, POLICIES, coverage, prunable_names
    from .methods.structure.units import unit_groups
    from .models import classifier_names, conv_linear_layers, create_model, stem_name

    model = create_model(name, num_classes=num_classes, in_chans=in_chans, image_size=image_size).eval()
    W = max(len(p) for p in POLICIES.names())  # noqa: N806 - the policy column's width
    layers = conv_linear_layers(model)
    heads, stem = set(classifier_names(model)), stem_name(model)
    weights = sum(m.weight.numel() for m in layers.values())
    lines = [f"{name}: {len(layers)} conv and linear layers, {weights / 1e6:.3f}M weights "
             f"(in_chans {in_chans}, {image_size}x{image_size}, {num_classes} classes)", "",
             f"{'policy':<{W}} {'covered':>8} {'layers':>8}  pruned / kept"]
    for policy in POLICIES.names():
        pol = POLICIES.get(policy)
        try:
            names = prunable_names(model, policy)
        except ConfigError:
            names = []
        cover = coverage(model, names)
        mods = [n.rsplit(".", 1)[0] for n in names]
        kept = [n for n in layers if n not in mods]
        why = {n: "classifier" if n in heads else "stem" if n == stem else "" for n in kept}
        flag = " (asked for by name only)" if pol.narrow else (
            f" REFUSED: below {MIN_COVERAGE:.0%}" if cover < MIN_COVERAGE else "")
        lines.append(f"{policy:<{W}} {cover:>8.1%} {len(names):>3}/{len(layers):<4}  prunes {pattern_counts(mods)}"
                     f"{flag}")
        if kept:
            lines.append(f"{'':<{W + 19}}keeps  " + ", ".join(f"{n} ({why[n]})" if why[n] else n for n in kept[:4])
                         + (f" and {len(kept) - 4} more: {pattern_counts(kept[4:])}" if len(kept) > 4 else ""))
    example = torch.zeros(1, in_chans, image_size, image_size)
    groups = unit_groups(model, example)
    masked = {n for n in prunable_names(model, "structure_lth")}
    touched = [g for g in groups if any(w in masked for w in g.weights())]
    free = [g for g in touched if g.removable]
    blocked = Counter(g.blocker for g in touched if g.blocker)
    lines += ["", "structure methods (on the structure_lth policy's layers):"]
    units = sum(g.channels for g in free)
    grouped = [g for g in free if g.width > 1]
    lines.append(f"  refill, refill_plus: {len(free)} of {len(touched)} channel groups can lose channels "
                 f"({units} channels: roots {pattern_counts([g.root for g in free])})"
                 + (f"; {len(grouped)} remove whole convolution groups" if grouped else "")
                 + (f"; {sum(len(g.producers) > 1 for g in free)} couple several layers, which choose together"
                    if any(len(g.producers) > 1 for g in free) else ""))
    for why, k in blocked.most_common():
        lines.append(f"    cannot ({k} group{'s' * (k > 1)}): {why}")
    if not free:
        lines.append("    refill would remove no structure on this backbone: its tickets' time savings are not reported")
    convs = [w for w in masked if layers[w.rsplit(".", 1)[0]].weight.dim() == 4]
    plain = [w for w in convs if layers[w.rsplit(".", 1)[0]].groups == 1]
    lines.append(f"  regroup: {len(plain)} of {len(masked)} pruned layers are plain convolutions that can run "
                 f"block-sparse; {len(convs) - len(plain)} grouped/depthwise convs and {len(masked) - len(convs)} "
                 f"linears keep their IMP masks (the block-sparse kernels are convolutions)")
    return lines


@STAGES.register("backbones")
class Backbones(Stage):
    name = "backbones"
    help = ("what each pruning policy covers on a timm backbone, and which channel groups refill and regroup can "
            "structure")

    @classmethod
    def add_args(cls, parser) -> None:
        parser.add_argument("names", nargs="+", metavar="NAME", help="timm model names (cifar_* included)")
        parser.add_argument("--num-classes", type=int, default=10, help="classifier outputs (default 10)")
        parser.add_argument("--in-chans", type=int, default=3, help="input channels (default 3, as digits and CIFAR)")
        parser.add_argument("--image-size", type=int, default=32, help="input size the graph is traced at (default "
                            "32, as digits and CIFAR)")

    @classmethod
    def run(cls, args, config) -> int:
        for key in ("num_classes", "in_chans", "image_size"):
            if getattr(args, key) < 1:
                raise ConfigError(key, getattr(args, key), "a positive integer")
        for i, name in enumerate(args.names):
            print(("\n" if i else "") + "\n".join(describe(name, num_classes=args.num_classes, in_chans=args.in_chans,
                                                          image_size=args.image_size)))
        return 0
