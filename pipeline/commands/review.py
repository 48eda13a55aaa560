"""`mynumber review [--json]`: key the numbers the reader was not sure of (double entry)."""
from __future__ import annotations

import json
import shutil
import sys

import cv2
import numpy as np

from .. import config, db
from ..errors import StateError
from ..track import review
from ..track.sealed import Sealer


def register(sub) -> None:
    p = sub.add_parser("review", help="key fields the reader was not sure of; --json lists the queue")
    p.add_argument("--json", action="store_true", help="list the open items (no numbers) and exit")
    p.add_argument("--site")
    p.set_defaults(handler=run)


def terminal_picture(png: bytes, width: int) -> str:
    """The crop as half-block characters (two pixel rows per line), in two halves so digits stay legible.
    Nothing is written to disk."""
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
    halves = [image[:, : image.shape[1] // 2 + 4], image[:, image.shape[1] // 2 - 4:]]
    lines = []
    for half in halves:
        scale = width / half.shape[1]
        small = cv2.resize(half, (width, max(2, int(half.shape[0] * scale * 0.5) * 2)), interpolation=cv2.INTER_AREA)
        dark = small < 140
        for y in range(0, dark.shape[0] - 1, 2):
            top, bottom = dark[y], dark[y + 1]
            lines.append("".join("█" if t and b else "▀" if t else "▄" if b else " " for t, b in zip(top, bottom)))
        lines.append("")
    return "\n".join(lines)


def allow_same(settings) -> bool:
    return bool(settings.section("review").get("allow_same_operator", False))


def run(args) -> int:
    settings = config.load()
    db.require_schema(settings.db_url)
    if args.json:
        with db.session_scope(settings.db_url) as session:
            items = review.queue(session)
        print(json.dumps({"items": [vars(i) for i in items]}, ensure_ascii=False, indent=1))
        return 0
    sealer = Sealer(settings)
    width = min(120, max(40, shutil.get_terminal_size((100, 30)).columns - 2))
    keyed, skipped = 0, set()
    while True:
        with db.session_scope(settings.db_url) as session:
            item = review.next_for(session, args.actor, allow_same_operator=allow_same(settings), skip=skipped)
            if item is None:
                print(f"no review items left for {args.actor} ({keyed} keyed)")
                return 0
            png = review.crop_of(session, sealer, item.id, operator=args.actor, site=args.site)
        print(f"\nitem {item.id}: kit {item.kit}, field {item.field} ({item.reason}; {item.entries} entries so far)")
        print(terminal_picture(png, width))
        del png
        answer = _prompt_until_done(settings, sealer, item, args)
        if answer == "quit":
            return 0
        if answer == "skip":
            skipped.add(item.id)
        else:
            keyed += 1


def _prompt_until_done(settings, sealer, item, args) -> str:
    while True:
        try:
            typed = input("number (12 digits; empty = skip, q = quit): ").strip()
        except EOFError:
            print()
            return "quit"
        if typed.lower() == "q":
            return "quit"
        if not typed:
            return "skip"
        try:
            with db.session_scope(settings.db_url) as session:
                result = review.submit(session, sealer, item.id, typed, operator=args.actor,
                                       allow_same_operator=allow_same(settings), site=args.site)
        except StateError as exc:
            print(exc.message, file=sys.stderr)
            return "skip"
        if result.outcome == "refused":
            print(result.message, file=sys.stderr)   # refused at the prompt: type again
            continue
        print({"settled": "settled: both entries agree, the number is accepted",
               "waiting": "recorded; a second operator must key it too",
               "disagreement": "recorded; the entries disagree, a third operator will key it"}[result.outcome])
        return "keyed"
