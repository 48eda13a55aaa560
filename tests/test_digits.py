"""Digit reading for handwritten My Number boxes: prepare_box, the numpy classifier, check-digit fusion."""
from __future__ import annotations

import itertools
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

from pipeline import number  # noqa: E402
from pipeline.scan import fusion  # noqa: E402
from pipeline.scan.digits import MODEL_PATH, PREP_PARAMS, DigitClassifier, prepare_box  # noqa: E402
from train_digits import load_mnist_test, synth_box_crop  # noqa: E402

needs_model = pytest.mark.skipif(not MODEL_PATH.exists(), reason="no shipped model file")


# ------------------------------------------------------------------------------------------------ helpers


def box_crop(dpi=300, margin_mm=0.6, offset_mm=(0.0, 0.0), line_mm=0.3, paper=235, ink=30, line=20):
    """A clean crop of one printed box (9.5 x 12 mm) with margin; returns (image, px/mm, box rect in px)."""
    s = dpi / 25.4
    w, h = int(round((9.5 + 2 * margin_mm) * s)), int(round((12 + 2 * margin_mm) * s))
    img = np.full((h, w), paper, np.uint8)
    x0, y0 = (margin_mm + offset_mm[0]) * s, (margin_mm + offset_mm[1]) * s
    x1, y1 = x0 + 9.5 * s, y0 + 12 * s
    t = max(1, int(round(line_mm * s)))
    cv2.rectangle(img, (int(round(x0)), int(round(y0))), (int(round(x1)), int(round(y1))), line, t)
    return img, s, (x0, y0, x1, y1)


def degrade(img, rng, noise=8.0, jpeg=40, blur=0.8):
    out = cv2.GaussianBlur(img.astype(np.float32), (0, 0), blur)
    out += rng.normal(0, noise, out.shape).astype(np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, jpeg])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def draw_one(img, s, rect, ink=30, width_mm=0.35, height_mm=7.0, dx_mm=0.0, top_mm=None):
    x0, y0, x1, y1 = rect
    cx = (x0 + x1) / 2 + dx_mm * s
    top = y0 + (top_mm if top_mm is not None else (12 - height_mm) / 2) * s
    cv2.line(img, (int(cx + 0.6 * s), int(top)), (int(cx - 0.4 * s), int(top + height_mm * s)), ink,
             max(1, int(round(width_mm * s))), lineType=cv2.LINE_AA)
    return img


# ------------------------------------------------------------------------------------------------ prepare_box


@pytest.mark.parametrize("dpi", [150, 300, 600])
def test_blank_boxes_are_empty(dpi):
    rng = np.random.default_rng(dpi)
    for k in range(6):
        img, s, _ = box_crop(dpi=dpi, offset_mm=tuple(rng.uniform(-1, 1, 2)), margin_mm=rng.uniform(0, 1))
        assert prepare_box(degrade(img, rng, noise=rng.uniform(0, 12), jpeg=int(rng.integers(25, 90)))) is None
    # a plain sheet with noise, and a skewed box
    assert prepare_box(degrade(np.full((150, 125), 225, np.uint8), rng, noise=12)) is None
    img, _, _ = box_crop(dpi=dpi)
    h, w = img.shape
    img = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), 1.0, 1.0), (w, h),
                         borderMode=cv2.BORDER_REPLICATE)
    assert prepare_box(degrade(img, rng)) is None


def test_simulated_blank_boxes_are_empty():
    rng = np.random.default_rng(11)
    called = sum(prepare_box(synth_box_crop(None, rng)) is not None for _ in range(150))
    assert called == 0


@pytest.mark.parametrize("dpi", [150, 200, 300, 600])
def test_thin_one_is_not_empty(dpi):
    rng = np.random.default_rng(dpi)
    img, s, rect = box_crop(dpi=dpi)
    draw_one(img, s, rect, width_mm=0.25, height_mm=6.0)
    out = prepare_box(degrade(img, rng, noise=6))
    assert out is not None
    ys, xs = np.nonzero(out > 0.3)
    assert ys.max() - ys.min() >= 17          # the longer side is scaled to 20 px
    assert xs.max() - xs.min() <= 12          # and it stays a narrow stroke


def test_digit_touching_the_border_survives():
    rng = np.random.default_rng(5)
    img, s, rect = box_crop(dpi=300)
    # a "1" starting 1 mm above the top line, crossing it
    draw_one(img, s, rect, height_mm=8.0, top_mm=-0.8, width_mm=0.5)
    out = prepare_box(degrade(img, rng))
    assert out is not None
    ys, xs = np.nonzero(out > 0.3)
    assert ys.max() - ys.min() >= 17
    # a stroke crossing the top line keeps what lies beyond it: a "T" whose bar is drawn above the box
    img, s, rect = box_crop(dpi=300, margin_mm=1.0)
    x0, y0, x1, y1 = rect
    cx = int((x0 + x1) / 2)
    cv2.line(img, (cx - int(2 * s), int(y0 - 0.6 * s)), (cx + int(2 * s), int(y0 - 0.6 * s)), 30, int(0.5 * s))
    cv2.line(img, (cx, int(y0 - 0.6 * s)), (cx, int(y0 + 6 * s)), 30, int(0.5 * s))
    out = prepare_box(degrade(img, rng))
    assert out is not None
    rows = np.flatnonzero(out.max(axis=1) > 0.3)
    top_width = np.count_nonzero(out[rows[:3]].max(axis=0) > 0.3)
    assert top_width >= 8  # the bar survived (the stem alone would be 2-4 px wide)
    # and simulated digits pushed into the border are (almost) never lost
    te = load_mnist_test()
    if te is not None:
        x, _ = te
        lost = sum(prepare_box(synth_box_crop(x[i], rng, touch=1.0)) is None for i in range(100))
        assert lost <= 2


@pytest.mark.parametrize("dpi", [200, 300])
def test_a_stroke_lying_on_a_box_line_is_kept(dpi):
    """The foot of a 2 drawn on the bottom line, and a 1 written against the side line: erasing the line
    under them would read 7 and empty."""
    rng = np.random.default_rng(dpi)
    img, s, rect = box_crop(dpi=dpi)
    x0, y0, x1, y1 = rect
    w = max(1, int(round(0.5 * s)))
    # a "2": an arc, a diagonal down to the bottom line, and the foot along the line (0.15 mm above it)
    cv2.ellipse(img, (int(x0 + 4.8 * s), int(y0 + 4.2 * s)), (int(2.3 * s), int(2.0 * s)), 0, 180, 360, 30, w)
    cv2.line(img, (int(x0 + 7.1 * s), int(y0 + 4.2 * s)), (int(x0 + 2.2 * s), int(y1 - 0.15 * s)), 30, w)
    cv2.line(img, (int(x0 + 2.2 * s), int(y1 - 0.15 * s)), (int(x0 + 7.6 * s), int(y1 - 0.15 * s)), 30, w)
    out = prepare_box(degrade(img, rng, noise=5))
    assert out is not None
    bottom = np.flatnonzero(out.max(axis=1) > 0.3)[-3:]
    assert np.count_nonzero(out[bottom].max(axis=0) > 0.3) >= 10      # the foot is there
    # a "1" drawn along the right line, overlapping it
    img, s, rect = box_crop(dpi=dpi)
    x0, y0, x1, y1 = rect
    cv2.line(img, (int(x1 - 0.2 * s), int(y0 + 2.5 * s)), (int(x1 - 0.3 * s), int(y0 + 9.5 * s)), 30, w)
    out = prepare_box(degrade(img, rng, noise=5))
    assert out is not None
    ys, xs = np.nonzero(out > 0.3)
    assert ys.max() - ys.min() >= 17 and xs.max() - xs.min() <= 12


def test_lines_with_uneven_thickness_leave_a_box_empty():
    rng = np.random.default_rng(8)
    for k in range(8):
        img, s, rect = box_crop(dpi=300, offset_mm=tuple(rng.uniform(-0.8, 0.8, 2)))
        x0, y0, x1, y1 = rect
        # a print defect: one line thicker along part of its length, and a blot on the line
        cv2.line(img, (int(x0 + 2 * s), int(y1)), (int(x0 + 6 * s), int(y1)), 20, max(1, int(0.45 * s)))
        cv2.circle(img, (int(x0), int(y0 + 5 * s)), max(1, int(0.35 * s)), 20, -1)
        h, w = img.shape
        img = cv2.warpAffine(img, cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-0.8, 0.8), 1.0), (w, h),
                             borderMode=cv2.BORDER_REPLICATE)
        assert prepare_box(degrade(img, rng, noise=rng.uniform(2, 10))) is None


def test_output_shape_range_and_centring():
    rng = np.random.default_rng(3)
    img, s, rect = box_crop(dpi=300)
    x0, y0, x1, y1 = rect
    # an off-centre "0": the output is centred anyway
    cv2.ellipse(img, (int(x0 + 3.2 * s), int(y0 + 4.5 * s)), (int(1.8 * s), int(3.0 * s)), 0, 0, 360, 25,
                max(1, int(0.5 * s)))
    out = prepare_box(degrade(img, rng))
    assert out is not None and out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0 and out.max() > 0.9
    ys, xs = np.mgrid[0:28, 0:28]
    m = out.sum()
    cy, cx = (out * ys).sum() / m, (out * xs).sum() / m
    assert abs(cy - 13.5) < 1.0 and abs(cx - 13.5) < 1.0
    nz_y, nz_x = np.nonzero(out > 0.05)
    assert max(np.ptp(nz_y), np.ptp(nz_x)) + 1 in range(19, 23)
    # white digit on black: the border of the 28x28 image is background
    assert out[0].max() == 0 and out[-1].max() == 0


def test_prepare_box_accepts_rgb_and_float_input():
    img, s, rect = box_crop(dpi=200)
    draw_one(img, s, rect)
    a = prepare_box(img)
    assert a is not None
    b = prepare_box(np.repeat(img[:, :, None], 3, axis=2))
    c = prepare_box(img.astype(np.float64) / 255.0)
    assert np.allclose(a, b, atol=1e-5) and np.allclose(a, c, atol=1e-5)


# ------------------------------------------------------------------------------------------------ classifier


@needs_model
def test_model_file_contents():
    assert MODEL_PATH.stat().st_size <= 5_000_000
    with np.load(MODEL_PATH) as z:
        for k in ("version", "temperature", "prep_params"):
            assert k in z.files
        members = int(z["members"]) if "members" in z.files else 0
        for m in range(members) if members else [None]:
            prefix = "" if m is None else f"m{m}_"
            assert prefix + "conv0_w" in z.files and prefix + "fc0_w" in z.files
        assert 0.2 < float(z["temperature"]) < 5
        import json
        assert json.loads(str(z["prep_params"])) == PREP_PARAMS  # the model was trained on this preprocessing
        for name in fusion.RULES:                     # both accept rules are calibrated into the file
            rule = fusion.rule_from_model(MODEL_PATH, name)
            assert 0.5 <= rule.threshold < 1 and not rule.accept_corrections
    clf = DigitClassifier.load()
    assert DigitClassifier.load() is clf  # loaded once, cached


@needs_model
def test_an_ensemble_averages_its_networks_logits():
    from pipeline.scan.digits import _Network
    with np.load(MODEL_PATH) as z:
        arrays = {k: z[k] for k in z.files}
    clf = DigitClassifier(arrays)
    x = np.random.default_rng(1).random((5, 28, 28)).astype(np.float32)
    single = [net.logits(x) for net in clf.networks]
    assert np.allclose(clf.logits(x), np.mean(single, axis=0), atol=1e-5)
    if len(clf.networks) > 1:
        assert not np.allclose(single[0], single[1])         # trained from different seeds
        one = DigitClassifier({k[3:]: v for k, v in arrays.items() if k.startswith("m0_")} | {"temperature": 1.0})
        assert np.allclose(one.logits(x), single[0], atol=1e-5)
        assert isinstance(clf.networks[0], _Network)


def test_accept_rules_by_name(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, accept_threshold=np.float64(0.999), miswrite_prior=np.float64(0.5))
    assert fusion.rule_from_model(path).threshold == 0.999
    with pytest.raises(ValueError, match="no calibrated 'balanced' rule"):
        fusion.rule_from_model(path, "balanced")
    np.savez(path, accept_threshold=np.float64(0.999), balanced_accept_threshold=np.float64(0.97),
             balanced_miswrite_prior=np.float64(0.1))
    assert fusion.rule_from_model(path, "balanced") == fusion.AcceptRule(0.97, 0.1)
    with pytest.raises(ValueError, match="unknown accept rule"):
        fusion.rule_from_model(path, "lenient")


@needs_model
def test_the_accept_rule_comes_from_config(tmp_path):
    from pipeline import config
    from pipeline.errors import ConfigError
    from pipeline.scan.intake import default_reader
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(config.DEFAULT_CONFIG.replace('handwriting_rule = "strict"',
                                                                    'handwriting_rule = "balanced"'))
    assert default_reader(config.load(home)).keywords["rule"] == fusion.default_rule("balanced")
    assert default_reader(config.load(tmp_path)).keywords["rule"] == fusion.default_rule("strict")
    (home / "config.toml").write_text(config.DEFAULT_CONFIG.replace('handwriting_rule = "strict"',
                                                                    'handwriting_rule = "lenient"'))
    with pytest.raises(ConfigError, match="handwriting_rule"):
        default_reader(config.load(home))


@needs_model
def test_classifier_accuracy_on_heldout_mnist_in_box_crops():
    te = load_mnist_test()
    if te is None:
        pytest.skip("MNIST test digits not available")
    x, y = te
    rng = np.random.default_rng(2024)
    idx = rng.choice(len(y), 500, replace=False)
    prepared = [prepare_box(synth_box_crop(x[i], rng)) for i in idx]
    ok = np.array([p is not None for p in prepared])
    probs = DigitClassifier.load().predict_proba(np.stack([p for p in prepared if p is not None]))
    assert np.allclose(probs.sum(axis=1), 1.0)
    correct = (probs.argmax(1) == y[idx][ok]).sum()
    assert correct / len(idx) >= 0.98


@needs_model
def test_classifier_shapes():
    # speed is measured by bench/bench_digits.py, not here: a timed test fails on a busy machine
    clf = DigitClassifier.load()
    assert clf.predict_proba(np.zeros((0, 28, 28), np.float32)).shape == (0, 10)
    batch = np.random.default_rng(0).random((12, 28, 28), dtype=np.float32)
    probs = clf.predict_proba(batch)
    assert probs.shape == (12, 10) and np.allclose(probs.sum(axis=1), 1.0)
    with pytest.raises(ValueError):
        clf.predict_proba(np.zeros((2, 20, 20), np.float32))


# ------------------------------------------------------------------------------------------------ fusion


def certain(digits: str) -> np.ndarray:
    p = np.zeros((12, 10))
    p[np.arange(12), [int(c) for c in digits]] = 1.0
    return p


def valid_number(rng) -> str:
    base = "".join(str(d) for d in rng.integers(0, 10, 11))
    return base + str(number.check_digit(base))


def test_weights_match_the_check_digit_definition():
    rng = np.random.default_rng(1)
    for _ in range(200):
        base = [int(d) for d in rng.integers(0, 10, 11)]
        r = int((fusion.WEIGHTS * np.array(base)).sum() % 11)
        assert fusion.CHECK_OF_RESIDUE[r] == number.check_digit("".join(map(str, base)))


def test_posterior_matches_brute_force():
    rng = np.random.default_rng(7)
    for trial in range(30):
        v = valid_number(rng)
        p = certain(v)
        pos = rng.choice(12, 2, replace=False)
        for i in pos:
            p[i] = rng.dirichlet(np.ones(10) * 0.5)
        total, best, best_p = 0.0, None, -1.0
        for a, b in itertools.product(range(10), repeat=2):
            s = list(v)
            s[pos[0]], s[pos[1]] = str(a), str(b)
            s = "".join(s)
            pr = float(np.prod(p[np.arange(12), [int(c) for c in s]]))
            if number.is_valid_digits(s):
                total += pr
                if pr > best_p:
                    best, best_p = s, pr
        r = fusion.best_valid(p)
        assert r.digits == best
        assert r.probability == pytest.approx(best_p / total, rel=1e-9, abs=1e-12)
        raw = "".join(str(int(k)) for k in p.argmax(1))
        assert r.raw_digits == raw
        assert r.raw_valid == number.is_valid_digits(raw)
        expect_raw = float(np.prod(p.max(1))) / total if r.raw_valid else 0.0
        assert r.posterior_of_raw == pytest.approx(expect_raw, rel=1e-9, abs=1e-12)
        assert r.raw_probability == pytest.approx(float(np.prod(p.max(1))), rel=1e-9)
        # all other strings have zero probability, so the brute force also gives the mass of invalid strings
        assert r.valid_mass == pytest.approx(total, rel=1e-9, abs=1e-12)
        assert r.best_likelihood == pytest.approx(best_p, rel=1e-9, abs=1e-15)
        for prior in (0.02, 0.1, 0.3):
            rho = prior / (9 * (1 - prior))
            assert r.written_probability(prior) == pytest.approx(min(1.0, best_p / (total + rho * (1 - total))),
                                                                 rel=1e-9, abs=1e-12)


def test_residues_zero_and_one_both_give_check_digit_zero():
    # find a base with r == 1: the check digit is 0, and the DP must count it as valid
    rng = np.random.default_rng(3)
    while True:
        base = "".join(str(d) for d in rng.integers(0, 10, 11))
        if number.remainder_of(base) == 1:
            break
    s = base + "0"
    assert number.is_valid_digits(s)
    r = fusion.best_valid(certain(s) * 0.98 + 0.002)
    assert r.digits == s and r.raw_valid and r.probability > 0.95


def test_confident_valid_reading_is_accepted():
    v = valid_number(np.random.default_rng(5))
    p = certain(v) * 0.9995 + 0.0005 / 10
    r = fusion.best_valid(p)
    assert r.digits == v and r.raw_valid and not r.corrected
    assert fusion.decide(r, rule=fusion.AcceptRule(0.99)) == "accept"
    assert v not in repr(r)  # the number never shows in logs


def test_miswritten_number_is_never_accepted():
    rng = np.random.default_rng(8)
    for _ in range(50):
        v = valid_number(rng)
        i = int(rng.integers(12))
        bad = v[:i] + str((int(v[i]) + int(rng.integers(1, 10))) % 10) + v[i + 1:]
        if number.is_valid_digits(bad):
            continue
        r = fusion.best_valid(certain(bad) * 0.9999 + 0.0001 / 10)
        assert not r.raw_valid
        for t in (0.0, 0.5, 0.9, 0.99):
            for corrections in (False, True):
                assert fusion.decide(r, rule=fusion.AcceptRule(t, 0.1, corrections)) != "accept"
        assert fusion.decide(r, rule=fusion.AcceptRule(0.9)) == "miswritten"  # read confidently: miswritten
        assert r.written_probability(0.1) < 0.01    # the "repair" is improbable once miswriting is possible


def test_fixable_corrupted_digit_goes_to_review():
    """One box read uncertainly, raw string invalid; the check digit could 'repair' it -> review, not accept."""
    rng = np.random.default_rng(9)
    for _ in range(30):
        v = valid_number(rng)
        i = int(rng.integers(11))
        wrong = (int(v[i]) + 1 + int(rng.integers(9))) % 10
        p = certain(v) * 0.999 + 0.001 / 10
        p[i] = 0.01
        p[i, wrong] = 0.6       # the classifier prefers a wrong digit ...
        p[i, int(v[i])] = 0.31  # ... the true one is second
        p[i] /= p[i].sum()
        r = fusion.best_valid(p)
        raw = r.raw_digits
        if number.is_valid_digits(raw):
            continue
        assert r.digits == v and r.corrected        # the fusion finds the valid number ...
        for t in (0.0, 0.5, 0.9):                   # ... but a rule without corrections never accepts it
            assert fusion.decide(r, rule=fusion.AcceptRule(t, 0.1, accept_corrections=False)) == "review"
        # a rule that accepts corrections of one unsure digit does so only above its threshold
        with_corrections = fusion.AcceptRule(0.9, 0.1, accept_corrections=True)
        expected = "accept" if r.written_probability(0.1) >= 0.9 else "review"
        assert fusion.decide(r, rule=with_corrections) == expected


def test_valid_but_unlikely_raw_reading_is_not_accepted():
    """The posterior among valid strings can be high while the raw read itself is shaky: not accepted."""
    v = valid_number(np.random.default_rng(10))
    p = certain(v) * 0.999 + 0.001 / 10
    for i in (2, 6, 9):  # three boxes at 70 %, the rest spread over other digits
        p[i] = 0.3 / 9
        p[i, int(v[i])] = 0.7
    r = fusion.best_valid(p)
    assert r.raw_valid and r.digits == v
    assert r.raw_probability < 0.5
    assert 0.9 < r.written_probability(0.1) < 0.99
    assert fusion.decide(r, rule=fusion.AcceptRule(0.99)) == "review"


def test_bad_input_raises_without_digits():
    with pytest.raises(ValueError) as e:
        fusion.best_valid(np.ones((11, 10)))
    assert not any(ch.isdigit() for ch in str(e.value).replace("12", "").replace("10", ""))


@needs_model
def test_read_field_blank_and_partial():
    rng = np.random.default_rng(12)
    blanks = [synth_box_crop(None, rng) for _ in range(12)]
    res = fusion.read_field(blanks)
    assert res.decision == "blank" and res.reading is None and res.empty_boxes == 12
    img, s, rect = box_crop(dpi=300)
    draw_one(img, s, rect)
    res = fusion.read_field([img] + blanks[1:])
    assert res.decision == "review" and res.empty_boxes == 11


def test_confident_correction_is_never_accepted():
    """The classifier is sure of a digit that breaks the check: replacing it would 'correct' what the person
    wrote. Even a rule that accepts corrections refuses, because that digit was read confidently."""
    rng = np.random.default_rng(14)
    rule = fusion.AcceptRule(0.0, 0.1, accept_corrections=True)
    for _ in range(30):
        v = valid_number(rng)
        i = int(rng.integers(11))
        wrong = (int(v[i]) + 1 + int(rng.integers(9))) % 10
        p = certain(v) * 0.999 + 0.001 / 10
        p[i] = 0.002 / 8
        p[i, wrong], p[i, int(v[i])] = 0.95, 0.048
        r = fusion.best_valid(p)
        if number.is_valid_digits(r.raw_digits) or r.digits != v:
            continue
        assert r.corrected and r.corrected_confidence >= 0.95
        assert fusion.decide(r, rule=rule) != "accept"
