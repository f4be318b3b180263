"""``ticketbench <stage> ...``: parse, dispatch to the stage registry, print errors as one line."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import TicketbenchError
from .stage import STAGES, load_config

# Importing a stage module registers it.
from . import pretrain as _pretrain  # noqa: F401,E402
from .methods import imp as _imp, jackpot as _jackpot, jackpot_studies as _studies, prac as _prac  # noqa: F401,E402
from .methods import structure as _structure  # noqa: F401,E402
from . import check as _check, collect as _collect, pipeline as _pipeline, report as _report  # noqa: F401,E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ticketbench", description="Reproducible lottery-ticket experiments.")
    parser.add_argument("--version", action="version", version=f"ticketbench {__version__}")
    sub = parser.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for name in STAGES.names():
        stage = STAGES.get(name)
        stage.add_args(sub.add_parser(name, help=stage.help, description=stage.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(getattr(args, "config", None))
        return STAGES.get(args.stage).run(args, config)
    except TicketbenchError as e:
        print(f"ticketbench {args.stage}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
