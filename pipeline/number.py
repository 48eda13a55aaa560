"""The My Number (個人番号) check digit, and parsing numbers as people type them.

Pure functions only. See DOMAIN.md: P_n is the n-th of the first 11 digits counted from the right,
Q_n = n + 1 for n <= 6 and n - 5 for n >= 7, r = sum(P_n * Q_n) mod 11, check = 0 if r <= 1 else 11 - r.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

LENGTH = 12
# Separators people put between digit groups ("1234 5678 9018", "1234-5678-9018"), incl. full-width ones.
_SEPARATORS = frozenset(" -\u3000\u2010\u2011\u2012\u2013\u2014\u2212\uff0d_")
_WEIGHTS = tuple((n + 1) if n <= 6 else (n - 5) for n in range(1, 12))  # Q_1 .. Q_11


def check_digit(first_eleven: str) -> int:
    """Check digit for an 11-digit base (ASCII digits)."""
    if len(first_eleven) != 11 or not first_eleven.isascii() or not first_eleven.isdigit():
        raise ValueError("the base of a My Number is exactly 11 ASCII digits")
    remainder = remainder_of(first_eleven)
    return 0 if remainder <= 1 else 11 - remainder


def remainder_of(first_eleven: str) -> int:
    """r = sum(P_n * Q_n) mod 11, exposed because r in {0, 1} is the ambiguous branch."""
    digits_from_right = [int(c) for c in reversed(first_eleven)]
    return sum(p * q for p, q in zip(digits_from_right, _WEIGHTS)) % 11


def is_valid_digits(digits: str) -> bool:
    """True for exactly 12 ASCII digits whose last digit is the check digit of the first 11."""
    return (len(digits) == LENGTH and digits.isascii() and digits.isdigit()
            and check_digit(digits[:11]) == int(digits[11]))


@dataclass(frozen=True)
class Verdict:
    valid: bool
    reason: str          # "ok", or why not: "length", "characters", "check digit"
    detail: str          # a sentence for people, never containing the number
    masked: str          # all but the last 4 digits hidden
    digits: str | None   # the normalised 12 digits when they could be extracted (keep out of output!)


def normalise(text: str) -> str:
    """Full-width to ASCII (NFKC), separators removed. Raises nothing; validation says what is wrong."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(c for c in folded if c not in _SEPARATORS)


def mask(text: str) -> str:
    """Everything except the last four characters replaced with '*' (the shape a person can recognise)."""
    cleaned = normalise(text)
    if len(cleaned) <= 4:
        return "*" * len(cleaned)
    return "*" * (len(cleaned) - 4) + cleaned[-4:]


def validate(text: str) -> Verdict:
    cleaned = normalise(text)
    masked = mask(text)
    bad = sorted({c for c in cleaned if not (c.isascii() and c.isdigit())})
    if bad:
        return Verdict(False, "characters", f"contains {len(bad)} kind(s) of character that are not digits",
                       masked, None)
    if len(cleaned) != LENGTH:
        return Verdict(False, "length", f"has {len(cleaned)} digits, a My Number has {LENGTH}", masked, None)
    if not is_valid_digits(cleaned):
        return Verdict(False, "check digit", "the check digit (last digit) does not match the first 11",
                       masked, cleaned)
    return Verdict(True, "ok", "valid", masked, cleaned)
