"""Reading a roster CSV as Excel in Japan writes it: UTF-8, UTF-8 with BOM, or CP932, detected.

Parsing is all-or-nothing: every problem is collected with its line and column, and if there is any, the
RosterError lists them and nothing is imported.
"""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RosterError

REQUIRED = ("person_id", "name", "postal_code", "address", "site", "kind")
OPTIONAL = ("name_kana", "dependents")
KINDS = ("employee", "payee")
MAX_DEPENDENTS = 8  # provision form: 3 on page 1, 5 on page 2
_POSTAL = re.compile(r"^(\d{3})-?(\d{4})$")
MAX_REPORTED = 20


@dataclass(frozen=True)
class RosterRow:
    line: int
    person_id: str
    name: str
    name_kana: str | None
    postal_code: str
    address: str
    site: str
    kind: str
    dependents: tuple[str, ...] = field(default_factory=tuple)


def decode(data: bytes, source: str) -> tuple[str, str]:
    """Returns (text, encoding name). UTF-8 is tried first: CP932 text is almost never valid UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise RosterError(f"{source}: line {_line_of(data, exc.start + 3)}: bytes that are not UTF-8 "
                              "after a UTF-8 byte-order mark; nothing was imported") from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_error:
        try:
            return data.decode("cp932"), "cp932"
        except UnicodeDecodeError as cp932_error:
            line = _line_of(data, max(utf8_error.start, cp932_error.start))
            raise RosterError(f"{source}: line {line}: undecodable bytes (neither UTF-8 nor CP932/Shift_JIS); "
                              "save the file as CSV UTF-8 from Excel; nothing was imported") from None


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _clean(value: str | None) -> str:
    return unicodedata.normalize("NFKC", value or "").strip() if value is not None else ""


def parse(data: bytes, source: str = "roster") -> list[RosterRow]:
    text, _ = decode(data, source)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise RosterError(f"{source}: the file is empty; nothing was imported") from None
    columns = [_clean(h).lower() for h in header]
    problems: list[str] = []
    for i, col in enumerate(columns, start=1):
        if col not in REQUIRED and col not in OPTIONAL:
            problems.append(f"line 1, column {i}: unknown column {col!r} "
                            f"(expected {', '.join(REQUIRED + OPTIONAL)})")
    for col in REQUIRED:
        if col not in columns:
            problems.append(f"line 1: required column {col!r} is missing")
    dupes = {c for c in columns if columns.count(c) > 1}
    for col in sorted(dupes):
        problems.append(f"line 1: column {col!r} appears more than once")
    if problems:
        raise RosterError(_summary(source, problems))

    rows: list[RosterRow] = []
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # blank lines Excel leaves at the end
        if len(record) > len(columns):
            problems.append(f"line {line}: {len(record)} cells but the header has {len(columns)} columns")
            continue
        values = {col: _clean(record[i]) if i < len(record) else "" for i, col in enumerate(columns)}

        def bad(col: str, why: str) -> None:
            problems.append(f"line {line}, column {col} ({columns.index(col) + 1}): {why}")

        pid = values["person_id"]
        if not pid:
            bad("person_id", "person_id is empty")
        elif pid in seen:
            bad("person_id", f"person_id {pid!r} already appears on line {seen[pid]}")
        else:
            seen[pid] = line
        for col in ("name", "address", "site"):
            if not values[col]:
                bad(col, f"{col} is empty")
        kind = values["kind"].lower()
        if kind not in KINDS:
            bad("kind", f"kind {values['kind']!r} is not one of {', '.join(KINDS)}")
        postal = _POSTAL.match(values["postal_code"])
        if not postal:
            bad("postal_code", f"postal code {values['postal_code']!r} is not 7 digits (NNN-NNNN)")
        dependents = tuple(d.strip() for d in values.get("dependents", "").split(";") if d.strip())
        if dependents and kind == "payee":
            bad("dependents", "a payee kit has no dependents' fields; list dependents only for employees")
        if len(dependents) > MAX_DEPENDENTS:
            bad("dependents", f"{len(dependents)} dependents; the provision form has room for {MAX_DEPENDENTS}")
        if postal and pid and kind in KINDS:
            rows.append(RosterRow(line=line, person_id=pid, name=values["name"],
                                  name_kana=values.get("name_kana") or None,
                                  postal_code=f"{postal[1]}-{postal[2]}", address=values["address"],
                                  site=values["site"], kind=kind, dependents=dependents))
    if problems:
        raise RosterError(_summary(source, problems))
    if not rows:
        raise RosterError(f"{source}: no people in the file; nothing was imported")
    return rows


def _summary(source: str, problems: list[str]) -> str:
    shown = "\n  ".join(problems[:MAX_REPORTED])
    more = f"\n  ... and {len(problems) - MAX_REPORTED} more" if len(problems) > MAX_REPORTED else ""
    return (f"{source}: {len(problems)} problem(s); nothing was imported:\n  {shown}{more}")


def read(path: Path) -> list[RosterRow]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RosterError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise RosterError(f"{path}: is a folder, not a CSV file") from None
    return parse(data, str(path))
