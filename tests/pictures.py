"""What the picture tests share: a skip (or, under GRADCLI_REQUIRE_PICTURES=1, a failure)
when a tool they need is missing, and a small PNG decoder (zlib and numpy only)."""

import os
import shutil
import struct
import zlib

import numpy as np
import pytest

REQUIRED = os.environ.get("GRADCLI_REQUIRE_PICTURES") == "1"


def need(ok, what):
    """Skip with a reason when ``what`` is missing; fail instead where CI installs it."""
    if not ok:
        if REQUIRED:
            pytest.fail(f"{what} is missing and GRADCLI_REQUIRE_PICTURES=1")
        pytest.skip(f"{what} is not installed")


def need_tool(name, package):
    path = shutil.which(name)
    need(path, f"{name} (Debian's {package})")
    return path


def need_module(name, extra):
    try:
        return __import__(name)
    except ImportError:
        need(False, f"{name} (pip install 'gradcli[{extra}]')")


def decode_png(data):
    """An (H, W, 3) uint8 array: with Pillow (matplotlib's dependency) when it is there, as
    large pictures decode slowly in Python, else with decode_png_zlib."""
    try:
        import io

        from PIL import Image
    except ImportError:
        return decode_png_zlib(data)
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def decode_png_zlib(data):
    """An 8-bit RGB or RGBA, non-interlaced PNG as an (H, W, 3) uint8 array."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, head = 8, [], None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    assert head is not None
    w, h, depth, colour, _, _, interlace = head
    assert depth == 8 and colour in (2, 6) and interlace == 0, head
    bpp = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(h, 1 + w * bpp)
    rows, prev = [], bytearray(w * bpp)
    for y in range(h):
        f, cur = raw[y, 0], bytearray(raw[y, 1:].tobytes())
        if f == 1:
            for i in range(bpp, len(cur)):
                cur[i] = (cur[i] + cur[i - bpp]) & 255
        elif f == 2:
            cur = bytearray(np.frombuffer(cur, np.uint8) + np.frombuffer(prev, np.uint8))
        elif f == 3:
            for i in range(len(cur)):
                a = cur[i - bpp] if i >= bpp else 0
                cur[i] = (cur[i] + ((a + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(len(cur)):
                a = cur[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else (b if pb <= pc else c))) & 255
        rows.append(bytes(cur))
        prev = cur
    return np.frombuffer(b"".join(rows), np.uint8).reshape(h, w, bpp)[:, :, :3]


def rgb(hex_colour):
    return tuple(int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
