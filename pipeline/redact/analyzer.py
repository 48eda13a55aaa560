"""Analysis: find My Numbers on a page image and say where they are (Presidio-style analysers).

An analyser takes a `PageImage` and returns `Finding`s: what was found (never the number itself: a
masked form only), where (quadrilaterals in page pixels, margin included), how sure, and why. Drawing is
somebody else's job (`redactor.py`), so another analyser can be added and tested on its own.

- `OcrNumberAnalyzer`: candidate text lines (OpenCV, `candidates.py`), each straightened and binarised;
  only lines holding a row of digit-like glyphs (`glyphs.py`) are read, with tesseract (eng, psm 7, all
  lines of all pages of a batch in one request). Which way up each text axis is comes from the page memo
  or is learnt while reading (`orientation.py`: lines are read the way their alignment suggests; quarters
  of the page whose readings do not confirm it have a probe read the other way as well).
  12-digit spans (`digits.py`) with a valid check digit are numbers. Doubtful spans (low confidence, or a
  failed check digit) get a second look with the Japanese model around the span: a failed check digit
  counts when a label (個人番号, マイナンバー, 番号) is next to it; a span whose digits are really
  interleaved with kanji (a date such as 2097年11月12日) does not. A line tesseract misread (a failed check
  digit, an unclear reading, a number's worth of glyphs read as nothing but unsure letters: `clarity.py`) is
  read again larger; rows read with doubt go to the digit classifier too (`glyphreader.py`). A span's box is
  grown to the whole glyphs it cuts or left out (word boxes can stop inside a digit).
- `barcodes.BarcodeAnalyzer` (its own module): QR codes and barcodes (zxing-cpp) whose payload holds a
  12-digit My Number.

OCR goes through `OcrRequest`s yielded by `steps(page)` generators: `analyze(page)` runs them for one page,
`analyze_many(pages)` answers the requests of many pages with one tesseract request per kind of request.
"""
from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Generator, Iterable, Protocol, Sequence

import cv2
import numpy as np
from PIL import Image

from .. import number
from . import candidates, clarity, digits, glyphreader, glyphs, orientation, tesseract

log = logging.getLogger(__name__)

ENTITY = "MY_NUMBER"
DIGIT_WHITELIST = "0123456789- "
LABELS = ("個人番号", "マイナンバー", "番号", "ナンバー", "個人番", "人番号")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uf900-\ufaff]")
_LETTERS_AND_DIGITS = re.compile(r"[A-Za-z]\d|\d[A-Za-z]")   # a code such as a passport number (TZ4217715)
SECOND_LOOK_SURE = 70.0   # Japanese-model word confidence above which what it read is text, not noise
# digits, kanji, digits, kanji: a date or an address ("1960年11月21日", "5丁目24番7号"), even with its small kanji
# misread as other kanji; 一 is left out, as the Japanese model reads a hyphen as 一
_DATE_OR_ADDRESS = re.compile(r"\d[\u3400-\u4dff\u4e01-\u9fff]+\d+[\u3400-\u4dff\u4e01-\u9fff]")


@dataclass
class PageImage:
    """A page to analyse: grey pixels (uint8, 2-D) and, when known, the resolution.

    `focus`: regions (x0, y0, x1, y1) to read harder (the proof sets it to what was covered).
    `memo`: OCR results by crop content, shared between a page and its redacted copy so that a crop whose
    pixels did not change is not sent to tesseract twice (OCR is deterministic). Memory only."""
    gray: np.ndarray
    dpi: float | None = None
    focus: tuple[tuple[float, float, float, float], ...] = ()
    memo: dict = field(default_factory=dict, repr=False)
    unreadable: int = 0       # line images tesseract could not read (it crashed on them)
    unproven: int = 0         # rows of digits the reading could not account for (see OcrNumberAnalyzer)

    @classmethod
    def from_pil(cls, image: Image.Image, dpi: float | None = None, memo: dict | None = None) -> "PageImage":
        if dpi is None:
            info = image.info.get("dpi")
            if info and info[0] and 30 <= float(info[0]) <= 2400:
                dpi = float(info[0])
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(image, dtype=np.float64)
            arr = (arr / max(arr.max(), 1) * 255).astype(np.uint8)
        else:
            arr = np.asarray(image.convert("L"))
        return cls(np.ascontiguousarray(arr), dpi, memo=memo if memo is not None else {})

    @property
    def size(self) -> tuple[int, int]:
        return self.gray.shape[1], self.gray.shape[0]


@dataclass(frozen=True)
class Finding:
    """One thing to cover. `quads` are the regions to black out (margin included), in page pixels."""
    entity: str
    source: str                  # "ocr" or "barcode"
    quads: tuple[tuple[tuple[float, float], ...], ...]
    score: float                 # 0..1
    check_digit_ok: bool
    labelled: bool
    reason: str                  # "check digit", "label", "barcode payload"
    masked: str = ""             # e.g. "********9018"; never the number
    # The number itself when its check digit is valid, for the one caller that needs it (the scan intake
    # compares a kit's ID copy with its handwritten form); in memory only, never in a repr or in JSON.
    digits: str = field(default="", repr=False, compare=False)

    def bbox(self) -> tuple[float, float, float, float]:
        pts = [p for q in self.quads for p in q]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        return min(xs), min(ys), max(xs), max(ys)


class Analyzer(Protocol):
    name: str

    def analyze(self, page: PageImage) -> list[Finding]: ...


# ----------------------------------------------------------------------------------------------- OCR

@dataclass
class OcrRequest:
    """Images to OCR with one set of tesseract parameters (see tesseract.recognise)."""
    images: list
    params: dict

    def key(self) -> tuple:
        return tuple(sorted(self.params.items()))


Steps = Generator[OcrRequest, list, list]


def run_steps(gen: Steps):
    """Drive one step generator, answering its OCR requests with tesseract directly."""
    try:
        req = next(gen)
        while True:
            req = gen.send(tesseract.recognise_detailed(req.images, **req.params))
    except StopIteration as stop:
        return stop.value


def run_many(gens: Sequence[Steps]) -> list:
    """Drive many step generators in lockstep: all pending requests with the same parameters are answered
    by one tesseract request (one batch instead of one per page)."""
    results: list = [None] * len(gens)
    pending: dict[int, OcrRequest] = {}

    def advance(i: int, answer) -> None:
        try:
            pending[i] = gens[i].send(answer) if answer is not None else next(gens[i])
        except StopIteration as stop:
            results[i] = stop.value

    for i in range(len(gens)):
        advance(i, None)
    while pending:
        groups: dict[tuple, list[int]] = {}
        for i, req in pending.items():
            groups.setdefault(req.key(), []).append(i)
        current, pending = pending, {}
        for idxs in groups.values():
            images = [img for i in idxs for img in current[i].images]
            words = tesseract.recognise_detailed(images, **current[idxs[0]].params)
            at = 0
            for i in idxs:
                n = len(current[i].images)
                advance(i, words[at:at + n])
                at += n
    return results


def _digest(img: np.ndarray, params) -> bytes:
    h = hashlib.blake2b(img.tobytes(), digest_size=16)
    h.update(repr((img.shape, params)).encode())
    return h.digest()


def _ocr(page: PageImage, images: Sequence[np.ndarray], **params) -> Steps:
    """OCR through the page memo: identical crops are read once (a redacted copy shares its original's
    memo, so only what the boxes changed is read again)."""
    keys = [_digest(img, sorted(params.items())) for img in images]
    todo = [i for i, k in enumerate(keys) if k not in page.memo]
    if todo:
        done = yield OcrRequest([images[i] for i in todo], params)
        for i, words in zip(todo, done):
            if words is None:
                page.unreadable += 1
            page.memo[keys[i]] = words or []
    return [page.memo[k] for k in keys]


def _whole_glyphs(spans: list[digits.Span], image: np.ndarray | None) -> list[digits.Span]:
    """The spans of one reading with their boxes grown to whole glyphs. Tesseract's word boxes can stop inside
    a blurred first or last digit, or leave a digit out altogether (given to junk read next to it): a box is
    grown to every glyph of the span's height that it cuts through, and while it holds fewer than 12 digits'
    worth of glyphs, to the nearest glyph next to it (digits of a group sit closer than a text height apart),
    so that no digit is left showing."""
    if image is None or not spans:
        return spans
    _, _, st, _ = cv2.connectedComponentsWithStats((image < 128).astype(np.uint8), connectivity=8)
    return [_grown_to_glyphs(span, st[1:]) for span in spans]


def _grown_to_glyphs(span: digits.Span, st: np.ndarray) -> digits.Span:
    """One span's box grown over the components `st` (x, y, w, h, area) of its reading's image."""
    l, t, r, b = span.box
    h = max(b - t, 1.0)
    mid = st[:, 1] + st[:, 3] / 2
    glyph = (st[:, 3] >= 0.45 * h) & (st[:, 3] <= 1.4 * h) & (mid > t) & (mid < b)
    x0 = st[glyph, 0].astype(float)
    x1 = x0 + st[glyph, 2]
    if not len(x0):
        return span
    cut_left = (x0 < l) & (x1 > l)
    cut_right = (x0 < r) & (x1 > r)
    new_l = max(float(x0[cut_left].min()), l - h) if cut_left.any() else l
    new_r = min(float(x1[cut_right].max()), r + h) if cut_right.any() else r
    units = np.maximum(1, np.rint((x1 - x0) / (0.65 * h))).astype(int)
    centre = (x0 + x1) / 2
    count = int(units[(centre >= new_l) & (centre < new_r)].sum())
    while count < number.LENGTH:
        before = np.nonzero((x1 <= new_l + 1) & (new_l - x1 < h))[0]
        after = np.nonzero((x0 >= new_r - 1) & (x0 - new_r < h))[0]
        gaps = [(new_l - x1[i], i, "l") for i in before] + [(x0[i] - new_r, i, "r") for i in after]
        if not gaps:
            break
        _, i, side = min(gaps)
        if side == "l":
            new_l = float(x0[i])
        else:
            new_r = float(x1[i])
        count += int(units[i])
    if new_l == l and new_r == r:
        return span
    return replace(span, box=(new_l, t, new_r, b))


def _without_labels(text: str) -> str:
    """The text without the labels in it: a label glued to a number is not text inside the number."""
    for label in LABELS:
        text = text.replace(label, "")
    return text


def _quad_of_box(crop: candidates.LineCrop, box, margin_page: float) -> tuple[tuple[float, float], ...]:
    sx, sy = crop.scale()
    mx, my = margin_page / sx, margin_page / sy
    l, t, r, b = box
    l, t, r, b = l - mx, t - my, r + mx, b + my
    pts = crop.to_page(np.array([[l, t], [r, t], [r, b], [l, b]], dtype=float))
    return tuple((round(float(x), 1), round(float(y), 1)) for x, y in pts)


def _context_crop(crop: candidates.LineCrop, box, *, left: float, up: float, right: float,
                  down: float) -> tuple[candidates.LineCrop, tuple[float, float]]:
    """A crop in the same frame and scale as `crop`, around `box` (crop pixels), extended by multiples of
    the box height; and the offset of its origin in `crop` pixels."""
    l, t, r, b = box
    h = max(b - t, 1.0)
    sx, sy = crop.scale()
    hx = h * sy / sx          # the box height measured along the line, in crop x pixels
    x0, y0 = l - left * hx, t - up * h
    x1, y1 = r + right * hx, b + down * h
    m = crop.matrix.copy()
    m[:, 2] = crop.to_page(np.array([[x0, y0]]))[0]
    return candidates.LineCrop(crop.line, crop.reverse, (int(x1 - x0), int(y1 - y0)), m), (x0, y0)


def _near(line: candidates.Line, focus) -> bool:
    """Does the line's rectangle touch one of the focus boxes?"""
    d = np.array(line.direction)
    n = np.array([-d[1], d[0]])
    c = np.array(line.center)
    corners = np.array([c + sa * d * line.length / 2 + sb * n * line.thickness / 2
                        for sa in (-1, 1) for sb in (-1, 1)])
    x0, y0 = corners.min(0)
    x1, y1 = corners.max(0)
    return any(x0 < bx1 and bx0 < x1 and y0 < by1 and by0 < y1 for bx0, by0, bx1, by1 in focus)


class _Cuts:
    """The straightened crops of a page's lines, cut once each (a line's image decides whether it is read
    and is then what tesseract reads)."""

    def __init__(self, page: PageImage, block: int):
        self.page, self.block = page, block
        self._crops: dict = {}
        self._images: dict = {}

    def crop(self, line: candidates.Line, reverse: bool, height: float) -> candidates.LineCrop:
        if (line, height) not in self._crops:
            self._crops[line, height] = candidates.crops_for(line, target_height=height)
        return self._crops[line, height][1 if reverse else 0]

    def image(self, line: candidates.Line, reverse: bool, height: float) -> np.ndarray:
        key = (line, reverse, height)
        if key not in self._images:
            crop = self.crop(line, reverse, height)
            # remembered by the pixels it is cut from: the proof's redacted copy has the same pixels wherever
            # no box was drawn, and a line there is cut exactly as before (the cut is deterministic)
            content = ("cut", self._source_digest(crop))
            if content not in self.page.memo:
                self.page.memo[content] = candidates.cut(self.page.gray, crop, block=self.block, despeckle=True)
            self._images[key] = self.page.memo[content]
        return self._images[key]

    def _source_digest(self, crop: candidates.LineCrop) -> bytes:
        """A digest of what `candidates.cut` reads for `crop`: the page pixels under it (the bounding box of
        its corners, two pixels more for interpolation), its geometry and the cut's settings."""
        w, h = crop.size
        corners = crop.to_page(np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=float))
        H, W = self.page.gray.shape
        x0, y0 = np.floor(corners.min(0)).astype(int) - 2
        x1, y1 = np.ceil(corners.max(0)).astype(int) + 3
        region = self.page.gray[max(0, y0):min(H, y1), max(0, x0):min(W, x1)]
        digest = hashlib.blake2b(np.ascontiguousarray(region).tobytes(), digest_size=16)
        digest.update(repr((region.shape, max(0, x0), max(0, y0), crop.size, crop.matrix.tobytes(),
                            crop.line.text_height, self.block)).encode())
        return digest.digest()


class OcrNumberAnalyzer:
    """Printed 12-digit numbers, read line by line with tesseract."""

    name = "ocr"

    def __init__(self, *, target_height: float = 32.0, focus_height: float | None = None, retry_height: float = 44.0,
                 min_aspect: float = 7.0, both_axes: bool = False, secondary_axis_ratio: float = 0.5,
                 high_conf: float = 55.0, low_conf: float = 0.0, margin_mm: float = 1.0,
                 margin_height: float = 0.3, max_side: int = 1600, probe_orientation: bool = True,
                 min_digits: int = 9, account_rows: bool = False):
        self.target_height = target_height
        self.focus_height = focus_height
        self.retry_height = retry_height
        self.min_aspect = min_aspect
        self.both_axes = both_axes
        self.secondary_axis_ratio = secondary_axis_ratio
        self.high_conf = high_conf
        self.low_conf = low_conf
        self.margin_mm = margin_mm
        self.margin_height = margin_height
        self.max_side = max_side
        self.probe_orientation = probe_orientation
        # 12 digits, with room for three lost to noise or to broken or touching glyphs
        self.min_digits = min_digits
        # the proof's rule: a long row of digit-like glyphs must be read clearly, not just "not read as a number"
        self.account_rows = account_rows

    # -- steps, separately testable

    def lines(self, page: PageImage) -> list[candidates.Line]:
        # a redacted copy is searched with the threshold of its original, so that lines away from the
        # boxes come out identical (and their crops are found in the memo)
        key = ("line-threshold", self.max_side)
        search = candidates.find_lines(page.gray, max_side=self.max_side, min_aspect=self.min_aspect,
                                       threshold=page.memo.get(key))
        page.memo.setdefault(key, search.threshold)
        scores = search.axis_scores
        primary = max(scores, key=lambda a: scores[a])
        axes = {primary}
        other = "v" if primary == "h" else "h"
        if self.both_axes or scores[other] >= self.secondary_axis_ratio * max(scores[primary], 1):
            axes.add(other)
        return [ln for ln in search.lines if ln.axis in axes]

    def digit_run(self, page: PageImage, cuts: _Cuts, line: candidates.Line) -> int:
        """Digits' worth of the longest row of digit-like glyphs on the line (glyphs.py)."""
        return self.digit_row(page, cuts, line)[0]

    def digit_row(self, page: PageImage, cuts: _Cuts, line: candidates.Line) -> tuple[int, float, float]:
        """The longest row of digit-like glyphs on the line: digits' worth, and where it starts and ends as
        fractions of the line's crop read along the line; remembered by crop content."""
        img = cuts.image(line, False, self.target_height)
        key = ("digit-row", _digest(img, self.target_height))
        if key not in page.memo:
            text_height = min(self.target_height, 3.0 * line.text_height)   # crops_for upscales at most 3x
            along, across = cuts.crop(line, False, self.target_height).scale()
            run, x0, x1 = glyphs.digit_row(img, text_height, squeeze=across / along)
            page.memo[key] = (run, x0 / img.shape[1], x1 / img.shape[1])
        return page.memo[key]

    def read_steps(self, page: PageImage, cuts: _Cuts, lines: Sequence[candidates.Line],
                   rows: Sequence[tuple[candidates.Line, int]]) -> Steps:
        """Read the digit lines (`rows`: line, digit run) the way their axis is upright.

        The way up of an axis comes from the page memo (a redacted copy) or is learnt while reading
        (orientation.py): every line is read the guessed way; quarters of the page that this does not
        confirm have a probe read the other way; if the votes are not for the guess, the lines are read the
        other way too. Readings the wrong way up are dropped."""
        axes = sorted({ln.axis for ln, _ in rows})
        known = {a: page.memo.get(("orientation", a)) or (None if self.probe_orientation else "both") for a in axes}
        first = orientation.guess(lines)
        th = self.target_height

        def ways(decided: str) -> tuple[bool, ...]:
            return (False, True) if decided == "both" else (decided == "r",)

        def heights(line: candidates.Line) -> list[float]:
            if self.focus_height and page.focus and _near(line, page.focus):
                return [th, self.focus_height]
            return [th]

        def wanted(decided_of) -> list[tuple]:
            return [(ln, rev, h) for ln, _ in rows for rev in ways(decided_of(ln.axis)) for h in heights(ln)]

        got = yield from self._read(page, cuts, wanted(lambda a: known[a] or first[a]), {})
        votes: dict[str, list] = {a: [] for a in axes if known[a] is None}
        probes = []
        for a in votes:
            quarters: dict[tuple[int, int], list] = {}
            for ln, run in rows:
                if ln.axis == a:
                    quarters.setdefault(orientation.quarter(ln, page.size), []).append((ln, run))
            for group in quarters.values():
                if any(orientation.self_evident(got[ln, first[a] == "r", th]) for ln, _ in group):
                    votes[a].append(first[a])
                else:
                    probes.append((a, orientation.pick(group)))
        got = yield from self._read(page, cuts, [(ln, first[a] != "r", th) for a, ln in probes], got)
        for a, ln in probes:
            votes[a].append(orientation.probe_vote(got[ln, False, th], got[ln, True, th]))
        for a, said in votes.items():
            known[a] = orientation.verdict(said)
            page.memo[("orientation", a)] = known[a]
        final = wanted(lambda a: known[a])
        got = yield from self._read(page, cuts, [k for k in final if k not in got], got)
        return [clarity.Reading(cuts.crop(*k), got[k], cuts.image(*k)) for k in final]

    def _read(self, page: PageImage, cuts: _Cuts, keys: list[tuple], got: dict) -> Steps:
        keys = list(dict.fromkeys(keys))
        if keys:
            words = yield from _ocr(page, [cuts.image(*k) for k in keys], lang="eng", psm=7, dictionaries=False)
            got.update(zip(keys, words))
        return got

    def steps(self, page: PageImage) -> Steps:
        lines = self.lines(page)
        cuts = _Cuts(page, int(self.target_height))
        rows = [(ln, run) for ln in lines if (run := self.digit_run(page, cuts, ln)) >= self.min_digits]
        if not rows:
            return []
        readings = yield from self.read_steps(page, cuts, lines, rows)
        spans_of = [_whole_glyphs(digits.spans(digits.tokens_from_words(r.words)), r.image) for r in readings]
        # 12 digits whose check digit fails, or a row of digits not read clearly, are most often a digit misread
        # at this crop's scale (a bold 8 read as 6, a 1 as ']'): such a line is read once more at another
        # height, where the digit usually comes out
        retry = [(r.crop.line, r.crop.reverse, self.retry_height) for r, spans in zip(readings, spans_of)
                 if self.retry_height != self.target_height and not any(s.valid for s in spans)
                 and (spans or not clarity.reads_clearly(r.words, self.digit_run(page, cuts, r.crop.line))
                      or self._garbled_row(page, cuts, r))]
        if retry:
            again = yield from self._read(page, cuts, retry, {})
            for k in dict.fromkeys(retry):   # kept only where it found what the first reading missed
                spans = _whole_glyphs(digits.spans(digits.tokens_from_words(again[k])), cuts.image(*k))
                if any(s.valid for s in spans):
                    readings.append(clarity.Reading(cuts.crop(*k), again[k], cuts.image(*k)))
                    spans_of.append(spans)
        if self.account_rows:
            unclear = clarity.unaccounted_lines(rows, readings)
            if unclear:
                unclear = yield from self._dates_and_addresses_out(page, cuts, unclear)
            unclear = [(ln, ways) for ln, ways in unclear if not self._readers_agree(page, cuts, ln, readings)]
            page.unproven += len(unclear)
        # rows tesseract read with doubt and not as a number get the digit classifier as a second reader
        read_by_ocr = {r.crop.line for r, spans in zip(readings, spans_of) if any(s.valid for s in spans)}
        by_classifier = self._read_by_glyph_reader(page, cuts, rows, readings, read_by_ocr)
        # a number read confidently with a valid check digit is sure; anything else 12 digits long gets a
        # second look
        sure: list[tuple[clarity.Reading, digits.Span, str]] = []
        doubtful: list[tuple[clarity.Reading, digits.Span]] = []
        # fewer digit-like glyphs in the row than a number has: some of the digits read were other marks (a
        # date's 年 and 月 read as 4 and 8 can make twelve digits that pass the check); the second look decides
        run_of = dict(rows)
        for reading, spans in zip(readings, spans_of):
            long_row = run_of.get(reading.crop.line, 0) >= clarity.UNPROVEN_MIN_RUN
            for span in spans:
                if span.valid and span.conf >= self.high_conf and long_row:
                    sure.append((reading, span, "check digit"))
                elif span.valid or span.conf >= self.low_conf:
                    doubtful.append((reading, span))
        sure += [(r, s, "check digit") for r, s in by_classifier]
        sure_findings = [self._finding(page, r, s, reason) for r, s, reason in sure]
        # a doubtful reading of something already found (e.g. the same number upside down) needs no look
        doubtful = [(r, s) for r, s in doubtful
                    if not any(overlap(self._finding(page, r, s, ""), f) > 0.5 for f in sure_findings)]
        confirmed = (yield from self._second_look(page, doubtful)) if doubtful else []
        return sure_findings + [self._finding(page, r, s, reason) for r, s, reason in confirmed]

    def analyze(self, page: PageImage) -> list[Finding]:
        return run_steps(self.steps(page))

    def _garbled_row(self, page: PageImage, cuts: _Cuts, reading: clarity.Reading) -> bool:
        """A row of a number's length or more that the reading made nothing of (see `clarity.garbled_over`)."""
        run, start, end = self.digit_row(page, cuts, reading.crop.line)
        return run >= number.LENGTH and clarity.garbled_over(reading, (start, end))

    def _dates_and_addresses_out(self, page: PageImage, cuts: _Cuts, unclear: list) -> Steps:
        """Rows not read clearly ((line, ways it was read) pairs), read again with the Japanese model, larger
        (a small date's kanji come out as letters at the usual height): a date or an address (kanji between
        fewer than ten digits) is text, not a garbled number; the others stay unproven. A label before a number
        does not count: the kanji must sit between its digits."""
        keys = [(ln, rev) for ln, ways in unclear for rev in ways]
        words = yield from _ocr(page, [cuts.image(ln, rev, self.retry_height) for ln, rev in keys],
                                lang="jpn", psm=7)
        text_lines = set()
        for (ln, _), ws in zip(keys, words):
            text = unicodedata.normalize("NFKC", "".join(w.text for w in ws)).replace(" ", "")
            if sum(c.isascii() and c.isdigit() for c in text) < 10 and _DATE_OR_ADDRESS.search(text):
                text_lines.add(ln)
        return [(ln, ways) for ln, ways in unclear if ln not in text_lines]

    def _readers_agree(self, page: PageImage, cuts: _Cuts, line: candidates.Line, readings) -> bool:
        """Whether a row tesseract read without confidence is accounted for by the second reader: the digit
        classifier reads every glyph of it surely, and its digits are exactly the digits of each of tesseract's
        readings of the line, the same way up; what both read (a few digits at least) is not a valid My Number.
        Two readers that share nothing but the image agree on what the row says: it says it (a 13-digit
        corporate number, a phone number read through noise)."""
        upright, turned = self._glyph_reading(page, cuts, line, glyphreader.read_digits)
        mine = [r for r in readings if r.crop.line is line]
        for r in mine:
            said = "".join(t.digits for t in digits.tokens_from_words(r.words))
            seen = turned if r.crop.reverse else upright
            if seen is None or said != seen or len(said) < clarity.UNPROVEN_MIN_DIGITS or number.is_valid_digits(said):
                return False
        return bool(mine)

    def _read_by_glyph_reader(self, page: PageImage, cuts: _Cuts, rows, readings,
                              read_by_ocr: set) -> list[tuple[clarity.Reading, digits.Span]]:
        """Numbers the digit classifier (glyphreader.py) reads on rows of digit-like glyphs that tesseract
        did not read as one (`read_by_ocr`: lines it did): the analysis covers them, and the proof, which
        reads the redacted page, fails a page on which one is still there."""
        # a row tesseract read with confidence is what it says: only rows read with doubt get a second reader
        # (it costs ~10 ms a line). Doubt elsewhere on the line (a kanji label read as letters) does not count
        doubtful = {r.crop.line for r in readings
                    if clarity.unsure_over(r, self.digit_row(page, cuts, r.crop.line)[1:])}
        found = []
        for ln, run in rows:
            if ln in read_by_ocr or ln not in doubtful:
                continue
            spans = self._glyph_reading(page, cuts, ln, glyphreader.read_numbers)
            crop, binary = cuts.crop(ln, False, self.target_height), cuts.image(ln, False, self.target_height)
            found += [(clarity.Reading(crop, [], binary), span) for span in spans]
        return found

    def _glyph_reading(self, page: PageImage, cuts: _Cuts, line: candidates.Line, read):
        """`read` (a glyphreader function) of the line's crop, with the classifier's first network; remembered
        by crop content, so the proof does not read again a line the boxes left as it was."""
        from ..scan.digits import DigitClassifier
        binary = cuts.image(line, False, self.target_height)
        key = (read.__name__, _digest(binary, self.target_height))
        if key not in page.memo:
            grey = candidates.cut(page.gray, cuts.crop(line, False, self.target_height), binarise=False)
            text_height = min(self.target_height, 3.0 * line.text_height)
            page.memo[key] = read(binary, grey, text_height, DigitClassifier.load().first_network())
        return page.memo[key]

    def _finding(self, page: PageImage, reading: clarity.Reading, span: digits.Span, reason: str) -> Finding:
        h_page = (span.box[3] - span.box[1]) * reading.crop.scale()[1]
        dpi = page.dpi or 200.0
        margin = max(self.margin_height * h_page, self.margin_mm * dpi / 25.4, 2.0)
        quad = _quad_of_box(reading.crop, span.box, margin)
        return Finding(ENTITY, "ocr", (quad,), round(span.conf / 100.0, 3), span.valid, reason == "label", reason,
                       span.masked, span.digits if span.valid else "")

    def _second_look(self, page: PageImage, doubtful) -> Steps:
        """Read the neighbourhood of each doubtful span with the Japanese model (one call for all): a label
        next to it confirms a number whose check digit failed; kanji between its digits (a date, an
        address) rule it out."""
        ctx = [_context_crop(r.crop, s.box, left=9, up=3.2, right=1.5, down=0.8) for r, s in doubtful]
        images = [candidates.cut(page.gray, c, polarity_box=(s.box[0] - ox, s.box[1] - oy, s.box[2] - ox,
                                                             s.box[3] - oy), block=int(self.target_height))
                  for (_, s), (c, (ox, oy)) in zip(doubtful, ctx)]
        words = yield from _ocr(page, images, lang="jpn", psm=11)
        out = []
        for (reading, span), (crop, (ox, oy)), ws in zip(doubtful, ctx, words):
            sx0, sy0, sx1, sy1 = span.box[0] - ox, span.box[1] - oy, span.box[2] - ox, span.box[3] - oy
            inside = [w for w in ws if w.left < sx1 and w.right > sx0 and w.top < sy1 and w.bottom > sy0
                      and (min(w.bottom, sy1) - max(w.top, sy0)) > 0.5 * min(w.height, sy1 - sy0)]
            inside_text = unicodedata.normalize("NFKC", "".join(w.text for w in sorted(inside, key=lambda w: w.left)))
            around = unicodedata.normalize("NFKC", "".join(w.text for w in ws if w not in inside))
            labelled = any(label in around or label in inside_text for label in LABELS)
            inside_text = _without_labels(inside_text)
            n_digits = sum(c.isascii() and c.isdigit() for c in inside_text)
            n_cjk = len(_CJK.findall(inside_text))
            sure_text = _without_labels("".join(unicodedata.normalize("NFKC", w.text) for w in inside
                                                if w.conf >= SECOND_LOOK_SURE))
            if span.valid:
                # a valid check digit counts unless the span is really text read as digits: a date or an
                # address (kanji between its digits), or kanji, kana or a code of letters and digits read
                # surely (旅券 TZ4217715: a passport number and its label). Kanji and kana read without
                # confidence are noise: on a harsh copy the Japanese model makes them of specks
                if n_digits < 10 and (_DATE_OR_ADDRESS.search(inside_text.replace(" ", ""))
                                      or len(_CJK.findall(sure_text)) >= 2 or _LETTERS_AND_DIGITS.search(sure_text)):
                    continue
                out.append((reading, span, "check digit"))
            elif labelled and n_digits >= 9 and n_cjk <= 1:
                out.append((reading, span, "label"))
        return out


# ------------------------------------------------------------------------------------------ merging

def overlap(a: Finding, b: Finding) -> float:
    ax0, ay0, ax1, ay1 = a.bbox()
    bx0, by0, bx1, by1 = b.bbox()
    iw, ih = min(ax1, bx1) - max(ax0, bx0), min(ay1, by1) - max(ay0, by0)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / min((ax1 - ax0) * (ay1 - ay0), (bx1 - bx0) * (by1 - by0))


def merge(findings: Sequence[Finding]) -> list[list[Finding]]:
    """Group findings that cover the same thing (e.g. a number read at 0 and at 180 degrees)."""
    groups: list[list[Finding]] = []
    for f in sorted(findings, key=lambda f: -f.score):
        for g in groups:
            if g[0].source == f.source and any(overlap(f, h) > 0.5 for h in g):
                g.append(f)
                break
        else:
            groups.append([f])
    return groups


DEFAULT_ANALYZERS = ("ocr", "barcode")


def default_analyzers(thorough: bool = False) -> list[Analyzer]:
    from .barcodes import BarcodeAnalyzer
    if thorough:
        return [OcrNumberAnalyzer(focus_height=44.0, secondary_axis_ratio=0.25, min_aspect=6.0, min_digits=8,
                                  account_rows=True),
                BarcodeAnalyzer(thorough=True)]
    return [OcrNumberAnalyzer(), BarcodeAnalyzer()]


def analyze_steps(page: PageImage, analyzers: Sequence[Analyzer] | None = None) -> Steps:
    out: list[Finding] = []
    for a in analyzers if analyzers is not None else default_analyzers():
        steps = getattr(a, "steps", None)
        found = (yield from steps(page)) if steps is not None else a.analyze(page)
        log.debug("%s: %d finding(s)", a.name, len(found))
        out += found
    return out


def analyze(page: PageImage, analyzers: Sequence[Analyzer] | None = None) -> list[Finding]:
    """All findings of `analyzers` (default: OCR and barcodes) on one page."""
    return run_steps(analyze_steps(page, analyzers))


def analyze_many(pages: Iterable[PageImage], analyzers: Sequence[Analyzer] | None = None) -> list[list[Finding]]:
    """Findings per page; the OCR of all pages goes to tesseract in shared batches."""
    return run_many([analyze_steps(p, analyzers) for p in pages])
