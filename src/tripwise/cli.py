"""The ``tripwise`` command line (argparse, so the core install needs nothing else).

Subcommands with their own parser (``serve``, and others added the same way) are listed in
``DELEGATED``: ``tripwise NAME ...`` hands the rest of the command line to the entry point
named there, which owns its ``--help``. Adding one is one entry in that table.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from tripwise import __version__

# name -> (help line, "module:function" taking the remaining argv and returning an exit code)
DELEGATED: dict[str, tuple[str, str]] = {
    "serve": (
        "run the control plane (tripwise[server]); serve --help",
        "tripwise.server.cli:serve_main",
    ),
}


def _demo(args: argparse.Namespace) -> int:
    from tripwise.demo import run_demo

    run_demo(sys.stdout)
    return 0


def _delegate(name: str, rest: Sequence[str]) -> int:
    _, target = DELEGATED[name]
    module_name, _, func_name = target.partition(":")
    try:
        entry: Callable[[list[str]], int | None] = getattr(
            importlib.import_module(module_name), func_name
        )
    except ImportError as exc:
        sys.stderr.write(
            f"tripwise {name} needs an extra that is not installed ({exc.name} is missing): "
            "pip install 'tripwise[all]' (from a clone: pip install '.[all]')\n"
        )
        return 2
    return int(entry(list(rest)) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tripwise",
        description="Circuit breakers that trip on model-output quality, errors and latency.",
    )
    parser.add_argument("--version", action="version", version=f"tripwise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run a short demo in the terminal (no services needed)")
    demo.set_defaults(func=_demo)
    for name, (help_text, _) in DELEGATED.items():
        sub.add_parser(name, help=help_text, add_help=False)  # parsed by its own entry point
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] and args_list[0] in DELEGATED:
        return _delegate(args_list[0], args_list[1:])
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
