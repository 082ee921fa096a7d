"""PyTorch's tensor repr, ported from torch/_tensor_str.py (torch 2.13, default print options):
precision 4, summarise above 1000 elements keeping 3 at each edge, 80-column lines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

PRECISION = 4
THRESHOLD = 1000
EDGEITEMS = 3
LINEWIDTH = 80
_DTYPE_NAMES = {
    "float32": "torch.float32",
    "float64": "torch.float64",
    "bool": "torch.bool",
    "int64": "torch.int64",
    "int32": "torch.int32",
    "int16": "torch.int16",
    "int8": "torch.int8",
    "uint8": "torch.uint8",
}
_DEFAULT_DTYPES = ("float32", "int64", "bool")


class _Formatter:
    def __init__(self, values):
        self.floating = values.dtype.kind == "f"
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        flat = values.reshape(-1)
        if not self.floating:
            for v in flat.tolist():
                self.max_width = max(self.max_width, len(f"{v}"))
            return
        nz = flat[np.isfinite(flat) & (flat != 0)]
        if nz.size == 0:
            return
        absd = np.abs(nz).astype(np.float64)
        lo, hi = absd.min(), absd.max()
        self.int_mode = bool(np.all(nz == np.ceil(nz)))
        self.sci_mode = bool(hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4)
        vals = nz.tolist()
        if self.sci_mode:
            self.max_width = max(len(f"{v:.{PRECISION}e}") for v in vals)
        elif self.int_mode:
            self.max_width = max(len(f"{v:.0f}") + 1 for v in vals)
        else:
            self.max_width = max(len(f"{v:.{PRECISION}f}") for v in vals)

    def format(self, value):
        if self.floating:
            if self.sci_mode:
                ret = f"{value:{self.max_width}.{PRECISION}e}"
            elif self.int_mode:
                ret = f"{value:.0f}"
                if not (math.isinf(value) or math.isnan(value)):
                    ret += "."
            else:
                ret = f"{value:.{PRECISION}f}"
        else:
            ret = f"{value}"
        return (self.max_width - len(ret)) * " " + ret


def _scalar(v):
    """What _Formatter + format give for one float, without building arrays (the usual
    magnitudes tested first: nan fails every comparison)."""
    m = abs(v)
    if 1.0e-4 <= m <= 1.0e8:
        return f"{v:.0f}." if v == math.ceil(v) else f"{v:.{PRECISION}f}"
    if m == 0 or m != m or m == math.inf:
        return f"{v:.0f}" + ("." if m == 0 else "")
    return f"{v:.{PRECISION}e}"


def _summarized(a):
    """The values a summarised print shows (get_summarized_data)."""
    if a.ndim == 0:
        return a
    if a.ndim == 1:
        return np.concatenate((a[:EDGEITEMS], a[-EDGEITEMS:])) if a.shape[0] > 2 * EDGEITEMS else a
    rows = (
        list(range(EDGEITEMS)) + list(range(a.shape[0] - EDGEITEMS, a.shape[0]))
        if a.shape[0] > 2 * EDGEITEMS
        else range(a.shape[0])
    )
    return np.stack([_summarized(a[i]) for i in rows])


def _vector_str(a, indent, summarize, fmt, linewidth):
    element_length = fmt.max_width + 2
    per_line = max(1, math.floor((linewidth - indent) / element_length))
    if summarize and a.shape[0] > 2 * EDGEITEMS:
        data = (
            [fmt.format(v) for v in a[:EDGEITEMS].tolist()]
            + [" ..."]
            + [fmt.format(v) for v in a[-EDGEITEMS:].tolist()]
        )
    else:
        data = [fmt.format(v) for v in a.tolist()]
    lines = [", ".join(data[i : i + per_line]) for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _with_formatter(a, indent, summarize, fmt, linewidth=LINEWIDTH):
    if a.ndim == 0:
        return fmt.format(a.item())
    if a.ndim == 1:
        return _vector_str(a, indent, summarize, fmt, linewidth)
    n = a.shape[0]
    rows: Sequence[int | None]
    if summarize and n > 2 * EDGEITEMS:
        rows = list(range(EDGEITEMS)) + [None] + list(range(n - EDGEITEMS, n))
    else:
        rows = range(n)
    slices = [
        "..." if i is None else _with_formatter(a[i], indent + 1, summarize, fmt, linewidth)
        for i in rows
    ]
    return "[" + ("," + "\n" * (a.ndim - 1) + " " * (indent + 1)).join(slices) + "]"


def tensor_str(
    a: ArrayLike, indent: int = 0, linewidth: int = LINEWIDTH, threshold: int = THRESHOLD
) -> str:
    """The body of the repr: what stands between ``tensor(`` and the suffixes. A smaller
    ``linewidth``/``threshold`` gives the compact form used in table cells."""
    a = np.asarray(a)
    if a.size == 0:
        return "[]"
    if a.ndim == 0 and a.dtype.kind == "f":
        return _scalar(a.item())
    summarize = a.size > threshold
    with np.errstate(all="ignore"):  # max/min of extreme values may overflow: no warning
        fmt = _Formatter(_summarized(a) if summarize else a)
    return _with_formatter(a, indent, summarize, fmt, linewidth)


def tensor_repr(
    a: ArrayLike,
    grad_fn: str | None = None,
    requires_grad: bool = False,
    linewidth: int = LINEWIDTH,
) -> str:
    """``repr(tensor)`` as PyTorch prints it (``linewidth`` as torch.set_printoptions sets it)."""
    a = np.asarray(a)
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    dtype = str(a.dtype)
    if a.size == 0:
        if a.ndim != 1:
            suffixes.append("size=" + str(tuple(a.shape)))
        if dtype != "float32":
            suffixes.append("dtype=" + _DTYPE_NAMES.get(dtype, dtype))
        body = "[]"
    else:
        if dtype not in _DEFAULT_DTYPES:
            suffixes.append("dtype=" + _DTYPE_NAMES.get(dtype, dtype))
        body = tensor_str(a, indent, linewidth)
    if grad_fn is not None:
        suffixes.append(f"grad_fn=<{grad_fn}>")
    elif requires_grad:
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent, linewidth)


def _add_suffixes(text, suffixes, indent, linewidth=LINEWIDTH):
    parts = [text]
    last_line_len = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)
