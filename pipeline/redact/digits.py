"""From OCR words on one straightened line to 12-digit spans (pure functions, no OCR, no images).

A line read with a digit whitelist comes back as words such as "8" (junk from a label), "4529", "2347",
"6928" or "8464-9396-4301". Words close together form a run; a span is a contiguous group of words of a
run holding exactly 12 digits. The first word of a span may give up a junk prefix, and the last word a
junk suffix, when the span is grouped (e.g. 4-4-4) and the trimmed part matches the size of its
neighbour group. Digits inside a single longer word (a 13-digit corporate number) never form a span.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

from .. import number

LENGTH = number.LENGTH


@dataclass(frozen=True)
class Token:
    text: str        # the word as read (digits, hyphens)
    digits: str
    conf: float      # 0..100
    left: float
    top: float
    right: float
    bottom: float
    joined: bool = True    # False: a letter or sign separates it from the token before it in the same word

    @property
    def height(self) -> float:
        return self.bottom - self.top


@dataclass(frozen=True)
class Span:
    """12 digits read on a line. `digits` stays in memory only: never log, print or store it."""
    digits: str
    valid: bool
    conf: float                            # digit-weighted mean word confidence, 0..100
    box: tuple[float, float, float, float]  # left, top, right, bottom in the line image
    words: int

    @property
    def masked(self) -> str:
        return number.mask(self.digits)

    def __repr__(self) -> str:  # never show the digits, even in a traceback or a debugger
        return f"Span(masked={self.masked!r}, valid={self.valid}, conf={self.conf:.0f}, box={self.box})"


# letters that OCR without a whitelist gives for digits, mapped back inside words that are mostly digits
_CONFUSABLE = str.maketrans({"O": "0", "o": "0", "D": "0", "Q": "0", "I": "1", "l": "1", "|": "1", "!": "1",
                             "i": "1", "S": "5", "s": "5", "B": "8", "Z": "2", "z": "2"})
_CONFUSABLE_LETTERS = frozenset(chr(c) for c in _CONFUSABLE if chr(c).isalpha())
_DASHES = str.maketrans({c: "-" for c in "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d~"})
_SPECKS = str.maketrans({c: None for c in "°'\"`´^*¨˚_"})
_GROUP = re.compile(r"[0-9](?:[0-9]|-(?=[0-9]))*")
_GROUPS_OF_FOUR = re.compile(r"(?:[0-9]{4})+")   # a number's groups, or two of them run together


def clean_word(text: str) -> str:
    """NFKC, dashes unified, and in a word that is mostly digits: specks read as marks dropped ('1234°5678':
    a noise dot between two digits is not a separator) and confusable letters mapped to digits (at most two
    changes: 'l234-5678-9O18' is a number, 'SOIL' is not). Real separators ('.', '/', ',') stay."""
    text = unicodedata.normalize("NFKC", text).translate(_DASHES)
    alnum = [c for c in text if c.isalnum()]
    digits = sum(c.isascii() and c.isdigit() for c in text)
    if alnum and digits >= 0.6 * len(alnum):
        text = text.translate(_SPECKS)
        mapped = text.translate(_CONFUSABLE)
        if sum(a != b for a, b in zip(text, mapped)) <= 2:
            text = mapped
    return text


def looks_like_digits(text: str) -> bool:
    """Whether at least half the letters of a word are letters OCR gives for digits ('SOTE' for 5016)."""
    letters = [c for c in unicodedata.normalize("NFKC", text) if c.isalpha()]
    return bool(letters) and 2 * sum(c in _CONFUSABLE_LETTERS for c in letters) >= len(letters)


def tokens_from_words(words: Iterable) -> list[Token]:
    """Words (anything with text/conf/left/top/width/height) to digit tokens, left to right. A word is split
    at anything that is neither a digit nor a dash between digits ("2097年11月12日" -> 2097, 11, 12, and
    an MRZ line at its letters); each part gets its share of the word's box, and parts split by a letter
    never join into one number (a printed number has only spaces or dashes between its groups). One
    exception: groups of four digits with one ',' or '.' between them ('4916,3047', '3654.74331759') are a
    number's groups with a noise speck read in a space; a date (2030.11.12) or an amount (1,234,567) never
    has a multiple of four digits on both sides."""
    out = []
    for w in words:
        text = clean_word(w.text)
        n = max(len(text), 1)
        before = None
        for m in _GROUP.finditer(text):
            part = m.group(0)
            digits = part.replace("-", "")
            left = w.left + w.width * m.start() / n
            right = w.left + w.width * m.end() / n
            joined = before is None or (text[before.end():m.start()] in (",", ".")
                                        and _GROUPS_OF_FOUR.fullmatch(before.group(0)) is not None
                                        and _GROUPS_OF_FOUR.fullmatch(part) is not None)
            out.append(Token(part, digits, float(w.conf), float(left), float(w.top), float(right),
                             float(w.top + w.height), joined=joined))
            before = m
    out.sort(key=lambda t: t.left)
    return out


def runs(tokens: Sequence[Token], gap_factor: float = 2.6) -> list[list[Token]]:
    """Split tokens where the gap is wider than `gap_factor` text heights."""
    if not tokens:
        return []
    heights = sorted(t.height for t in tokens)
    h = max(heights[len(heights) // 2], 1.0)
    out = [[tokens[0]]]
    for prev, tok in zip(tokens, tokens[1:]):
        if not tok.joined or tok.left - prev.right > gap_factor * h:
            out.append([tok])
        else:
            out[-1].append(tok)
    return out


def _part(tok: Token, keep: int, suffix: bool) -> Token:
    """The last (suffix) or first `keep` digits of a token, its box cut in proportion to characters."""
    text = tok.text
    count, idx = 0, len(text) if suffix else 0
    chars = range(len(text) - 1, -1, -1) if suffix else range(len(text))
    for i in chars:
        if text[i].isdigit():
            count += 1
            if count == keep:
                idx = i
                break
    width = tok.right - tok.left
    n = max(len(text), 1)
    if suffix:
        left = tok.left + width * idx / n
        return Token(text[idx:], tok.digits[-keep:], tok.conf, left, tok.top, tok.right, tok.bottom)
    right = tok.left + width * (idx + 1) / n
    return Token(text[:idx + 1], tok.digits[:keep], tok.conf, tok.left, tok.top, right, tok.bottom)


def _span(parts: Sequence[Token]) -> Span:
    digits = "".join(p.digits for p in parts)
    weight = sum(len(p.digits) for p in parts)
    conf = sum(p.conf * len(p.digits) for p in parts) / max(weight, 1)
    box = (min(p.left for p in parts), min(p.top for p in parts),
           max(p.right for p in parts), max(p.bottom for p in parts))
    return Span(digits, number.is_valid_digits(digits), conf, box, len(parts))


def spans(tokens: Sequence[Token], gap_factor: float = 2.6) -> list[Span]:
    """Every 12-digit span of the runs of a line."""
    found: list[Span] = []
    for run in runs(tokens, gap_factor):
        n = len(run)
        for i in range(n):
            total = 0
            for j in range(i, n):
                total += len(run[j].digits)
                if total == LENGTH:
                    found.append(_span(run[i:j + 1]))
                if total >= LENGTH:
                    break
        # grouped numbers with junk glued to the first or last group ("8" + "4529" read as "84529")
        for i in range(n - 1):
            inner = 0
            for j in range(i + 1, n):
                inner += len(run[j].digits)
                if inner >= LENGTH:
                    break
                need = LENGTH - inner
                first = run[i]
                if len(first.digits) > need and need == len(run[i + 1].digits):
                    found.append(_span([_part(first, need, suffix=True), *run[i + 1:j + 1]]))
        for j in range(1, n):
            inner = 0
            for i in range(j - 1, -1, -1):
                inner += len(run[i].digits)
                if inner >= LENGTH:
                    break
                need = LENGTH - inner
                last = run[j]
                if len(last.digits) > need and need == len(run[j - 1].digits):
                    found.append(_span([*run[i:j], _part(last, need, suffix=False)]))
    return found


def digit_runs(text: str) -> list[str]:
    """Maximal digit runs of a text (separators between digit groups allowed), normalised to ASCII."""
    folded = unicodedata.normalize("NFKC", text)
    out, cur, pending_sep = [], "", False
    for c in folded:
        if c.isascii() and c.isdigit():
            cur += c
            pending_sep = False
        elif cur and not pending_sep and c in " -\u2010\u2011\u2012\u2013\u2014\u2212_.":
            pending_sep = True
        else:
            if cur:
                out.append(cur)
            cur, pending_sep = "", False
    if cur:
        out.append(cur)
    return out
