"""Synthetic copies of identity documents that show My Numbers, with ground truth.

Everything here is drawn by this module with PIL and system fonts (IPAexGothic for Japanese, DejaVu where
installed, else IPAexGothic for Latin too): our own layouts, not images of real documents. Every number is
a random valid My Number (11 random digits + check digit) or, where a test asks for it, a deliberately
invalid one: never a real person's number.

`make_sample(kind, seed, ...)` returns a `Sample`: the page image and ground truth in page pixel
coordinates (each region a 4x2 float array, clockwise from the text's top left):
  - numbers: one `NumberTruth` per printed My Number, with one quad per digit;
  - barcodes: the QR codes that encode a number;
  - others: text that must stay visible (dates, phone numbers, postal codes, 13-digit corporate
    numbers, passport numbers, names, addresses, labels), each with a `kind`.

Kinds: "card_back" (number card back with QR), "notification" (通知カード), "residence" (住民票の写し, A4),
"sheet" (A4 sheet with copies of several cards). Variants: grouping ("space", "hyphen", "none",
"fullwidth"), rotation (0/90/180/270), skew (degrees), background ("light", "dark" = light text on a dark
card, "dark_surround" = a light document on a dark scanner lid), low contrast, noise, blur, JPEG quality.
"""
from __future__ import annotations

import io
import zlib
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

IPAEX = "/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf"
_DEJAVU = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")

KINDS = ("card_back", "notification", "residence", "sheet")
GROUPINGS = ("space", "hyphen", "none", "fullwidth")

_WEIGHTS = tuple((n + 1) if n <= 6 else (n - 5) for n in range(1, 12))


def check_digit(base: str) -> int:
    r = sum(int(p) * q for p, q in zip(reversed(base), _WEIGHTS)) % 11
    return 0 if r <= 1 else 11 - r


def random_number(rng: random.Random, valid: bool = True) -> str:
    base = "".join(str(rng.randrange(10)) for _ in range(11))
    check = check_digit(base)
    if not valid:
        check = (check + rng.randrange(1, 10)) % 10
    return base + str(check)


def is_valid(digits: str) -> bool:
    return len(digits) == 12 and digits.isdigit() and check_digit(digits[:11]) == int(digits[11])


def random_corporate_number(rng: random.Random) -> str:
    """13 digits (a 法人番号 has 13). Its own check scheme does not matter: it must never be covered."""
    return "".join(str(rng.randrange(10)) for _ in range(13))


def format_number(digits: str, grouping: str) -> str:
    a, b, c = digits[:4], digits[4:8], digits[8:]
    if grouping == "space":
        return f"{a} {b} {c}"
    if grouping == "hyphen":
        return f"{a}-{b}-{c}"
    if grouping == "none":
        return digits
    if grouping == "fullwidth":
        fw = str.maketrans("0123456789", "０１２３４５６７８９")
        return f"{a.translate(fw)}\u3000{b.translate(fw)}\u3000{c.translate(fw)}"
    raise ValueError(grouping)


def font(size: int, latin: bool = False, bold: bool = False) -> ImageFont.FreeTypeFont:
    if latin:
        path = _DEJAVU[1 if bold else 0]
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.truetype(IPAEX, size)


# --------------------------------------------------------------------------------------------- truth

def _quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=float)


@dataclass
class NumberTruth:
    digits: str                    # keep out of any output; tests compare, never print
    digit_quads: list[np.ndarray]  # one quad per digit
    valid: bool = True
    labelled: bool = True

    @property
    def quad(self) -> np.ndarray:
        pts = np.vstack(self.digit_quads)
        return _quad(pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max())

    def transformed(self, m: np.ndarray) -> "NumberTruth":
        return NumberTruth(self.digits, [_apply(m, q) for q in self.digit_quads], self.valid, self.labelled)


@dataclass
class Region:
    kind: str           # "qr", "date", "phone", "postal", "corporate", "passport", "resident_code", "text", ...
    quad: np.ndarray
    payload_has_number: bool = False

    def transformed(self, m: np.ndarray) -> "Region":
        return Region(self.kind, _apply(m, self.quad), self.payload_has_number)


@dataclass
class Sample:
    kind: str
    image: Image.Image
    numbers: list[NumberTruth] = field(default_factory=list)
    barcodes: list[Region] = field(default_factory=list)
    others: list[Region] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    dpi: int = 300

    def transformed(self, m: np.ndarray, image: Image.Image) -> "Sample":
        return Sample(self.kind, image, [n.transformed(m) for n in self.numbers],
                      [b.transformed(m) for b in self.barcodes], [o.transformed(m) for o in self.others],
                      dict(self.params), self.dpi)


def _apply(m: np.ndarray, quad: np.ndarray) -> np.ndarray:
    pts = np.hstack([quad, np.ones((len(quad), 1))])
    return pts @ m.T


# ------------------------------------------------------------------------------------------- drawing

class Canvas:
    """An RGB image plus the truth of what was drawn on it."""

    def __init__(self, size: tuple[int, int], bg=(255, 255, 255), fg=(20, 20, 20)):
        self.image = Image.new("RGB", size, bg)
        self.draw = ImageDraw.Draw(self.image)
        self.fg = fg
        self.numbers: list[NumberTruth] = []
        self.barcodes: list[Region] = []
        self.others: list[Region] = []

    def _char_quads(self, xy, text, fnt) -> list[tuple[str, np.ndarray]]:
        x, y = xy
        out = []
        for i, ch in enumerate(text):
            if ch.isspace():
                continue
            off = fnt.getlength(text[:i])
            l, t, r, b = fnt.getbbox(ch)
            # the ink of the glyph (font boxes of full-width digits are wider than what is printed)
            tmp = Image.new("L", (int(r - l) + 6, int(b - t) + 6), 0)
            ImageDraw.Draw(tmp).text((3 - l, 3 - t), ch, font=fnt, fill=255)
            ink = tmp.getbbox()
            if ink:
                x0, y0 = x + off + l - 3, y + t - 3
                out.append((ch, _quad(x0 + ink[0], y0 + ink[1], x0 + ink[2], y0 + ink[3])))
            else:
                out.append((ch, _quad(x + off + l, y + t, x + off + r, y + b)))
        return out

    def text(self, xy, text: str, fnt, kind: str = "text", fill=None) -> float:
        """Draw text that must stay visible; returns the x just after it."""
        self.draw.text(xy, text, font=fnt, fill=fill or self.fg)
        quads = [q for _, q in self._char_quads(xy, text, fnt)]
        if quads:
            pts = np.vstack(quads)
            self.others.append(Region(kind, _quad(pts[:, 0].min(), pts[:, 1].min(),
                                                   pts[:, 0].max(), pts[:, 1].max())))
        return xy[0] + fnt.getlength(text)

    def number(self, xy, digits: str, grouping: str, fnt, *, labelled=True, fill=None) -> float:
        text = format_number(digits, grouping)
        if grouping == "fullwidth" and not fnt.path.endswith("ipaexg.ttf"):
            fnt = ImageFont.truetype(IPAEX, fnt.size)  # DejaVu has no full-width digits
        self.draw.text(xy, text, font=fnt, fill=fill or self.fg)
        quads = [q for ch, q in self._char_quads(xy, text, fnt) if ch.isdigit()]
        assert len(quads) == 12
        self.numbers.append(NumberTruth(digits, quads, is_valid(digits), labelled))
        return xy[0] + fnt.getlength(text)

    def qr(self, xy, payload: str, size: int, has_number: bool, fill=None, bg=None):
        import segno
        q = segno.make(payload, error="m", micro=False)
        buf = io.BytesIO()
        q.save(buf, kind="png", scale=1, border=0)
        img = Image.open(io.BytesIO(buf.getvalue())).convert("L")
        img = img.resize((size, size), Image.NEAREST)
        dark = Image.new("RGB", img.size, fill or self.fg)
        quiet = 4 * size // img.width if img.width else 8
        x, y = xy
        self.draw.rectangle([x - quiet, y - quiet, x + size + quiet, y + size + quiet], fill=bg or (255, 255, 255))
        self.image.paste(dark, (x, y), Image.eval(img, lambda v: 255 - v))
        self.barcodes.append(Region("qr", _quad(x, y, x + size, y + size), has_number))

    def paste(self, other: "Canvas | Sample", xy, scale: float = 1.0):
        img = other.image
        if scale != 1.0:
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.LANCZOS)
        self.image.paste(img, xy)
        m = np.array([[scale, 0, xy[0]], [0, scale, xy[1]]], dtype=float)
        self.numbers += [n.transformed(m) for n in other.numbers]
        self.barcodes += [b.transformed(m) for b in other.barcodes]
        self.others += [o.transformed(m) for o in other.others]


# ------------------------------------------------------------------------------------------- layouts

_SURNAMES = ["山田", "佐藤", "鈴木", "高橋", "田中", "渡辺", "伊藤", "中村"]
_GIVEN = ["太郎", "花子", "一郎", "美咲", "健太", "陽子", "翔", "さくら"]
_CITIES = ["東京都千代田区千代田", "大阪府大阪市北区梅田", "愛知県名古屋市中区栄", "福岡県福岡市中央区天神"]


def _name(rng):
    return f"{rng.choice(_SURNAMES)}　{rng.choice(_GIVEN)}"


def _date(rng) -> str:
    return f"{rng.randrange(1950, 2010)}年{rng.randrange(1, 13)}月{rng.randrange(1, 29)}日"


def _address(rng) -> str:
    return f"{rng.choice(_CITIES)}{rng.randrange(1, 9)}丁目{rng.randrange(1, 30)}番{rng.randrange(1, 20)}号"


def _postal(rng) -> str:
    return f"〒{rng.randrange(100, 999)}-{rng.randrange(0, 9999):04d}"


def _phone(rng) -> str:
    return f"0{rng.randrange(3, 9)}-{rng.randrange(1000, 9999)}-{rng.randrange(1000, 9999)}"


CARD_SIZE = (1011, 638)  # 85.6 x 54 mm at 300 dpi


def card_back(rng, grouping="space", dark=False, valid=True, digits: str | None = None) -> Canvas:
    """`digits`: the number to print (default: a random one, valid or not)."""
    bg, fg = ((38, 48, 70), (240, 240, 240)) if dark else ((236, 242, 250), (25, 25, 30))
    c = Canvas(CARD_SIZE, bg, fg)
    digits = digits or random_number(rng, valid)
    c.text((40, 52), "個人番号", font(30))
    c.number((200, 30), digits, grouping, font(60 if grouping != "fullwidth" else 52, latin=True, bold=True))
    c.text((40, 170), "氏名", font(26))
    c.text((130, 166), _name(rng), font(34))
    c.text((40, 240), "生年月日", font(26))
    c.text((170, 238), _date(rng), font(30), kind="date")
    c.text((40, 310), "有効期限", font(26))
    c.text((170, 308), _date(rng).replace("19", "20", 1), font(30), kind="date")
    payload = rng.choice([f"{digits}", f"個人番号:{digits} 氏名:{_name(rng)}", f"MN={digits};V=1"])
    c.qr((730, 330), payload, 230, has_number=True, fill=(0, 0, 0), bg=(255, 255, 255))
    c.text((40, 560), "この番号は大切に保管してください", font(22))
    return c


def notification_card(rng, grouping="space", dark=False, valid=True, digits: str | None = None) -> Canvas:
    bg, fg = ((30, 60, 45), (240, 240, 235)) if dark else ((228, 244, 232), (20, 30, 25))
    c = Canvas(CARD_SIZE, bg, fg)
    c.text((360, 24), "通知カード", font(44))
    c.text((40, 118), "個人番号", font(30))
    c.number((200, 110), digits or random_number(rng, valid), grouping, font(40, latin=True))
    c.text((40, 200), "氏名", font(30))
    c.text((200, 198), _name(rng), font(32))
    c.text((40, 270), "住所", font(30))
    c.text((200, 270), _postal(rng), font(28), kind="postal")
    c.text((200, 315), _address(rng), font(28))
    c.text((40, 390), "生年月日", font(30))
    c.text((200, 390), _date(rng), font(30), kind="date")
    c.text((560, 390), "性別 男", font(30))
    c.text((40, 470), "発行日", font(28))
    c.text((200, 470), f"{rng.randrange(2015, 2020)}年{rng.randrange(1, 13)}月{rng.randrange(1, 28)}日", font(28),
           kind="date")
    c.text((40, 540), "問合せ", font(28))
    c.text((200, 540), _phone(rng), font(28, latin=True), kind="phone")
    return c


A4_200 = (1654, 2339)  # A4 at 200 dpi


def residence(rng, grouping="space", valid=True, members=3, invalid_member: int | None = None) -> Canvas:
    """住民票の写し: a household table with a 個人番号 column. `invalid_member` gets a number whose check digit
    fails (a misprint or misread) next to its label."""
    c = Canvas(A4_200)
    f_title, f, f_small = font(52), font(28), font(24)
    c.text((620, 110), "住民票の写し", f_title)
    c.text((120, 230), "住所", f)
    c.text((260, 230), _postal(rng), f, kind="postal")
    c.text((480, 230), _address(rng), f)
    c.text((120, 290), "世帯主", f)
    c.text((260, 290), _name(rng), f)
    x0, y0, row_h = 100, 380, 300
    cols = [100, 420, 700, 1010, 1554]
    d = c.draw
    d.rectangle([x0, y0, 1554, y0 + 60 + row_h * members], outline=(0, 0, 0), width=3)
    d.line([x0, y0 + 60, 1554, y0 + 60], fill=(0, 0, 0), width=2)
    for x in cols[1:-1]:
        d.line([x, y0, x, y0 + 60 + row_h * members], fill=(0, 0, 0), width=2)
    for i, h in enumerate(["氏名", "生年月日", "住民となった日", "個人番号 ・ 住民票コード"]):
        c.text((cols[i] + 20, y0 + 14), h, f_small)
    for m in range(members):
        y = y0 + 60 + row_h * m
        if m:
            d.line([x0, y, 1554, y], fill=(0, 0, 0), width=2)
        c.text((cols[0] + 20, y + 30), _name(rng), f)
        c.text((cols[0] + 20, y + 90), rng.choice(["世帯主", "妻", "子", "夫"]), f_small)
        c.text((cols[1] + 20, y + 30), _date(rng), f_small, kind="date")
        c.text((cols[1] + 20, y + 90), rng.choice(["男", "女"]), f_small)
        c.text((cols[2] + 20, y + 30), _date(rng).replace("19", "20", 1), f_small, kind="date")
        c.text((cols[3] + 20, y + 30), "個人番号", f_small)
        ok = valid and m != invalid_member
        c.number((cols[3] + 20, y + 70), random_number(rng, ok), grouping, font(32, latin=True))
        c.text((cols[3] + 20, y + 150), "住民票コード", f_small)
        c.text((cols[3] + 20, y + 190), "".join(str(rng.randrange(10)) for _ in range(11)),
               font(30, latin=True), kind="resident_code")
    y = y0 + 60 + row_h * members + 80
    c.text((120, y), "この写しは、住民票の原本と相違ないことを証明する。", f)
    c.text((120, y + 70), f"令和{rng.randrange(1, 7)}年{rng.randrange(1, 13)}月{rng.randrange(1, 28)}日", f,
           kind="date")
    c.text((120, y + 140), "千代田区長　区長　太郎", f)
    c.text((120, y + 210), "電話", f)
    c.text((220, y + 210), _phone(rng), font(28, latin=True), kind="phone")
    c.text((120, y + 280), "法人番号", f)
    c.text((280, y + 280), random_corporate_number(rng), font(28, latin=True), kind="corporate")
    c.text((120, y + 350), "発行番号", f)
    c.text((280, y + 350), f"第{rng.randrange(10000, 99999)}号", f)
    return c


def passport_copy(rng) -> Canvas:
    """A plain passport-like data page (no My Number): 旅券番号 and dates that must stay visible."""
    c = Canvas(CARD_SIZE, (245, 240, 228), (30, 30, 30))
    c.text((40, 30), "日本国旅券  PASSPORT", font(36))
    c.text((40, 110), "旅券番号", font(26))
    c.text((200, 104), f"T{rng.choice('KRZ')}{rng.randrange(1000000, 9999999)}", font(34, latin=True),
           kind="passport")
    c.text((40, 180), "氏名", font(26))
    c.text((200, 176), _name(rng), font(32))
    c.text((40, 250), "生年月日", font(26))
    c.text((200, 248), f"{rng.randrange(1, 28):02d} {rng.choice(['JAN', 'MAR', 'JUL', 'OCT'])} "
                       f"{rng.randrange(1950, 2005)}", font(30, latin=True), kind="date")
    c.text((40, 320), "有効期限", font(26))
    c.text((200, 318), f"{rng.randrange(1, 28):02d} {rng.choice(['FEB', 'JUN', 'DEC'])} "
                       f"{rng.randrange(2026, 2034)}", font(30, latin=True), kind="date")
    c.text((40, 390), "電話", font(26))
    c.text((200, 388), _phone(rng), font(30, latin=True), kind="phone")
    return c


def sheet(rng, grouping="space", dark=False, cards: int = 3) -> Canvas:
    """An A4 ID-copy sheet (本人確認書類 貼付台紙) at 200 dpi with copies of several cards pasted on it."""
    c = Canvas(A4_200)
    c.text((430, 90), "本人確認書類　貼付台紙", font(48))
    c.text((120, 190), "提出者氏名", font(28))
    c.text((330, 190), _name(rng), font(28))
    c.text((900, 190), "提出日", font(28))
    c.text((1030, 190), _date(rng).replace("19", "20", 1), font(28), kind="date")
    makers = [lambda: card_back(rng, grouping, dark), lambda: notification_card(rng, grouping, dark),
              lambda: passport_copy(rng)]
    slots = [(120, 300), (860, 300), (120, 900), (860, 900)]
    rng.shuffle(slots)
    scale = 200 / 300
    for i in range(cards):
        card = makers[i % len(makers)]()
        c.paste(card, slots[i], scale)
        c.text((slots[i][0], slots[i][1] + 440), f"写し {i + 1}", font(24))
    c.text((120, 2150), "番号確認書類と身元確認書類の写しを貼付してください。", font(26))
    return c


# -------------------------------------------------------------------------------------- degradation

def _rotate90(sample: Sample, k: int) -> Sample:
    """Rotate counter-clockwise by k*90 degrees (exact)."""
    k %= 4
    if not k:
        return sample
    w, h = sample.image.size
    arr = np.rot90(np.asarray(sample.image), k)
    if k == 1:
        m = np.array([[0, 1, 0], [-1, 0, w]], dtype=float)
    elif k == 2:
        m = np.array([[-1, 0, w], [0, -1, h]], dtype=float)
    else:
        m = np.array([[0, -1, h], [1, 0, 0]], dtype=float)
    return sample.transformed(m, Image.fromarray(np.ascontiguousarray(arr)))


def _skew(sample: Sample, degrees: float, fill) -> Sample:
    import cv2
    if not degrees:
        return sample
    w, h = sample.image.size
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    arr = cv2.warpAffine(np.asarray(sample.image), m, (nw, nh), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    return sample.transformed(m, Image.fromarray(arr))


def make_sample(kind: str = "card_back", seed: int = 0, *, grouping: str = "space", rotation: int = 0,
                skew: float = 0.0, background: str = "light", contrast: float = 1.0, noise: float = 0.0,
                blur: float = 0.0, jpeg: int | None = None, gray: bool = False, valid: bool = True,
                invalid_member: int | None = None, margin: int = 60, digits: str | None = None) -> Sample:
    """Draw one page. rotation in degrees counter-clockwise (0/90/180/270); skew in degrees; contrast < 1
    squeezes the grey range towards mid-grey; noise is the std. dev. of Gaussian noise (0-255 scale).
    `digits`: the number a card_back or notification card shows (default: random)."""
    rng = random.Random(f"{kind}:{seed}")
    dark = background == "dark"
    if kind == "card_back":
        canvas, dpi = card_back(rng, grouping, dark, valid, digits), 300
    elif kind == "notification":
        canvas, dpi = notification_card(rng, grouping, dark, valid, digits), 300
    elif kind == "residence":
        canvas, dpi = residence(rng, grouping, valid, invalid_member=invalid_member), 200
    elif kind == "sheet":
        canvas, dpi = sheet(rng, grouping, dark), 200
    elif kind == "passport":
        canvas, dpi = passport_copy(rng), 300
    else:
        raise ValueError(kind)
    params = dict(kind=kind, seed=seed, grouping=grouping, rotation=rotation, skew=skew, background=background,
                  contrast=contrast, noise=noise, blur=blur, jpeg=jpeg)
    sample = Sample(kind, canvas.image, canvas.numbers, canvas.barcodes, canvas.others, params, dpi)
    surround = (40, 40, 40) if background == "dark_surround" else (250, 250, 250)
    if kind in ("card_back", "notification", "passport") and margin:
        # a card copied on a scanner: the card on the platen with some surround
        page = Image.new("RGB", (canvas.image.width + 2 * margin, canvas.image.height + 2 * margin), surround)
        page.paste(canvas.image, (margin, margin))
        m = np.array([[1, 0, margin], [0, 1, margin]], dtype=float)
        sample = sample.transformed(m, page)
    elif background == "dark_surround":
        m = np.array([[1, 0, margin], [0, 1, margin]], dtype=float)
        page = Image.new("RGB", (canvas.image.width + 2 * margin, canvas.image.height + 2 * margin), surround)
        page.paste(canvas.image, (margin, margin))
        sample = sample.transformed(m, page)
    sample = _skew(sample, skew, surround)
    sample = _rotate90(sample, rotation // 90)
    arr = np.asarray(sample.image).astype(np.float32)
    if contrast != 1.0:
        arr = 128 + (arr - 128) * contrast
    if blur:
        import cv2
        arr = cv2.GaussianBlur(arr, (0, 0), blur)
    if noise:
        nrng = np.random.default_rng(zlib.crc32(f"{kind}:{seed}".encode()))
        arr = arr + nrng.normal(0, noise, arr.shape[:2])[..., None]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if gray:
        img = img.convert("L")
    if jpeg:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=jpeg)
        img = Image.open(io.BytesIO(buf.getvalue()))
        img.load()
    sample.image = img
    return sample


def benchmark_set(n: int = 40, seed: int = 1000) -> list[Sample]:
    """A mixed set of pages for the benchmark: every kind, grouping and degradation appears."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        out.append(make_sample(
            kind, seed + i,
            grouping=GROUPINGS[(i // len(KINDS)) % len(GROUPINGS)],
            rotation=rng.choice([0, 0, 90, 180, 270]),
            skew=rng.choice([0.0, 0.0, -3.0, -1.5, 1.5, 3.0]),
            background=rng.choice(["light", "light", "dark", "dark_surround"]),
            contrast=rng.choice([1.0, 1.0, 0.45]),
            noise=rng.choice([0.0, 0.0, 8.0]),
            jpeg=rng.choice([None, None, 60]),
        ))
    return out


def harsh_set(n: int = 60, seed: int = 1300) -> list[Sample]:
    """Copies worse than any in `benchmark_set`: every page low-contrast (0.35-0.6), noisy (std 8-16), JPEG
    40-60, often blurred, at any rotation. Not every number on them can be read by machine; the point is
    that a number is either covered or its page refused by the proof, never stored visible."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append(make_sample(
            KINDS[i % len(KINDS)], seed + i, grouping=GROUPINGS[(i // len(KINDS)) % len(GROUPINGS)],
            rotation=rng.choice([0, 90, 180, 270]), skew=rng.choice([0.0, -3.0, 3.0, 1.5]),
            background=rng.choice(["light", "dark", "dark_surround"]), contrast=rng.choice([0.35, 0.45, 0.6]),
            noise=rng.choice([8.0, 12.0, 16.0]), blur=rng.choice([0.0, 0.8, 1.2]), jpeg=rng.choice([40, 60])))
    return out


# ---------------------------------------------------------------------------------------- scoring

def _mask_of(size: tuple[int, int], quads) -> np.ndarray:
    import cv2
    mask = np.zeros((size[1], size[0]), np.uint8)
    for q in quads:
        cv2.fillPoly(mask, [np.round(np.asarray(q, dtype=float) * 4).astype(np.int32)], 1, shift=2)
    return mask


def _covered_fraction(mask: np.ndarray, quad: np.ndarray) -> float:
    region = _mask_of((mask.shape[1], mask.shape[0]), [quad])
    area = int(region.sum())
    return float((mask & region).sum()) / area if area else 1.0


@dataclass
class Score:
    numbers: int = 0
    numbers_covered: int = 0        # every digit of the number covered (>= 98 % of its box)
    barcodes: int = 0
    barcodes_covered: int = 0
    other_area: float = 0.0         # pixels of text that must stay visible
    other_covered: float = 0.0      # ... of which covered

    def __iadd__(self, o: "Score") -> "Score":
        for f in self.__dataclass_fields__:
            setattr(self, f, getattr(self, f) + getattr(o, f))
        return self

    @property
    def other_share(self) -> float:
        return self.other_covered / self.other_area if self.other_area else 0.0


def score(sample: Sample, boxes) -> Score:
    """How well `boxes` (objects with .points, or quads) cover the truth of `sample`."""
    quads = [np.asarray(getattr(b, "points", b), dtype=float) for b in boxes]
    mask = _mask_of(sample.image.size, quads)
    s = Score()
    for n in sample.numbers:
        s.numbers += 1
        if all(_covered_fraction(mask, q) >= 0.98 for q in n.digit_quads):
            s.numbers_covered += 1
    for b in sample.barcodes:
        s.barcodes += 1
        if _covered_fraction(mask, b.quad) >= 0.98:
            s.barcodes_covered += 1
    for o in sample.others:
        region = _mask_of(sample.image.size, [o.quad])
        area = float(region.sum())
        s.other_area += area
        s.other_covered += float((mask & region).sum())
    return s
