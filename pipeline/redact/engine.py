"""One page: analyse, draw, prove. This is the API the scan pipeline calls.

    result = redact_page(pil_image)
    if result.proof_clean:
        store(result.image)            # only the redacted copy is stored
    log_event(page=n, **result.event())  # counts only, never a number

The proof reads the redacted raster again with the same line finder, filter and OCR, but harder than the
analysis did (both text axes, shorter lines, shorter digit rows, the covered regions once more at a
larger scale, barcodes on small pages also upscaled); what it would read exactly as before is not read
twice (the readers are deterministic): a line image the boxes did not change keeps its words, and a raster
the barcode reader already read keeps its reading. The analysers run in turn, each on the page as covered
by the ones before it, so on a page with no code to cover the barcode reader's raster IS the redacted page.
If any valid My Number can still be read, `proof_clean` is False and the page must not be stored or written.
"""
from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Callable, Sequence

from PIL import Image

from ..errors import ScanInputError
from . import analyzer as an
from .analyzer import Analyzer, Finding, PageImage
from .redactor import Box, ImageRedactor

log = logging.getLogger(__name__)


class RedactionFailed(ScanInputError):
    """The proof could still read a My Number on a redacted page: the page was not written (exit 65)."""


@dataclass(frozen=True)
class Proof:
    clean: bool
    numbers_readable: int     # printed numbers still readable after redaction
    barcodes_readable: int    # barcodes whose payload still gives a number
    boxes: tuple[Box, ...] = ()   # where (for a person to look at); never what
    unreadable_lines: int = 0     # line images tesseract crashed on (could not be read either way)
    unproven_rows: int = 0        # rows of digits not read clearly (they may hold a number a person can read)

    def to_json(self) -> dict:
        return {"clean": self.clean, "numbers_readable": self.numbers_readable,
                "barcodes_readable": self.barcodes_readable, "unreadable_lines": self.unreadable_lines,
                "unproven_rows": self.unproven_rows,
                "where": [b.to_json()["bbox"] for b in self.boxes]}


@dataclass(frozen=True)
class RedactionResult:
    image: Image.Image                 # the redacted page: a fresh raster without metadata
    boxes: tuple[Box, ...]             # what was covered, in page pixels
    numbers_covered: int               # distinct printed numbers covered
    barcodes_covered: int              # QR codes / barcodes covered
    proof: Proof
    findings: tuple[Finding, ...] = field(default=(), repr=False)
    payload: bytes | None = field(default=None, repr=False)   # the encoded page the proof read, if any

    @property
    def proof_clean(self) -> bool:
        return self.proof.clean

    @property
    def labelled_only(self) -> int:
        """Numbers covered because of a label although their check digit failed."""
        return sum(1 for f in self.findings if f.reason == "label")

    def numbers_read(self) -> list[str]:
        """The valid numbers this page showed (printed or in a code), to compare with the kit's handwritten
        form. In memory only: the caller seals them; never log or print them."""
        return sorted({f.digits for f in self.findings if f.check_digit_ok and f.digits})

    def event(self) -> dict:
        """What an event log may record about this page: counts, never a number."""
        return {"numbers_covered": self.numbers_covered, "barcodes_covered": self.barcodes_covered,
                "boxes": len(self.boxes), "proof_clean": self.proof_clean}

    def to_json(self) -> dict:
        return {"width": self.image.width, "height": self.image.height,
                "numbers_covered": self.numbers_covered, "barcodes_covered": self.barcodes_covered,
                "boxes": [b.to_json() for b in self.boxes], "proof": self.proof.to_json()}

    def require_clean(self) -> Image.Image:
        """The redacted image, or RedactionFailed when the proof could still read a number."""
        if not self.proof_clean:
            if self.proof.numbers_readable or self.proof.barcodes_readable:
                raise RedactionFailed(f"a My Number is still readable after redaction "
                                      f"({self.proof.numbers_readable} printed, {self.proof.barcodes_readable} "
                                      f"barcode); the page must not be stored")
            raise RedactionFailed(f"the redacted page could not be proven clean: {self.proof.unproven_rows} "
                                  f"row(s) of digits may still hold a number (not read clearly); the page must "
                                  f"not be stored (a person must redact it)")
        return self.image


def count(findings: Sequence[Finding]) -> tuple[int, int]:
    groups = an.merge(findings)
    numbers = sum(1 for g in groups if g[0].source != "barcode")
    return numbers, len(groups) - numbers


def _proof_of(found: Sequence[Finding], page: PageImage) -> Proof:
    # a number whose check digit fails is covered when labelled, but the proof is about valid numbers
    readable = [f for f in found if f.check_digit_ok]
    numbers, barcodes = count(readable)
    # a row of digits the proof cannot read clearly may be a number a person can read: not proven clean
    return Proof(not readable and not page.unproven, numbers, barcodes,
                 tuple(ImageRedactor().boxes_for(readable)), page.unreadable, page.unproven)


def prove(image: Image.Image, *, dpi: float | None = None, focus: Sequence[Box] = (),
          analyzers: Sequence[Analyzer] | None = None, memo: dict | None = None) -> Proof:
    """Read a redacted page again; clean when no valid My Number (text or barcode) can be read."""
    page = PageImage.from_pil(image, dpi, memo)
    page.focus = tuple(b.bbox() for b in focus)
    found = an.analyze(page, analyzers if analyzers is not None else an.default_analyzers(thorough=True))
    return _proof_of(found, page)


def redact_pages(images: Sequence[Image.Image], *, dpis: Sequence[float | None] | None = None,
                 analyzers: Sequence[Analyzer] | None = None, redactor: ImageRedactor | None = None,
                 proof_analyzers: Sequence[Analyzer] | None = None,
                 encode: Callable[[Image.Image], bytes] | None = None) -> list[RedactionResult]:
    """`redact_page` for several pages at once: same results, but the OCR of all pages goes to tesseract in
    shared batches (one per step and kind instead of one per page).

    The analysers run in turn, each reading the page with what the ones before it found already covered
    (the barcode reader sees the page with its printed numbers blacked out). So when the last analyser finds
    nothing, the page it read is the redacted page, and the proof's reading of that raster with the same
    reader is the one already made (the analysers remember their readings by raster; nothing is assumed)."""
    dpis = list(dpis) if dpis is not None else [None] * len(images)
    analyzers = list(analyzers) if analyzers is not None else an.default_analyzers()
    proof_analyzers = proof_analyzers if proof_analyzers is not None else an.default_analyzers(thorough=True)
    redactor = redactor or ImageRedactor()
    pages = [PageImage.from_pil(img, dpi, {}) for img, dpi in zip(images, dpis)]
    all_findings: list[list[Finding]] = [[] for _ in pages]
    reading = list(pages)                       # the page as the next analyser reads it
    drawn: list = [(None, [], 0)] * len(pages)  # (covered image, boxes, findings drawn)
    for k, analyzer in enumerate(analyzers):
        found = an.run_many([an.analyze_steps(p, [analyzer]) for p in reading])
        for i, f in enumerate(found):
            all_findings[i] += f
            if f and k + 1 < len(analyzers):
                drawn[i] = (*redactor.redact(images[i], all_findings[i]), len(all_findings[i]))
                reading[i] = PageImage.from_pil(drawn[i][0], pages[i].dpi, pages[i].memo)
    results_drawn, proof_pages, payloads = [], [], []
    for i, (image, page, findings) in enumerate(zip(images, pages, all_findings)):
        redacted, boxes, n_drawn = drawn[i]
        if redacted is None or n_drawn != len(findings):
            redacted, boxes = redactor.redact(image, findings)
            gray = None
        else:
            gray = reading[i].gray               # the raster the last analyser read: no second conversion
        payload = None
        if encode is not None:
            payload = encode(redacted)
            redacted = Image.open(io.BytesIO(payload))
            redacted.load()
            gray = None
        proof_page = PageImage(gray, page.dpi, memo=page.memo) if gray is not None else \
            PageImage.from_pil(redacted, page.dpi, page.memo)
        proof_page.focus = tuple(b.bbox() for b in boxes)
        results_drawn.append((redacted, boxes))
        proof_pages.append(proof_page)
        payloads.append(payload)
    proofs = an.run_many([an.analyze_steps(p, proof_analyzers) for p in proof_pages])
    results = []
    for (redacted, boxes), findings, found, proof_page, payload in zip(results_drawn, all_findings, proofs,
                                                                       proof_pages, payloads):
        proof = _proof_of(found, proof_page)
        numbers, barcodes = count(findings)
        log.info("page %dx%d: %d number(s) and %d barcode(s) covered with %d box(es); proof %s",
                 redacted.width, redacted.height, numbers, barcodes, len(boxes),
                 "clean" if proof.clean else "FAILED")
        results.append(RedactionResult(redacted, tuple(boxes), numbers, barcodes, proof, tuple(findings), payload))
    return results


def redact_page(image: Image.Image, *, dpi: float | None = None, analyzers: Sequence[Analyzer] | None = None,
                redactor: ImageRedactor | None = None, proof_analyzers: Sequence[Analyzer] | None = None,
                encode: Callable[[Image.Image], bytes] | None = None) -> RedactionResult:
    """Find the My Numbers (and number QR codes) on one page image, cover them, and prove the result.

    `image` may be any PIL mode; the result is a new grey (for grey input) or RGB raster of the same size.
    `encode` (e.g. to JPEG): the redacted page is encoded, decoded again, and the proof reads the decoded
    page, so what is proved is exactly what will be written (`result.payload`).
    Raises ExternalProgramError (exit 69) when tesseract is missing or fails."""
    return redact_pages([image], dpis=[dpi], analyzers=analyzers, redactor=redactor,
                        proof_analyzers=proof_analyzers, encode=encode)[0]
