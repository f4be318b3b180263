"""``ticketbench <stage> ...``: parse, dispatch to the stage registry, print errors as one line.

Only the module of the stage named on the command line is imported (importing it registers the stage), so
``ticketbench --help`` and the stages that only read JSON (check, collect, report) start without torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Iterable

from . import __version__
from .errors import TicketbenchError
from .stage import STAGES, check_out, load_config

# Stage name -> (module that registers it, its one-line help), so the top-level help lists every stage without
# importing it; tests/test_cli_startup.py checks that this table matches what the modules register.
STAGE_MODULES: dict[str, tuple[str, str]] = {
    "backbones": ("ticketbench.backbones",
                  "what each pruning policy covers on a timm backbone, and which channel groups refill and regroup "
                  "can structure"),
    "bench-summary": ("ticketbench.collect",
                      "turn a pytest-benchmark JSON into a short Markdown table of the measured ratios"),
    "check": ("ticketbench.check",
              "compare a results folder with baselines pinned from measured spread; exit 1 on a drop past what the "
              "noise allows (--accept re-pins from one or more results folders)"),
    "check-config": ("ticketbench.config",
                     "validate workflow config files (merged in order, as `snakemake --configfile` merges them) and "
                     "print the first problem as the same one line Snakemake prints"),
    "collect": ("ticketbench.collect",
                "gather every metrics.json under a results folder into summary.json and summary.csv"),
    "decide": ("ticketbench.decide",
               "add seeds where a claim is undecided and could be decided, through Snakemake, and look again, within "
               "a time budget (a correction for the repeated looks)"),
    "fake-data": ("ticketbench.data.fake",
                  "write small generated replicas of CIFAR-10/100, Tiny-ImageNet and ImageNet in their real on-disk "
                  "formats (the paper grid in miniature runs on them; a lab checks its cluster set-up with them)"),
    "imp": ("ticketbench.methods.imp",
            "iterative magnitude pruning with rewinding, on full data or on replayed PrAC sets; random baselines"),
    "instability": ("ticketbench.methods.instability",
                    "linear mode connectivity of an IMP run's tickets: the error barrier between two copies per round"),
    "jackpot": ("ticketbench.methods.jackpot.search", "search a lottery jackpot: a mask over frozen pre-trained weights"),
    "jackpot-cost": ("ticketbench.methods.jackpot.studies",
                     "search-cost reduction of magnitude init over random init (the paper's '>= 3x cheaper' claim)"),
    "jackpot-overlap": ("ticketbench.methods.jackpot.studies",
                        "overlap of a jackpot mask with magnitude, random, SNIP, GraSP, SynFlow (and IMP) masks"),
    "prac": ("ticketbench.methods.prac.stage",
             "PrAC-IMP: IMP whose rounds train on pruning-aware critical sets, with early stop and ticket evaluation"),
    "prac-savings": ("ticketbench.methods.prac.stage",
                     "compare PrAC-IMP with full-data IMP: highest matching sparsity and training iterations saved"),
    "pretrain": ("ticketbench.pretrain",
                 "train a dense model and save rewind snapshots and per-sample training dynamics"),
    "report": ("ticketbench.report",
               "regenerate every paper table (paper vs ours), this grid's tables, seaborn figures and the claims"),
    "schema": ("ticketbench.config",
               "write the workflow config's JSON schema (generated from the hparams dataclasses)"),
    "share": ("ticketbench.share",
              "share a grid's checkpoints and masks through the DVC remote: push records what Snakemake produced and "
              "uploads it, pull downloads it (one line on failure)"),
    "structure": ("ticketbench.methods.structure.stage",
                  "IMP-Refill, Refill+ or IMP-Regroup tickets from an IMP run, retrained and timed against dense"),
    "timing": ("ticketbench.methods.structure.stage",
               "end-to-end and per-layer latency of dense, IMP-masked, refill-slimmed and regroup block-sparse models"),
}


def build_parser(stages: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every stage; only those in ``stages`` (default: all) are imported and get their arguments."""
    full = set(STAGE_MODULES if stages is None else stages)
    parser = argparse.ArgumentParser(prog="ticketbench", description="Reproducible lottery-ticket experiments.")
    parser.add_argument("--version", action="version", version=f"ticketbench {__version__}")
    sub = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name, (module, text) in sorted(STAGE_MODULES.items()):
        p = sub.add_parser(name, help=text, description=text)
        if name in full:
            importlib.import_module(module)
            STAGES.get(name).add_args(p)
    return parser


def stage_named(argv: list[str]) -> str | None:
    """The stage on a command line: the first word that is not an option (the top-level options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser([stage_named(argv)])
    args = parser.parse_args(argv)
    try:
        check_out(parser._subparsers._group_actions[0].choices[args.stage], args)
        config = load_config(getattr(args, "config", None))
        return STAGES.get(args.stage).run(args, config)
    except TicketbenchError as e:
        print(f"ticketbench {args.stage}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
