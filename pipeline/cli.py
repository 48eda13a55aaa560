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

from .errors import MyNumberError, PermissionDenied

COMMAND_MODULES = (
    "pipeline.commands.init",
    "pipeline.commands.users",
    "pipeline.commands.check",
    "pipeline.commands.roster",
    "pipeline.commands.kits",
    "pipeline.commands.scan",
    "pipeline.commands.numbers",
    "pipeline.commands.review",
    "pipeline.commands.redact",
    "pipeline.commands.packages",   # adds `kits undeliverable|lost`: after pipeline.commands.kits
    "pipeline.commands.transfer",
    "pipeline.commands.remind",
    "pipeline.commands.people",
    "pipeline.commands.documents",
    "pipeline.commands.store",
    "pipeline.commands.disposal",
    "pipeline.commands.audit",
    "pipeline.commands.serve",
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
    _label_leaves(parser, "")
    return parser


def _label_leaves(parser: argparse.ArgumentParser, path: str) -> None:
    """Give every command its dotted path ('kits.print'): the key of the permission table."""
    if path:
        parser.set_defaults(command_path=path)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                _label_leaves(child, f"{path}.{name}" if path else name)


def authorise(args) -> None:
    """Refuse (and log the refusal) unless the acting user's role allows this command."""
    from . import config, db
    from .track import roles, users
    path = getattr(args, "command_path", "")
    if not path or path.split(".")[0] in roles.OPEN:
        return
    settings = config.load()
    db.require_schema(settings.db_url)
    months = int(settings.section("handlers").get("training_valid_months", 12))
    try:
        with db.session_scope(settings.db_url) as session:
            users.authorise(session, args.actor, path, training_months=months)
    except PermissionDenied as refusal:
        with db.session_scope(settings.db_url) as session:
            users.log_refusal(session, args.actor, path, refusal.message)
        raise


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
        authorise(args)
        result = handler(args)
    except MyNumberError as exc:
        print(f"mynumber: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mynumber: interrupted; re-run the same command to continue", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away (`| head`): not an error of ours; silence the final flush.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
