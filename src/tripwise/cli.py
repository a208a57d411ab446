"""The ``tripwise`` command line (argparse, so the core install needs nothing else)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tripwise import __version__


def _demo(args: argparse.Namespace) -> int:
    from tripwise.demo import run_demo

    run_demo(sys.stdout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tripwise",
        description="Circuit breakers that trip on model-output quality, errors and latency.",
    )
    parser.add_argument("--version", action="version", version=f"tripwise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run a short demo in the terminal (no services needed)")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
