"""Streaming PDF writer with one embedded, subset TrueType font.

Why not reportlab/fpdf: they hold every page in memory until save, and a
roster of 15,000 people is ~90,000 pages in one file.  Here every finished
page is written out immediately; what stays in memory is the xref offsets, the
current page-tree leaf and the glyphs used so far.  The font is embedded (as a
subset) so the kits print identically on machines without Japanese fonts.

Units are millimetres, origin at the page's top-left corner, y growing
downwards; everything is converted to PDF points on the way out.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zlib
from array import array
from typing import BinaryIO, Sequence

from fontTools import subset as _ft_subset
from fontTools.ttLib import TTFont

__all__ = ["PdfWriter", "Page"]

PT_PER_MM = 72.0 / 25.4
PRODUCER = "mynumber-pipeline"
_LEAF_SIZE = 64          # pages per intermediate /Pages node
_XREF_CHUNK = 8192       # xref entries formatted per write()
_RUN_RE = re.compile(rb"\x01+")
_TO_BIT = bytes([0] + [1] * 255)
_ZLIB_LEVEL = 3          # half the time of level 6 for ~13% larger page streams


def _num(v: float) -> str:
    """Trim only the cheap, common case (integers); '12.50' is valid PDF."""
    s = f"{v:.2f}"
    return s[:-3] if s.endswith(".00") else s


def _pdf_utf16(s: str) -> str:
    return "<FEFF" + s.encode("utf-16-be").hex().upper() + ">"


class _GlyphHex(dict):
    """char -> 4-hex-digit GID; the first lookup of a char records it as used,
    so the hot path pays nothing for tracking the subset."""

    __slots__ = ("_cmap", "_used")

    def __init__(self, cmap: dict[int, int], used: dict[int, str]):
        super().__init__()
        self._cmap = cmap
        self._used = used

    def __missing__(self, ch: str) -> str:
        if ch == "\n":
            raise ValueError("newline in text: callers must break lines themselves")
        gid = self._cmap.get(ord(ch), 0)
        if gid and gid not in self._used:
            self._used[gid] = ch          # first char wins for /ToUnicode
        h = f"{gid:04X}"
        self[ch] = h
        return h


class _Advance(dict):
    """char -> advance width in font units (no subset side effects)."""

    __slots__ = ("_cmap", "_adv")

    def __init__(self, cmap: dict[int, int], adv: list[int]):
        super().__init__()
        self._cmap = cmap
        self._adv = adv

    def __missing__(self, ch: str) -> int:
        if ch == "\n":
            raise ValueError("newline in text: callers must break lines themselves")
        w = self._adv[self._cmap.get(ord(ch), 0)]
        self[ch] = w
        return w


def _page_closed(*_a) -> None:
    raise RuntimeError("page already ended")


class Page:
    """Collects one page's content stream; PdfWriter.end_page() flushes it.

    Graphics state (colours, line width, dash, font size) is tracked so each
    operator is emitted only when it changes: smaller streams, less formatting.
    """

    __slots__ = ("_glyph", "_advance", "_pt_per_unit", "_emit", "_parts",
                 "width_mm", "height_mm", "_h", "_fill", "_stroke", "_lw", "_dash", "_size")

    def __init__(self, writer: "PdfWriter", width_mm: float, height_mm: float):
        # Bound lookups: text() is the hot path.
        self._glyph = writer._hex.__getitem__
        self._advance = writer._adv.__getitem__
        self._pt_per_unit = writer._pt_per_unit
        self._parts: list[str] = []
        self._emit = self._parts.append
        self.width_mm = width_mm
        self.height_mm = height_mm
        self._h = height_mm * PT_PER_MM
        # PDF initial graphics state
        self._fill = 0.0
        self._stroke = 0.0
        self._lw = 1.0
        self._dash: tuple | None = None
        self._size = -1.0

    # -- state helpers -------------------------------------------------
    def _set_fill(self, g: float) -> None:
        if g != self._fill:
            self._fill = g
            self._emit(f"{_num(g)} g\n")

    def _set_stroke(self, g: float, lw: float, dash) -> None:
        emit = self._emit
        if g != self._stroke:
            self._stroke = g
            emit(f"{_num(g)} G\n")
        if lw != self._lw:
            self._lw = lw
            emit(f"{_num(lw)} w\n")
        if dash != self._dash:
            self._dash = dash
            if dash:
                emit(f"[{_num(dash[0] * PT_PER_MM)} {_num(dash[1] * PT_PER_MM)}] 0 d\n")
            else:
                emit("[] 0 d\n")

    # -- drawing -------------------------------------------------------
    def text(self, x_mm: float, y_mm: float, text: str, size_pt: float, *,
             anchor: str = "left", gray: float = 0.0) -> None:
        """y_mm is the baseline.  Anchoring uses the same hmtx widths as /W,
        so centred/right-aligned text lands where text_width() says."""
        s = "".join(map(self._glyph, text))
        if anchor != "left":
            width = sum(map(self._advance, text)) * size_pt * self._pt_per_unit
            if anchor == "center":
                x = x_mm * PT_PER_MM - width / 2
            elif anchor == "right":
                x = x_mm * PT_PER_MM - width
            else:
                raise ValueError(f"anchor must be left|center|right, not {anchor!r}")
        else:
            x = x_mm * PT_PER_MM
        if gray != self._fill:
            self._set_fill(gray)
        if size_pt != self._size:
            self._size = size_pt
            self._emit(f"BT /F1 {_num(size_pt)} Tf {x:.2f} {self._h - y_mm * PT_PER_MM:.2f} Td <{s}> Tj ET\n")
        else:
            self._emit(f"BT {x:.2f} {self._h - y_mm * PT_PER_MM:.2f} Td <{s}> Tj ET\n")

    def rect(self, x_mm: float, y_mm: float, w_mm: float, h_mm: float, *,
             stroke: bool = True, fill: bool = False, line_width_pt: float = 0.5,
             gray: float = 0.0, fill_gray: float | None = None,
             dash: tuple[float, float] | None = None) -> None:
        """(x, y) is the top-left corner.  `gray` is the stroke colour and also
        the fill colour unless fill_gray is given; dash is (on, off) in mm."""
        if not (stroke or fill):
            return
        if fill:
            self._set_fill(gray if fill_gray is None else fill_gray)
            op = "B" if stroke else "f"
        else:
            op = "S"
        if stroke:
            self._set_stroke(gray, line_width_pt, dash)
        self._emit(f"{x_mm * PT_PER_MM:.2f} {self._h - (y_mm + h_mm) * PT_PER_MM:.2f} "
                   f"{w_mm * PT_PER_MM:.2f} {h_mm * PT_PER_MM:.2f} re {op}\n")

    def line(self, x1_mm: float, y1_mm: float, x2_mm: float, y2_mm: float, *,
             line_width_pt: float = 0.5, gray: float = 0.0,
             dash: tuple[float, float] | None = None) -> None:
        self._set_stroke(gray, line_width_pt, dash)
        h = self._h
        self._emit(f"{x1_mm * PT_PER_MM:.2f} {h - y1_mm * PT_PER_MM:.2f} m "
                   f"{x2_mm * PT_PER_MM:.2f} {h - y2_mm * PT_PER_MM:.2f} l S\n")

    def modules(self, x_mm: float, y_mm: float, module_mm: float,
                matrix: Sequence[Sequence]) -> None:
        """Draw a QR/2D matrix as one path fill.

        A flipped `cm` puts the path in module units (integers, y down), so
        runs are exact, cheap to format, and adjacent rows leave no seams.
        """
        self._set_fill(0.0)
        m = module_mm * PT_PER_MM
        out = [f"q {m:.4f} 0 0 {-m:.4f} {x_mm * PT_PER_MM:.2f} {self._h - y_mm * PT_PER_MM:.2f} cm\n"]
        add = out.append
        finditer = _RUN_RE.finditer
        for r, row in enumerate(matrix):
            # segno rows are bytearrays: normalise to 0/1 in C; else map(bool).
            row = row.translate(_TO_BIT) if isinstance(row, (bytes, bytearray)) else bytes(map(bool, row))
            for mo in finditer(row):
                s, e = mo.span()
                add(f"{s} {r} {e - s} 1 re\n")
        add("f Q\n")
        self._emit("".join(out))


class PdfWriter:
    """Writes pages to `target` as they are finished; close() adds the font
    subset, page tree, catalog, info and xref.  A path target is opened and
    closed here; a caller's stream is flushed but left open."""

    def __init__(self, target: str | os.PathLike | BinaryIO, font_path: str | os.PathLike,
                 *, title: str = "", compress: bool = True):
        self._title = title
        self._compress = compress
        # Font first: a bad font path should fail before any file is created.
        font = TTFont(os.fspath(font_path), lazy=True)
        self._font = font
        rev = font.getReverseGlyphMap()
        cmap = {cp: rev[name] for cp, name in font.getBestCmap().items()}
        order = font.getGlyphOrder()
        metrics = font["hmtx"].metrics
        self._adv_units = [metrics[n][0] for n in order]
        upm = font["head"].unitsPerEm
        self._upm = upm
        self._pt_per_unit = 1.0 / upm
        self._mm_per_unit = 1.0 / upm / PT_PER_MM
        self._used: dict[int, str] = {}                # gid -> first char
        self._hex = _GlyphHex(cmap, self._used)
        self._adv = _Advance(cmap, self._adv_units)

        if isinstance(target, (str, os.PathLike)):
            self._fh: BinaryIO = open(target, "wb", buffering=1 << 20)
            self._owns = True
        else:
            self._fh = target
            self._owns = False
        self._pos = 0
        self._md5 = hashlib.md5()
        self._offsets = array("Q", [0])                # index = object number
        self._closed = False
        self._page: Page | None = None
        self._page_count = 0
        self._leaves = array("Q")                      # intermediate /Pages nodes
        self._leaf_kids = array("Q")                   # pages of the current leaf

        self._write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        # Referenced by every page, written at close().
        self._root_pages = self._alloc()
        self._type0 = self._alloc()
        self._cidfont = self._alloc()
        self._descriptor = self._alloc()
        self._fontfile = self._alloc()
        self._tounicode = self._alloc()
        self._resources = (f"/Resources << /Font << /F1 {self._type0} 0 R >> >>").encode()
        self._leaf = 0

    # -- low level -----------------------------------------------------
    def _alloc(self) -> int:
        self._offsets.append(0)
        return len(self._offsets) - 1

    def _write(self, data: bytes) -> None:
        self._fh.write(data)
        self._md5.update(data)
        self._pos += len(data)

    def _obj(self, num: int, body: bytes) -> bytes:
        """Frame an object, record its offset; returned bytes must be written next."""
        self._offsets[num] = self._pos
        return b"%d 0 obj\n%s\nendobj\n" % (num, body)

    def _stream(self, num: int, data: bytes, extra: bytes = b"", level: int = _ZLIB_LEVEL) -> bytes:
        if self._compress:
            data = zlib.compress(data, level)
            extra += b" /Filter /FlateDecode"
        self._offsets[num] = self._pos
        return b"%d 0 obj\n<< /Length %d%s >>\nstream\n%s\nendstream\nendobj\n" % (
            num, len(data), extra, data)

    # -- public API ----------------------------------------------------
    @property
    def page_count(self) -> int:
        return self._page_count

    def text_width(self, text: str, size_pt: float) -> float:
        """Width in mm, from the same advance widths the PDF's /W array uses."""
        return sum(map(self._adv.__getitem__, text)) * size_pt * self._mm_per_unit

    def begin_page(self, width_mm: float, height_mm: float) -> Page:
        if self._closed:
            raise RuntimeError("writer is closed")
        if self._page is not None:
            raise RuntimeError("previous page not ended")
        self._page = Page(self, width_mm, height_mm)
        return self._page

    def end_page(self) -> None:
        page = self._page
        if page is None:
            raise RuntimeError("no page to end")
        self._page = None
        page._emit = _page_closed
        if not self._leaf_kids:
            self._leaf = self._alloc()
        content = "".join(page._parts).encode("ascii")
        page._parts = None
        cnum = self._alloc()
        pnum = self._alloc()
        self._write(self._stream(cnum, content))
        self._write(self._obj(pnum, b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %s %s] %s /Contents %d 0 R >>" % (
            self._leaf, _num(page.width_mm * PT_PER_MM).encode(),
            _num(page.height_mm * PT_PER_MM).encode(), self._resources, cnum)))
        self._page_count += 1
        self._leaf_kids.append(pnum)
        if len(self._leaf_kids) == _LEAF_SIZE:
            self._flush_leaf()

    def _flush_leaf(self) -> None:
        kids = self._leaf_kids
        body = b"<< /Type /Pages /Parent %d 0 R /Count %d /Kids [%s] >>" % (
            self._root_pages, len(kids), b" ".join(b"%d 0 R" % k for k in kids))
        self._write(self._obj(self._leaf, body))
        self._leaves.append(self._leaf)
        self._leaf_kids = array("Q")

    def close(self) -> None:
        """Finish the file.  An open page is ended first."""
        if self._closed:
            return
        if self._page is not None:
            self.end_page()
        if self._leaf_kids:
            self._flush_leaf()
        self._write_font()
        self._write(self._obj(self._root_pages, b"<< /Type /Pages /Count %d /Kids [%s] >>" % (
            self._page_count, b" ".join(b"%d 0 R" % k for k in self._leaves))))
        catalog = self._alloc()
        self._write(self._obj(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % self._root_pages))
        info = self._alloc()
        title = f"/Title {_pdf_utf16(self._title)} " if self._title else ""
        self._write(self._obj(info, f"<< {title}/Producer ({PRODUCER}) >>".encode("ascii")))

        # /ID from everything written so far: deterministic, content-derived.
        doc_id = self._md5.hexdigest().upper()
        xref_pos = self._pos
        offsets = self._offsets
        n = len(offsets)
        self._write(b"xref\n0 %d\n0000000000 65535 f \n" % n)
        for start in range(1, n, _XREF_CHUNK):
            self._write("".join([f"{off:010d} 00000 n \n"
                                 for off in offsets[start:start + _XREF_CHUNK]]).encode("ascii"))
        self._write(b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R /ID [<%s> <%s>] >>\n"
                    b"startxref\n%d\n%%%%EOF\n" % (n, catalog, info, doc_id.encode(), doc_id.encode(), xref_pos))
        self._closed = True
        self._font = None
        if self._owns:
            self._fh.close()
        else:
            self._fh.flush()

    def _abort(self) -> None:
        """Release the handle without finishing: the partial file has no
        xref/trailer, so no reader will mistake it for a complete PDF."""
        self._closed = True
        if self._font is not None:
            self._font.close()
            self._font = None
        if self._owns:
            self._fh.close()

    def __enter__(self) -> "PdfWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()

    # -- font ----------------------------------------------------------
    def _write_font(self) -> None:
        font = self._font
        used = self._used
        gids = sorted(used)
        # Deterministic subset tag (six capitals) from the glyph set.
        digest = hashlib.md5(",".join(map(str, gids)).encode()).digest()
        tag = "".join(chr(65 + b % 26) for b in digest[:6])
        ps_name = (font["name"].getDebugName(6) or "Font").replace(" ", "")
        base = f"{tag}+{ps_name}".encode("ascii", "replace")

        head, hhea, os2 = font["head"], font["hhea"], font["OS/2"]
        scale = 1000.0 / self._upm

        def s(v: float) -> bytes:
            return _num(v * scale).encode()

        ascent, descent = hhea.ascent, hhea.descent
        cap = getattr(os2, "sCapHeight", 0) or ascent
        italic = font["post"].italicAngle

        # /W: [first [w w w ...] first [w ...]] over consecutive GID runs.
        adv = self._adv_units
        w_parts: list[bytes] = []
        run: list[int] = []
        for g in [0] + gids:
            if run and g == run[-1] + 1:
                run.append(g)
                continue
            if run:
                w_parts.append(b"%d [%s]" % (run[0], b" ".join(s(adv[x]) for x in run)))
            run = [g]
        w_parts.append(b"%d [%s]" % (run[0], b" ".join(s(adv[x]) for x in run)))

        # Subset: keep GIDs so the content streams' Identity-H codes stay valid.
        opts = _ft_subset.Options()
        opts.retain_gids = True
        opts.notdef_outline = True
        opts.hinting = False
        opts.layout_features = []
        opts.glyph_names = False
        opts.drop_tables += ["BASE", "GDEF", "GPOS", "GSUB", "vhea", "vmtx", "gasp", "VORG", "DSIG"]
        sub = _ft_subset.Subsetter(opts)
        sub.populate(gids=[0] + gids)
        sub.subset(font)
        font.recalcTimestamp = False           # keep head.modified: deterministic bytes
        buf = io.BytesIO()
        font.save(buf)
        font.close()
        ttf = buf.getvalue()

        self._write(self._obj(self._type0, b"<< /Type /Font /Subtype /Type0 /BaseFont /%s /Encoding /Identity-H "
                              b"/DescendantFonts [%d 0 R] /ToUnicode %d 0 R >>" % (base, self._cidfont, self._tounicode)))
        self._write(self._obj(self._cidfont, b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /%s "
                              b"/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
                              b"/FontDescriptor %d 0 R /DW 1000 /W [%s] /CIDToGIDMap /Identity >>"
                              % (base, self._descriptor, b" ".join(w_parts))))
        self._write(self._obj(self._descriptor, b"<< /Type /FontDescriptor /FontName /%s /Flags 4 "
                              b"/FontBBox [%s %s %s %s] /ItalicAngle %s /Ascent %s /Descent %s "
                              b"/CapHeight %s /StemV 80 /FontFile2 %d 0 R >>" % (
                                  base, s(head.xMin), s(head.yMin), s(head.xMax), s(head.yMax),
                                  _num(italic).encode(), s(ascent), s(descent), s(cap), self._fontfile)))
        self._write(self._stream(self._fontfile, ttf, b" /Length1 %d" % len(ttf), 9))
        self._write(self._stream(self._tounicode, self._to_unicode(used)))

    @staticmethod
    def _to_unicode(used: dict[int, str]) -> bytes:
        lines = [
            "/CIDInit /ProcSet findresource begin",
            "12 dict begin",
            "begincmap",
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
            "/CMapName /Adobe-Identity-UCS def",
            "/CMapType 2 def",
            "1 begincodespacerange",
            "<0000> <FFFF>",
            "endcodespacerange",
        ]
        items = sorted(used.items())
        for i in range(0, len(items), 100):
            chunk = items[i:i + 100]
            lines.append(f"{len(chunk)} beginbfchar")
            lines.extend(f"<{g:04X}> <{ch.encode('utf-16-be').hex().upper()}>" for g, ch in chunk)
            lines.append("endbfchar")
        lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
        return ("\n".join(lines) + "\n").encode("ascii")
