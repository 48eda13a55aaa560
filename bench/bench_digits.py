#!/usr/bin/env python3
"""Benchmark of the handwritten My Number reader (pipeline/scan/digits.py + pipeline/scan/fusion.py).

All figures on data the model never saw in training:
  * handwritten digits: the 10,000 MNIST test digits, each drawn into a simulated scanned box crop;
  * printed digits: fonts seen in training but new renderings, and two fonts held out of training entirely;
  * fields: valid and miswritten 12-digit numbers made of MNIST-test digits with ODD indices (the threshold was
    chosen by tools/calibrate_digits.py on the even ones), decided by fusion.decide at the stored threshold;
  * blank boxes: simulated crops of empty boxes (noise, JPEG, misaligned borders, dust).
Speed on one core (OMP_NUM_THREADS=1): the classifier alone on batches of 12, and prepare_box.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/bench_digits.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
for p in (str(REPO), str(REPO / "tools")):
    if p not in sys.path:
        sys.path.insert(0, p)

from bench.common import classifier_speed  # noqa: E402
from calibrate_digits import accepted_mask, digit_pool, make_fields, read_fields  # noqa: E402
from pipeline.scan import fusion  # noqa: E402
from pipeline.scan.digits import MODEL_PATH, DigitClassifier, prepare_box  # noqa: E402
from train_digits import (HELDOUT_FONTS, font_files, heldout_split, load_mnist_test, render_glyphs,  # noqa: E402
                          synth_box_crop)


def _acc(pool) -> tuple[float, int]:
    """Accuracy counting boxes wrongly called empty as errors; and how many were called empty."""
    pred = np.where(pool["empty"], -1, np.nan_to_num(pool["probs"], nan=0).argmax(1))
    return float((pred == pool["labels"]).mean()), int(pool["empty"].sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller samples (about 1 minute)")
    ap.add_argument("--model", type=Path, default=MODEL_PATH)
    args = ap.parse_args(argv)
    te = load_mnist_test()
    if te is None or not args.model.exists():
        print("held-out digits or model file not found; nothing to benchmark")
        return 0
    t0 = time.time()
    clf = DigitClassifier.load(args.model)
    rule = fusion.rule_from_model(args.model)
    x, y = te
    q = args.quick
    rows: list[tuple[str, str]] = []

    # per-digit accuracy, handwritten (all 10,000 MNIST-test digits, or 2,000 with --quick)
    rng = np.random.default_rng(4242)
    n_hw = 2000 if q else len(y)
    hw = digit_pool(x[:n_hw], y[:n_hw], clf, rng, renders=1)
    a, e = _acc(hw)
    rows.append((f"per-digit accuracy, handwritten held-out (MNIST-test, {n_hw} in box crops)",
                 f"{a * 100:.2f} %  ({e} called empty)"))
    ok = ~hw["empty"]
    conf = hw["probs"][ok].max(1)
    right = hw["probs"][ok].argmax(1) == hw["labels"][ok]
    bins = np.minimum((conf * 15).astype(int), 14)
    ece = sum(abs(conf[bins == b].mean() - right[bins == b].mean()) * (bins == b).mean()
              for b in range(15) if (bins == b).any())
    rows.append(("calibration on held-out handwritten: ECE (15 bins) / mean confidence",
                 f"{ece * 100:.2f} % / {conf.mean() * 100:.2f} %"))

    # printed: seen fonts / new renderings, and held-out fonts
    glyphs = render_glyphs(font_files())
    if glyphs:
        for name, sel in (("seen fonts, new renderings", [g for g in glyphs if g[2] not in HELDOUT_FONTS]),
                          ("held-out fonts " + "+".join(sorted(f.split(".")[0] for f in HELDOUT_FONTS)),
                           [g for g in glyphs if g[2] in HELDOUT_FONTS])):
            if not sel:
                continue
            n = 500 if q else 3000
            pick = rng.integers(len(sel), size=n)
            pp = digit_pool([sel[k][0] for k in pick], [sel[k][1] for k in pick], clf, rng, renders=1,
                            handwritten=False)
            a, e = _acc(pp)
            rows.append((f"per-digit accuracy, printed ({name}, {n})", f"{a * 100:.2f} %  ({e} called empty)"))

    # fields on the odd half of MNIST-test
    idx = heldout_split(y, "bench")
    if q:
        idx = idx[:2000]
    pool = digit_pool(x[idx], y[idx], clf, rng, renders=2)
    n_valid, n_mis = (5000, 2000) if q else (40000, 20000)
    fields = make_fields(rng, n_valid, n_mis)
    res = read_fields(fields, pool, rng)
    dec = np.array(["review" if r is None else fusion.decide(r, rule=rule) for r in res["reading"]])
    valid = res["kind"] == "valid"
    acc = dec == "accept"
    st = (acc & valid & res["best_is_written"]).sum() / valid.sum()
    wrong = int((acc & valid & ~res["best_is_written"]).sum())
    mis_acc = int((acc & ~valid).sum())
    mis_flag = float((dec[~valid] == "miswritten").mean())
    valid_flag = int((dec[valid] == "miswritten").sum())
    rows.append(("accept rule (from the model file)",
                 f"written probability >= {rule.threshold:g} at a miswriting prior of {rule.miswrite_prior:g}; "
                 f"corrections {'accepted when unsure' if rule.accept_corrections else 'never accepted'}"))
    rows.append((f"straight-through, valid handwritten fields ({int(valid.sum())})", f"{st * 100:.2f} %"))
    rows.append(("wrong numbers accepted per 1,000 valid fields", f"{1000 * wrong / valid.sum():.3f}  ({wrong})"))
    rows.append((f"miswritten fields accepted ({int((~valid).sum())}: substitutions + transpositions)",
                 f"{mis_acc}"))
    q_mis = 0.02
    mixed = 1000 * ((1 - q_mis) * wrong / valid.sum() + q_mis * mis_acc / max(int((~valid).sum()), 1))
    rows.append((f"wrong accepted per 1,000 fields if {q_mis:.0%} of people miswrite", f"{mixed:.3f}"))
    rows.append(("miswritten fields flagged 'miswritten' (rest -> review)", f"{mis_flag * 100:.1f} %"))
    rows.append(("valid fields wrongly flagged 'miswritten'", f"{valid_flag}"))
    rows.append(("fields with a box wrongly called empty (-> review)", f"{int(res['any_empty'].sum())}"))

    # blank boxes
    n_blank = 500 if q else 3000
    brng = np.random.default_rng(99)
    blank_ok = sum(prepare_box(synth_box_crop(None, brng)) is None for _ in range(n_blank))
    rows.append((f"blank boxes recognised as empty ({n_blank})", f"{100 * blank_ok / n_blank:.2f} %"))

    # speed, one core
    batch = np.stack([p for p in (prepare_box(synth_box_crop(x[i], rng)) for i in range(12)) if p is not None])
    per_digit, per_digit_wall = classifier_speed(clf, batch)
    crops = [synth_box_crop(x[i], rng) for i in range(200)]
    t = time.process_time()
    for c in crops:
        prepare_box(c)
    prep = (time.process_time() - t) / len(crops)
    rows.append(("classifier speed, batches of 12, one core (CPU time)",
                 f"{per_digit * 1e3:.3f} ms/digit = {1 / per_digit:,.0f} digits/s  "
                 f"(wall {per_digit_wall * 1e3:.3f} ms)"))
    rows.append(("prepare_box speed (150-600 dpi crops, CPU time)", f"{prep * 1e3:.2f} ms/box"))
    rows.append(("whole path (prepare + classify)", f"{1 / (per_digit + prep):,.0f} digits/s"))
    rows.append(("model file", f"{args.model.stat().st_size / 1e6:.2f} MB, version {clf.version}, "
                               f"T={clf.temperature:.3f}"))

    w = max(len(k) for k, _ in rows)
    print(f"{'metric':<{w}} | value")
    print("-" * w + "-+-" + "-" * 34)
    for k, v in rows:
        print(f"{k:<{w}} | {v}")

    # the whole trade-off on the same (bench) fields, for other thresholds
    print()
    print("trade-off on the bench fields (the stored rule with other thresholds t)")
    print(f"{'t':>7} | {'straight-through':>16} | {'wrong/1000 valid':>16} | {'miswritten accepted':>19} | "
          f"{'wrong/1000 fields at 2% miswriting':>34}")
    for t in sorted({0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999, float(rule.threshold)}):
        a_t = accepted_mask(res, fusion.AcceptRule(t, rule.miswrite_prior, rule.accept_corrections,
                                                   rule.correction_max_confidence))
        st_t = (a_t & valid & res["best_is_written"]).sum() / valid.sum()
        wr_t = int((a_t & valid & ~res["best_is_written"]).sum())
        ma_t = int((a_t & ~valid).sum())
        mix_t = 1000 * ((1 - q_mis) * wr_t / valid.sum() + q_mis * ma_t / max(int((~valid).sum()), 1))
        print(f"{t:>7.4g} | {st_t * 100:>15.2f}% | {1000 * wr_t / valid.sum():>16.3f} | {ma_t:>19d} | {mix_t:>34.3f}")
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
