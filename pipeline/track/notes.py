"""Free text people type into the record (notes on calls, refusal reasons, remarks on lost packages).

It ends up in rows and events that are never encrypted, so it must never carry a My Number: a note in which
someone wrote down the number a caller read out is refused, without echoing it.
"""
from __future__ import annotations

import re
import unicodedata

from ..errors import InputError

MAX_LENGTH = 500   # the note columns' size
# Twelve digits in a row, alone or grouped as on the card (1234 5678 9012, 1234-5678-9012).
_TWELVE_DIGITS = re.compile(r"(?<![0-9])[0-9](?:[ \-‐‑‒–—−－_]?[0-9]){11}(?![0-9])")


def clean(text: str | None, what: str) -> str | None:
    """The note as it will be stored (stripped, None when empty); raises InputError naming `what`."""
    if text is None:
        return None
    text = text.strip()
    if not text:
        return None
    if _TWELVE_DIGITS.search(unicodedata.normalize("NFKC", text)):
        raise InputError(f"{what} contains 12 digits in a row, which may be a My Number; a number must never be "
                         "written into notes: leave it out (nothing was recorded)")
    if len(text) > MAX_LENGTH:
        raise InputError(f"{what} is {len(text)} characters long; at most {MAX_LENGTH} are kept")
    return text
