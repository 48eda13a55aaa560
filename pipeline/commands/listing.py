"""Printing lists as a table, CSV or JSON, and the times in them: stored in UTC, shown and typed in local time.

Every list command offers `--format table|csv|json` with the same columns, so what a person reads on screen
is what a script or an auditor's spreadsheet gets.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
import unicodedata
from typing import Sequence

FORMATS = ("table", "csv", "json")


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")


def local_zone() -> dt.tzinfo:
    return dt.datetime.now().astimezone().tzinfo  # type: ignore[return-value]


def parse_local(text: str) -> dt.datetime:
    """'2026-03-01', '2026-03-01 14:30' or ISO with an offset -> naive UTC (how the database keeps times).
    A time without an offset is local time; a date alone is its start."""
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date or time (YYYY-MM-DD or YYYY-MM-DD HH:MM)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=local_zone())
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def to_local(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc).astimezone(local_zone())


def iso(value: dt.datetime | None) -> str | None:
    """Machine form (CSV, JSON): local time with its offset, unambiguous anywhere."""
    local = to_local(value)
    return local.isoformat(timespec="seconds") if local else None


def short(value: dt.datetime | None) -> str:
    """Table form: local date and minute."""
    local = to_local(value)
    return local.strftime("%Y-%m-%d %H:%M") if local else ""


def _width(text: str) -> int:
    """Display width: full-width (Japanese) characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _machine(value):
    return iso(value) if isinstance(value, dt.datetime) else value


def _cell(value, *, table: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return short(value) if table else iso(value) or ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    return str(value)


def emit(rows: Sequence[dict], columns: Sequence[str], fmt: str, *, key: str, out=None) -> None:
    """Write `rows` in `fmt`; `key` names the JSON list. Datetimes (naive UTC, as stored) are shown in local
    time: to the minute in tables, ISO with offset in CSV and JSON."""
    out = out or sys.stdout
    if fmt == "json":
        print(json.dumps({key: [{c: _machine(r.get(c)) for c in columns} for r in rows]}, ensure_ascii=False, indent=1),
              file=out)
        return
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow([_cell(r.get(c)) for c in columns])
        return
    cells = [[_cell(r.get(c), table=True) for c in columns] for r in rows]
    widths = [max([_width(c)] + [_width(row[i]) for row in cells]) for i, c in enumerate(columns)]
    for line in [list(columns)] + cells:
        print("  ".join(v + " " * (w - _width(v)) for v, w in zip(line, widths)).rstrip(), file=out)


def date_arg(text: str) -> dt.date:
    """A YYYY-MM-DD command-line date; argparse turns the error into a usage message."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
