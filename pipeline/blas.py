"""The number of OpenBLAS threads numpy uses (the digit classifier's matrix products).

The classifier multiplies small batches (a field's 12 boxes, a line's glyphs). OpenBLAS would run a thread per
core for each, and where two processes share the cores (intake workers, redaction workers) those threads spin
waiting for each other: reading a field took ten times as long, redaction pages half again as long. One
thread is as fast for batches this small, and the results do not depend on the number of threads.
"""
from __future__ import annotations

import ctypes

_done = False


def one_thread() -> None:
    """Let OpenBLAS use one thread in this process (once it has been set, later calls do nothing; a call made
    before numpy has loaded OpenBLAS sets nothing and is repeated by the next). OpenCV's threads are left
    alone: cv2.setNumThreads in a child forked from a process that has used them hangs."""
    global _done
    if _done:
        return
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            libraries = {line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1].lower()}
    except OSError:
        return
    for library in libraries:
        try:
            handle = ctypes.CDLL(library)
        except OSError:
            continue
        for name in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                     "openblas_set_num_threads64_", "openblas_set_num_threads"):
            setter = getattr(handle, name, None)
            if setter is not None:
                setter(1)
                _done = True
                break
