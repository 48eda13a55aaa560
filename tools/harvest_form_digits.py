#!/usr/bin/env python3
"""Cut handwritten digits out of real, scanned kit forms: training and calibration data in the reader's domain.

A digit drawn into a simulated box crop (tools/train_digits.synth_box_crop) is not quite what the intake sees:
on a real form the digit is written with a pen, the page is printed, turned, skewed, scanned with noise and JPEG,
found by its QR, aligned by its marks and cut by `pipeline.scan.fields.box_crops`. This tool runs exactly that
path (tests/scansim fills and degrades printed provision forms; the intake's own stages align them) and keeps
what `prepare_box` makes of every box: the 28 x 28 input the classifier will see, with its label.

Which handwritten digits go in is chosen by --source, so that nothing held out leaks into training:
  train  MNIST training digits minus the validation split of tools/train_digits.py
  val    that validation split (5,000 digits)
  calib  MNIST test, even indices (threshold calibration, tools/calibrate_digits.py)
  bench  MNIST test, odd indices (reported by bench/bench_handwriting.py; never used to choose anything)
The output (an .npz outside the repo: it is derived from MNIST) holds X (N, 28, 28) uint8, y (N,), and per digit
the field it came from (`field_id`), so fields can be rebuilt. Run, e.g.:
  OMP_NUM_THREADS=1 .venv/bin/python tools/harvest_form_digits.py --source train --pages 2000 \
      --out /tmp/mynumber-form-digits/train.npz --workers 2
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

TOOLS = Path(__file__).resolve().parent
REPO = TOOLS.parent
for p in (str(REPO), str(TOOLS)):
    if p not in sys.path:
        sys.path.insert(0, p)

FIELDS = ("self", "dependent1", "dependent2", "dependent3")
DPI_CHOICES = (150, 200, 200, 240, 300, 300)
_STATE: dict = {}


def digit_source(source: str):
    """(images, labels) of the handwritten digits --source names."""
    import train_digits as td

    if source in ("train", "val"):
        tr = td.load_mnist_train()
        if tr is None:
            raise SystemExit("MNIST training digits not found (../shared/data/digits/mnist-train)")
        val_idx, tr_idx = td.validation_split(len(tr[1]))
        idx = tr_idx if source == "train" else val_idx
        return tr[0][idx], tr[1][idx]
    te = td.load_mnist_test()
    if te is None:
        raise SystemExit("MNIST test digits not found (../shared/data/digits/mnist)")
    idx = td.heldout_split(te[1], "calib" if source == "calib" else "bench")
    return te[0][idx], te[1][idx]


def _init(home: str, source: str) -> None:
    os.environ["MYNUMBER_HOME"] = home
    from pipeline import config
    from pipeline.scan.intake import build_context

    _STATE["ctx"] = build_context(config.load(), redact=None)
    _STATE["digits"] = digit_source(source)


def scan_filled_form(pdf: str, index: int, rng: np.random.Generator, numbers: list[str], source,
                     *, hard: bool = True):
    """Print page `index`, write `numbers` (one per field) by hand, scan it like a sheet-fed scanner, and run the
    intake's tag and alignment stages. Returns the PageWork (aligned, or not if the tag was not found)."""
    from pipeline import layout
    from pipeline.scan import stages
    from pipeline.scan.sources import PageImage
    from pipeline.track.receiving import PageFacts
    from tests import scansim

    page_layout = layout.load().documents["provision_form"].page(1)
    dpi = int(rng.choice(DPI_CHOICES))
    img = scansim.rasterise(pdf, index, dpi)
    for field, digits in zip(FIELDS, numbers):
        scansim.write_digits(img, page_layout, field, digits, dpi, style="handwritten", rng=rng,
                             handwritten_source=source)
    bilevel = hard and rng.random() < 0.12
    scan, _ = scansim.degrade(
        img, dpi, rng, rotate=int(rng.choice([0, 90, 180, 270])),
        skew_deg=float(rng.uniform(-4, 4)), noise=float(rng.uniform(0, 7)) if hard else 4.0,
        blur=float(rng.choice([0.0, 0.0, rng.uniform(0.3, 0.9)])) if hard else 0.0,
        jpeg_quality=int(rng.integers(60, 95)) if hard else 80, bilevel=bilevel,
        brightness=12.0 if hard else 0.0, contrast=0.1 if hard else 0.0)
    scan = scan.convert("L")
    facts = PageFacts(source_sha256="harvest", source_name="harvest", page_index=index, status="new")
    work = stages.PageWork(source=PageImage(Path("harvest"), index, scan, float(dpi), "harvest"), facts=facts)
    for stage in (stages.find_tag, stages.verify_tag, stages.align_page):
        if work.done:
            break
        stage(work, _STATE["ctx"])
    return work, page_layout


def _one_page(task):
    from pipeline.scan import fields as fields_mod
    from pipeline.scan.digits import prepare_box

    pdf, index, seed = task
    rng = np.random.default_rng(seed)
    numbers = ["".join(str(d) for d in rng.integers(0, 10, 12)) for _ in FIELDS]
    work, page_layout = scan_filled_form(pdf, index, rng, numbers, _STATE["digits"])
    if work.transform is None:
        return None
    xs, ys, fid, empty = [], [], [], 0
    for k, (field, digits) in enumerate(zip(FIELDS, numbers)):
        crops = fields_mod.box_crops(work.gray, work.transform, page_layout.field_named(field))
        for crop, label in zip(crops, digits):
            prepared = prepare_box(crop)
            if prepared is None:
                empty += 1
                prepared = np.zeros((28, 28), np.float32)  # kept, so every field stays 12 digits long
            xs.append(np.rint(prepared * 255).astype(np.uint8))
            ys.append(int(label))
            fid.append(k)
    return np.stack(xs), np.array(ys, np.uint8), np.array(fid, np.int32), empty


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", choices=("train", "val", "calib", "bench"), required=True)
    ap.add_argument("--pages", type=int, default=500, help="filled forms to scan (48 digits each)")
    ap.add_argument("--forms", type=int, default=24, help="distinct printed forms the pages are drawn from")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    if REPO in args.out.resolve().parents:
        raise SystemExit("the harvest is derived from MNIST: write it outside the repository")
    t0 = time.time()
    folder = Path(tempfile.mkdtemp(prefix="mynumber-harvest-"))
    try:
        from tests import scansim

        pages = scansim.print_provision_forms(folder, args.forms)
        tasks = [(str(folder / "kits.pdf"), pages[k % len(pages)], args.seed * 1_000_003 + k)
                 for k in range(args.pages)]
        with ProcessPoolExecutor(args.workers, initializer=_init,
                                 initargs=(str(folder / "home"), args.source)) as pool:
            results = list(pool.map(_one_page, tasks, chunksize=4))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    got = [r for r in results if r is not None]
    X = np.concatenate([r[0] for r in got])
    y = np.concatenate([r[1] for r in got])
    field_id = np.concatenate([r[2] + 4 * k for k, r in enumerate(got)])
    empty = sum(r[3] for r in got)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, X=X, y=y, field_id=field_id, source=args.source, seed=args.seed)
    print(f"{args.source}: {len(got)} of {len(results)} pages aligned, {len(y)} digits "
          f"({empty} called empty) in {time.time() - t0:.0f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
