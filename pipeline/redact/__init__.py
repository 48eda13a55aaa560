"""Black out My Numbers on copies of identity documents, and prove the copy is clean.

Units (Presidio-style): `analyzer` finds printed numbers and says where (OCR of candidate lines), with
`candidates` (text lines), `glyphs` (does a line look like digits), `orientation` (which way up),
`digits` (12-digit spans), `clarity` (is a reading clear) and `glyphreader` (the digit classifier as
second reader); `barcodes` finds codes whose payload holds a number; `redactor` draws solid boxes and
returns what it covered; `engine` runs analysis, drawing and the proof for one page (`redact_page`, the
API of the scan pipeline); `documents` reads images and PDFs and writes flattened rasters; `tesseract` is
the only way to OCR (the program, or the long-lived worker of `tessworker`).
"""
from .analyzer import Finding, OcrNumberAnalyzer, PageImage, default_analyzers
from .barcodes import BarcodeAnalyzer
from .engine import Proof, RedactionFailed, RedactionResult, prove, redact_page, redact_pages
from .redactor import Box, ImageRedactor

__all__ = ["BarcodeAnalyzer", "Box", "Finding", "ImageRedactor", "OcrNumberAnalyzer", "PageImage", "Proof",
           "RedactionFailed", "RedactionResult", "default_analyzers", "prove", "redact_page", "redact_pages"]
