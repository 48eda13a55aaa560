"""`mynumber kits undeliverable KIT` and `mynumber kits lost KIT`: what became of a kit's outgoing envelope.

Registered into the `kits` group (pipeline/commands/kits.py must come first in COMMAND_MODULES), so the
commands sit next to `kits send`, whose manifest sends such a kit again."""
from __future__ import annotations

import argparse

from .. import config, db
from ..track import packages


def _kits_subcommands(sub) -> argparse._SubParsersAction:
    kits = sub.choices.get("kits")
    if kits is None:
        raise RuntimeError("pipeline.commands.packages must be registered after pipeline.commands.kits")
    for action in kits._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise RuntimeError("the kits command has no subcommands to add to")


def register(sub) -> None:
    ksub = _kits_subcommands(sub)
    un = ksub.add_parser("undeliverable", help="a sent kit came back undeliverable (宛所不明); send it again later")
    un.add_argument("kit", metavar="KIT")
    un.add_argument("--note", help="e.g. the post office's reason")
    un.set_defaults(handler=run_undeliverable)
    lo = ksub.add_parser("lost", help="a sent kit was lost by the carrier")
    lo.add_argument("kit", metavar="KIT")
    lo.add_argument("--note", help="e.g. the carrier's search result")
    lo.set_defaults(handler=run_lost)


def _run(args, outcome, words: str) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    with db.session_scope(settings.db_url) as session:
        kit = outcome(session, args.kit, actor=args.actor, note=args.note)
        code = kit.code
    print(f"kit {code} recorded as {words} by {args.actor}; send it again with `mynumber kits send`")
    return 0


def run_undeliverable(args) -> int:
    return _run(args, packages.returned_undeliverable, "returned undeliverable")


def run_lost(args) -> int:
    return _run(args, packages.lost, "lost in the post")
