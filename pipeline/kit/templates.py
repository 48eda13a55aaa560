"""Kit texts from kits/templates/*.toml (Japanese, edited by HR), with {placeholders} filled per kit."""
from __future__ import annotations

import string
import tomllib
from functools import lru_cache
from pathlib import Path

from .. import config
from ..errors import LayoutError
from ..layout import DOCUMENTS

PLACEHOLDERS = frozenset({"company_name", "department", "company_phone", "company_address",
                          "company_postal_code", "return_address", "name", "postal_code", "address", "site",
                          "kit_code", "date", "dependents", "ordinal", "dependent",
                          "round", "sent_date"})   # reminder letters


@lru_cache(maxsize=4)
def load(templates_dir: Path | None = None) -> dict[str, dict]:
    templates_dir = templates_dir or (config.KITS_DIR / "templates")
    out = {}
    for document in DOCUMENTS:
        path = templates_dir / f"{document}.toml"
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LayoutError(f"template {path} is missing") from None
        except tomllib.TOMLDecodeError as exc:
            raise LayoutError(f"{path}: not valid TOML: {exc}") from None
        _check_placeholders(raw, path)
        out[document] = raw
    return out


def _check_placeholders(value, path: Path) -> None:
    """A typo in a placeholder would print '{nmae}' on 15,000 letters: refuse it up front."""
    if isinstance(value, dict):
        for v in value.values():
            _check_placeholders(v, path)
    elif isinstance(value, list):
        for v in value:
            _check_placeholders(v, path)
    elif isinstance(value, str):
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as exc:
            raise LayoutError(f"{path}: bad placeholder in {value!r}: {exc}") from None
        unknown = names - PLACEHOLDERS
        if unknown:
            raise LayoutError(f"{path}: unknown placeholder(s) {', '.join(sorted(unknown))} "
                              f"(known: {', '.join(sorted(PLACEHOLDERS))})")


def fill(text: str, values: dict[str, str]) -> str:
    return text.format_map(values) if "{" in text else text
