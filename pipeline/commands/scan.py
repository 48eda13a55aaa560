"""`mynumber scan PATH... | --watch DIR`."""
from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

from .. import config
from ..errors import ScanInputError, UsageError
from ..scan.intake import Intake

SETTLE_SECONDS = 2.0  # a file younger than this may still be being written by the scanner


def register(sub) -> None:
    p = sub.add_parser("scan", help="identify, log and read returned pages (PDF, TIFF, PNG, JPEG, folders)")
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH")
    p.add_argument("--site", help="the site where the pages were scanned")
    p.add_argument("--operator", help="who scanned them (default: the acting user)")
    p.add_argument("--json", action="store_true", help="one JSON object per page, then a summary")
    p.add_argument("--watch", type=Path, metavar="DIR", help="hot folder: process new files, move them to done/ or failed/")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between looks at the hot folder")
    p.add_argument("--once", action="store_true", help="with --watch: process what is there now, then stop")
    p.set_defaults(handler=run)


def run(args) -> int:
    settings = config.load()
    operator = args.operator or args.actor
    if args.watch:
        return watch(settings, args.watch, operator=operator, site=args.site, interval=args.interval,
                     once=args.once, as_json=args.json)
    if not args.paths:
        raise UsageError("give files or folders to scan, or --watch DIR")
    intake = Intake(settings, actor=operator, site=args.site)
    summary = intake.run(args.paths, json_out=sys.stdout if args.json else None)
    report(summary, args.json)
    if not summary.ok:
        raise ScanInputError(f"{len(summary.problems)} page(s) could not be processed (listed above); "
                             "everything else was recorded")
    return 0


def report(summary, as_json: bool) -> None:
    s = summary.as_dict()["summary"]
    if as_json:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
        for problem in s["problems"]:
            print(f"problem: {problem}", file=sys.stderr)
        return
    print(f"{s['pages']} pages from {s['files']} file(s) in {s['seconds']:.1f} s"
          + (f" ({s['pages_per_minute']:.0f} pages/min)" if s["pages_per_minute"] else "")
          + (f"; {s['already_recorded']} already recorded" if s["already_recorded"] else ""))
    if s["statuses"]:
        print("pages: " + ", ".join(f"{k} {v}" for k, v in sorted(s["statuses"].items())))
    if s["fields"]:
        print("number fields: " + ", ".join(f"{k} {v}" for k, v in sorted(s["fields"].items())))
    if s["settled_by_id_copy"]:
        print(f"review items settled by the number on the kit's ID copy: {s['settled_by_id_copy']}")
    for problem in s["problems"]:
        print(f"problem: {problem}", file=sys.stderr)


def _ready_files(folder: Path) -> list[Path]:
    """Settled files; unsupported ones too, so they end in failed/ with a reason instead of lying there."""
    now = time.time()
    return [p for p in sorted(folder.iterdir())
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".reason.txt")
            and now - p.stat().st_mtime >= SETTLE_SECONDS]


def watch(settings, folder: Path, *, operator: str, site: str | None, interval: float, once: bool,
          as_json: bool) -> int:
    if not folder.is_dir():
        raise UsageError(f"hot folder {folder} does not exist")
    done, failed = folder / "done", folder / "failed"
    done.mkdir(exist_ok=True)
    failed.mkdir(exist_ok=True)
    intake = Intake(settings, actor=operator, site=site)

    def file_done(path: Path, problems: list[str]) -> None:
        target = failed if problems else done
        destination = target / path.name
        if destination.exists():
            destination = target / f"{path.stem}-{int(time.time())}{path.suffix}"
        shutil.move(str(path), destination)
        if problems:
            destination.with_name(destination.name + ".reason.txt").write_text("\n".join(problems) + "\n",
                                                                              encoding="utf-8")
        print(f"{path.name} -> {target.name}/", file=sys.stderr)

    while True:
        files = _ready_files(folder)
        if files:
            summary = intake.run(files, json_out=sys.stdout if as_json else None, on_file_done=file_done)
            report(summary, as_json)
        if once:
            return 0
        time.sleep(interval)
