"""`mynumber redact IN... --out DIR [--json]`: black out My Numbers on ID copies and prove each copy clean.

Every input (image or PDF) is read page by page; each page is analysed, covered and read again (the
proof). An input whose every page is clean is written to DIR under the same name, as a flattened raster
of the same page sizes; an input with any page where a number can still be read is NOT written and is
reported as failed. Output never shows a number: counts, boxes and page numbers only.

Exit status: 0 all inputs written; 65 some input failed its proof or could not be read; 66 an input does
not exist; 69 tesseract missing or failing; 2 usage.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from ..errors import InputError, MyNumberError, NotFound, UsageError
from ..redact import documents
from ..redact.engine import RedactionFailed, redact_pages
from ..redact.tesseract import probe

log = logging.getLogger(__name__)

BATCH = 8    # pages redacted together


def register(sub) -> None:
    p = sub.add_parser("redact", help="black out My Numbers on ID copies (images, PDFs) and prove them clean",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("inputs", nargs="+", metavar="IN", help="images (png, jpg, tif, bmp, webp) or PDFs")
    p.add_argument("--out", required=True, metavar="DIR", help="directory for the redacted copies (same names)")
    p.add_argument("--json", action="store_true", help="print a JSON report (boxes and proof per page)")
    p.add_argument("--pdf-dpi", type=float, default=None, metavar="DPI",
                   help="rasterise PDF pages at this resolution (default: that of the page's images, or 300)")
    p.set_defaults(handler=run)


def _plan(args) -> tuple[list[Path], Path]:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: not a directory")
    inputs = [Path(p) for p in args.inputs]
    names: dict[str, Path] = {}
    for p in inputs:
        if p.name in names and names[p.name] != p:
            raise UsageError(f"two inputs are both named {p.name}: the outputs would collide")
        names[p.name] = p
        if p.exists() and (out / p.name).exists() and (out / p.name).resolve() == p.resolve():
            raise UsageError(f"{p}: --out would overwrite the input")
        try:
            documents.kind_of(p)    # unsupported types are a usage problem, found before any work
        except InputError as exc:
            raise UsageError(exc.message) from None
    return inputs, out


def redact_file(path: Path, out_dir: Path, *, pdf_dpi: float | None = None) -> dict:
    """Redact one input; write it only when every page is clean. Returns the report (no numbers in it)."""
    kind = documents.kind_of(path)
    pages = documents.read_pages(path, pdf_dpi=pdf_dpi)
    encode = documents.encoder_for(kind) if kind in documents.LOSSY or kind == "PDF" else None
    results = []
    for start in range(0, len(pages), BATCH):     # pages of a batch share tesseract processes
        batch = pages[start:start + BATCH]
        done = redact_pages([p.image for p in batch], dpis=[p.dpi for p in batch], encode=encode)
        for n, result in enumerate(done, start + 1):
            log.info("%s page %d: %d number(s), %d barcode(s) covered; proof %s", path.name, n,
                     result.numbers_covered, result.barcodes_covered, "clean" if result.proof_clean else "FAILED")
        results += done
    failed = [n for n, r in enumerate(results, 1) if not r.proof_clean]
    target = out_dir / path.name
    if not failed:
        if kind == "PDF":
            documents.write_pdf(target, [(r.image, r.payload, p.size_pt) for r, p in zip(results, pages)])
        else:
            documents.write_images(target, kind, [r.image for r in results], [r.payload for r in results])
    report = {
        "input": str(path), "output": None if failed else str(target),
        "status": "failed" if failed else "clean", "failed_pages": failed,
        "pages": [dict(page=n, dpi=p.dpi, **r.to_json()) for n, (r, p) in enumerate(zip(results, pages), 1)],
    }
    return report


def run(args) -> int:
    import cv2
    inputs, out = _plan(args)
    probe()                                  # a missing tesseract stops everything (exit 69) before any work
    cv2.setNumThreads(1)                     # tesseract runs in its own process meanwhile; no oversubscription
    reports, status = [], 0
    for path in inputs:
        try:
            report = redact_file(path, out, pdf_dpi=args.pdf_dpi)
        except (InputError, NotFound) as exc:
            report = {"input": str(path), "output": None, "status": "error", "error": exc.message, "pages": []}
            status = max(status, exc.exit_code)
        else:
            if report["status"] == "failed":
                status = max(status, RedactionFailed.exit_code)
        reports.append(report)
        if not args.json:
            _print_text(report)
    if args.json:
        json.dump({"inputs": reports}, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    failed = sum(1 for r in reports if r["status"] != "clean")
    if failed:
        print(f"mynumber: {failed} of {len(reports)} input(s) not written", file=sys.stderr)
    return status


def _print_text(report: dict) -> None:
    name = Path(report["input"]).name
    if report["status"] == "error":
        print(f"{name}: error: {report['error']}")
        return
    for page in report["pages"]:
        proof = page["proof"]
        verdict = "proof clean" if proof["clean"] else (
            f"FAILED: {proof['numbers_readable']} number(s) and {proof['barcodes_readable']} barcode(s) "
            f"still readable" + (f", {proof['unproven_rows']} row(s) of digits that may still hold a number (a "
                                 f"person must check them)" if proof.get("unproven_rows") else ""))
        print(f"{name} page {page['page']}: {page['numbers_covered']} number(s) and "
              f"{page['barcodes_covered']} barcode(s) covered with {len(page['boxes'])} box(es); {verdict}")
    if report["status"] == "clean":
        print(f"{name}: written to {report['output']}")
    else:
        print(f"{name}: NOT written (page(s) {', '.join(map(str, report['failed_pages']))} failed the proof)")


__all__ = ["register", "run", "redact_file", "MyNumberError"]
