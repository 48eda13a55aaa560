"""The intake stages. Each is `stage(work, ctx) -> None`: it reads and fills the PageWork and may set
`work.done` to stop the pages's journey (a foreign page is not aligned; a rejected tag is not read).
They touch no database; recording is the driver's last step, in one transaction per page."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

import re

from .. import number, qrtag
from ..kit.compose import fields_in_use
from ..layout import KitLayout, PageLayout
from ..track.receiving import FieldOutcome, PageFacts
from . import align, fields, printed, qr
from .sources import PageImage


_TWELVE_DIGITS = re.compile(r"(?<!\d)\d{12}(?!\d)")


@dataclass
class KitInfo:
    code: str
    dependents: int
    planned: set[tuple[str, int]]


@dataclass
class IntakeContext:
    layout: KitLayout
    tag_key: bytes
    kit_info: Callable[[str], KitInfo | None]     # looks a kit up (cached by the driver)
    read_field: Callable                           # (crops) -> fusion.FieldResult
    redact: Callable | None                        # (PIL image, dpi) -> redaction result, or None to skip
    second_reader: bool = True                     # tesseract as an independent check of unsure fields


@dataclass
class PageWork:
    source: PageImage
    facts: PageFacts
    gray: np.ndarray = field(repr=False, default=None)
    page_layout: PageLayout | None = None
    transform: align.PageTransform | None = None
    done: bool = False


def find_tag(work: PageWork, ctx: IntakeContext) -> None:
    image = work.source.image
    generic = ctx.layout.documents["provision_form"].page(1)  # the tag sits in the same place on every page
    codes = qr.find_tag_candidates(image, generic, work.source.dpi)
    ours = [c for c in codes if qrtag.looks_like_tag(c.text)]
    if not ours:
        everything = qr.find_all_codes(image)
        ours = [c for c in everything if qrtag.looks_like_tag(c.text)]
        if not ours:
            work.facts.checks["barcodes"] = [c.format for c in everything]
            # A card back's QR encodes the number itself: that page is an ID copy to black out, not foreign.
            carries_number = any(_TWELVE_DIGITS.search(number.normalise(c.text)) for c in everything)
            work.facts.status = "untagged" if not everything or carries_number else "foreign"
            if work.facts.status == "foreign":
                work.facts.message = f"another system's barcode ({', '.join(sorted({c.format for c in everything}))})"
                work.done = True
            return
    work.facts.checks["_corners"] = ours[0].corners
    work.facts.checks["_payload"] = ours[0].text


def verify_tag(work: PageWork, ctx: IntakeContext) -> None:
    if work.facts.status == "untagged":
        return
    payload = work.facts.checks.pop("_payload")
    try:
        tag = qrtag.decode(payload, ctx.tag_key)
    except qrtag.TagProblem as problem:
        work.facts.status, work.facts.message, work.done = "rejected_tag", problem.message, True
        work.facts.checks["reason"] = problem.reason
        return
    try:
        document = ctx.layout.by_code(tag.doc_code)
        page_layout = document.page(tag.page)
    except Exception:
        work.facts.status, work.done = "rejected_tag", True
        work.facts.message = f"kit {tag.kit}: document code {tag.doc_code} page {tag.page} is not in this layout"
        return
    if tag.fingerprint != document.fingerprint:
        work.facts.status, work.done = "rejected_tag", True
        work.facts.message = (f"kit {tag.kit} {document.document} page {tag.page} was printed from another version of "
                              f"the layout (fingerprint {tag.fingerprint}, current {document.fingerprint})")
        return
    info = ctx.kit_info(tag.kit)
    if info is None:
        work.facts.status, work.done = "rejected_tag", True
        work.facts.message = f"kit {tag.kit} is not registered in this data home"
        return
    work.facts.status, work.facts.kit_code = "kit_page", tag.kit
    work.facts.document, work.facts.doc_page = document.document, tag.page
    work.page_layout = page_layout


def align_page(work: PageWork, ctx: IntakeContext) -> None:
    if work.facts.status != "kit_page":
        return
    work.gray = np.asarray(work.source.image)
    corners = work.facts.checks.pop("_corners")
    first = align.from_tag(corners, work.page_layout)
    work.transform = align.refine_with_marks(work.gray, first, work.page_layout)
    work.facts.checks["marks_found"] = work.transform.marks_found


def read_numbers(work: PageWork, ctx: IntakeContext) -> None:
    if work.facts.status != "kit_page" or not work.page_layout.number_fields:
        return
    info = ctx.kit_info(work.facts.kit_code)
    unsure = []  # (outcome, crops, reading) the classifier alone would send to review
    for name in fields_in_use(work.facts.document, work.facts.doc_page, info.dependents):
        number_field = work.page_layout.field_named(name)
        crops = fields.box_crops(work.gray, work.transform, number_field)
        result = ctx.read_field(crops)
        reading = result.reading
        outcome = FieldOutcome(field=name, decision=result.decision,
                               confidence=None if reading is None else float(reading.probability))
        if result.decision == "accept":
            outcome.digits = reading.digits
        else:
            outcome.probs = result.probs     # None when a box is empty
        if 0 < result.empty_boxes < 12:
            outcome.decision, outcome.reason = "review", f"{result.empty_boxes} of 12 boxes empty"
        elif result.decision in ("review", "miswritten") and reading is not None and ctx.second_reader:
            unsure.append((outcome, crops, reading))
        work.facts.fields.append(outcome)
    if unsure:
        second = printed.read_strips([printed.digits_strip(crops) for _, crops, _ in unsure])
        for (outcome, _, reading), other in zip(unsure, second):
            if other is None or other != reading.raw_digits:
                continue
            if number.is_valid_digits(other):
                outcome.decision, outcome.digits, outcome.reason, outcome.probs = "accept", other, None, None
                outcome.confidence = float(reading.posterior_of_raw)
                work.facts.checks.setdefault("agreed_by_two_readers", []).append(outcome.field)
            else:
                outcome.decision, outcome.reason = "miswritten", "both readers read a number whose check digit fails"
    for outcome in work.facts.fields:
        if outcome.decision in ("review", "miswritten"):
            number_field = work.page_layout.field_named(outcome.field)
            ok, png = cv2.imencode(".png", fields.field_strip(work.gray, work.transform, number_field))
            outcome.crop_png = png.tobytes()


def check_marks(work: PageWork, ctx: IntakeContext) -> None:
    if work.facts.status != "kit_page":
        return
    page, g, t = work.page_layout, work.gray, work.transform
    if "consent" in page.checkboxes:
        work.facts.checks["consent"] = fields.is_ticked(g, t, page.checkboxes["consent"])
    if work.facts.document == "refusal_form":
        work.facts.checks["reasons"] = [n for n, r in page.checkboxes.items() if fields.is_ticked(g, t, r)]
    for rect in page.signatures.values():
        work.facts.checks["signed"] = fields.is_signed(g, t, rect)
    if page.paste_areas:
        work.facts.checks["pasted"] = any(fields.ink_fraction(g, t, r, inset_mm=2.0) > 0.01
                                          for r in page.paste_areas.values())


def redact_id_copies(work: PageWork, ctx: IntakeContext) -> None:
    """Untagged pages (loose ID copies) and the ID-copy sheet are stored only after their numbers are covered."""
    is_sheet = work.facts.status == "kit_page" and work.facts.document == "id_copy_sheet"
    if work.facts.status != "untagged" and not is_sheet:
        return
    if is_sheet and not work.facts.checks.get("pasted"):
        return  # our own blank sheet: nothing pasted, nothing to black out
    if ctx.redact is None:
        work.facts.status, work.facts.message = "problem", "redaction is not available; the page was not stored"
        work.done = True
        return
    try:
        result = ctx.redact(work.source.image, work.source.dpi)
        clean_image = result.require_clean()   # a page a number can still be read from is never stored
    except Exception as exc:  # a failed proof: the page must not be stored
        work.facts.status, work.done = "problem", True
        work.facts.message = (f"the ID copy could not be proven clean after redaction ({getattr(exc, 'message', exc)}); "
                              "it was not stored: black it out by hand")
        return
    work.facts.id_numbers = result.numbers_read()
    work.facts.checks["numbers_covered"] = int(result.numbers_covered)
    work.facts.checks["barcodes_covered"] = int(getattr(result, "barcodes_covered", 0))
    work.facts.checks["proof_clean"] = bool(result.proof_clean)
    ok, png = cv2.imencode(".png", np.asarray(clean_image.convert("L")))
    work.facts.image_bytes, work.facts.image_kind = png.tobytes(), "id_copy_redacted"


def encode_page(work: PageWork, ctx: IntakeContext) -> None:
    if work.facts.image_bytes is not None or work.facts.status != "kit_page":
        return
    if work.source.original_jpeg is not None:   # the scanner's own JPEG: better evidence, and no re-encoding
        work.facts.image_bytes, work.facts.image_kind = work.source.original_jpeg, "page"
        return
    gray = work.gray if work.gray is not None else np.asarray(work.source.image)
    ok, jpg = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 80])
    work.facts.image_bytes, work.facts.image_kind = jpg.tobytes(), "page"


STAGES: tuple[Callable[[PageWork, IntakeContext], None], ...] = (
    find_tag, verify_tag, align_page, read_numbers, check_marks, redact_id_copies, encode_page)


def run_stages(work: PageWork, ctx: IntakeContext) -> PageWork:
    for stage in STAGES:
        if work.done:
            break
        stage(work, ctx)
    work.facts.checks = {k: v for k, v in work.facts.checks.items() if not k.startswith("_")}
    return work
