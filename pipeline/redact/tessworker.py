"""The caller's side of the long-lived tesseract worker (`tessworker_main.py`): start it, talk to it, restart it.

One worker per process (a forked child starts its own), started on first use, ended with the process (or
when the process's pipes close). Crash isolation is kept: when tesseract dies on an image, the frames
already received say which image it was; the worker is restarted, that image is retried once slightly
rescaled (as the program path does) and the rest of the batch goes on. A worker that fails otherwise
raises `Unavailable`, and the caller runs the program instead.
"""
from __future__ import annotations

import atexit
import ctypes.util
import functools
import json
import os
import select
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..errors import ExternalProgramError

SCRIPT = Path(__file__).with_name("tessworker_main.py")
RESCALE = 0.9          # a crashing image is retried once at this scale

_lock = threading.Lock()
_worker: "_Worker | None" = None
_inherited: list = []   # a forked child's copy of its parent's worker


class Unavailable(Exception):
    """The worker cannot run here (no library, or it failed without a crash)."""


class _Crashed(Exception):
    def __init__(self, done: list, returncode: int | None):
        super().__init__(len(done))
        self.done, self.returncode = done, returncode


class _Worker:
    """The process and our ends of its pipes, as plain descriptors (nothing buffered that a forked child
    could flush into them)."""

    def __init__(self, library: str, env: dict[str, str]):
        self.owner = os.getpid()
        worker_in, self.fd_in = os.pipe()
        self.fd_out, worker_out = os.pipe()
        try:
            self.proc = subprocess.Popen([sys.executable, "-I", "-S", str(SCRIPT), library], stdin=worker_in,
                                         stdout=worker_out, stderr=subprocess.DEVNULL, env=env)
        except OSError:
            self.close_fds()
            raise
        finally:
            os.close(worker_in)
            os.close(worker_out)

    def usable(self) -> bool:
        return self.owner == os.getpid() and self.proc.poll() is None

    def close_fds(self) -> None:
        for fd in (self.fd_in, self.fd_out):
            try:
                os.close(fd)
            except OSError:
                pass

    def end(self, kill: bool) -> None:
        if kill:
            self.proc.kill()
        else:
            os.close(self.fd_in)             # end of input: the worker returns
            self.fd_in = -1
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.close_fds()

    def _read(self, n: int, deadline: float) -> bytes | None:
        """Exactly n bytes, or None at end of file (the worker died); TimeoutError after the deadline."""
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd_out], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self.fd_out, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd_in, view):]

    def run(self, images: Sequence[np.ndarray], params: dict, timeout: float) -> list[tuple[int, bytes]]:
        """(status, TSV) per image; _Crashed with what was done before the worker died; TimeoutError."""
        head = json.dumps({**params, "sizes": [[int(a.shape[1]), int(a.shape[0])] for a in images]}).encode()
        try:
            self._write(struct.pack("<I", len(head)) + head
                        + b"".join(np.ascontiguousarray(a, dtype=np.uint8).tobytes() for a in images))
        except OSError:
            raise _Crashed([], self.proc.wait()) from None
        deadline = time.monotonic() + timeout
        out: list[tuple[int, bytes]] = []
        for _ in images:
            frame = self._read(8, deadline)
            data = b""
            if frame is not None:
                status, length = struct.unpack("<II", frame)
                data = self._read(length, deadline) if length else b""
            if frame is None or data is None:
                raise _Crashed(out, self.proc.wait())
            out.append((status, data))
        return out


@functools.lru_cache(maxsize=1)
def library() -> str | None:
    return ctypes.util.find_library("tesseract")


def _current(env: dict[str, str]) -> _Worker:
    global _worker
    if _worker is not None and not _worker.usable():
        if _worker.owner == os.getpid():
            _worker.end(kill=True)
        _worker = None
    if _worker is None:
        if library() is None:
            raise Unavailable
        try:
            _worker = _Worker(library(), env)
        except OSError:
            raise Unavailable from None
    return _worker


def _discard() -> None:
    global _worker
    if _worker is not None and _worker.owner == os.getpid():
        _worker.end(kill=True)
    _worker = None


@atexit.register
def _shutdown() -> None:
    if _worker is not None and _worker.owner == os.getpid():
        _worker.end(kill=False)


def _forget_in_child() -> None:
    """After fork: the parent's worker is not ours. Close our copies of its pipes (so that it still sees
    the end of input when the parent goes) and keep the object, never to be used or collected."""
    global _worker, _lock
    _lock = threading.Lock()
    if _worker is not None:
        _worker.close_fds()
        _inherited.append(_worker)
    _worker = None


os.register_at_fork(after_in_child=_forget_in_child)


def recognise(images: Sequence[np.ndarray], params: dict, timeout: float, env: dict[str, str]
              ) -> list[tuple[int, bytes] | None]:
    """(status, TSV bytes) per image; None for an image tesseract crashed on, even rescaled."""
    out: list[tuple[int, bytes] | None] = []
    todo = list(images)
    with _lock:
        while todo:
            try:
                out += _current(env).run(todo, params, timeout)
                todo = []
            except TimeoutError:
                _discard()
                raise ExternalProgramError(f"tesseract timed out after {timeout:.0f} s on {len(todo)} line "
                                           f"image(s)") from None
            except _Crashed as crash:
                _discard()
                if crash.returncode is None or crash.returncode >= 0:
                    raise Unavailable from None      # it stopped by itself: a broken setup, not an image
                out += crash.done
                bad, todo = todo[len(crash.done)], todo[len(crash.done) + 1:]
                out.append(_retry(bad, params, timeout, env))
    return out


def _retry(img: np.ndarray, params: dict, timeout: float, env: dict[str, str]) -> tuple[int, bytes] | None:
    """One more try at RESCALE (the crashes depend on exact geometry), its TSV scaled back; None if it
    dies again."""
    h, w = img.shape[:2]
    small = np.array(Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8)).resize(
        (max(8, round(w * RESCALE)), max(8, round(h * RESCALE))), Image.BILINEAR))
    try:
        status, tsv = _current(env).run([small], params, timeout)[0]
    except _Crashed:
        _discard()
        return None
    except TimeoutError:
        _discard()
        raise ExternalProgramError(f"tesseract timed out after {timeout:.0f} s on a line image") from None
    return status, scale_tsv(tsv, 1 / RESCALE)


def scale_tsv(tsv: bytes, f: float) -> bytes:
    """TSV rows with their boxes (left, top, width, height) scaled by f."""
    rows = tsv.decode("utf-8", "replace").split("\n")
    for i, row in enumerate(rows):
        cols = row.split("\t")
        if len(cols) >= 12 and all(c.lstrip("-").isdigit() for c in cols[6:10]):
            cols[6:10] = [str(round(int(v) * f)) for v in cols[6:10]]
            rows[i] = "\t".join(cols)
    return "\n".join(rows).encode()


def cpu_seconds() -> float:
    """CPU time used so far by this process's live worker (a live child is not in RUSAGE_CHILDREN until it
    has ended and been waited for; benchmarks add this)."""
    if _worker is None or not _worker.usable():
        return 0.0
    try:
        fields = Path(f"/proc/{_worker.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
