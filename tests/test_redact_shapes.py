"""Redaction's cheap geometry, no OCR: which lines look like digit rows (glyphs.py) and which way up a page's
lines probably are (orientation.py). Fast; run everywhere (the glyph tests need the fonts the ID-copy
generator uses)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from pipeline.redact import candidates, glyphs, orientation
from tests import idcards

DEJAVU, DEJAVU_BOLD = idcards._DEJAVU
fonts = pytest.mark.skipif(not (Path(DEJAVU).exists() and Path(idcards.IPAEX).exists()),
                           reason="DejaVu and IPAex fonts are not installed")


def line_image(text: str, font_path: str, size: int = 40, noise: float = 0.0) -> np.ndarray:
    """A binarised line as the analyser cuts it: dark text on white, text about 30 px high."""
    font = ImageFont.truetype(font_path, size)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (right - left + 40, bottom - top + 30), 255)
    ImageDraw.Draw(img).text((20 - left, 15 - top), text, font=font, fill=0)
    arr = np.asarray(img).astype(np.float32)
    if noise:
        arr += np.random.default_rng(3).normal(0, noise, arr.shape)
    return np.where(arr < 128, 0, 255).astype(np.uint8)


@fonts
@pytest.mark.parametrize("text", ["1234 5678 9018", "1234-5678-9018", "123456789018",
                                  "１２３４\u3000５６７８\u3000９０１８"])
def test_printed_numbers_are_digit_rows(text):
    font = idcards.IPAEX if "\u3000" in text else DEJAVU
    assert glyphs.digit_row(line_image(text, font), 30)[0] >= 12


@fonts
def test_a_label_before_the_number_does_not_hide_it():
    img = line_image("個人番号 8770 5156 1448", idcards.IPAEX)
    assert glyphs.digit_row(img, 30)[0] >= 12


@fonts
def test_a_bold_noisy_number_still_counts():
    assert glyphs.digit_row(line_image("4659-0437-8790", DEJAVU_BOLD, noise=40.0), 30)[0] >= 9


@fonts
@pytest.mark.parametrize("text", ["住民票の写し", "個人番号・住民票コード", "東京都千代田区千代田", "本人確認書類\u3000貼付台紙",
                                  "2094年7月17日", "令和5年12月3日", "2024年12月31日", "123456番789018"])
def test_kanji_lines_and_dates_are_not_digit_rows(text):
    """Complex kanji end a row; simple ones (中, 天, 区) count like digits, which costs a reading, not recall.
    A complex kanji between digits (月 in a date) is no blotted digit: too wide for its height."""
    assert glyphs.digit_row(line_image(text, idcards.IPAEX), 30)[0] < 9


def _glyph_boxes(img: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Digit-high glyphs of a `line_image`, left to right (hyphens left out)."""
    x, y, w, h, _, _ = glyphs._glyphs(img, 30)
    return [(int(x[i]), int(y[i]), int(w[i]), int(h[i])) for i in np.argsort(x, kind="stable") if h[i] >= 20]


def blotted(img: np.ndarray, *which: int, taller: bool = False) -> np.ndarray:
    """The line with glyphs `which` (indices into _glyph_boxes) crossed by two thin streaks inside their boxes, as
    noise makes a digit complex on a harsh copy (more strokes to a column, more holes) without changing its size.
    `taller`: a stroke up from the glyph as well, so that it stands a third above the row."""
    out = img.copy()
    boxes = _glyph_boxes(img)
    for k in which:
        x, y, w, h = boxes[k]
        for f in (0.3, 0.62):
            out[y + int(f * h): y + int(f * h) + 2, x:x + w] = 0
        if taller:
            out[y - int(0.4 * h): y + int(0.3 * h), x + w // 2 - 1: x + w // 2 + 1] = 0
    return out


def complex_glyphs(img: np.ndarray) -> int:
    x, y, w, h, _, simple = glyphs._glyphs(img, 30)
    return int(((h >= 20) & ~simple).sum())


@fonts
@pytest.mark.parametrize("text, font, which", [
    ("1234 5678 9018", DEJAVU, (4,)),
    ("1234-5678-9018", DEJAVU, (4, 9)),
    ("877051561448", DEJAVU, (5, 8)),
    ("１２３４\u3000５６７８\u3000９０１８", idcards.IPAEX, (4,)),
    ("１２３４\u3000５６７８\u3000９０１８", idcards.IPAEX, (4, 9)),
])
def test_one_or_two_blotted_digits_stay_in_the_row(text, font, which):
    """Harsh copy (residence certificate, full-width number): noise made a digit or two complex, which used to
    end the row - 12 digits counted as 7 were never read, and the proof passed with the number visible."""
    img = blotted(line_image(text, font), *which)
    assert complex_glyphs(img) == len(which)
    assert glyphs.digit_row(img, 30)[0] >= 12


@fonts
@pytest.mark.parametrize("text, which, taller, run", [
    ("12345678" + " " * 8 + "9018", (4,), False, 8),    # a wide gap after the row: 8 digits with the blot, then 4
    ("1234 5678 9018", (4,), True, 7),                   # a complex glyph standing above the row: 4, then 7
    ("1234 5678 9018", (4, 5, 8), False, 8),             # a third blot: 8 digits with two blots, then 3
])
def test_a_row_with_blots_still_ends(text, which, taller, run):
    img = blotted(line_image(text, DEJAVU), *which, taller=taller)
    assert complex_glyphs(img) == len(which)
    assert glyphs.digit_row(img, 30)[0] == run


def squeezed(img: np.ndarray, squeeze: float) -> np.ndarray:
    """The line narrowed as candidates.crops_for narrows a widely spaced line, binarised again."""
    out = cv2.resize(img, (int(img.shape[1] * squeeze), img.shape[0]), interpolation=cv2.INTER_AREA)
    return np.where(out < 128, 0, 255).astype(np.uint8)


@fonts
@pytest.mark.parametrize("squeeze", [0.6, 0.7])
def test_in_a_squeezed_crop_kanji_are_not_blotted_digits(squeeze):
    """Narrowed, complex kanji are as narrow as digits in the crop; on the page they are about square."""
    address = squeezed(line_image("東京都千代田区千代田1丁目1番", idcards.IPAEX), squeeze)
    assert glyphs.digit_row(address, 30, squeeze=squeeze)[0] < 9
    number = squeezed(blotted(line_image("１２３４\u3000５６７８\u3000９０１８", idcards.IPAEX), 4, 9), squeeze)
    assert glyphs.digit_row(number, 30, squeeze=squeeze)[0] >= 12


def test_an_empty_line_has_no_digits():
    assert glyphs.digit_row(np.full((40, 200), 255, np.uint8), 30)[0] == 0


def test_component_stats_fall_back_to_32_bit_labels():
    dots = np.zeros((900, 900), np.uint8)
    dots[::3, ::3] = 255                       # 90,000 components: more than 16-bit labels can count
    assert len(candidates.component_stats(dots)) == 90_000


# ---------------------------------------------------------------------------------------- orientation

def _line(x0: float, x1: float, y: float, axis: str = "h") -> candidates.Line:
    c = ((x0 + x1) / 2, y) if axis == "h" else (y, (x0 + x1) / 2)
    d = (1.0, 0.0) if axis == "h" else (0.0, 1.0)
    return candidates.Line(axis, c, d, x1 - x0, 30.0, 28.0, 10, 8)


def test_guess_follows_the_aligned_end_of_the_lines():
    left_aligned = [_line(100, 100 + w, 50 * i) for i, w in enumerate((400, 250, 600, 320))]
    assert orientation.guess(left_aligned) == {"h": "f"}
    right_aligned = [_line(900 - w, 900, 50 * i, "v") for i, w in enumerate((400, 250, 600, 320))]
    assert orientation.guess(right_aligned) == {"v": "r"}


def test_the_probe_of_a_quarter_is_a_full_short_digit_row():
    rows = [(_line(100, 700, 100), 13), (_line(100, 450, 200), 12), (_line(100, 400, 300), 10)]
    assert orientation.pick(rows) == rows[1][0]
    assert orientation.quarter(rows[0][0], (1654, 2339)) == (0, 0)
    assert orientation.quarter(_line(1100, 1500, 1900), (1654, 2339)) == (1, 1)


@dataclass
class W:
    text: str
    conf: float = 96.0


def test_only_upright_text_is_self_evident():
    assert orientation.self_evident([W("8770"), W("5156"), W("1448")])
    assert not orientation.self_evident([W("8770"), W("5156"), W("1448", conf=60)])   # too few sure digits
    assert not orientation.self_evident([W("1086"), W("9610"), W("8196")])     # reads the same upside down
    assert not orientation.self_evident([W("2O23-4S67-89l2")])                 # letters are not digits here


def test_probe_votes_need_sure_digits_one_way_only():
    assert orientation.probe_vote([W("8770 5156 1448")], [W("8hhL")]) == "f"
    assert orientation.probe_vote([W("...")], [W("0961-4230-1152")]) == "r"
    assert orientation.probe_vote([W("4529")], []) is None                   # too little to go on
    assert orientation.probe_vote([W("877051561448")], [W("8441508")]) is None  # upside-down 0, 1, 8 read well too


def test_verdict_of_the_votes():
    assert orientation.verdict(["f", None, "f"]) == "f"
    assert orientation.verdict(["r"]) == "r"
    assert orientation.verdict(["f", "r"]) == "both"     # copies pasted at different angles
    assert orientation.verdict([None, None]) == "both"
    assert orientation.verdict([]) == "both"


def test_crop_percentiles_match_numpy():
    rng = np.random.default_rng(5)
    for shape in [(1, 1), (3, 7), (40, 300), (61, 540)]:
        img = rng.integers(0, 256, shape, dtype=np.uint8)
        img[: shape[0] // 2] = 255
        assert candidates._percentiles_u8(img, (1, 99)) == list(np.percentile(img, (1, 99)))
