"""``ticketbench structure``: IMP-Refill, Refill+ and IMP-Regroup over the rounds of an IMP run.

Each round's unstructured IMP mask becomes a structured one, the ticket is rewound and retrained
like any IMP round, and its real speed is measured: refilled tickets are physically slimmed
(:mod:`ticketbench.slim`), regrouped ones run with block-sparse convolutions
(:mod:`ticketbench.blocksparse`); both against the dense model in the same process.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch

from .. import artifacts, io, paths
from ..data import make_loader
from ..errors import ArtifactError, ConfigError
from ..hparams import Hparams, TrainHparams, hp, int_list
from ..masks import Mask
from ..stage import STAGES, Stage, add_common_args, claim_out_dir, setup_runtime
from ..timing import for_inference, paired
from .common import add_pretrain_args, Pretrained, load_pretrained, round_dir, train_round, write_round, write_summary
from .refill import CHANNEL_SCORES, batchnorm_after, batchnorm_mask, channel_sparsity, refill

METHODS = ("refill", "refill_plus", "regroup")


@dataclass(frozen=True)
class StructureHparams(Hparams):
    """Structured tickets from IMP masks: channel-wise (Refill, Refill+) or group-wise (Regroup)."""

    section: ClassVar[str] = "structure"
    method: str = hp("refill", "refill, refill_plus or regroup")
    criterion: str = hp("l1", "refill channel score: l1 (of trained weights; the paper), remain (the released code), "
                              "act_l1, act_l2 or saliency")
    rho: float = hp(0.1, "refill_plus: extra fraction of the emptied channels to re-activate (paper value unknown)")
    round_to: int = hp(1, "refill: round each layer's channel count up to a multiple of this (1: the paper's rule; "
                          "8 suits CPU/GPU conv kernels)")
    parts: int = hp(8, "regroup: hypergraph parts per layer (at most; see --fixed-parts)")
    fixed_parts: bool = hp(False, "regroup: always use --parts parts, as the paper; by default a layer gets "
                                  "min(parts, C_out // min_rows) so narrow layers can still form blocks")
    min_rows: int = hp(16, "regroup: fewest rows a block may have")
    granularity: int = hp(32, "regroup: row granularity of a block")
    column_factor: float = hp(1.5, "regroup: column growth factor")
    imbalance: float = hp(0.1, "regroup: partition imbalance allowed")
    rounds: str = hp("", "comma-separated IMP rounds to structure (default: all)")
    timing_batch: int = hp(64, "batch size of the latency measurement")
    timing_rounds: int = hp(10, "timed forward passes per model (median)")

    def check(self) -> None:
        self._require("method", self.method in METHODS, f"one of {', '.join(METHODS)}")
        self._require("criterion", self.criterion in CHANNEL_SCORES, f"one of {', '.join(CHANNEL_SCORES.names())}")
        self._require("rho", 0 <= self.rho < 1, "a fraction in [0, 1)")
        for key in ("round_to", "parts", "min_rows", "granularity", "timing_batch", "timing_rounds"):
            self._require(key, getattr(self, key) > 0, "a positive integer")
        self._require("column_factor", self.column_factor > 0, "a positive factor")


def _against_dense(dense: torch.nn.Module, model: torch.nn.Module, x: torch.Tensor, rounds: int,
                   device: torch.device):
    """Both models prepared alike (:func:`for_inference`) and timed alternately on the same batch."""
    dense, x = for_inference(dense.to(device), x.to(device))
    model, _ = for_inference(model.to(device), x)
    with torch.inference_mode():
        return paired(lambda: dense(x), lambda: model(x), rounds=rounds, warmup=2, device=device)


def _latency(pre: Pretrained, dense: torch.nn.Module, ticket: torch.nn.Module, batch: int, rounds: int,
             device: torch.device) -> dict:
    info = pre.splits.info
    x = torch.randn(batch, info.in_chans, info.image_size, info.image_size, generator=torch.Generator().manual_seed(0))
    t = _against_dense(dense, ticket, x, rounds, device)
    return {"dense_ms": t.base_s * 1e3, "ticket_ms": t.test_s * 1e3, "latency_fraction": t.ratio,
            "time_saving": t.saving, "timing_batch": batch, "timing_device": str(device)}


def structure_round(pre: Pretrained, imp_dir: Path, r: int, st: StructureHparams, example: torch.Tensor):
    """The structured mask (plus BatchNorm entries for refill) for IMP round ``r`` and facts about it."""
    imp_mask, _ = Mask.load(round_dir(imp_dir, r) / "mask.safetensors")
    trained, _ = artifacts.load_checkpoint(round_dir(imp_dir, r) / "model.safetensors")
    model = pre.model_from(trained)
    convs = Mask({n: m for n, m in imp_mask.items() if m.dim() == 4})
    others = {n: m for n, m in imp_mask.items() if m.dim() != 4}
    if st.method in ("refill", "refill_plus"):
        x, y, _ = next(iter(make_loader(pre.splits.train_eval, 64, shuffle=True, seed=pre.seed)))
        scores = CHANNEL_SCORES.get(st.criterion)(model, convs, (x, y))
        channel_mask, _ = refill(convs, scores, st.rho if st.method == "refill_plus" else 0.0, st.round_to)
        bn = batchnorm_mask(model, channel_mask, batchnorm_after(pre.new_model(), list(channel_mask), example))
        return Mask({**channel_mask, **others}), bn, {"channel_sparsity": channel_sparsity(channel_mask)}
    from .regroup import regroup

    res = regroup(convs, parts=st.parts, min_rows=st.min_rows, granularity=st.granularity,
                  column_factor=st.column_factor, seed=pre.seed, imbalance=st.imbalance,
                  adaptive_parts=not st.fixed_parts)
    gs = res.group_sparsity()
    return Mask({**res.mask, **others}), {}, {"group_sparsity": gs, "regroup": res.to_json(),
                                               "fallback_layers": res.fallback, "_blocks": res.blocks}


def imp_inputs(pre: Pretrained, imp_dir: Path, st: StructureHparams) -> tuple[dict, dict[int, dict], list[int]]:
    """The IMP run's settings, its rounds by number, and the rounds to structure; checked before any write."""
    if not paths.metrics(imp_dir).is_file():
        raise ArtifactError(imp_dir, "is not a finished IMP run (no metrics.json); run `ticketbench imp` first")
    imp_settings = io.read_json(paths.hparams(imp_dir))["settings"]["imp"]
    pre.rewind_path(imp_settings["rewind"])
    imp_rounds = {row["round"]: row for row in artifacts.read_metrics(paths.metrics(imp_dir))["rounds"]}
    wanted = int_list(st.rounds) or sorted(imp_rounds)
    if any(r not in imp_rounds for r in wanted):
        raise ConfigError("structure.rounds", st.rounds, f"rounds of the IMP run in {imp_dir}: {sorted(imp_rounds)}")
    return imp_settings, imp_rounds, wanted


def run_structure(pre: Pretrained, imp_dir: str | Path, st: StructureHparams, train_hp: TrainHparams, out, *,
                  device: torch.device, progress: bool = True, config: dict | None = None) -> dict:
    from .. import slim as slimming

    imp_dir = Path(imp_dir)
    t_run = time.perf_counter()
    imp_settings, imp_rounds, wanted = imp_inputs(pre, imp_dir, st)
    rewind = pre.rewind_state(imp_settings["rewind"])
    start_epoch = pre.resume_epoch(imp_settings["rewind"]) if imp_settings.get("lr_resume") else 0
    info = pre.splits.info
    example = torch.zeros(1, info.in_chans, info.image_size, info.image_size)
    dense = pre.model_from(pre.best_state)
    rows = []
    for r in wanted:
        t0 = time.perf_counter()
        mask, bn_mask, facts = structure_round(pre, imp_dir, r, st, example)
        blocks = facts.pop("_blocks", None)
        model, res = train_round(pre, rewind, Mask({**mask, **bn_mask}), train_hp, device=device,
                                 start_epoch=start_epoch, progress=progress, desc=f"{st.method} round {r}")
        model.load_state_dict(res.best_state)
        model.cpu().eval()
        if blocks is not None:
            from ..blocksparse import to_blocksparse

            # Layers where gathering blocks costs more than it saves stay dense (timed on their real input).
            fast = to_blocksparse(model, {n: b for n, b in blocks.items() if b},
                                  example=torch.randn(st.timing_batch, *example.shape[1:]))
        else:
            fast, plan = slimming.slim(model, example)
            facts["flops_fraction"] = slimming.macs(fast, example) / slimming.macs(dense, example)
            facts["slim_plan_channels"] = sum(len(i) for _, i in plan)
            slimming.save_slim(round_dir(out, r) / "slim.safetensors", fast, plan, backbone=pre.model_hp.backbone,
                               num_classes=info.num_classes, in_chans=info.in_chans, input_size=tuple(example.shape[1:]),
                               method=st.method, source_hash=pre.source_hash)
        with torch.inference_mode():
            x = next(iter(make_loader(pre.splits.test, 64, shuffle=False)))[0]
            facts["max_abs_diff"] = float((fast(x) - model(x)).abs().max())
        facts.update(_latency(pre, dense, fast, st.timing_batch, st.timing_rounds, device))
        facts.update(round=r, imp_test_acc=imp_rounds[r]["test_acc"], imp_sparsity=imp_rounds[r]["sparsity"],
                     structure=st.method, criterion=st.criterion if st.method != "regroup" else None)
        rows.append(write_round(round_dir(out, r), method=st.method, pre=pre, mask=mask, res=res,
                                config=config or {}, t0=t0, **facts))
    return write_summary(out, rows, method=st.method, pre=pre, t0=t_run, imp_run=str(imp_dir))


@STAGES.register("structure")
class Structure(Stage):
    name = "structure"
    help = "IMP-Refill, Refill+ or IMP-Regroup tickets from an IMP run, retrained and timed against dense"

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        add_common_args(parser)
        add_pretrain_args(parser, "the pretrain run the IMP run started from")
        parser.add_argument("--imp", required=True, metavar="DIR", help="a finished `ticketbench imp` run")
        StructureHparams.add_args(parser)
        TrainHparams.add_args(parser)

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        from .imp import resolve_train

        st = StructureHparams.from_sources(config, args)
        device = setup_runtime(args, config)
        pre = load_pretrained(args.pretrain, data_root=args.data_root)
        train_hp = resolve_train(pre, config, args)
        resolved = {"pretrain": pre.source_hash, "imp": str(args.imp), "structure": st.to_dict(),
                    "train": train_hp.to_dict(), "threads": args.threads}
        imp_inputs(pre, Path(args.imp), st)
        claim_out_dir(args.out, resolved, args.overwrite)
        m = run_structure(pre, args.imp, st, train_hp, args.out, device=device, progress=not args.no_progress,
                          config=resolved)
        for row in m["rounds"]:
            print(f"round {row['round']}: sparsity {row['sparsity']:.4f} test_acc {row['test_acc']:.4f} "
                  f"(IMP {row['imp_test_acc']:.4f}) time saving {row['time_saving']:.1%}")
        return 0


@STAGES.register("timing")
class Timing(Stage):
    name = "timing"
    help = "end-to-end and per-layer latency of dense, IMP-masked, refill-slimmed and regroup block-sparse models"

    @classmethod
    def add_args(cls, parser: argparse.ArgumentParser) -> None:
        add_common_args(parser)
        add_pretrain_args(parser)
        parser.add_argument("--imp", required=True, metavar="DIR", help="the IMP run the structured tickets came from")
        parser.add_argument("--refill", metavar="DIR", help="a `ticketbench structure --method refill` run")
        parser.add_argument("--regroup", metavar="DIR", help="a `ticketbench structure --method regroup` run")
        parser.add_argument("--round", type=int, default=0, help="IMP round to time (default: the last one)")
        parser.add_argument("--batch", type=int, default=64, help="batch size (default 64, as the paper)")
        parser.add_argument("--rounds", type=int, default=10, help="timed calls per model (median)")

    @classmethod
    def run(cls, args: argparse.Namespace, config: dict) -> int:
        from ..timing import per_layer
        from ..slim import load_slim

        for key in ("batch", "rounds"):
            if getattr(args, key) < 1:
                raise ConfigError(key, getattr(args, key), "a positive integer")
        device = setup_runtime(args, config)
        pre = load_pretrained(args.pretrain, data_root=args.data_root)
        rows = artifacts.read_metrics(paths.metrics(args.imp))["rounds"]
        r = args.round or rows[-1]["round"]
        if r not in [x["round"] for x in rows]:
            raise ConfigError("round", r, f"a round of {args.imp}: {[x['round'] for x in rows]}")
        info = pre.splits.info
        x = torch.randn(args.batch, info.in_chans, info.image_size, info.image_size,
                        generator=torch.Generator().manual_seed(0)).to(device)
        dense, x = for_inference(pre.model_from(pre.best_state).to(device), x)
        masked = pre.model_from(pre.best_state)
        Mask.load(round_dir(args.imp, r) / "mask.safetensors")[0].apply_(masked)
        variants = {"imp_masked": masked.to(device)}
        if args.refill:
            variants["refill_slim"] = load_slim(round_dir(args.refill, r) / "slim.safetensors")[0].to(device)
        if args.regroup:
            from ..blocksparse import to_blocksparse
            from .regroup import blocks_from_json

            state, _ = artifacts.load_checkpoint(round_dir(args.regroup, r) / "model.safetensors")
            blocks = blocks_from_json(artifacts.read_metrics(round_dir(args.regroup, r) / "metrics.json")["regroup"]["blocks"])
            variants["regroup_blocksparse"] = to_blocksparse(pre.model_from(state).eval(),
                                                             {n: b for n, b in blocks.items() if b},
                                                             example=x.cpu()).to(device)
        variants = {k: for_inference(v, x)[0] for k, v in variants.items()}
        end_to_end = {}
        for name, model in variants.items():
            t = _against_dense(dense, model, x, args.rounds, device)
            end_to_end[name] = {"dense_ms": t.base_s * 1e3, "ms": t.test_s * 1e3, "latency_fraction": t.ratio,
                                "time_saving": t.saving}
        layers = per_layer(dense, {k: v for k, v in variants.items() if k != "imp_masked"}, x, rounds=args.rounds)
        out = Path(args.out)
        io.write_json(out / "timing.json", {"round": r, "batch": args.batch, "device": str(device),
                                            "threads": torch.get_num_threads(), "end_to_end": end_to_end,
                                            "layers": layers})
        for name, e in end_to_end.items():
            print(f"{name}: {e['ms']:.1f} ms vs dense {e['dense_ms']:.1f} ms, time saving {e['time_saving']:.1%}")
        return 0
