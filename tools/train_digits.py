#!/usr/bin/env python3
"""Train the digit classifier shipped as pipeline/models/digits.npz (PyTorch on the CPU, fixed seeds).

Data (read in place, never copied into the repo; the script stops cleanly when it is absent):
  <data>/mnist-train/mnist_train_55k.npz   55,000 MNIST training digits   -> 50,000 train + 5,000 validation
  <data>/sklearn/digits.csv.gz             1,797 8x8 UCI digits            -> train
  <data>/mnist/t10k-*-idx*-ubyte.gz        10,000 MNIST test digits        -> HELD OUT (never trained on;
                                                                              calibrate/bench use it)
  printed digits rendered from the fonts of Debian packages on this machine (fonts-dejavu-core/-extra,
  fonts-ipaexfont-gothic and, if installed, fonts-liberation and fonts-noto-core): train slice + a held-out
  slice rendered with other seeds + two fonts held out entirely.
<data> is $DIGITS_DATA, else ../shared/data/digits next to the repo, else /work/shared/data/digits.

Every image (handwritten or printed) is first drawn into a simulated scanned box crop (light paper, noise,
blur, JPEG, stroke thickness, rotation/shear, the printed box border with +-1 mm offsets, strokes touching the
border, neighbouring boxes, bilevel scans, 150-600 dpi) by :func:`synth_box_crop` and then cleaned by the SAME
``pipeline.scan.digits.prepare_box`` used at run time. Each epoch sees a fresh rendering.

Digits cut from real scanned forms (tools/harvest_form_digits.py: MNIST training digits written with a pen into
printed provision forms, scanned, aligned and cut by the intake's own code) are added to every epoch with
--form-crops; their validation split (--form-val) is reported and also fits the temperature.

Run (background), as the shipped model was made (two networks from two seeds, about 37 minutes each on one
core, both at once on two cores; then combined into one ensemble file, whose logits are averaged):
  OMP_NUM_THREADS=1 .venv/bin/python tools/harvest_form_digits.py --source train --pages 1300 --seed 11 \
      --out /tmp/mynumber-form-digits/train.npz
  OMP_NUM_THREADS=1 .venv/bin/python tools/harvest_form_digits.py --source val --pages 120 --seed 12 \
      --out /tmp/mynumber-form-digits/val.npz
  for seed in 20241128 7; do OMP_NUM_THREADS=1 nohup .venv/bin/python tools/train_digits.py --threads 1 \
      --epochs 12 --rounds 1 --seed $seed --synthetic-per-epoch 30000 \
      --form-crops /tmp/mynumber-form-digits/train.npz --form-val /tmp/mynumber-form-digits/val.npz \
      --out /tmp/mynumber-form-digits/model_$seed.npz > /tmp/train_$seed.log 2>&1 & done; wait
  .venv/bin/python tools/train_digits.py --ensemble /tmp/mynumber-form-digits/model_20241128.npz \
      /tmp/mynumber-form-digits/model_7.npz --form-val /tmp/mynumber-form-digits/val.npz
The model, temperature (fitted on the validation split) and preprocessing parameters are written to
pipeline/models/digits.npz (--out); tools/calibrate_digits.py then adds the accept rules.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import cv2  # noqa: E402

from pipeline.scan.digits import BOX_H_MM, BOX_W_MM, MODEL_PATH, PREP_PARAMS, prepare_box  # noqa: E402

MODEL_VERSION = "digits-cnn-3x3-32-64-128-v5-forms"
SEED = 20241128


# ----------------------------------------------------------------------------------------------------------------
# Data


def data_dir() -> Path | None:
    cands = []
    if os.environ.get("DIGITS_DATA"):
        cands.append(Path(os.environ["DIGITS_DATA"]))
    cands += [REPO.parent / "shared" / "data" / "digits", Path("/work/shared/data/digits")]
    for c in cands:
        if (c / "mnist").is_dir() or (c / "mnist-train").is_dir():
            return c
    return None


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist_test(root: Path | None = None):
    root = root or data_dir()
    if root is None:
        return None
    d = root / "mnist"
    imgs = sorted(d.glob("t10k-images-idx*-ubyte.gz"))
    labs = sorted(d.glob("t10k-labels-idx*-ubyte.gz"))
    if not imgs or not labs:
        return None
    return _read_idx(imgs[0]), _read_idx(labs[0]).astype(np.int64)


def load_mnist_train(root: Path | None = None):
    root = root or data_dir()
    p = root / "mnist-train" / "mnist_train_55k.npz" if root else None
    if p is None or not p.exists():
        return None
    with np.load(p) as z:
        return z["images"], z["labels"].astype(np.int64)


def load_sklearn(root: Path | None = None):
    root = root or data_dir()
    p = root / "sklearn" / "digits.csv.gz" if root else None
    if p is None or not p.exists():
        return None
    a = np.loadtxt(p, delimiter=",", dtype=np.float32)
    imgs = (a[:, :64].reshape(-1, 8, 8) / 16.0 * 255).clip(0, 255).astype(np.uint8)
    return imgs, a[:, 64].astype(np.int64)


def validation_split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(validation, training) indices of the 55,000 MNIST training digits: 5,000 for validation."""
    perm = np.random.default_rng(SEED).permutation(n)
    return perm[:5000], perm[5000:]


def heldout_split(labels: np.ndarray, part: str) -> np.ndarray:
    """Indices of MNIST-test used for threshold calibration ('calib': even indices) or the report ('bench': odd)."""
    idx = np.arange(len(labels))
    return idx[0::2] if part == "calib" else idx[1::2]


# ----------------------------------------------------------------------------------------------------------------
# Printed digits


FONT_DIRS = ["/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/opentype/ipaexfont-gothic",
             "/usr/share/fonts/truetype/liberation", "/usr/share/fonts/truetype/noto"]
HELDOUT_FONTS = {"LiberationSansNarrow-Regular.ttf", "NotoSerif-Bold.ttf"}
_FONT_OK = ("DejaVuSans", "DejaVuSerif", "DejaVuSansMono", "ipaexg", "Liberation", "NotoSans-", "NotoSerif-",
            "NotoSansMono-")


def font_files() -> list[Path]:
    out = []
    for d in FONT_DIRS:
        p = Path(d)
        if not p.is_dir():
            continue
        for f in sorted(p.glob("*.[ot]tf")):
            n = f.name
            if "Math" in n or "ExtraLight" in n:
                continue
            if n.startswith("Noto") and not (n.startswith(("NotoSans-", "NotoSerif-", "NotoSansMono-"))):
                continue
            if any(n.startswith(k) for k in _FONT_OK):
                out.append(f)
    return out


def render_glyphs(fonts: list[Path], size: int = 96) -> list[tuple[np.ndarray, int, str]]:
    """(coverage image in [0,1] tightly cropped with a 2 px margin, digit, font file name) for each font x digit."""
    from PIL import Image, ImageDraw, ImageFont

    out = []
    for f in fonts:
        try:
            font = ImageFont.truetype(str(f), size)
        except OSError:
            continue
        for d in range(10):
            im = Image.new("L", (size * 2, size * 2), 0)
            ImageDraw.Draw(im).text((size // 2, size // 4), str(d), fill=255, font=font)
            a = np.asarray(im, np.float32) / 255.0
            ys, xs = np.nonzero(a > 0.05)
            if ys.size == 0:
                continue
            a = a[max(0, ys.min() - 2): ys.max() + 3, max(0, xs.min() - 2): xs.max() + 3]
            out.append((a, d, f.name))
    return out


# ----------------------------------------------------------------------------------------------------------------
# Simulated scanned box crops


def _coverage_1d(n: int, a: float, b: float) -> np.ndarray:
    """Fraction of each pixel [i, i+1) covered by the interval [a, b) (anti-aliased lines)."""
    i = np.arange(n, dtype=np.float32)
    return np.clip(np.minimum(i + 1, b) - np.maximum(i, a), 0, 1)


def _glyph_alpha(glyph: np.ndarray, rng: np.random.Generator, handwritten: bool) -> np.ndarray:
    """Source glyph (float [0,1], digit = 1) -> tightly cropped coverage with varied stroke thickness."""
    g = glyph.astype(np.float32)
    if g.max() > 1.0:
        g = g / 255.0
    ys, xs = np.nonzero(g > 0.1)
    if ys.size == 0:
        return g
    g = np.pad(g[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1], 2)
    return g


def synth_box_crop(glyph: np.ndarray | None, rng: np.random.Generator, *, handwritten: bool = True,
                   dpi: float | None = None, touch: float = 0.25, hard: float = 1.0) -> np.ndarray:
    """Grayscale uint8 crop of one printed box as a scanner stage would hand it over, with ``glyph`` written in it.

    glyph: the digit as an ink coverage image (float in [0,1] or uint8, white digit on black, any size, e.g. a
    28x28 MNIST digit or a rendered font glyph), or None for an empty box. ``touch``: probability that the digit
    is pushed into the border. ``hard`` scales the strength of the degradations (0 = clean scan).
    """
    dpi = float(dpi if dpi is not None else np.exp(rng.uniform(np.log(150), np.log(600))))
    s = dpi / 25.4
    mx, my = rng.uniform(0.0, 1.0, size=2)                     # surroundings included, mm per side
    dx, dy = np.clip(rng.normal(0, 0.45, size=2), -1, 1) * hard  # box offset relative to the nominal crop, mm
    cw_mm, ch_mm = BOX_W_MM + 2 * mx, BOX_H_MM + 2 * my
    W, H = max(12, int(round(cw_mm * s))), max(16, int(round(ch_mm * s)))

    # box edges in mm (crop coordinates)
    bx0, by0 = mx + dx, my + dy
    bx1, by1 = bx0 + BOX_W_MM, by0 + BOX_H_MM
    lt = rng.uniform(0.2, 0.45)  # line thickness, mm

    def hline(y_mm, x_a, x_b):
        return np.outer(_coverage_1d(H, (y_mm - lt / 2) * s, (y_mm + lt / 2) * s), _coverage_1d(W, x_a * s, x_b * s))

    def vline(x_mm, y_a, y_b):
        return np.outer(_coverage_1d(H, y_a * s, y_b * s), _coverage_1d(W, (x_mm - lt / 2) * s, (x_mm + lt / 2) * s))

    # the box and its neighbours (11 mm pitch: 1.5 mm gap): one outer product per horizontal line, one for all
    # the vertical lines
    xs_h = np.zeros(W, np.float32)
    xs_v = np.zeros(W, np.float32)
    for off in (-11.0, 0.0, 11.0):
        xs_h = np.maximum(xs_h, _coverage_1d(W, (bx0 + off - lt / 2) * s, (bx1 + off + lt / 2) * s))
        for x in (bx0 + off, bx1 + off):
            xs_v = np.maximum(xs_v, _coverage_1d(W, (x - lt / 2) * s, (x + lt / 2) * s))
    line_a = np.outer(_coverage_1d(H, (by0 - lt / 2) * s, (by1 + lt / 2) * s), xs_v)
    for y in (by0, by1):
        line_a = np.maximum(line_a, np.outer(_coverage_1d(H, (y - lt / 2) * s, (y + lt / 2) * s), xs_h))
    if rng.random() < 0.2:
        side = rng.choice([-1, 1])
        xa = bx1 + 0.4 if side > 0 else bx0 - 1.6
        dash = np.outer(_coverage_1d(H, (by0 + 6 - 0.09) * s, (by0 + 6 + 0.09) * s),
                        _coverage_1d(W, xa * s, (xa + 1.2) * s)) * 0.4
        line_a = np.maximum(line_a, dash)
    line_a = np.clip(line_a, 0, 1)

    ink_a = np.zeros((H, W), np.float32)
    if glyph is not None:
        g = _glyph_alpha(glyph, rng, handwritten)
        gh, gw = g.shape
        # digit size and shape
        if handwritten:
            height_mm = rng.uniform(5.0, 10.0)
        else:
            height_mm = rng.uniform(2.6, 8.5)
        aspect = rng.uniform(0.85, 1.2) if handwritten else rng.uniform(0.9, 1.1)
        rot = np.deg2rad(rng.uniform(-12, 12) * hard if handwritten else rng.uniform(-3, 3) * hard)
        shear = rng.uniform(-0.25, 0.25) * hard if handwritten else rng.uniform(-0.08, 0.08) * hard
        scale = height_mm * s / max(gh - 4, 1)
        A = np.array([[aspect, shear], [0.0, 1.0]]) @ np.array([[np.cos(rot), -np.sin(rot)],
                                                               [np.sin(rot), np.cos(rot)]])
        A = A * scale
        # transformed bounding box of the glyph
        corners = np.array([[0, 0], [gw, 0], [0, gh], [gw, gh]], np.float64) - [gw / 2, gh / 2]
        tc = corners @ A.T
        half_w, half_h = (tc[:, 0].max() - tc[:, 0].min()) / 2, (tc[:, 1].max() - tc[:, 1].min()) / 2
        max_w = (BOX_W_MM - 0.6) * s / 2
        if half_w > max_w:  # too wide for the box: shrink
            A *= max_w / half_w
            half_w, half_h = max_w, half_h * max_w / half_w
        # position inside the box, sometimes pushed into (and over) the border
        ix0, ix1 = bx0 * s + half_w + 0.3 * s, bx1 * s - half_w - 0.3 * s
        iy0, iy1 = by0 * s + half_h + 0.3 * s, by1 * s - half_h - 0.3 * s
        cx = ix0 + (ix1 - ix0) * rng.beta(2.0, 2.0) if ix1 > ix0 else (bx0 + bx1) / 2 * s
        cy = iy0 + (iy1 - iy0) * rng.beta(2.0, 2.0) if iy1 > iy0 else (by0 + by1) / 2 * s
        if rng.random() < (touch if handwritten else touch * 0.3):
            over = (rng.uniform(0.1, 0.9) if handwritten else rng.uniform(0.0, 0.5)) * s + 0.15 * s
            side = rng.integers(4)
            if side == 0:
                cy = by0 * s + half_h - over
            elif side == 1:
                cy = by1 * s - half_h + over
            elif side == 2:
                cx = bx0 * s + half_w - over
            else:
                cx = bx1 * s - half_w + over
        pre = min(1.0, scale * 1.2)  # downscale the source first (area filter) so thin strokes do not alias away
        if pre < 1.0:
            g = cv2.resize(g, (max(2, int(round(gw * pre))), max(2, int(round(gh * pre)))),
                           interpolation=cv2.INTER_AREA)
            A = A * (gw / g.shape[1])
            gh, gw = g.shape
        M = np.zeros((2, 3))
        M[:, :2] = A
        M[:, 2] = [cx, cy] - A @ np.array([gw / 2, gh / 2])
        warped = cv2.warpAffine(g, M, (W, H), flags=cv2.INTER_CUBIC if handwritten else cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        # stroke thickness: a varied iso-level of the soft glyph (about 1 px anti-aliased edge), then sometimes
        # a morphological change
        level = rng.uniform(0.25, 0.65) if handwritten else rng.uniform(0.35, 0.6)
        k = max(2.0, 1.5 * float(np.sqrt(abs(np.linalg.det(A)))))
        ink_a = np.clip((warped - level) * k + 0.5, 0, 1)
        u = rng.random()
        if u < 0.25 * hard:  # bolder pen (up to ~0.45 mm wider strokes; more closes the loops of small digits)
            r = max(1, int(round(rng.uniform(0.05, 0.22) * s)))
            ink_a = cv2.dilate(ink_a, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        elif u < 0.45 * hard and s > 8:  # finer pen
            r = max(1, int(round(rng.uniform(0.05, 0.12) * s)))
            er = cv2.erode(ink_a, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
            if er.sum() > 0.4 * ink_a.sum():
                ink_a = er
        ink_a = ink_a.astype(np.float32)
        if handwritten and rng.random() < 0.3 * hard:  # uneven pen pressure
            field = cv2.resize(rng.random((4, 4)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
            field = (field - field.min()) / max(float(field.max() - field.min()), 1e-6)
            ink_a *= 0.6 + 0.4 * field

    # composite: paper, lines, ink
    paper = rng.uniform(185, 252)
    pen = 0.0
    img = np.full((H, W), paper, np.float32)
    if rng.random() < 0.5 * hard:  # shading across the crop
        img += (rng.uniform(-12, 12) * (np.arange(W, dtype=np.float32) / W - 0.5))[None, :]
        img += (rng.uniform(-12, 12) * (np.arange(H, dtype=np.float32) / H - 0.5))[:, None]
    line_ink = rng.uniform(0, 80)
    img = img * (1 - line_a) + line_ink * line_a
    if glyph is not None:
        if not handwritten:
            pen = rng.uniform(0, 60)
        elif rng.random() > 0.15:
            pen = rng.uniform(0, 100)
        else:  # pencil / light ink, still clearly darker than the paper
            pen = paper - rng.uniform(60, 110)
        img = img * (1 - ink_a) + pen * ink_a
    # dust / stray marks
    if rng.random() < 0.3 * hard:
        for _ in range(rng.integers(1, 5)):
            r = max(1, int(round(rng.uniform(0.03, 0.15) * s)))
            cv2.circle(img, (int(rng.integers(W)), int(rng.integers(H))), r, float(rng.uniform(40, 170)), -1)
    # small skew of the whole scan
    if rng.random() < 0.5 * hard:
        ang = rng.uniform(-1.0, 1.0)
        R = cv2.getRotationMatrix2D((W / 2, H / 2), ang, 1.0)
        img = cv2.warpAffine(img, R, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    # optics, noise, quantisation
    sigma = rng.uniform(0.3, 1.3) * (0.5 + 0.5 * hard)
    img = cv2.GaussianBlur(img, (0, 0), sigma)
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(0, 10) * hard)
    out = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    u = rng.random()
    if u < 0.15 * hard:  # bilevel scan
        lo = max(100.0, pen + 35.0) if glyph is not None else 100.0
        out = np.where(out < rng.uniform(lo, max(lo, paper - 30.0)), 0, 255).astype(np.uint8)
    elif u < 0.65 * hard:  # JPEG
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 96))])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out


def prepared_set(images, labels, rng: np.random.Generator, *, handwritten=True, hard=1.0,
                 touch=0.25) -> tuple[np.ndarray, np.ndarray, int]:
    """Render each image into a box crop, run prepare_box; -> (X (N,28,28) float32, y, number that came out empty).

    Digits that prepare_box wrongly calls empty are kept as an all-zero image (the network learns nothing from
    them, and the count is reported)."""
    n = len(labels)
    X = np.zeros((n, 28, 28), np.float32)
    empty = 0
    for i in range(n):
        crop = synth_box_crop(images[i], rng, handwritten=handwritten, hard=hard, touch=touch)
        p = prepare_box(crop)
        if p is None:
            empty += 1
        else:
            X[i] = p
    return X, np.asarray(labels, np.int64), empty


# ----------------------------------------------------------------------------------------------------------------
# Model


def _jitter(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fixed crops seen every epoch: shift each by up to one pixel so the network cannot learn them by heart."""
    out = np.empty_like(x)
    shifts = rng.integers(-1, 2, size=(len(x), 2))
    for (dy, dx) in {(int(a), int(b)) for a, b in shifts}:
        sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
        out[sel] = np.roll(x[sel], (dy, dx), axis=(1, 2))
    return out


def build_model(c=(32, 64, 128), fc=128, dropout=0.25):
    import torch.nn as nn

    layers, cin = [], 1
    for co in c:
        layers += [nn.Conv2d(cin, co, 3, padding=1, bias=False), nn.BatchNorm2d(co), nn.ReLU(), nn.MaxPool2d(2)]
        cin = co
    layers += [nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin * 3 * 3, fc), nn.ReLU(), nn.Dropout(dropout),
               nn.Linear(fc, 10)]
    return nn.Sequential(*layers)


def export_arrays(model, input_mean: float, input_std: float) -> dict[str, np.ndarray]:
    """Fold batch-norm into the convolutions; weights in the (ky, kx, cin) x cout layout of the numpy code.

    The first dense layer is permuted from torch's (C, H, W) flatten order to numpy's (H, W, C) order."""
    import torch.nn as nn

    arrays: dict[str, np.ndarray] = {}
    mods = list(model)
    ci = fi = 0
    last_c = None
    for j, m in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            bn = mods[j + 1]
            w = m.weight.detach().double().numpy()            # (O, C, 3, 3)
            g = (bn.weight / (bn.running_var + bn.eps).sqrt()).detach().double().numpy()
            b = (bn.bias - bn.running_mean * bn.weight / (bn.running_var + bn.eps).sqrt()).detach().double().numpy()
            w = w * g[:, None, None, None]
            arrays[f"conv{ci}_w"] = w.transpose(2, 3, 1, 0).reshape(-1, w.shape[0]).astype(np.float32)
            arrays[f"conv{ci}_b"] = b.astype(np.float32)
            last_c = w.shape[0]
            ci += 1
        elif isinstance(m, nn.Linear):
            w = m.weight.detach().double().numpy()            # (out, in)
            if fi == 0:
                side = int(round((w.shape[1] / last_c) ** 0.5))
                w = w.reshape(w.shape[0], last_c, side, side).transpose(0, 2, 3, 1).reshape(w.shape[0], -1)
            arrays[f"fc{fi}_w"] = np.ascontiguousarray(w.T).astype(np.float32)
            arrays[f"fc{fi}_b"] = m.bias.detach().double().numpy().astype(np.float32)
            fi += 1
    arrays["input_mean"] = np.float32(input_mean)
    arrays["input_std"] = np.float32(input_std)
    return arrays


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood (golden-section search on log T)."""
    z = logits.astype(np.float64)

    def nll(t):
        a = z / t
        a = a - a.max(axis=1, keepdims=True)
        return float(-(a[np.arange(len(y)), y] - np.log(np.exp(a).sum(axis=1))).mean())

    lo, hi = np.log(0.3), np.log(5.0)
    gr = (5 ** 0.5 - 1) / 2
    for _ in range(60):
        a, b = hi - gr * (hi - lo), lo + gr * (hi - lo)
        if nll(np.exp(a)) < nll(np.exp(b)):
            hi = b
        else:
            lo = a
    return float(np.exp((lo + hi) / 2))


def save_model(arrays: dict[str, np.ndarray], path: Path, **meta) -> None:
    out = dict(arrays)
    for k, v in meta.items():
        out[k] = np.asarray(v)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez_compressed(tmp, **out)
    os.replace(tmp, path)


def combine_ensemble(paths: list[Path], cal_x: np.ndarray, cal_y: np.ndarray, out: Path, log) -> None:
    """One model file holding every network of ``paths`` (m0_..., m1_...); the classifier averages their
    logits. The temperature is fitted again, for the average, on the validation split."""
    from pipeline.scan.digits import DigitClassifier

    arrays: dict[str, np.ndarray] = {}
    versions, infos = [], []
    for i, path in enumerate(paths):
        with np.load(path) as z:
            if "members" in z.files:
                raise SystemExit(f"{path} is an ensemble already")
            prep = json.loads(str(z["prep_params"]))
            if prep != PREP_PARAMS:
                raise SystemExit(f"{path} was trained on other preprocessing than prepare_box's")
            for k in z.files:
                if k.startswith(("conv", "fc", "input_")):
                    arrays[f"m{i}_{k}"] = z[k]
            versions.append(str(z["version"]))
            infos.append(json.loads(str(z["train_info"])) if "train_info" in z.files else {})
    arrays["members"] = np.int64(len(paths))
    clf = DigitClassifier(arrays)
    logits = clf.logits(cal_x)
    for i, net in enumerate(clf.networks):
        log(f"member {i} ({paths[i].name}): validation {float((net.logits(cal_x).argmax(1) == cal_y).mean()) * 100:.2f}%")
    log(f"ensemble: validation {float((logits.argmax(1) == cal_y).mean()) * 100:.2f}%")
    temp = fit_temperature(logits, cal_y)
    log(f"temperature {temp:.3f}")
    version = f"ensemble{len(paths)}-" + versions[0]
    save_model(arrays, out, version=version, temperature=np.float32(temp), prep_params=json.dumps(PREP_PARAMS),
               train_info=json.dumps({"members": infos}))
    log(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB); re-run tools/calibrate_digits.py")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2, help="distinct renderings of the training set, cycled")
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    ap.add_argument("--limit", type=int, default=0, help="use only this many MNIST training digits (smoke test)")
    ap.add_argument("--printed-per-epoch", type=int, default=8000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--form-crops", type=Path, default=None,
                    help="digits cut from scanned forms (tools/harvest_form_digits.py --source train), added to "
                         "every epoch")
    ap.add_argument("--form-val", type=Path, default=None,
                    help="the same for the validation split (--source val): reported, and used for the temperature")
    ap.add_argument("--synthetic-per-epoch", type=int, default=0,
                    help="use only this many of the simulated handwritten crops per epoch (0: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=SEED,
                    help="seed of the weights and the training renderings (the validation split never changes); "
                         "networks trained from different seeds make an ensemble (--ensemble)")
    ap.add_argument("--ensemble", type=Path, nargs="+", default=None,
                    help="do not train: combine these trained model files into one ensemble (logits averaged), "
                         "fit its temperature on the validation split and write it to --out")
    args = ap.parse_args(argv)

    import torch
    import torch.nn as nn

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    t0 = time.time()

    def log(msg):  # wall-clock and CPU seconds (the machine may be shared)
        print(f"[{time.time() - t0:7.1f}s wall, {time.process_time():7.1f}s cpu] {msg}", flush=True)

    root = data_dir()
    tr = load_mnist_train(root) if root else None
    te = load_mnist_test(root) if root else None
    if tr is None or te is None:
        log("digit data not found (set DIGITS_DATA); nothing trained")
        return 0
    sk = load_sklearn(root)
    mn_x, mn_y = tr
    val_idx, tr_idx = validation_split(len(mn_y))
    if args.limit:
        tr_idx = tr_idx[: args.limit]
    hw_x = [mn_x[tr_idx]]
    hw_y = [mn_y[tr_idx]]
    if sk is not None:
        hw_x.append(list(sk[0]))
        hw_y.append(sk[1])
    hw_images = list(hw_x[0]) + (list(hw_x[1]) if len(hw_x) > 1 else [])
    hw_labels = np.concatenate(hw_y)

    fonts = font_files()
    glyphs = render_glyphs(fonts)
    train_glyphs = [g for g in glyphs if g[2] not in HELDOUT_FONTS]
    log(f"handwritten train {len(hw_labels)} (MNIST {len(tr_idx)}, sklearn {0 if sk is None else len(sk[1])}); "
        f"validation {len(val_idx)}; fonts {len(fonts)} ({len(train_glyphs) // 10} for training); "
        f"held-out MNIST-test {len(te[1])} never used here")

    def printed_round(n, r):
        pick = r.integers(len(train_glyphs), size=n)
        return prepared_set([train_glyphs[k][0] for k in pick], [train_glyphs[k][1] for k in pick], r,
                            handwritten=False)

    # validation: MNIST validation digits + printed, rendered once
    vrng = np.random.default_rng(SEED + 1)
    vx, vy, ve = prepared_set(mn_x[val_idx], mn_y[val_idx], vrng)
    pvx, pvy, pve = printed_round(2000, vrng)
    log(f"validation rendered ({ve}+{pve} called empty)")

    def load_harvest(path):
        with np.load(path) as z:
            x, y = z["X"].astype(np.float32) / 255.0, z["y"].astype(np.int64)
        keep = x.reshape(len(x), -1).max(axis=1) > 0   # boxes prepare_box called empty teach nothing
        return x[keep], y[keep]

    fx = fy = fvx = fvy = None
    if args.form_crops:
        fx, fy = load_harvest(args.form_crops)
        log(f"form crops: {len(fy)} digits cut from scanned forms")
    if args.form_val:
        fvx, fvy = load_harvest(args.form_val)
        log(f"form validation crops: {len(fvy)}")

    if args.ensemble:
        cal_x, cal_y = [vx, pvx], [vy, pvy]
        if fvx is not None:
            cal_x.append(fvx)
            cal_y.append(fvy)
        combine_ensemble(args.ensemble, np.concatenate(cal_x), np.concatenate(cal_y), args.out, log)
        return 0

    model = build_model()
    nparams = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    n_synth = min(len(hw_labels), args.synthetic_per_epoch or len(hw_labels))
    n_epoch = n_synth + args.printed_per_epoch + (0 if fy is None else len(fy))
    steps_per_epoch = (n_epoch + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps_per_epoch * args.epochs,
                                                pct_start=0.15)
    mean, std = 0.13, 0.31
    lossf = nn.CrossEntropyLoss(label_smoothing=0.0)

    def to_t(x):
        return torch.from_numpy((x - mean) / std).unsqueeze(1)

    def evaluate(x, y):
        was_training = model.training
        model.eval()
        outs = []
        with torch.no_grad():
            for i in range(0, len(y), 1000):
                outs.append(model(to_t(x[i:i + 1000])).numpy())
        model.train(was_training)
        lg = np.concatenate(outs)
        return lg, float((lg.argmax(1) == y).mean())

    log(f"model {nparams} parameters; {args.epochs} epochs x {steps_per_epoch} steps")
    rounds: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for ep in range(args.epochs):
        rk = ep % args.rounds
        erng = np.random.default_rng(args.seed + 100 + ep)
        if rk not in rounds:  # a fresh rendering of every training image (the costly part: ~3-5 ms an image)
            rrng = np.random.default_rng(args.seed + 1000 + rk)
            hx, hy, he = prepared_set(hw_images, hw_labels, rrng)
            px, py, pe = printed_round(args.printed_per_epoch, rrng)
            X = np.concatenate([hx, px])
            Y = np.concatenate([hy, py])
            keep = X.reshape(len(X), -1).max(axis=1) > 0
            rounds[rk] = (X[keep], Y[keep])
            log(f"rendering {rk + 1}/{args.rounds}: {int(keep.sum())} images ({he + pe} called empty, skipped)")
        X, Y = rounds[rk]
        n_printed = args.printed_per_epoch
        pick = np.concatenate([erng.permutation(len(Y) - n_printed)[:n_synth], np.arange(len(Y) - n_printed, len(Y))])
        X, Y = X[pick], Y[pick]
        if fx is not None:
            X, Y = np.concatenate([X, _jitter(fx, erng)]), np.concatenate([Y, fy])
        order = erng.permutation(len(Y))
        model.train()
        tot = 0.0
        for bi in range(0, len(order), args.batch):
            b = order[bi:bi + args.batch]
            xb, yb = to_t(X[b]), torch.from_numpy(Y[b])
            loss = lossf(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched.last_epoch + 1 < sched.total_steps:
                sched.step()
            tot += loss.item() * len(b)
        _, va = evaluate(vx, vy)
        _, pa = evaluate(pvx, pvy)
        fa = evaluate(fvx, fvy)[1] if fvx is not None else float("nan")
        log(f"epoch {ep + 1}: loss {tot / len(order):.4f}  val handwritten {va * 100:.2f}%  "
            f"val printed {pa * 100:.2f}%  val form crops {fa * 100:.2f}%")

    model.eval()
    cal_x, cal_y = [vx, pvx], [vy, pvy]
    if fvx is not None:  # the temperature must fit what the reader sees on forms, too
        cal_x.append(fvx)
        cal_y.append(fvy)
    vlog, va = evaluate(np.concatenate(cal_x), np.concatenate(cal_y))
    temp = fit_temperature(vlog, np.concatenate(cal_y))
    log(f"temperature {temp:.3f} (fitted on the validation split)")
    arrays = export_arrays(model, mean, std)

    # check the numpy export against torch
    from pipeline.scan.digits import DigitClassifier

    clf = DigitClassifier({**arrays, "temperature": np.float32(temp)})
    np_logits = clf.logits(vx[:200])
    with torch.no_grad():
        t_logits = model(to_t(vx[:200])).numpy()
    err = float(np.abs(np_logits - t_logits).max())
    log(f"numpy vs torch max |logit diff| {err:.2e}")
    if err > 1e-2:
        raise SystemExit("numpy export does not match the torch model")

    meta = dict(version=MODEL_VERSION, temperature=np.float32(temp), prep_params=json.dumps(PREP_PARAMS),
                train_info=json.dumps({"seed": args.seed, "epochs": args.epochs, "mnist_train": int(len(tr_idx)),
                                       "sklearn": 0 if sk is None else int(len(sk[1])),
                                       "printed_per_epoch": args.printed_per_epoch, "rounds": args.rounds,
                                       "form_crops": 0 if fy is None else int(len(fy)),
                                       "synthetic_per_epoch": int(n_synth),
                                       "fonts_train": sorted({g[2] for g in train_glyphs}),
                                       "fonts_heldout": sorted(HELDOUT_FONTS),
                                       "val_accuracy": va, "seconds": round(time.time() - t0),
                                       "cpu_seconds": round(time.process_time())}))
    # no accept_threshold: a new model must be calibrated again (tools/calibrate_digits.py)
    save_model(arrays, args.out, **meta)
    log(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB); re-run tools/calibrate_digits.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
