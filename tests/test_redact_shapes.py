"""Redaction's cheap geometry, no OCR: which lines look like digit rows (glyphs.py) and which way up a page's
lines probably are (orientation.py). Fast; run everywhere (the glyph tests need the fonts the ID-copy
generator uses)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    assert glyphs.digit_run(line_image(text, font), 30) >= 12


@fonts
def test_a_label_before_the_number_does_not_hide_it():
    img = line_image("個人番号 8770 5156 1448", idcards.IPAEX)
    assert glyphs.digit_run(img, 30) >= 12


@fonts
def test_a_bold_noisy_number_still_counts():
    assert glyphs.digit_run(line_image("4659-0437-8790", DEJAVU_BOLD, noise=40.0), 30) >= 9


@fonts
@pytest.mark.parametrize("text", ["住民票の写し", "個人番号・住民票コード", "東京都千代田区千代田", "本人確認書類\u3000貼付台紙",
                                  "2094年7月17日", "令和5年12月3日"])
def test_kanji_lines_and_dates_are_not_digit_rows(text):
    """Complex kanji end a row; simple ones (中, 天, 区) count like digits, which costs a reading, not recall."""
    assert glyphs.digit_run(line_image(text, idcards.IPAEX), 30) < 9


def test_an_empty_line_has_no_digits():
    assert glyphs.digit_run(np.full((40, 200), 255, np.uint8), 30) == 0


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
