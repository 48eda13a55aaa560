"""Redaction units that need no OCR: digit spans, payloads, TSV parsing, the tesseract wrapper's errors,
drawing, and the flattened-PDF check. Fast; run everywhere."""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.errors import ExternalProgramError, InputError
from pipeline.redact import digits, documents, tesseract
from pipeline.redact.analyzer import ENTITY, Finding, merge
from pipeline.redact.barcodes import payload_numbers
from pipeline.redact.redactor import ImageRedactor, fresh

VALID = "123456789018"        # the worked example of DOMAIN.md, not a person's number
INVALID = "123456789010"


@dataclass
class W:                       # a word as tesseract gives it
    text: str
    left: int
    top: int = 10
    width: int = 0
    height: int = 30
    conf: float = 95.0

    def __post_init__(self):
        if not self.width:
            self.width = 20 * len(self.text)

    @property
    def right(self) -> int:
        return self.left + self.width


def words(*texts, gap=12, conf=95.0):
    out, x = [], 0
    for t in texts:
        w = W(t, x, conf=conf)
        out.append(w)
        x += w.width + gap
    return out


def spans_of(*texts, gap=12):
    return digits.spans(digits.tokens_from_words(words(*texts, gap=gap)))


@pytest.mark.parametrize("texts", [("1234", "5678", "9018"), ("1234-5678-9018",), ("123456789018",),
                                   ("1234", "5678-9018")])
def test_groupings_make_one_valid_span(texts):
    found = spans_of(*texts)
    assert [s.valid for s in found] == [True]
    assert found[0].masked == "********9018"


def test_junk_glued_to_the_first_group_is_trimmed():
    found = spans_of("84529", "2347", "6928")    # "8" is the label read as a digit
    assert any(s.digits == "452923476928" for s in found)
    junk = [s for s in found if s.digits == "452923476928"][0]
    assert junk.box[0] > 0                           # the box starts after the junk digit


def test_longer_and_shorter_runs_are_not_numbers():
    assert spans_of("1234567890123") == []          # 13-digit corporate number
    assert spans_of("03-1234-5678") == []            # phone
    assert spans_of("123-4567") == []                # postal code
    assert spans_of("19900101") == []                # date
    assert spans_of("TK1234567") == []               # passport number


def test_words_split_at_kanji_and_far_gaps():
    toks = digits.tokens_from_words(words("2097年11月12日"))
    assert [t.digits for t in toks] == ["2097", "11", "12"]
    assert spans_of("1234X5678Y9018") == []          # letters between groups: not one number (MRZ lines)
    assert spans_of("1234", "5678", "9018", gap=400) == []   # three far-apart groups are not one number


def test_a_speck_between_groups_of_four_does_not_split_a_number():
    assert [s.valid for s in spans_of("1234", "5678,9018")] == [True]
    assert [s.valid for s in spans_of("1234.5678", "9018")] == [True]
    assert [s.valid for s in spans_of("1234.56789018")] == [True]      # two groups run together
    assert spans_of("2030.11.12", "1234") == []        # a date's groups are not a number's
    assert spans_of("123,456,789,018") == []            # nor an amount's
    assert spans_of("1234", "5678/9018") == []          # a slash is a real separator


def test_confusable_letters_in_mostly_digit_words():
    assert digits.clean_word("l234-5678-9O18") == "1234-5678-9018"
    assert digits.clean_word("SOIL") == "SOIL"
    assert digits.clean_word("１２３４") == "1234"


def test_span_repr_hides_the_digits():
    s = spans_of("1234", "5678", "9018")[0]
    assert VALID not in repr(s) and "5678" not in repr(s)


def test_payload_numbers():
    assert payload_numbers(f"個人番号:{VALID} 氏名:山田") == [(True, True)]
    assert payload_numbers(f"MN={VALID};V=1") == [(True, True)]
    assert payload_numbers(f"{INVALID}") == [(False, False)]
    assert payload_numbers("https://example.com/1234567890123") == []
    assert payload_numbers("") == []


def test_parse_tsv_groups_by_page():
    tsv = ("level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
           "1\t1\t0\t0\t0\t0\t0\t0\t100\t30\t-1\t\n"
           "5\t1\t1\t1\t1\t1\t3\t4\t50\t20\t96.5\t1234\n"
           "5\t2\t1\t1\t1\t1\t5\t6\t40\t20\t-1\t \n"
           "5\t2\t1\t1\t1\t2\t9\t6\t40\t20\t88\t5678\n")
    pages = tesseract.parse_tsv(tsv, 2)
    assert [[w.text for w in p] for p in pages] == [["1234"], ["5678"]]
    assert pages[0][0].right == 53 and pages[1][0].conf == 88


def test_sanitised_stderr_never_echoes_digit_runs():
    msg = tesseract._sanitise(f"Error: bad image {VALID}\nPage 1\n".encode())
    assert VALID not in msg and "9018" not in msg and "Page 1" not in msg


def test_tesseract_runs_single_threaded():
    assert tesseract._env()["OMP_THREAD_LIMIT"] == "1"


def _fake_tesseract(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-tesseract"
    script.write_text("#!/bin/sh\n"
                      'case "$1" in --version) echo "tesseract 5.3.0"; exit 0;; '
                      '--list-langs) printf "List of available languages (2):\\neng\\njpn\\n"; exit 0;; esac\n'
                      "cat > /dev/null\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_missing_tesseract_is_exit_69(monkeypatch, tmp_path):
    monkeypatch.setenv(tesseract.PROGRAM_ENV, str(tmp_path / "no-such-tesseract"))
    with pytest.raises(ExternalProgramError) as err:
        tesseract.probe()
    assert err.value.exit_code == 69 and "tesseract" in err.value.message and "install" in err.value.message


def test_failing_tesseract_is_a_typed_error_without_numbers(monkeypatch, tmp_path):
    fake = _fake_tesseract(tmp_path, f'echo "cannot read {VALID}" >&2; exit 3')
    monkeypatch.setenv(tesseract.PROGRAM_ENV, str(fake))
    with pytest.raises(ExternalProgramError) as err:
        tesseract.recognise([np.full((20, 40), 255, np.uint8)])
    assert err.value.exit_code == 69 and "exit 3" in err.value.message and VALID not in err.value.message


def test_a_crashing_line_is_isolated_not_fatal(monkeypatch, tmp_path):
    fake = _fake_tesseract(tmp_path, "kill -FPE $$")
    monkeypatch.setenv(tesseract.PROGRAM_ENV, str(fake))
    out = tesseract.recognise_detailed([np.full((20, 40), 255, np.uint8)] * 3)
    assert out == [None, None, None]
    assert tesseract.recognise([np.full((20, 40), 255, np.uint8)]) == [[]]


def test_tesseract_timeout(monkeypatch, tmp_path):
    fake = _fake_tesseract(tmp_path, "sleep 5")
    monkeypatch.setenv(tesseract.PROGRAM_ENV, str(fake))
    with pytest.raises(ExternalProgramError) as err:
        tesseract.recognise([np.full((20, 40), 255, np.uint8)], timeout=0.5)
    assert "timed out" in err.value.message


def _finding(quad, source="ocr"):
    return Finding(ENTITY, source, (tuple(quad),), 0.9, True, False, "check digit", "********9018")


def test_redactor_draws_solid_boxes_on_a_fresh_raster():
    img = Image.new("RGB", (200, 100), (250, 250, 250))
    img.info["exif"] = b"secret"
    out, boxes = ImageRedactor().redact(img, [_finding([(10, 10), (60, 10), (60, 40), (10, 40)])])
    arr = np.asarray(out)
    assert out.size == img.size and out.info == {}
    assert (arr[12:38, 12:58] == 0).all() and (arr[60:, :] == 250).all()
    assert [b.kind for b in boxes] == ["number"] and boxes[0].bbox() == (10, 10, 60, 40)


def test_fresh_keeps_grey_grey():
    assert fresh(Image.new("1", (10, 10), 1)).mode == "L"
    assert fresh(Image.new("P", (10, 10))).mode == "RGB"


def test_merge_counts_one_number_read_twice():
    a = _finding([(0, 0), (100, 0), (100, 20), (0, 20)])
    b = _finding([(2, 1), (101, 1), (101, 21), (2, 21)])
    c = _finding([(0, 100), (100, 100), (100, 120), (0, 120)])
    assert len(merge([a, b, c])) == 2


def test_verify_pdf_rejects_a_text_layer(tmp_path):
    import pikepdf
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(200, 100))
    page = pdf.pages[0]
    page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary())
    pdf.save(tmp_path / "t.pdf")
    with pytest.raises(InputError):
        documents.verify_pdf(tmp_path / "t.pdf")


def test_write_pdf_is_flat_and_keeps_page_size(tmp_path):
    img = Image.new("L", (300, 200), 255)
    jpeg = documents.encoder_for("PDF")(img)
    documents.write_pdf(tmp_path / "o.pdf", [(img, jpeg, (216.0, 144.0))])
    documents.verify_pdf(tmp_path / "o.pdf", 1)
    import pikepdf
    with pikepdf.open(tmp_path / "o.pdf") as pdf:
        assert [float(v) for v in pdf.pages[0].MediaBox] == [0, 0, 216, 144]
        assert "/Info" not in pdf.trailer and "/Metadata" not in pdf.Root
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def test_unsupported_input_type():
    with pytest.raises(InputError):
        documents.kind_of(Path("notes.docx"))


def test_run_many_shares_one_tesseract_call_per_step(monkeypatch):
    from pipeline.redact import analyzer as an
    calls = []

    def fake(images, **params):
        calls.append((len(images), params["lang"]))
        return [[W(str(len(images)), 0)] for _ in images]

    monkeypatch.setattr(tesseract, "recognise_detailed", fake)

    def steps(n):
        first = yield an.OcrRequest([np.zeros((2, 2), np.uint8)] * n, {"lang": "eng"})
        second = yield an.OcrRequest([np.zeros((2, 2), np.uint8)], {"lang": "jpn"})
        return len(first) + len(second)

    assert an.run_many([steps(1), steps(2), steps(3)]) == [2, 3, 4]
    assert calls == [(6, "eng"), (3, "jpn")]


# ------------------------------------------------------------------------------ the tesseract worker

FAKE_WORKER = r'''
import json, os, signal, struct, sys, time
rin, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = rin.read(4)
    if len(head) < 4:
        sys.exit(0)
    req = json.loads(rin.read(struct.unpack("<I", head)[0]))
    images = [rin.read(w * h) for w, h in req["sizes"]]
    for (w, h), px in zip(req["sizes"], images):
        mode = px[0]
        if mode == 13:
            os.kill(os.getpid(), signal.SIGFPE)       # tesseract dying on one particular line
        if mode == 14:
            time.sleep(30)
        if mode == 15:
            sys.exit(3)                               # broken set-up: not a crash
        tsv = f"5\t1\t1\t1\t1\t1\t0\t0\t{w}\t{h}\t95\t{w}x{h}\n".encode()
        out.write(struct.pack("<II", 0, len(tsv)) + tsv)
        out.flush()
'''


@pytest.fixture
def fake_worker(monkeypatch, tmp_path):
    from pipeline.redact import tessworker
    script = tmp_path / "fake_worker.py"
    script.write_text(FAKE_WORKER)
    tessworker._discard()
    monkeypatch.setattr(tessworker, "SCRIPT", script)
    monkeypatch.setattr(tessworker, "library", lambda: "libfake.so")
    yield tessworker
    tessworker._discard()


def _img(value, w=40, h=20):
    return np.full((h, w), value, np.uint8)


def test_worker_keeps_crash_isolation(fake_worker):
    """The worker dies on the second image: the first is kept, the second is retried once rescaled (and
    dies again: None), a new worker reads the third."""
    out = fake_worker.recognise([_img(255), _img(13), _img(255, 60)], {"lang": "eng"}, 10, dict(os.environ))
    assert out[0] == (0, b"5\t1\t1\t1\t1\t1\t0\t0\t40\t20\t95\t40x20\n")
    assert out[1] is None
    assert out[2][1].endswith(b"60x20\n")
    assert fake_worker._worker.usable()


def test_worker_timeout_is_a_typed_error(fake_worker):
    with pytest.raises(ExternalProgramError) as err:
        fake_worker.recognise([_img(14)], {"lang": "eng"}, 0.5, dict(os.environ))
    assert "timed out" in err.value.message
    assert fake_worker._worker is None


def test_a_worker_that_cannot_run_says_so(fake_worker):
    with pytest.raises(fake_worker.Unavailable):
        fake_worker.recognise([_img(15)], {"lang": "eng"}, 10, dict(os.environ))


def test_a_forked_child_starts_its_own_worker(fake_worker):
    fake_worker.recognise([_img(255)], {"lang": "eng"}, 10, dict(os.environ))
    parent = fake_worker._worker.proc.pid
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                  # the child: a fresh worker, the parent's left alone
        try:
            fake_worker.recognise([_img(255)], {"lang": "eng"}, 10, dict(os.environ))
            os.write(w, str(fake_worker._worker.proc.pid).encode())
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    child = int(os.read(r, 32))
    assert child != parent and fake_worker._worker.proc.pid == parent and fake_worker._worker.usable()


def test_scaled_tsv_boxes():
    from pipeline.redact.tessworker import scale_tsv
    tsv = b"level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n" \
          b"5\t1\t1\t1\t1\t1\t9\t18\t90\t27\t96\t1234\n"
    assert scale_tsv(tsv, 1 / 0.9).splitlines()[1] == b"5\t1\t1\t1\t1\t1\t10\t20\t100\t30\t96\t1234"


# ------------------------------------------------------------- harsh copies: specks, faint lines, the proof

def test_noise_marks_inside_a_digit_word_are_dropped_not_separators():
    assert [s.valid for s in spans_of("1234", "5678°9018")] == [True]
    assert [s.valid for s in spans_of("1234", "5678_9018")] == [True]
    assert digits.clean_word("2026.11.29") == "2026.11.29"       # real separators stay
    assert spans_of("2097年11月12日") == []


def test_despeckle_removes_dots_and_cut_rules_keeps_digits_and_hyphens():
    import cv2
    from pipeline.redact.candidates import _despeckle
    img = np.full((48, 300), 255, np.uint8)
    cv2.putText(img, "1234-5678", (10, 36), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 0, 2)
    clean = img.copy()
    img[5:7, 60:62] = 0                       # noise dots
    img[40:42, 150:153] = 0
    img[2:46, 0:3] = 0                        # a table rule cut by the crop's end
    out = _despeckle(img, 28.0)
    assert (out == clean).all()


def test_a_faint_page_is_searched_again_at_a_lower_edge_threshold():
    from pipeline.redact import candidates
    import cv2
    page = np.full((400, 1400), 110, np.uint8)
    cv2.putText(page, "1234 5678 9018", (60, 200), cv2.FONT_HERSHEY_SIMPLEX, 1.4, 150, 3)
    page = cv2.GaussianBlur(page, (0, 0), 1.2)     # light grey text on grey: edges under the usual floor
    page = np.clip(page + np.random.default_rng(1).normal(0, 3, page.shape), 0, 255).astype(np.uint8)
    assert candidates._search(page, 1.0, 7.0, 2.4, candidates.EDGE_FLOOR).lines == []
    search = candidates.find_lines(page, min_aspect=7.0)
    assert search.threshold == candidates.EDGE_FLOOR   # what a redacted copy is searched with again
    assert any(ln.axis == "h" and ln.length > 250 for ln in search.lines)


def _reading(texts_and_confs, line="L"):
    from pipeline.redact.clarity import Reading
    from types import SimpleNamespace
    ws, x = [], 0
    for text, conf in texts_and_confs:
        ws.append(W(text, x, conf=conf))
        x += ws[-1].width + 12
    return Reading(SimpleNamespace(line=line, reverse=False), ws)


@pytest.mark.parametrize("reading, clear", [
    ([("1234", 93), ("5678", 90), ("9018", 91)], True),       # a number, read (the proof counts it as readable)
    ([("1234567890123", 94)], True),                          # a corporate number, read surely
    ([("TEL", 90), ("03-1234-5678", 44)], True),              # a phone number read poorly: 10 digits
    ([("PASSPORT", 80), ("TK1234567", 73)], True),            # letters and a few digits: text
    ([("1234", 93), ("5678", 40), ("9019", 91)], False),      # 12 digits, check fails, one word unsure
    ([("1234", 95), ("5678", 96), ("9019", 95)], True),       # ... read surely: another 12-digit code
    ([("§23", 83), ("4567", 94), ("8901", 96)], False),       # a digit read as a mark
    ([("1234", 93), ("5678", 45), ("901", 91), ("8", 30)], False),   # a number's worth read without confidence
    ([("yeaa.", 51), ("SOTE", 32), ("4166", 58), ("6890", 83)], False),  # a group read as an unsure word
    ([("SOTE", 92), ("4166", 88), ("6890", 90)], True),       # ... read surely: a word of letters, and digits
    ([("Reed", 28), ("5724019750", 66)], True),                # a label read as letters digits never give
])
def test_the_proof_accounts_for_every_row_of_digits(reading, clear):
    from pipeline.redact.clarity import unaccounted_rows
    r = _reading(reading)
    assert unaccounted_rows([("L", 12)], [r]) == (0 if clear else 1)
    assert unaccounted_rows([("L", 9)], [r]) == 0             # short rows are not checked


def test_a_row_read_both_ways_must_be_clear_both_ways():
    from pipeline.redact.clarity import unaccounted_rows
    garbled = _reading([("1234", 93), ("5678", 40), ("901", 91), ("8", 30)])
    upside_down = _reading([("vess", 0), ("8l6", 40)])         # the wrong way: few digits
    assert unaccounted_rows([("L", 12)], [upside_down, garbled]) == 1


def test_letters_between_groups_of_digits_leave_a_row_unaccounted():
    from pipeline.redact.clarity import unaccounted_rows
    assert unaccounted_rows([("L", 11)], [_reading([("mas", 33), ("123", 94), ("a5", 53), ("456", 92),
                                                     ("789", 73)])]) == 1
    assert unaccounted_rows([("L", 12)], [_reading([("PASSPORT", 90), ("No", 90), ("TK1234567", 90)])]) == 0


@pytest.mark.parametrize("text, is_text", [
    ("1960年11月21日", True), ("5丁目24番7号", True),
    ("1960生11有21昌", True),                  # a small date's kanji misread as other kanji: still a date
    ("個人番号123456789012", False),           # a label before the digits is not between them
    ("1234一5678一9012", False),               # hyphens read as 一 or ー do not make a number a date
    ("1234ー5678ー9012", False), ("1960%118218", False)])
def test_dates_and_addresses_are_told_from_garbled_numbers(text, is_text):
    from pipeline.redact.analyzer import _DATE_OR_ADDRESS
    assert bool(_DATE_OR_ADDRESS.search(text)) == is_text


def _printed_line(text: str, noise: float = 0.0):
    """A straightened line crop as the analyser cuts it: grey, and binarised the same way."""
    import cv2
    grey = np.full((48, 40 + 24 * len(text)), 235, np.uint8)
    cv2.putText(grey, text, (16, 36), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 30, 2, lineType=cv2.LINE_AA)
    if noise:
        grey = np.clip(grey + np.random.default_rng(3).normal(0, noise, grey.shape), 0, 255).astype(np.uint8)
    binary = cv2.adaptiveThreshold(cv2.GaussianBlur(grey, (3, 3), 0), 255, cv2.ADAPTIVE_THRESH_MEAN_C,
                                   cv2.THRESH_BINARY, 33, 15)
    return binary, grey


@pytest.mark.skipif(not Path(__file__).resolve().parent.parent.joinpath("pipeline/models/digits.npz").exists(),
                    reason="no shipped model file")
def test_the_glyph_reader_sees_a_valid_number_only():
    from pipeline.redact import glyphreader
    from pipeline.scan.digits import DigitClassifier
    clf = DigitClassifier.load()
    binary, grey = _printed_line("1234 5678 9018", noise=6.0)
    assert glyphreader.read_numbers(binary, grey, 22.0, clf)
    upside_down = (np.ascontiguousarray(binary[::-1, ::-1]), np.ascontiguousarray(grey[::-1, ::-1]))
    assert glyphreader.read_numbers(*upside_down, 22.0, clf)         # either way up
    for other in ("1234 5678 9010", "1234567890123", "03 1234 5678"):  # check digit fails; 13 digits; 10 digits
        assert not glyphreader.read_numbers(*_printed_line(other), 22.0, clf)
    # every glyph read surely, both ways (what the proof compares with tesseract's reading of a row)
    upright, _ = glyphreader.read_digits(*_printed_line("03 1234 5678"), 22.0, clf)
    assert upright == "0312345678"
    binary, grey = _printed_line("03 1234 5678")
    _, turned = glyphreader.read_digits(np.ascontiguousarray(binary[::-1, ::-1]),
                                        np.ascontiguousarray(grey[::-1, ::-1]), 22.0, clf)
    assert turned == "0312345678"
    # what it reads is a span over its twelve glyphs, to be covered; the digits stay out of its repr
    binary, grey = _printed_line("1234 5678 9018")
    for turned in (False, True):
        if turned:
            binary, grey = np.ascontiguousarray(binary[::-1, ::-1]), np.ascontiguousarray(grey[::-1, ::-1])
        [span] = glyphreader.read_numbers(binary, grey, 22.0, clf)
        cols = np.nonzero((binary < 128).any(axis=0))[0]
        rows = np.nonzero((binary < 128).any(axis=1))[0]
        assert span.valid and span.digits == "123456789018" and "5678" not in repr(span)
        assert span.box[0] <= cols[0] and span.box[2] >= cols[-1] + 1     # from the first glyph to the last
        assert span.box[1] <= rows[0] and span.box[3] >= rows[-1] + 1


def test_a_span_box_grows_to_whole_glyphs():
    """Tesseract's word box may start inside a digit, or give the first digit to junk read before it: the
    box that is covered grows to every glyph it cuts and to the glyph it left out, but not to a label."""
    import cv2
    from pipeline.redact.analyzer import _whole_glyphs
    binary, _ = _printed_line("XX 1234 5678 9018")
    _, _, st, _ = cv2.connectedComponentsWithStats((binary < 128).astype(np.uint8), connectivity=8)
    glyphs = sorted((int(x), int(x + w)) for x, _, w, _, _ in st[1:])    # "XX", "1", "2", "34" (touching), ...
    label, one, two, last = glyphs[0], glyphs[1], glyphs[2], glyphs[-1]
    top, bottom = 10.0, 38.0

    def span(left, right):
        return digits.Span("123456789018", True, 90.0, (float(left), top, float(right), bottom), 3)

    whole = span(one[0] - 1, last[1] + 1)
    assert _whole_glyphs([whole], binary)[0].box == whole.box                   # nothing to grow
    [grown] = [g.box for g in _whole_glyphs([span(one[0] + 4, last[1] - 5)], binary)]
    assert grown[0] == one[0] and grown[2] == last[1]                           # the cut glyphs are whole
    [grown] = [g.box for g in _whole_glyphs([span(two[0] - 1, last[1] + 1)], binary)]
    assert grown[0] == one[0] and grown[0] > label[1]                           # the left-out "1", not "XX"


@pytest.mark.parametrize("words, garbled", [
    ([("PKAT", 0), ("SEIZE", 0)], True),                      # a number tesseract made nothing of
    ([("21", 39), ("FEB", 39), ("2033", 89)], False),         # a date with a year read surely
    ([("TOBSRAMCRELTC", 0), ("LEW", 71)], False),             # kana text: one word read with confidence
    ([("1234", 30), ("5678", 20), ("9012", 10)], False),      # read as digits: the check digit decides
])
def test_a_row_read_as_nothing_is_garbled(words, garbled):
    from pipeline.redact.clarity import garbled_over
    r = _reading(words)
    r.crop.size = (sum(w.width for w in r.words) + 12 * len(r.words), 40)
    assert garbled_over(r, (0.0, 1.0)) == garbled
    assert not garbled_over(r, (0.99, 1.0))                  # nothing over the row: nothing garbled
