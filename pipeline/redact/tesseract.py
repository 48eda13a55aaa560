"""The one wrapper around tesseract.

- `probe()` finds the program, its version and languages (ExternalProgramError, exit 69, when missing).
- `recognise(images, ...)` OCRs a batch of small grey images. By default the batch goes to this process's
  long-lived worker (`tessworker.py`: libtesseract with its models loaded once, about 0.1 s of CPU saved per
  batch); where that cannot run, or another program is configured, the batch is encoded as a multi-page
  TIFF in memory and passed on standard input of ONE `tesseract` process. Either way no image (which may
  show a My Number) is ever written to disk, and the same TSV comes back, parsed into `Word`s per image.
- Tesseract always runs with OMP_THREAD_LIMIT=1: on 2 shared cores its OpenMP threads only fight each
  other (6-8x slower in our measurement), and we parallelise across pages instead.

OCR text is never logged and never put in an exception message; stderr excerpts have digit runs removed.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import ExternalProgramError
from . import tessworker

log = logging.getLogger(__name__)

PROGRAM_ENV = "MYNUMBER_TESSERACT"   # path to another tesseract binary (tests use it to simulate a missing one)
WORKER_ENV = "MYNUMBER_TESSERACT_WORKER"   # "0": run the program per batch instead of the long-lived worker
MIN_VERSION = (4, 1)                 # LSTM + tessedit_char_whitelist
DIGITS = "0123456789"

_worker_failed = False


@dataclass(frozen=True)
class TesseractInfo:
    path: str
    version: tuple[int, ...]
    languages: frozenset[str]


@dataclass(frozen=True)
class Word:
    """One word of tesseract's TSV output, in the pixel coordinates of the image it came from."""
    image: int      # index of the image in the batch
    line: tuple[int, int, int]  # (block, paragraph, line) inside that image
    left: int
    top: int
    width: int
    height: int
    conf: float     # 0..100
    text: str

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height


def _program() -> str:
    return os.environ.get(PROGRAM_ENV) or "tesseract"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_THREAD_LIMIT"] = "1"
    return env


def _sanitise(stderr: bytes, limit: int = 200) -> str:
    text = stderr.decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not re.fullmatch(r"Page \d+", ln.strip())]
    text = " / ".join(lines)
    text = re.sub(r"\d{4,}", "…", text)           # never echo anything that could be (part of) a number
    return text[:limit]


def probe() -> TesseractInfo:
    """The tesseract program in use; raises ExternalProgramError (exit 69) if it is missing or too old."""
    return _probe(_program())


@functools.lru_cache(maxsize=4)
def _probe(program: str) -> TesseractInfo:
    path = shutil.which(program)
    hint = "install it (Debian: apt-get install tesseract-ocr tesseract-ocr-jpn; or run scripts/setup.sh)"
    if path is None:
        raise ExternalProgramError(f"tesseract was not found ({program!r} is not on PATH): redaction needs it; "
                                   f"{hint}")
    try:
        out = subprocess.run([path, "--version"], capture_output=True, timeout=30, env=_env())
        langs = subprocess.run([path, "--list-langs"], capture_output=True, timeout=30, env=_env())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExternalProgramError(f"tesseract at {path} could not be run ({exc.__class__.__name__}); {hint}") \
            from None
    text = (out.stdout + out.stderr).decode("utf-8", "replace")
    m = re.search(r"tesseract\s+v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if out.returncode != 0 or not m:
        raise ExternalProgramError(f"tesseract at {path} did not report a version (exit {out.returncode}); {hint}")
    version = tuple(int(g) for g in m.groups() if g is not None)
    if version[:2] < MIN_VERSION:
        raise ExternalProgramError(f"tesseract {'.'.join(map(str, version))} at {path} is too old; "
                                   f"{'.'.join(map(str, MIN_VERSION))} or newer is needed")
    listed = (langs.stdout + langs.stderr).decode("utf-8", "replace").splitlines()
    languages = frozenset(ln.strip() for ln in listed if ln.strip() and " " not in ln.strip())
    return TesseractInfo(path, version, languages)


def require_languages(*languages: str) -> TesseractInfo:
    info = probe()
    missing = [lang for lang in languages if lang not in info.languages]
    if missing:
        raise ExternalProgramError(
            f"tesseract has no trained data for {', '.join(missing)} "
            f"(Debian: apt-get install {' '.join('tesseract-ocr-' + m for m in missing)})")
    return info


def _encode_tiff(images: Sequence[np.ndarray]) -> bytes:
    """A multi-page, uncompressed 8-bit grey TIFF in memory (Pillow's multi-page writer re-reads every
    earlier page for each one it appends; this is linear and all tesseract needs)."""
    out = bytearray(b"II*\x00\x00\x00\x00\x00")
    prev_link = 4                                  # where the offset of the next IFD goes
    for img in images:
        a = np.ascontiguousarray(img, dtype=np.uint8)
        h, w = a.shape[:2]
        data_at = len(out)
        out += a.tobytes()
        if len(out) % 2:
            out += b"\x00"
        res_at = len(out)
        out += struct.pack("<IIII", 300, 1, 300, 1)   # X and Y resolution: 300/1
        tags = [(256, 4, 1, w), (257, 4, 1, h), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
                (273, 4, 1, data_at), (277, 3, 1, 1), (278, 4, 1, h), (279, 4, 1, w * h),
                (282, 5, 1, res_at), (283, 5, 1, res_at + 8), (296, 3, 1, 2)]
        ifd_at = len(out)
        struct.pack_into("<I", out, prev_link, ifd_at)
        out += struct.pack("<H", len(tags))
        for tag, typ, count, value in tags:
            if typ == 3:
                out += struct.pack("<HHIHH", tag, typ, count, value, 0)
            else:
                out += struct.pack("<HHII", tag, typ, count, value)
        prev_link = len(out)
        out += b"\x00\x00\x00\x00"
    return bytes(out)


def recognise(images: Sequence[np.ndarray], *, lang: str = "eng", psm: int = 7,
              whitelist: str | None = None, dictionaries: bool = True,
              timeout: float | None = None) -> list[list[Word]]:
    """OCR each grey image (2-D uint8 array) of `images` in one batch; one list of words each.

    psm 7 = each image is a single text line; 6 = a block; 11 = sparse text. `dictionaries=False` skips
    loading the word lists (faster, and no bias towards words when reading numbers).

    tesseract 5.3 sometimes dies of a floating point exception on particular line images (with a character
    whitelist). The image it dies on is found (the worker reports image by image; a program's batch is split
    to find it) and retried once slightly rescaled; an image that still kills tesseract gets no words
    instead of failing the whole page (`recognise_detailed` also says which). Any other failure raises
    ExternalProgramError."""
    return [words or [] for words in recognise_detailed(images, lang=lang, psm=psm, whitelist=whitelist,
                                                        dictionaries=dictionaries, timeout=timeout)]


def recognise_detailed(images: Sequence[np.ndarray], *, lang: str = "eng", psm: int = 7,
                       whitelist: str | None = None, dictionaries: bool = True,
                       timeout: float | None = None) -> list[list[Word] | None]:
    """Like `recognise`, but None for an image tesseract could not read (it crashed on it)."""
    global _worker_failed
    if not images:
        return []
    info = require_languages(*lang.split("+"))
    if timeout is None:
        timeout = 60 + sum(int(a.size) for a in images) / 20_000   # a stuck process must not hang the pipeline
    if _worker_wanted():
        params = {"lang": lang, "psm": psm, "whitelist": whitelist or "", "dictionaries": dictionaries}
        try:
            return _from_frames(tessworker.recognise(list(images), params, timeout, _env()), lang)
        except tessworker.Unavailable:
            _worker_failed = True
            log.warning("the tesseract worker is not usable here; running the tesseract program per batch")
    cmd = [info.path, "stdin", "stdout", "--psm", str(psm), "--oem", "1", "-l", lang,
           "-c", "tessedit_do_invert=0"]
    if whitelist:
        cmd += ["-c", f"tessedit_char_whitelist={whitelist}"]
    if not dictionaries:
        cmd += ["-c", "load_system_dawg=0", "-c", "load_freq_dawg=0"]
    cmd.append("tsv")
    out = _recognise(cmd, list(images), timeout, retry=True)
    # after a crash the batch was split: number the images of the words as in the caller's batch again
    return [None if ws is None else [w if w.image == i else dataclasses.replace(w, image=i) for w in ws]
            for i, ws in enumerate(out)]


def _worker_wanted() -> bool:
    """The long-lived worker (tessworker.py) is used unless another program is configured (tests fake one),
    it is switched off (WORKER_ENV=0), or it already failed in this process."""
    return (not _worker_failed and not os.environ.get(PROGRAM_ENV) and os.environ.get(WORKER_ENV, "1") != "0"
            and tessworker.library() is not None)


def _from_frames(frames, lang: str) -> list[list[Word] | None]:
    out: list[list[Word] | None] = []
    for i, frame in enumerate(frames):
        if frame is None or frame[0] == 1:
            log.warning("tesseract could not read a line image (it crashed or failed on it)")
            out.append(None)
        elif frame[0] == 2:
            raise ExternalProgramError(f"tesseract could not load its {lang} model")
        else:
            out.append([dataclasses.replace(w, image=i) for w in parse_tsv(frame[1].decode("utf-8", "replace"), 1)[0]])
    return out


class _Crashed(Exception):
    pass


def _run(cmd: list[str], images: list[np.ndarray], timeout: float | None) -> list[list[Word]]:
    data = _encode_tiff(images)
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout, env=_env())
    except subprocess.TimeoutExpired:
        raise ExternalProgramError(f"tesseract timed out after {timeout:.0f} s on {len(images)} line image(s)") \
            from None
    except OSError as exc:
        raise ExternalProgramError(f"tesseract could not be started ({exc.__class__.__name__})") from None
    if proc.returncode < 0:
        raise _Crashed(proc.returncode)
    if proc.returncode != 0:
        raise ExternalProgramError(f"tesseract failed (exit {proc.returncode}) on {len(images)} line image(s): "
                                   f"{_sanitise(proc.stderr) or 'no message'}")
    return parse_tsv(proc.stdout.decode("utf-8", "replace"), len(images))


def _recognise(cmd, images, timeout, retry: bool) -> list[list[Word] | None]:
    try:
        return list(_run(cmd, images, timeout))
    except _Crashed as exc:
        signal_no = -int(exc.args[0])
    if len(images) > 1:
        mid = len(images) // 2
        return _recognise(cmd, images[:mid], timeout, retry) + _recognise(cmd, images[mid:], timeout, retry)
    if retry:
        img = images[0]
        h, w = img.shape[:2]
        f = 0.9
        small = np.array(Image.fromarray(img).resize((max(8, round(w * f)), max(8, round(h * f))),
                                                    Image.BILINEAR))
        words = _recognise(cmd, [small], timeout, retry=False)[0]
        if words is not None:
            return [[Word(x.image, x.line, round(x.left / f), round(x.top / f), round(x.width / f),
                          round(x.height / f), x.conf, x.text) for x in words]]
    log.warning("tesseract died (signal %d) on a line image; that line could not be read", signal_no)
    return [None]


def parse_tsv(tsv: str, count: int) -> list[list[Word]]:
    """Words (level 5 rows with text) of tesseract's TSV, grouped by page (= image of the batch)."""
    out: list[list[Word]] = [[] for _ in range(count)]
    for row in tsv.splitlines():
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = cols[11].strip()
        if not text:
            continue
        try:
            page = int(cols[1]) - 1
            word = Word(page, (int(cols[2]), int(cols[3]), int(cols[4])), int(cols[6]), int(cols[7]),
                        int(cols[8]), int(cols[9]), max(0.0, float(cols[10])), text)
        except ValueError:
            continue
        if 0 <= page < count:
            out[page].append(word)
    return out
