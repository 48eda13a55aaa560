"""From twelve per-digit probability vectors to a decision on a handwritten My Number field.

The check digit makes most misreads visible: a single wrong digit (almost) always breaks it. This module
combines the classifier's per-digit probabilities with that constraint exactly, and decides what may go
straight through.

Decision (see :func:`decide`). The number a person writes is usually valid, but not always: a fraction
``miswrite_prior`` of fields hold a slip of the pen (any invalid string, all equally likely). Under that prior the
probability that the person wrote the best valid string s* is

    written_probability = L(s*) / (Z_valid + rho * (1 - Z_valid)),   rho = miswrite_prior / (9 (1 - miswrite_prior))

where L(s) is the product of the per-digit probabilities of s, Z_valid the total of L over all valid strings and
1 - Z_valid over all invalid ones (there are nine invalid strings for every valid one). This is what the check
digit can honestly contribute: if the classifier is sure of every digit and the string fails the check, the
invalid mass dominates and s* (a "repair") gets a tiny probability; if it hesitates between two readings of one
digit and only one of them is valid, s* gets most of the mass.

* ``"accept"`` when ``written_probability >= threshold`` and the raw reading (the most likely digit in each box)
  is s* itself, or, if the model file allows it (``accept_corrections``), when s* differs from the raw reading
  in one digit the classifier was unsure of (its raw digit below ``correction_max_confidence``). ``threshold``
  and ``miswrite_prior`` are chosen on held-out data by tools/calibrate_digits.py, so that wrongly accepted
  numbers stay below 1 per 1,000 fields and no miswritten number of the calibration set is accepted, and
  stored in the model file.
* ``"miswritten"`` when the raw reading fails the check digit although every digit was read with high confidence
  (``raw_probability >= miswritten_probability`` and each digit >= ``miswritten_digit_confidence``): most likely
  the person wrote an invalid number. It is never "corrected" into a valid one.
* ``"review"`` otherwise: a correction the rule above does not allow is a suggestion for the human reviewer.

Numbers are never logged, and the readings' repr leaves the digits out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from pipeline import number

N_DIGITS = 12
# weight of the digit at left-to-right position i (0..10): it is P_n with n = 11 - i, weight Q_n
_Q = tuple((n + 1) if n <= 6 else (n - 5) for n in range(1, 12))
WEIGHTS = np.array([_Q[10 - i] for i in range(11)], dtype=np.int64)
# for residue r = sum mod 11 of the first eleven digits, the check digit
CHECK_OF_RESIDUE = np.array([0 if r <= 1 else 11 - r for r in range(11)], dtype=np.int64)
# _PREV[i][d, r]: residue before position i that leads to residue r when digit d is written at i
_PREV = [np.array([[(r - int(WEIGHTS[i]) * d) % 11 for r in range(11)] for d in range(10)]) for i in range(11)]

DEFAULT_THRESHOLD = 0.999      # used only when the model file holds no calibrated accept_threshold
DEFAULT_MISWRITE_PRIOR = 0.1   # ditto for miswrite_prior: one field in ten miswritten is pessimistic
CORRECTION_MAX_CONFIDENCE = 0.9
MISWRITTEN_PROBABILITY = 0.98
MISWRITTEN_DIGIT_CONFIDENCE = 0.995


@dataclass(frozen=True)
class FieldReading:
    digits: str = field(repr=False)           # most likely 12-digit string that satisfies the check digit
    probability: float                        # its posterior among all strings satisfying the check digit
    raw_digits: str = field(repr=False)       # per-digit argmax
    raw_valid: bool                           # whether raw_digits satisfies the check digit
    min_digit_confidence: float               # smallest of the twelve per-digit top probabilities
    posterior_of_raw: float                   # posterior of raw_digits among valid strings (0 if invalid)
    raw_probability: float                    # product of the twelve per-digit top probabilities
    valid_mass: float = 1.0                   # Z_valid: total probability of all valid strings
    best_likelihood: float = 0.0              # L(digits): product of the per-digit probabilities of digits
    corrected_confidence: float = 0.0         # raw top probability at the digits that differ (0 if none)
    corrected_positions: int = 0              # how many digits differ between digits and raw_digits

    def written_probability(self, miswrite_prior: float) -> float:
        """Probability that the person wrote ``digits``, if a share ``miswrite_prior`` of fields is miswritten."""
        rho = miswrite_prior / (9.0 * (1.0 - miswrite_prior))
        denominator = self.valid_mass + rho * max(0.0, 1.0 - self.valid_mass)
        return min(1.0, self.best_likelihood / denominator) if denominator > 0 else 0.0

    @property
    def corrected(self) -> bool:
        """True when the best valid string differs from the raw reading."""
        return self.digits != self.raw_digits


def _as_probs(probs: np.ndarray) -> np.ndarray:
    p = np.asarray(probs, dtype=np.float64)
    if p.shape != (N_DIGITS, 10):
        raise ValueError("expected probabilities of shape (12, 10)")
    if not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("probabilities must be finite and non-negative")
    s = p.sum(axis=1, keepdims=True)
    if np.any(s <= 0):
        raise ValueError("each row of probabilities must have a positive sum")
    return p / s


def best_valid(probs: np.ndarray) -> FieldReading:
    """Most likely valid 12-digit string under independent per-digit probabilities, with exact posteriors.

    A dynamic programme over the first eleven positions tracks, for each residue r = sum(P_n Q_n) mod 11,
    the total probability of all prefixes with that residue (rescaled at each step) and the best prefix (in
    log space, with back-pointers). The twelfth digit must then be CHECK_OF_RESIDUE[r] (0 for both r = 0 and
    r = 1), so the mass of all valid strings is sum_r S[r] * p_12[check(r)], computed exactly.
    """
    p = _as_probs(probs)
    with np.errstate(divide="ignore"):
        logp = np.log(p)

    S = np.zeros(11)
    S[0] = 1.0
    log_scale = 0.0
    M = np.full(11, -np.inf)
    M[0] = 0.0
    back_prev = np.zeros((11, 11), dtype=np.int64)
    back_digit = np.zeros((11, 11), dtype=np.int64)
    for i in range(11):
        prev = _PREV[i]                                    # (10, 11)
        S = (S[prev] * p[i][:, None]).sum(axis=0)
        tot = S.sum()
        if tot <= 0:
            break
        S /= tot
        log_scale += math.log(tot)
        cand = M[prev] + logp[i][:, None]                  # (10, 11)
        d_best = cand.argmax(axis=0)
        M = cand[d_best, np.arange(11)]
        back_digit[i] = d_best
        back_prev[i] = prev[d_best, np.arange(11)]

    last = p[11][CHECK_OF_RESIDUE]                          # probability of the required check digit, per r
    mass = S * last
    total = mass.sum()
    log_z = math.log(total) + log_scale if total > 0 else -math.inf

    final = M + logp[11][CHECK_OF_RESIDUE]
    r = int(final.argmax())
    log_best = float(final[r])
    digits = [0] * 12
    digits[11] = int(CHECK_OF_RESIDUE[r])
    for i in range(10, -1, -1):
        digits[i] = int(back_digit[i][r])
        r = int(back_prev[i][r])
    best = "".join(map(str, digits))

    raw_idx = p.argmax(axis=1)
    raw = "".join(map(str, raw_idx.tolist()))
    top = p[np.arange(12), raw_idx]
    log_raw = float(np.log(top).sum())
    raw_valid = number.is_valid_digits(raw)
    posterior = math.exp(log_best - log_z) if np.isfinite(log_z) and np.isfinite(log_best) else 0.0
    post_raw = math.exp(log_raw - log_z) if raw_valid and np.isfinite(log_z) else 0.0
    differ = raw_idx != np.array(digits)
    return FieldReading(digits=best, probability=min(1.0, posterior), raw_digits=raw, raw_valid=raw_valid,
                        min_digit_confidence=float(top.min()), posterior_of_raw=min(1.0, post_raw),
                        raw_probability=float(math.exp(log_raw)),
                        valid_mass=min(1.0, math.exp(log_z)) if np.isfinite(log_z) else 0.0,
                        best_likelihood=math.exp(log_best) if np.isfinite(log_best) else 0.0,
                        corrected_confidence=float(top[differ].max()) if differ.any() else 0.0,
                        corrected_positions=int(differ.sum()))


@dataclass(frozen=True)
class AcceptRule:
    """What decides "accept": calibrated on held-out data and stored in the model file."""
    threshold: float = DEFAULT_THRESHOLD
    miswrite_prior: float = DEFAULT_MISWRITE_PRIOR
    accept_corrections: bool = False
    correction_max_confidence: float = CORRECTION_MAX_CONFIDENCE


RULES = ("strict", "balanced")
# Where each rule is stored in the model file (tools/calibrate_digits.py --rule-name):
#   strict    calibrated so that no miswritten field of the calibration set is accepted (the default);
#   balanced  calibrated so that wrong numbers accepted stay <= 1 per 1,000 fields when 2 % of people miswrite
#             (a miswritten number read confidently as a valid one is such a wrong number); opt-in, see
#             config [review] handwriting_rule.
RULE_KEY_PREFIX = {"strict": "", "balanced": "balanced_"}
_default_rules: dict[str, AcceptRule] = {}


def rule_from_model(path, name: str = "strict") -> AcceptRule:
    """The rule `name` stored in a model file (the defaults above for anything it lacks; a model without a
    calibrated `balanced` rule has none, and asking for it is an error)."""
    if name not in RULE_KEY_PREFIX:
        raise ValueError(f"unknown accept rule {name!r}: one of {', '.join(RULES)}")
    prefix = RULE_KEY_PREFIX[name]
    values = {}
    try:
        with np.load(path) as z:
            for key, field, kind in (("accept_threshold", "threshold", float),
                                     ("miswrite_prior", "miswrite_prior", float),
                                     ("accept_corrections", "accept_corrections", bool),
                                     ("correction_max_confidence", "correction_max_confidence", float)):
                if prefix + key in z.files:
                    values[field] = kind(z[prefix + key])
    except OSError:
        pass
    if prefix and "threshold" not in values:
        raise ValueError(f"the model file {path} holds no calibrated {name!r} rule")
    return AcceptRule(**values)


def default_rule(name: str = "strict") -> AcceptRule:
    """The rule `name` stored in the shipped model file."""
    if name not in _default_rules:
        from pipeline.scan.digits import MODEL_PATH

        _default_rules[name] = rule_from_model(MODEL_PATH, name)
    return _default_rules[name]


def correction_allowed(reading: FieldReading, rule: AcceptRule) -> bool:
    """Whether the rule lets s* stand where it differs from the raw reading (always, where it does not)."""
    return not reading.corrected or (rule.accept_corrections and reading.corrected_positions == 1
                                     and reading.corrected_confidence < rule.correction_max_confidence)


def is_accepted(reading: FieldReading, rule: AcceptRule) -> bool:
    return correction_allowed(reading, rule) and reading.written_probability(rule.miswrite_prior) >= rule.threshold


def decide(reading: FieldReading, rule: AcceptRule | None = None, *,
           miswritten_probability: float = MISWRITTEN_PROBABILITY,
           miswritten_digit_confidence: float = MISWRITTEN_DIGIT_CONFIDENCE) -> str:
    """"accept" | "review" | "miswritten" for one field reading; see the module docstring for the rule
    (default: the one stored in the shipped model file)."""
    rule = rule or default_rule()
    if is_accepted(reading, rule):
        return "accept"
    if (not reading.raw_valid and reading.raw_probability >= miswritten_probability
            and reading.min_digit_confidence >= miswritten_digit_confidence):
        return "miswritten"
    return "review"


# --- agreement with a number-check document ----------------------------------------------------------------
# The kit's ID copy (card back, notification card, residence certificate) carries the person's number in print;
# the redactor reads it (check digit valid, usually also from the card's QR code). A handwritten field the rule
# above does not accept is settled when its boxes agree with such a number: in every box the document's digit
# is what the classifier read, or, in at most DOCUMENT_MAX_DIFFERING boxes, a reading the classifier was unsure
# of (its top digit below DOCUMENT_MAX_CONFIDENCE) and that gives the document's digit a fair chance (at least
# DOCUMENT_MIN_PROBABILITY). A digit written clearly otherwise is a slip of the pen, or another person's
# number: that field goes to review. Chosen with tools/calibrate_digits.py --document-match on held-out digits.
DOCUMENT_MAX_DIFFERING = 2
DOCUMENT_MAX_CONFIDENCE = 0.9
DOCUMENT_MIN_PROBABILITY = 0.02


@dataclass(frozen=True)
class DocumentAgreement:
    agrees: bool
    differing: int     # boxes whose most likely digit is not the document's
    reason: str        # why not, for the review item (never a digit)


def agrees_with_document(probs: np.ndarray, document_digits: str, *,
                         max_differing: int = DOCUMENT_MAX_DIFFERING,
                         max_confidence: float = DOCUMENT_MAX_CONFIDENCE,
                         min_probability: float = DOCUMENT_MIN_PROBABILITY) -> DocumentAgreement:
    """Whether twelve boxes' probabilities are a reading of `document_digits` (see the comment above)."""
    if not number.is_valid_digits(document_digits):
        raise ValueError("a number-check document's number must satisfy the check digit")
    p = _as_probs(probs)
    want = np.array([int(c) for c in document_digits])
    top = p.argmax(axis=1)
    differ = np.flatnonzero(top != want)
    if len(differ) > max_differing:
        return DocumentAgreement(False, len(differ), f"{len(differ)} boxes read otherwise")
    for i in differ:
        if p[i, top[i]] >= max_confidence or p[i, want[i]] < min_probability:
            return DocumentAgreement(False, len(differ), "a box is clearly written otherwise")
    return DocumentAgreement(True, len(differ), "")


@dataclass(frozen=True)
class FieldResult:
    decision: str                      # "accept" | "review" | "miswritten" | "blank"
    reading: FieldReading | None       # None when a box was empty
    empty_boxes: int
    probs: np.ndarray | None = field(default=None, repr=False, compare=False)   # (12, 10) when no box is empty


def read_field(crops, classifier=None, rule: AcceptRule | None = None) -> FieldResult:
    """Read the twelve box crops of one number field and decide. All boxes empty -> "blank"; some empty ->
    "review" (a digit is missing: nothing to fuse)."""
    from pipeline.scan.digits import classify_boxes

    crops = list(crops)
    if len(crops) != N_DIGITS:
        raise ValueError(f"a My Number field has {N_DIGITS} boxes, got {len(crops)} crops")
    probs, empty = classify_boxes(crops, classifier)
    n_empty = int(empty.sum())
    if n_empty == N_DIGITS:
        return FieldResult("blank", None, n_empty)
    if n_empty:
        return FieldResult("review", None, n_empty)
    reading = best_valid(probs)
    return FieldResult(decide(reading, rule), reading, 0, np.asarray(probs, dtype=np.float32))
