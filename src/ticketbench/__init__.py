"""ticketbench: a reproducibility benchmark suite for lottery-ticket research."""

__version__ = "0.1.0"
