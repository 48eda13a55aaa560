"""The `mynumber` command: parse arguments, call the API, map exceptions to exit codes.

Each command group lives in its own module under pipeline/commands/ and exposes `register(subparsers)`;
handlers are set with `parser.set_defaults(handler=fn)` and receive the parsed namespace.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from .errors import MyNumberError

COMMAND_MODULES = (
    "pipeline.commands.init",
    "pipeline.commands.check",
    "pipeline.commands.roster",
    "pipeline.commands.kits",
    "pipeline.commands.scan",
    "pipeline.commands.numbers",
    "pipeline.commands.review",
    "pipeline.commands.redact",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mynumber", description="Paper intake for My Number collection.")
    parser.add_argument("--as", dest="actor", default=None,
                        help="acting user (default: $MYNUMBER_USER, else the OS user)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command group not built yet
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.actor is None:
        args.actor = os.environ.get("MYNUMBER_USER") or os.environ.get("USER") or "unknown"
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        result = handler(args)
    except MyNumberError as exc:
        print(f"mynumber: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mynumber: interrupted; re-run the same command to continue", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
