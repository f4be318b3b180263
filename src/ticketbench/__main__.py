"""``python -m ticketbench``: the CLI without its console script (a GPU node with torch but no installed package)."""

import sys

from .cli import main

sys.exit(main())
