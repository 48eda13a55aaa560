#!/usr/bin/env python3
"""Choose the accept rule of pipeline/scan/fusion.py on held-out fields; store it in the model file.

Held-out fields are built from the MNIST test set (never used in training), even indices only (the odd ones
are left for bench/bench_digits.py and bench/bench_handwriting.py, so the rule is not judged on the data it was
chosen on). Each digit image is either drawn into a simulated box crop (tools/train_digits.synth_box_crop) or,
with --pool, taken from digits written into real forms, scanned and cut by the intake's own code
(tools/harvest_form_digits.py --source calib); the shipped rule was chosen with --pool.
  * valid fields: a random valid 12-digit number, each position a held-out digit of that value, classified;
  * miswritten fields: the same, but the person wrote an invalid string: one digit changed (substitution) or
    two neighbouring digits swapped (transposition) so that the check digit fails.
Each field goes through fusion.best_valid; every candidate rule (threshold on a grid, never below --floor; the
miswriting prior; corrections of an unsure digit allowed or not) is replayed with fusion.decide's logic.

Chosen: the rule with the highest straight-through rate such that on the calibration fields
  --criterion strict (default, the product requirement):
    * no miswritten field is accepted, and
    * the 95 % upper confidence bound (Clopper-Pearson) of wrongly accepted valid fields is <= 1 per 1,000;
  --criterion prevalence --miswrite-rate Q:
    * the 95 % upper bound of wrong numbers accepted per 1,000 fields, when a fraction Q of people miswrite
      (valid-field errors weighted 1-Q, miswritten-field acceptances weighted Q), is <= 1.
A miswritten field can only be accepted when the classifier also misreads one of its digits, confidently, into
exactly the value that makes the string valid again (two errors cancelling); the strict criterion pays for ruling
that out with straight-through, and the printed table shows the whole trade-off.
Run (about 4 minutes each; the shipped model holds both rules), on digits harvested with
  OMP_NUM_THREADS=1 .venv/bin/python tools/harvest_form_digits.py --source calib --pages 600 --seed 13 \
      --out /tmp/mynumber-form-digits/calib.npz
  OMP_NUM_THREADS=1 .venv/bin/python tools/calibrate_digits.py --pool /tmp/mynumber-form-digits/calib.npz
  OMP_NUM_THREADS=1 .venv/bin/python tools/calibrate_digits.py --pool /tmp/mynumber-form-digits/calib.npz \
      --criterion prevalence --no-corrections --rule-name balanced
`--document-match --fields 20000` prints instead how fusion.agrees_with_document (a field against the number on
the kit's ID copy) behaves over a grid of its parameters; the shipped ones (fusion.DOCUMENT_*) were read off it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
for p in (str(REPO), str(TOOLS)):
    if p not in sys.path:
        sys.path.insert(0, p)

from pipeline import number  # noqa: E402
from pipeline.scan import fusion  # noqa: E402
from pipeline.scan.digits import MODEL_PATH, DigitClassifier, prepare_box  # noqa: E402
from train_digits import heldout_split, load_mnist_test, save_model, synth_box_crop  # noqa: E402

GRID = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.985, 0.99, 0.995, 0.998, 0.999,
        0.9995, 0.9998, 0.9999, 0.99995, 0.99999)
TARGET_WRONG = 1e-3


def digit_pool(images, labels, clf: DigitClassifier, rng: np.random.Generator, renders: int = 2,
               handwritten: bool = True, hard: float = 1.0) -> dict:
    """Render every image ``renders`` times into box crops -> prepare_box -> classifier.

    Returns probs (M, 10) (NaN rows where prepare_box called the box empty), labels (M,), empty (M,),
    source index (M,)."""
    prepared, labs, src = [], [], []
    for i in range(len(labels)):
        for _ in range(renders):
            prepared.append(prepare_box(synth_box_crop(images[i], rng, handwritten=handwritten, hard=hard)))
            labs.append(int(labels[i]))
            src.append(i)
    empty = np.array([p is None for p in prepared])
    probs = np.full((len(prepared), 10), np.nan)
    ok = np.flatnonzero(~empty)
    for j in range(0, len(ok), 1024):
        idx = ok[j:j + 1024]
        probs[idx] = clf.predict_proba(np.stack([prepared[k] for k in idx]))
    return {"probs": probs, "labels": np.array(labs), "empty": empty, "src": np.array(src)}


def random_valid(rng: np.random.Generator) -> str:
    base = "".join(str(d) for d in rng.integers(0, 10, size=11))
    return base + str(number.check_digit(base))


def miswrite(valid: str, rng: np.random.Generator, kind: str) -> str:
    """An invalid string a person could write instead of ``valid`` (one digit changed, or two swapped)."""
    for _ in range(100):
        s = list(valid)
        if kind == "substitution":
            i = int(rng.integers(12))
            s[i] = str((int(s[i]) + int(rng.integers(1, 10))) % 10)
        else:
            i = int(rng.integers(11))
            s[i], s[i + 1] = s[i + 1], s[i]
        out = "".join(s)
        if not number.is_valid_digits(out):
            return out
    raise RuntimeError("could not make an invalid variant")


def make_fields(rng: np.random.Generator, n_valid: int, n_miswritten: int) -> list[tuple[str, str, str]]:
    """(kind, written, intended) for n_valid valid fields and n_miswritten invalid ones (half substitutions)."""
    out = []
    for _ in range(n_valid):
        v = random_valid(rng)
        out.append(("valid", v, v))
    for k in range(n_miswritten):
        v = random_valid(rng)
        kind = "substitution" if k % 2 == 0 else "transposition"
        out.append((kind, miswrite(v, rng, kind), v))
    return out


def read_fields(fields, pool: dict, rng: np.random.Generator) -> dict:
    """Run every field through fusion.best_valid with digit images drawn from the pool; returns columns."""
    by_label = [np.flatnonzero(pool["labels"] == d) for d in range(10)]
    cols = {k: [] for k in ("kind", "best_is_written", "any_empty", "reading")}
    for kind, written, intended in fields:
        rows = np.array([by_label[int(c)][rng.integers(len(by_label[int(c)]))] for c in written])
        empty = bool(pool["empty"][rows].any())
        r = None if empty else fusion.best_valid(pool["probs"][rows])
        cols["kind"].append(kind)
        cols["any_empty"].append(empty)
        cols["best_is_written"].append(r is not None and r.digits == written)
        cols["reading"].append(r)
    out = {k: np.array(v) for k, v in cols.items() if k != "reading"}
    out["reading"] = cols["reading"]
    return out


def _written(res: dict, prior: float) -> np.ndarray:
    """fusion's written_probability of every field at one miswriting prior (0 for empty boxes), cached."""
    key = ("_written", prior)
    if key not in res:
        res[key] = np.array([0.0 if r is None else r.written_probability(prior) for r in res["reading"]])
    return res[key]


def _corrections_ok(res: dict, rule: fusion.AcceptRule) -> np.ndarray:
    key = ("_corrections_ok", rule.accept_corrections, rule.correction_max_confidence)
    if key not in res:
        res[key] = np.array([r is not None and fusion.correction_allowed(r, rule) for r in res["reading"]])
    return res[key]


def accepted_mask(res: dict, rule: fusion.AcceptRule) -> np.ndarray:
    """fusion.is_accepted for every field (empty boxes -> never accepted): its two parts are computed once per
    prior and once per correction setting, so the sweep over thresholds costs a comparison each."""
    return _corrections_ok(res, rule) & (_written(res, rule.miswrite_prior) >= rule.threshold)


def clopper_pearson_upper(k: int, n: int, conf: float = 0.95) -> float:
    """One-sided upper confidence bound of a binomial rate (bisection on the binomial tail; no scipy)."""
    if n == 0:
        return 1.0
    if k >= n:
        return 1.0
    alpha = 1 - conf

    def tail(p):  # P(X <= k) for X ~ Bin(n, p), in log space
        from math import comb, exp, log
        if p <= 0:
            return 1.0
        terms = [log(comb(n, i)) + i * log(p) + (n - i) * log(1 - p) for i in range(k + 1)]
        m = max(terms)
        return exp(m) * sum(exp(x - m) for x in terms)

    lo, hi = k / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if tail(mid) > alpha:
            lo = mid
        else:
            hi = mid
    return hi


def rates(res: dict, rule: fusion.AcceptRule) -> dict:
    acc = accepted_mask(res, rule)
    valid = res["kind"] == "valid"
    mis = ~valid
    nv, nm = int(valid.sum()), int(mis.sum())
    correct = acc & valid & res["best_is_written"]
    wrong = acc & valid & ~res["best_is_written"]
    return {
        "rule": rule,
        "n_valid": nv,
        "n_miswritten": nm,
        "straight_through": correct.sum() / max(nv, 1),
        "wrong_valid": int(wrong.sum()),
        "wrong_per_1000": 1000 * wrong.sum() / max(nv, 1),
        "wrong_ucb_per_1000": 1000 * clopper_pearson_upper(int(wrong.sum()), nv),
        "miswritten_accepted": int((acc & mis).sum()),
    }


PRIORS = (0.02, 0.1, 0.3, 0.5)


def candidate_rules(floor: float, corrections_allowed: bool = True) -> list[fusion.AcceptRule]:
    return [fusion.AcceptRule(t, prior, corrections)
            for corrections in ((False, True) if corrections_allowed else (False,))
            for prior in PRIORS for t in GRID if t >= floor]


def choose_rule(res: dict, floor: float = 0.5, criterion: str = "strict", miswrite_rate: float = 0.02,
                corrections_allowed: bool = True) -> tuple[fusion.AcceptRule, list[dict]]:
    """The rule with the highest straight-through rate among those meeting the criterion."""
    table = [rates(res, rule) for rule in candidate_rules(floor, corrections_allowed)]
    for r in table:
        # upper bounds of both rates, mixed at the assumed prevalence of miswriting
        ucb_mis = clopper_pearson_upper(r["miswritten_accepted"], r["n_miswritten"])
        r["mixed_ucb_per_1000"] = (1 - miswrite_rate) * r["wrong_ucb_per_1000"] + miswrite_rate * 1000 * ucb_mis
    if criterion == "strict":
        ok = [r for r in table if r["miswritten_accepted"] == 0 and r["wrong_ucb_per_1000"] <= TARGET_WRONG * 1000]
    else:
        ok = [r for r in table if r["mixed_ucb_per_1000"] <= TARGET_WRONG * 1000]
    if not ok:
        return fusion.AcceptRule(GRID[-1], max(PRIORS), False), table
    # among equally good rules, the more cautious (no corrections, higher prior, higher threshold)
    best = max(ok, key=lambda r: (round(r["straight_through"], 4), not r["rule"].accept_corrections,
                                  r["rule"].miswrite_prior, r["rule"].threshold))
    return best["rule"], table


def pool_from_harvest(path: Path, clf: DigitClassifier) -> dict:
    """A digit pool from tools/harvest_form_digits.py output (digits cut from scanned forms)."""
    with np.load(path) as z:
        X, y = z["X"].astype(np.float32) / 255.0, z["y"].astype(np.int64)
    empty = X.reshape(len(X), -1).max(axis=1) == 0
    probs = np.full((len(X), 10), np.nan)
    for j in range(0, len(X), 2048):
        sl = slice(j, j + 2048)
        keep = ~empty[sl]
        probs[sl][keep] = clf.predict_proba(X[sl][keep])
    return {"probs": probs, "labels": y, "empty": empty, "src": np.arange(len(y))}


def near_number(valid: str, rng: np.random.Generator) -> str:
    """Another valid number as close to ``valid`` as a misread can make it: one digit changed and the check
    digit recomputed (equal in one case in eleven or so, when both residues give check digit 0)."""
    while True:
        s = list(valid[:11])
        i = int(rng.integers(11))
        s[i] = str((int(s[i]) + int(rng.integers(1, 10))) % 10)
        base = "".join(s)
        out = base + str(number.check_digit(base))
        if out != valid:
            return out


def document_match_table(pool: dict, rng: np.random.Generator, n: int) -> list[dict]:
    """How fusion.agrees_with_document behaves on held-out fields, for a grid of its parameters.

    For each field the document shows: the intended number (valid fields: settled is right; miswritten fields:
    settled gives the person's true number although the form is wrong), a valid number one misread away from
    the intended one (settled would be a wrong number), and an unrelated valid number."""
    by_label = [np.flatnonzero((pool["labels"] == d) & ~pool["empty"]) for d in range(10)]

    def probs_of(written: str) -> np.ndarray:
        return pool["probs"][[by_label[int(c)][rng.integers(len(by_label[int(c)]))] for c in written]]

    cases = []
    for k in range(n):
        intended = random_valid(rng)
        cases.append(("valid", probs_of(intended), intended, near_number(intended, rng), random_valid(rng)))
        written = miswrite(intended, rng, "substitution" if k % 2 == 0 else "transposition")
        cases.append(("miswritten", probs_of(written), intended, near_number(intended, rng), random_valid(rng)))
    rows = []
    for differing in (1, 2, 3):
        for max_conf in (0.8, 0.9, 0.95, 0.99):
            for min_prob in (0.001, 0.005, 0.02, 0.05, 0.1):
                kw = dict(max_differing=differing, max_confidence=max_conf, min_probability=min_prob)
                count = {"valid": [0, 0, 0], "miswritten": [0, 0, 0]}
                for kind, probs, intended, near, other in cases:
                    for j, doc in enumerate((intended, near, other)):
                        count[kind][j] += fusion.agrees_with_document(probs, doc, **kw).agrees
                rows.append({"kw": kw, "valid": [c / n for c in count["valid"]],
                             "miswritten": [c / n for c in count["miswritten"]],
                             "near_total": count["valid"][1] + count["miswritten"][1],
                             "other_total": count["valid"][2] + count["miswritten"][2]})
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=MODEL_PATH)
    ap.add_argument("--fields", type=int, default=40000, help="valid calibration fields")
    ap.add_argument("--miswritten", type=int, default=20000)
    ap.add_argument("--renders", type=int, default=2)
    ap.add_argument("--floor", type=float, default=0.5)
    ap.add_argument("--criterion", choices=("strict", "prevalence"), default="strict")
    ap.add_argument("--miswrite-rate", type=float, default=0.02,
                    help="share of people who miswrite their number (for --criterion prevalence)")
    ap.add_argument("--pool", type=Path, default=None,
                    help="digits cut from scanned forms (tools/harvest_form_digits.py --source calib) instead of "
                         "simulated box crops")
    ap.add_argument("--no-corrections", action="store_true",
                    help="only rules that never accept a correction of what the classifier read")
    ap.add_argument("--rule-name", choices=fusion.RULES, default="strict",
                    help="store the chosen rule under this name (pipeline/scan/fusion.py RULES)")
    ap.add_argument("--dry-run", action="store_true", help="do not write the threshold into the model file")
    ap.add_argument("--document-match", action="store_true",
                    help="instead: print how fusion.agrees_with_document (a field against the number on the kit's "
                         "ID copy) behaves on held-out fields, for a grid of its parameters; nothing is stored")
    args = ap.parse_args(argv)
    t0 = time.time()
    te = load_mnist_test()
    if te is None or not args.model.exists():
        print("held-out digits or model file not found; nothing calibrated")
        return 0
    clf = DigitClassifier.load(args.model)
    rng = np.random.default_rng(777)
    if args.pool is not None:
        pool = pool_from_harvest(args.pool, clf)
        what = f"{args.pool.name}: {len(pool['labels'])} digits cut from scanned forms"
    else:
        x, y = te
        idx = heldout_split(y, "calib")
        pool = digit_pool(x[idx], y[idx], clf, rng, renders=args.renders)
        what = f"{len(idx)} x {args.renders} simulated box crops"
    ok = ~pool["empty"]
    acc = float((pool["probs"][ok].argmax(1) == pool["labels"][ok]).mean())
    print(f"calibration digits: {what}, accuracy {acc * 100:.2f} %, "
          f"{int(pool['empty'].sum())} called empty  [{time.time() - t0:.0f}s]")
    if args.document_match:
        print(f"{'differ':>6} {'max conf':>8} {'min prob':>8} {'valid: same':>11} {'near':>8} {'other':>6} "
              f"{'miswritten: same':>16} {'near':>8} {'other':>6}   (share of {args.fields} fields each)")
        for r in document_match_table(pool, rng, args.fields):
            kw, v, m = r["kw"], r["valid"], r["miswritten"]
            mark = "  <- shipped" if (kw["max_differing"], kw["max_confidence"], kw["min_probability"]) == (
                fusion.DOCUMENT_MAX_DIFFERING, fusion.DOCUMENT_MAX_CONFIDENCE, fusion.DOCUMENT_MIN_PROBABILITY) else ""
            print(f"{kw['max_differing']:>6} {kw['max_confidence']:>8} {kw['min_probability']:>8} "
                  f"{v[0] * 100:>10.2f}% {v[1] * 100:>7.3f}% {v[2] * 100:>5.1f}% {m[0] * 100:>15.2f}% "
                  f"{m[1] * 100:>7.3f}% {m[2] * 100:>5.1f}%{mark}")
        return 0
    fields = make_fields(rng, args.fields, args.miswritten)
    res = read_fields(fields, pool, rng)
    rule, table = choose_rule(res, args.floor, args.criterion, args.miswrite_rate, not args.no_corrections)
    print(f"fields: {args.fields} valid, {args.miswritten} miswritten  [{time.time() - t0:.0f}s]")
    print(f"criterion: {args.criterion}" + (f" (miswriting rate {args.miswrite_rate:g})"
                                           if args.criterion == "prevalence" else ""))
    print(f"{'corr.':>5} {'prior':>6} {'threshold':>10} {'straight-through':>17} {'wrong/1000':>11} "
          f"{'UCB95/1000':>11} {'miswritten acc.':>16} {'mixed UCB/1000':>15}")
    for r in table:
        mark = "  <- chosen" if r["rule"] == rule else ""
        print(f"{'yes' if r['rule'].accept_corrections else 'no':>5} {r['rule'].miswrite_prior:>6.2f} "
              f"{r['rule'].threshold:>10.4f} {r['straight_through'] * 100:>16.2f}% {r['wrong_per_1000']:>11.3f} "
              f"{r['wrong_ucb_per_1000']:>11.3f} {r['miswritten_accepted']:>16d} "
              f"{r['mixed_ucb_per_1000']:>15.3f}{mark}")
    if not args.dry_run:
        with np.load(args.model, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        prefix = fusion.RULE_KEY_PREFIX[args.rule_name]
        arrays[prefix + "accept_threshold"] = np.float64(rule.threshold)
        arrays[prefix + "miswrite_prior"] = np.float64(rule.miswrite_prior)
        arrays[prefix + "accept_corrections"] = np.bool_(rule.accept_corrections)
        arrays[prefix + "correction_max_confidence"] = np.float64(rule.correction_max_confidence)
        save_model(arrays, args.model)
        print(f"stored {rule} as the {args.rule_name!r} rule in {args.model}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
