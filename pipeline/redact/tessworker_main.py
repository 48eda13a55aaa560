"""A long-lived tesseract worker: libtesseract through ctypes, requests over pipes (see tessworker.py).

Starting the `tesseract` program loads its model every time (about 0.1 s of CPU, as much as reading ten
lines); this process loads each model once and then only recognises. It runs as a plain script
(`python -I -S tessworker_main.py LIBRARY`): no package import, no third-party module.

Protocol (little-endian). A request: u32 length + JSON {"lang", "psm", "whitelist", "dictionaries",
"sizes": [[w, h], ...]}, then the grey pixels of every image, row by row. The whole request is read
before anything is written back (so neither side can block the other on a full pipe). Then one frame per
image, in order: u32 status (0 = TSV, 1 = recognition failed, 2 = the model could not be loaded) + u32
length + bytes. If tesseract crashes on an image, the process dies and the caller sees where it stopped.
The images only ever exist in memory.
"""
import ctypes
import json
import struct
import sys


def _bind(lib):
    p, c, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    lib.TessBaseAPICreate.restype = p
    lib.TessBaseAPIInit4.argtypes = [p, c, c, i, ctypes.POINTER(c), i, ctypes.POINTER(c), ctypes.POINTER(c),
                                     ctypes.c_size_t, i]
    lib.TessBaseAPISetVariable.argtypes = [p, c, c]
    lib.TessBaseAPISetPageSegMode.argtypes = [p, i]
    lib.TessBaseAPISetImage.argtypes = [p, c, i, i, i, i]
    lib.TessBaseAPISetSourceResolution.argtypes = [p, i]
    lib.TessBaseAPIRecognize.argtypes = [p, p]
    lib.TessBaseAPIGetTsvText.argtypes = [p, i]
    lib.TessBaseAPIGetTsvText.restype = p
    lib.TessDeleteText.argtypes = [p]
    lib.TessBaseAPIClear.argtypes = [p]
    return lib


def _engine(lib, lang: str, dictionaries: bool):
    """An initialised engine, as `tesseract --oem 1 -l LANG [-c load_*_dawg=0]` would set it up."""
    names = [b"tessedit_do_invert"] + ([] if dictionaries else [b"load_system_dawg", b"load_freq_dawg"])
    values = [b"0"] * len(names)
    api = lib.TessBaseAPICreate()
    rc = lib.TessBaseAPIInit4(api, None, lang.encode(), 1, None, 0, (ctypes.c_char_p * len(names))(*names),
                              (ctypes.c_char_p * len(values))(*values), len(names), 0)
    return api if rc == 0 else None


def _read(stream, n: int) -> bytes:
    data = stream.read(n)
    if len(data) != n:
        raise EOFError
    return data


def main() -> None:
    lib = _bind(ctypes.CDLL(sys.argv[1]))
    rin, out = sys.stdin.buffer, sys.stdout.buffer
    engines = {}
    while True:
        try:
            (n,) = struct.unpack("<I", _read(rin, 4))
            req = json.loads(_read(rin, n))
            images = [(w, h, _read(rin, w * h)) for w, h in req["sizes"]]
        except EOFError:
            return
        key = (req["lang"], bool(req["dictionaries"]))
        if key not in engines:
            engines[key] = _engine(lib, *key)
        api = engines[key]
        if api is None:
            for _ in images:
                out.write(struct.pack("<II", 2, 0))
            out.flush()
            continue
        lib.TessBaseAPISetPageSegMode(api, int(req["psm"]))
        lib.TessBaseAPISetVariable(api, b"tessedit_char_whitelist", (req.get("whitelist") or "").encode())
        for w, h, pixels in images:
            lib.TessBaseAPISetImage(api, pixels, w, h, 1, w)
            lib.TessBaseAPISetSourceResolution(api, 300)    # what the program reads from our TIFF
            if lib.TessBaseAPIRecognize(api, None) != 0:
                out.write(struct.pack("<II", 1, 0))
            else:
                text = lib.TessBaseAPIGetTsvText(api, 0)
                tsv = ctypes.string_at(text) if text else b""
                if text:
                    lib.TessDeleteText(text)
                out.write(struct.pack("<II", 0, len(tsv)) + tsv)
            lib.TessBaseAPIClear(api)
            out.flush()


if __name__ == "__main__":
    main()
