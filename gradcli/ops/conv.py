"""Convolutions and pooling of torch.nn.functional.

A convolution is im2col through a numpy strided view of the (padded) input and one batched
matrix product over the groups; its input gradient scatters back by looping over the kernel
offsets only (col2im), never over pixels. Pooling takes the same windows. Every rule also
runs on complex dual numbers: the products are bilinear, and max pooling picks its maximum
on real parts. The public rows lower to the nodes PyTorch records (1-D pooling is 2-D
pooling between an unsqueeze and a squeeze, an unbatched convolution likewise)."""

import math
import threading
from typing import Any

from ..errors import EvaluationError, ShapeError
from . import results
from .arithmetic import _pow, _pow_grad_base
from .core import REAL, REQUIRED, Op, _re, _scale, fmt_shape, lazy_numpy
from .results import Results

np = lazy_numpy(globals())


_WORDS = {1: "one int", 2: "two ints", 3: "three ints"}


def _expand(value, d, message):
    """An int or a sequence of ``d`` ints (or of one, repeated), as PyTorch's _ntuple."""
    if isinstance(value, int):
        return (value,) * d
    if isinstance(value, tuple) and len(value) == 1:
        return value * d
    if isinstance(value, tuple) and len(value) == d:
        return value
    raise ShapeError(message)


def _windows(xp, kernel, stride, dilation, out, kernel_first, writeable=False):
    """A strided view of the padded input's windows: (lead, *kernel, *out) or
    (lead, *out, *kernel); window o at offset k reads xp[o·stride + k·dilation]. Read-only
    unless ``writeable`` (for windows that do not overlap)."""
    d = len(kernel)
    lead, spatial = xp.strides[:-d], xp.strides[-d:]
    ks = tuple(s * dl for s, dl in zip(spatial, dilation, strict=True))
    os_ = tuple(s * st for s, st in zip(spatial, stride, strict=True))
    shape = xp.shape[:-d] + ((*kernel, *out) if kernel_first else (*out, *kernel))
    strides = lead + ((*ks, *os_) if kernel_first else (*os_, *ks))
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=writeable)


_SCRATCH = threading.local()  # per thread: role -> a flat byte buffer
_SCRATCH_MAX = 16 << 20  # larger work arrays are not kept (their page faults matter less)


def _scratch(role, shape, dtype):
    """A work array (garbage contents) for a temporary that never leaves the kernel, kept
    per ``role`` and reused: a fresh array of a few hundred KiB costs its page faults on
    every call, which on the benchmark CNN was a third of the convolutions' time. One
    buffer per role, so a role is never used twice in one computation."""
    dtype = np.dtype(dtype)
    n = math.prod(shape) * dtype.itemsize
    store = _SCRATCH.__dict__
    buf = store.get(role)
    if buf is None or buf.nbytes < n:
        buf = np.empty(max(n, 1), dtype=np.uint8)
        if n <= _SCRATCH_MAX:
            store[role] = buf
    return buf[:n].view(dtype).reshape(shape)


def _pad_to(x, d, before, size, value=0, scratch=None):
    """x placed at offset ``before`` in a buffer of spatial ``size`` filled with ``value``
    (a work array of role ``scratch`` if given)."""
    inner = x.shape[-d:]
    if tuple(before) == (0,) * d and tuple(size) == tuple(inner):
        return x
    shape = x.shape[:-d] + tuple(size)
    if scratch is None:
        buf = np.full(shape, value, dtype=x.dtype)
    else:
        buf = _scratch(scratch, shape, x.dtype)
        buf.fill(value)
    buf[(...,) + tuple(slice(b, b + n) for b, n in zip(before, inner, strict=True))] = x
    return buf


def _crop(x, d, before, size):
    key = (..., *[slice(b, b + n) for b, n in zip(before, size, strict=True)])
    out = x[key]
    return out if out.shape == x.shape else np.ascontiguousarray(out)


def _offsets(kernel, stride, dilation, out):
    """For each kernel offset: its flat number and the slice of the padded input that the
    windows read at that offset (distinct windows, distinct positions)."""
    for k, kk in enumerate(np.ndindex(*kernel)):
        yield (
            k,
            kk,
            tuple(
                slice(i * dl, i * dl + st * (o - 1) + 1, st)
                for i, dl, st, o in zip(kk, dilation, stride, out, strict=True)
            ),
        )


def _col2im(cols, size, kernel, stride, dilation, out):
    """Sum window columns (lead, *kernel, *out) back into a padded buffer of ``size``."""
    d = len(kernel)
    lead = cols.shape[: cols.ndim - 2 * d]
    buf = np.zeros(lead + tuple(size), dtype=cols.dtype)
    if 0 in out:
        return buf
    for _, kk, key in _offsets(kernel, stride, dilation, out):
        buf[(...,) + tuple(key)] += cols[(...,) + tuple(kk) + (slice(None),) * d]
    return buf


# -- convolution ------------------------------------------------------------------------


def _conv_geometry(xs, ws, a):
    """Checks as PyTorch's convolution makes them; the output's spatial size."""
    stride, padding, dilation = a["stride"], a["padding"], a["dilation"]
    groups, transposed = a["groups"], a["transposed"]
    if ws[0] < groups:
        raise ShapeError(
            f"Given groups={groups}, expected weight to be at least {groups} at dimension 0, "
            f"but got weight of size {fmt_shape(ws)} instead"
        )
    if ws[0] % groups:
        raise ShapeError(
            f"Given groups={groups}, expected weight to be divisible by {groups} at "
            f"dimension 0, but got weight of size [{fmt_shape(ws)}] instead"
        )
    if transposed:
        if xs[1] != ws[0]:
            raise ShapeError(
                f"Given transposed=1, weight of size {fmt_shape(ws)}, expected input"
                f"{fmt_shape(xs)} to have {ws[0]} channels, but got {xs[1]} channels instead"
            )
        channels = ws[1] * groups
    else:
        if xs[1] != ws[1] * groups:
            raise ShapeError(
                f"Given groups={groups}, weight of size {fmt_shape(ws)}, expected input"
                f"{fmt_shape(xs)} to have {ws[1] * groups} channels, but got {xs[1]} "
                f"channels instead"
            )
        channels = ws[0]
    spatial = xs[2:]
    if 0 in spatial and xs[0] and xs[1]:
        raise ShapeError(
            f"Only zero batch or zero channel inputs are supported, but got input shape: "
            f"{fmt_shape(xs)}"
        )
    if transposed:
        out = tuple(
            (i - 1) * s - 2 * p + dl * (k - 1) + op + 1
            for i, k, s, p, dl, op in zip(
                spatial, ws[2:], stride, padding, dilation, a["output_padding"], strict=True
            )
        )
        if any(o < 1 for o in out):
            raise ShapeError(
                f"Given input size per channel: ({' x '.join(map(str, spatial))}). Calculated "
                f"output size per channel: ({' x '.join(map(str, out))}). Output size is too "
                f"small"
            )
        return channels, out
    padded = tuple(i + 2 * p for i, p in zip(spatial, padding, strict=True))
    effective = tuple(dl * (k - 1) + 1 for k, dl in zip(ws[2:], dilation, strict=True))
    if any(e > n for e, n in zip(effective, padded, strict=True)):
        raise ShapeError(
            f"Calculated padded input size per channel: ({' x '.join(map(str, padded))}). "
            f"Kernel size: ({' x '.join(map(str, effective))}). Kernel size can't be greater "
            f"than actual input size"
        )
    out = tuple((n - e) // s + 1 for n, e, s in zip(padded, effective, stride, strict=True))
    return channels, out


def _conv_shape(shapes, attrs):
    xs, ws = shapes[0], shapes[1]
    channels, out = _conv_geometry(xs, ws, attrs)
    if len(shapes) == 3 and shapes[2] != (channels,):
        which = "transposed=1, " if attrs["transposed"] else ""
        raise ShapeError(
            f"Given {which}weight of size {fmt_shape(ws)}, expected bias to be 1-dimensional "
            f"with {channels} elements, but got bias of size {fmt_shape(shapes[2])} instead"
        )
    return (xs[0], channels, *out)


def _im2col(x, kernel, stride, padding, dilation, out, groups, scratch=False):
    """(N, C, *S) -> columns (N, groups, C/groups·prod(kernel), prod(out)), one copy (into
    a work array if ``scratch``: the caller only reads them)."""
    d = len(kernel)
    size = tuple(n + 2 * p for n, p in zip(x.shape[2:], padding, strict=True))
    xp = _pad_to(x, d, padding, size, scratch="pad" if scratch else None)
    view = _windows(xp, kernel, stride, dilation, out, kernel_first=True)
    cg = x.shape[1] // groups * math.prod(kernel)
    shape = (x.shape[0], groups, cg, math.prod(out))
    if not scratch:
        return view.reshape(shape)
    cols = _scratch("cols", shape, x.dtype)
    np.copyto(cols.reshape(view.shape), view)
    return cols


# The input gradient of a unit-stride convolution in "flat" form: with the padded spatial
# dims flattened, the window at output position p and kernel offset k reads
# xp_flat[p_flat + s_k], where p_flat is p's index in the padded (not the output) grid. So
# col2im is one contiguous add per offset, of a slice of length L; the gradient is zero at
# the L - prod(out) positions between output rows (so this path needs finite weights: zero
# times an infinity would be NaN). On the benchmark CNN's second convolution it is 20 % faster
# than the strided col2im; for im2col the strided copy is as fast, so it stays.


def _flat_geometry(size, kernel, dilation, out):
    """(offsets s_k, L) for a padded grid ``size``: L covers every output position."""
    steps = [math.prod(size[i + 1 :]) for i in range(len(size))]
    span = sum((o - 1) * st for o, st in zip(out, steps, strict=True)) + 1
    starts = [
        sum(k * dl * st for k, dl, st in zip(kk, dilation, steps, strict=True))
        for kk in np.ndindex(*kernel)
    ]
    return starts, span


def _flat_col2im(cols, size, kernel, dilation, out):
    """Columns (N, C, prod(kernel), L) summed back into (N, C, *size)."""
    n, c = cols.shape[:2]
    starts, span = _flat_geometry(size, kernel, dilation, out)
    flat = np.zeros((n, c, math.prod(size)), dtype=cols.dtype)
    for k, s in enumerate(starts):
        flat[:, :, s : s + span] += cols[:, :, k]
    return flat.reshape((n, c, *size))


def _to_flat(g, size, span):
    """(..., *out) -> (..., L) on the padded grid, zero between the output rows (a work
    array)."""
    d = len(size)
    buf = _scratch("flat", g.shape[:-d] + tuple(size), g.dtype)
    buf.fill(0)
    buf[(...,) + tuple(slice(0, o) for o in g.shape[-d:])] = g
    return buf.reshape(g.shape[:-d] + (math.prod(size),))[..., :span]


def _transposed_product(w, g, channels, size, a):
    """col2im(Wᵀ·g) into the padded grid ``size``: the input gradient of a convolution,
    and the forward of a transposed one. g is (N, groups·Og, *out); channels = groups·Cg."""
    groups, n = a["groups"], g.shape[0]
    kernel, out = w.shape[2:], g.shape[2:]
    wm = w.reshape(groups, w.shape[0] // groups, -1).transpose(0, 2, 1)
    if all(s == 1 for s in a["stride"]) and np.isfinite(w).all():
        span = _flat_geometry(size, kernel, a["dilation"], out)[1]
        gf = _to_flat(g, size, span).reshape(n, groups, wm.shape[2], span)
        cols = _scratch("cols", (n, groups, wm.shape[1], span), np.result_type(wm, gf))
        np.matmul(wm, gf, out=cols)
        cols = cols.reshape(n, channels, math.prod(kernel), span)
        return _flat_col2im(cols, size, kernel, a["dilation"], out)
    gm = g.reshape(n, groups, wm.shape[2], math.prod(out))
    cols = _scratch("cols", (n, groups, wm.shape[1], gm.shape[3]), np.result_type(wm, gm))
    np.matmul(wm, gm, out=cols)
    cols = cols.reshape((n, channels, *kernel, *out))
    return _col2im(cols, size, kernel, a["stride"], a["dilation"], out)


def _bias_shape(b, d):
    return b.reshape((-1,) + (1,) * d)


def _convolution(x, w, b=None, **a):
    d = w.ndim - 2
    kernel, groups = w.shape[2:], a["groups"]
    channels, out = _conv_geometry(x.shape, w.shape, a)
    n = x.shape[0]
    if a["transposed"]:  # the input gradient of a convolution: columns, then col2im
        full = tuple(o + 2 * p for o, p in zip(out, a["padding"], strict=True))
        y = _crop(_transposed_product(w, x, channels, full, a), d, a["padding"], out)
    else:
        cols = _im2col(x, kernel, a["stride"], a["padding"], a["dilation"], out, groups, True)
        y = np.matmul(w.reshape(groups, channels // groups, -1), cols)
        y = y.reshape((n, channels, *out))
    if b is not None:
        if np.result_type(y, b) == y.dtype:  # y is this call's own: added in place
            y += _bias_shape(b, d)
        else:
            y = y + _bias_shape(b, d)
    return y


def _conv_grad_input(g, o, x, w, b=None, **a):
    d = w.ndim - 2
    kernel, groups = w.shape[2:], a["groups"]
    if a["transposed"]:  # a convolution of g with w
        cols = _im2col(
            g, kernel, a["stride"], a["padding"], a["dilation"], x.shape[2:], groups, True
        )
        wm = w.reshape(groups, w.shape[0] // groups, -1)
        return np.matmul(wm, cols).reshape(x.shape)
    size = tuple(s + 2 * p for s, p in zip(x.shape[2:], a["padding"], strict=True))
    full = _transposed_product(w, g, x.shape[1], size, a)
    return _crop(full, d, a["padding"], x.shape[2:])


def _batch_product(u, v):
    """Σ over the batch of u @ vᵀ: u (N, G, A, L), v (N, G, B, L) -> (G, A, B). BLAS reads
    the transposed operand in place; the (N, G, A, B) partial products are small."""
    return np.matmul(u, v.transpose(0, 1, 3, 2)).sum(axis=0)


def _conv_grad_weight(g, o, x, w, b=None, **a):
    kernel, groups, n = w.shape[2:], a["groups"], x.shape[0]
    if a["transposed"]:
        cols = _im2col(
            g, kernel, a["stride"], a["padding"], a["dilation"], x.shape[2:], groups, True
        )
        xm = x.reshape(n, groups, x.shape[1] // groups, math.prod(x.shape[2:]))
        return _batch_product(xm, cols).reshape(w.shape)
    cols = _im2col(x, kernel, a["stride"], a["padding"], a["dilation"], g.shape[2:], groups, True)
    gm = g.reshape(n, groups, g.shape[1] // groups, math.prod(g.shape[2:]))
    return _batch_product(gm, cols).reshape(w.shape)


def _conv_grad_bias(g, o, x, w, b=None, **a):
    return g.sum(axis=(0, *range(2, g.ndim)))


def _conv_lower(d, transposed):
    name = f"conv_transpose{d}d" if transposed else f"conv{d}d"

    def lower(emit, node, args, attrs):
        x, w = args[0], args[1]
        xs, ws = node(x).shape, node(w).shape
        if len(xs) not in (d + 1, d + 2):
            raise ShapeError(
                f"Expected {d + 1}D (unbatched) or {d + 2}D (batched) input to {name}, but got "
                f"input of size: {fmt_shape(xs)}"
            )
        if len(ws) < 3:
            raise ShapeError(
                f"{name}: weight must be {d + 2}-dimensional, got weight of size {fmt_shape(ws)}"
            )
        a = _conv_attrs(name, d, len(ws) - 2, attrs, transposed)
        if len(ws) - 2 != d:  # (the stride's length already failed, as in PyTorch)
            raise ShapeError(f"{name}: expected a {d + 2}-D weight, got {fmt_shape(ws)}")
        if len(xs) == d + 1:
            x = emit("unsqueeze", (x,), {"dim": 0})
        padding = a["padding"]
        if padding == "valid":
            a["padding"] = (0,) * d
        elif padding == "same":
            x, a["padding"] = _same_padding(emit, x, ws[2:], a["dilation"])
        y = emit("convolution", (x, w, *args[2:]), a)
        return emit("squeeze", (y,), {"dim": 0}) if len(xs) == d + 1 else y

    return lower


def _conv_attrs(name, d, wd, attrs, transposed):
    """Stride, padding, dilation, groups checked and expanded as PyTorch does."""

    def ntuple(key):
        value = attrs[key]
        if isinstance(value, str) and key == "padding" and not transposed:
            if value not in ("same", "valid"):
                raise ShapeError(f"Invalid padding string: '{value}'")
            return value
        if not isinstance(value, (int, tuple)):
            what = type(value).__name__
            raise ShapeError(f"{name}(): argument '{key}' must be tuple of ints, not {what}")
        n = wd  # PyTorch expands to the weight's spatial dims
        expanded = (value,) * d if isinstance(value, int) else value
        if len(expanded) == 1:
            expanded = expanded * n
        if len(expanded) != n:
            raise ShapeError(
                f"expected {key} to be a single integer value or a list of {n} values to match "
                f"the convolution dimensions, but got {key}={list(expanded)}"
            )
        return expanded

    keys = ("stride", "padding", "dilation") + (("output_padding",) if transposed else ())
    # Any: a tuple of ints, or for padding also the string "same" or "valid"
    a: dict[str, Any] = {k: ntuple(k) for k in keys}
    groups = attrs["groups"]
    if not isinstance(groups, int):
        raise ShapeError(f"{name}(): argument 'groups' must be int")
    if any(s <= 0 for s in a["stride"]):
        raise ShapeError("non-positive stride is not supported")
    if not isinstance(a["padding"], str) and any(p < 0 for p in a["padding"]):
        raise ShapeError("negative padding is not supported")
    if transposed and any(p < 0 for p in a["output_padding"]):
        raise ShapeError("negative output_padding is not supported")
    if any(dl <= 0 for dl in a["dilation"]):
        raise ShapeError(f"dilation should be greater than zero, but got {list(a['dilation'])}")
    if groups <= 0:
        raise ShapeError("non-positive groups is not supported")
    if a["padding"] == "same" and any(s != 1 for s in a["stride"]):
        raise ShapeError("padding='same' is not supported for strided convolutions")
    if transposed:
        if any(
            op >= s and op >= dl
            for op, s, dl in zip(a["output_padding"], a["stride"], a["dilation"], strict=True)
        ):
            axes = ("depth", "height", "width")[3 - d :] if d > 1 else ("width",)
            parts = [
                f"{what}_{axis}: {v}"
                for what, vals in (
                    ("output_padding", a["output_padding"]),
                    ("stride", a["stride"]),
                    ("dilation", a["dilation"]),
                )
                for axis, v in zip(axes, vals, strict=True)
            ]
            raise ShapeError(
                "output padding must be smaller than either stride or dilation, but got "
                + " ".join(parts)
            )
    else:
        a["output_padding"] = (0,) * d
    a["groups"], a["transposed"] = groups, transposed
    return a


def _same_padding(emit, x, kernel, dilation):
    """padding='same': symmetric padding in the convolution, and, where the total is odd,
    one more at the end by a ConstantPadNd node first (as PyTorch's _convolution_mode)."""
    left, extra = [], []
    for k, dl in zip(kernel, dilation, strict=True):
        total = dl * (k - 1)
        left.append(total // 2)
        extra.append(total - 2 * (total // 2))
    if any(extra):
        x = emit("conv_pad", (x,), {"after": tuple(extra)})
    return x, tuple(left)


def _conv_pad_shape(shapes, attrs):
    d = len(attrs["after"])
    s = shapes[0]
    return s[:-d] + tuple(n + e for n, e in zip(s[-d:], attrs["after"], strict=True))


def _conv_pad(x, after):
    d = len(after)
    return _pad_to(x, d, (0,) * d, tuple(n + e for n, e in zip(x.shape[-d:], after, strict=True)))


# -- pooling ----------------------------------------------------------------------------


def _pool_size(n, k, s, p, dl, ceil):
    """PyTorch's pooling_output_shape (after its checks)."""
    o = (n + 2 * p - dl * (k - 1) - 1 + (s - 1 if ceil else 0)) // s + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def _pool_attrs(name, d, attrs, has_dilation=True):
    """kernel_size, stride (None: the kernel), padding, dilation as d-tuples, PyTorch's way."""
    words = _WORDS[d]
    if d == 1:

        def msg(key):
            return f"{name}() argument '{key}' should contain one int (got more)"
    else:

        def msg(key):
            how = {
                "kernel_size": "either be a single int, or",
                "stride": "either be omitted, a single int, or",
                "padding": "either be a single int, or",
                "dilation": "be either a single int, or",
            }[key]
            return f"{name}: {key} must {how} a tuple of {words}"

    kernel = _expand(attrs["kernel_size"], d, msg("kernel_size"))
    stride = attrs.get("stride")
    stride = kernel if stride is None or stride == () else _expand(stride, d, msg("stride"))
    padding = _expand(attrs.get("padding", 0), d, msg("padding"))
    dilation = _expand(attrs.get("dilation", 1), d, msg("dilation")) if has_dilation else (1,) * d
    return kernel, stride, padding, dilation


def _pool_check(xs, d, kernel, stride, padding, dilation, ceil):
    """PyTorch's pooling_output_shape and pool2d/3d_shape_check, in their order."""
    for k, s, p, dl in zip(kernel, stride, padding, dilation, strict=True):
        if s == 0:
            raise ShapeError("stride should not be zero")
        if p < 0:
            raise ShapeError(f"pad must be non-negative, but got pad: {p}")
        if p > ((k - 1) * dl + 1) // 2:
            raise ShapeError(
                f"pad should be at most half of effective kernel size, but got pad={p}, "
                f"kernel_size={k} and dilation={dl}"
            )
    spatial = xs[-d:]
    out = tuple(
        _pool_size(n, k, s, p, dl, ceil)
        for n, k, s, p, dl in zip(spatial, kernel, stride, padding, dilation, strict=True)
    )
    axes = "TW" if d == 1 else ("HW" if d == 2 else "THW")
    if min(kernel) <= 0:
        raise ShapeError(
            "kernel size should be greater than zero, but got "
            + " ".join(f"k{a}: {k}" for a, k in zip(axes, kernel, strict=True))
        )
    if min(stride) <= 0:
        raise ShapeError(
            "stride should be greater than zero, but got "
            + " ".join(f"d{a}: {s}" for a, s in zip(axes, stride, strict=True))
        )
    if min(dilation) <= 0:
        raise ShapeError(
            "dilation should be greater than zero, but got "
            + " ".join(f"dilation{a}: {dl}" for a, dl in zip(axes, dilation, strict=True))
        )
    nonempty = all(n != 0 for n in xs[1:]) if len(xs) == d + 2 else all(xs)
    if not nonempty:
        raise ShapeError(
            f"Expected {d + 1}D or {d + 2}D (batch mode) tensor with optional 0 dim batch size "
            f"for input, but got:{fmt_shape(xs)}"
        )
    if any(p > k // 2 for p, k in zip(padding, kernel, strict=True)):
        raise ShapeError(
            "pad should be smaller than or equal to half of kernel size, but got "
            + ", ".join(f"pad{a} = {p}" for a, p in zip(axes, padding, strict=True))
            + ", "
            + ", ".join(f"k{a} = {k}" for a, k in zip(axes, kernel, strict=True))
        )
    if min(out) < 1:
        planes = xs[-d - 1]
        raise ShapeError(
            f"Given input size: ({'x'.join(map(str, (planes, *spatial)))}). Calculated output "
            f"size: ({'x'.join(map(str, (planes, *out)))}). Output size is too small"
        )
    return out


def _pool_layout(xs, a):
    """The output size, and the padded extent each spatial dim needs so every window of the
    ceil_mode reads inside the buffer."""
    d = len(a["kernel"])
    out = _pool_check(xs, d, a["kernel"], a["stride"], a["padding"], a["dilation"], a["ceil_mode"])
    size = tuple(
        max(n + 2 * p, (o - 1) * s + (k - 1) * dl + 1)
        for n, p, o, s, k, dl in zip(
            xs[-d:], a["padding"], out, a["stride"], a["kernel"], a["dilation"], strict=True
        )
    )
    return out, size


def _pool_shape(shapes, attrs):
    d = len(attrs["kernel"])
    xs = shapes[0]
    if len(xs) not in (d + 1, d + 2):
        raise ShapeError(f"non-empty {d + 1}D or {d + 2}D (batch mode) tensor expected for input")
    out, _ = _pool_layout(xs, attrs)
    return xs[:-d] + out


def _first_max(w, valid):
    """PyTorch's choice in a window (last axis): the first maximum among valid positions,
    or the last NaN; all -inf: the first valid position. On real parts."""
    m = np.max(w, axis=-1, keepdims=True)
    hit = w == m
    if valid is not None:
        hit &= valid
    idx = np.argmax(hit, axis=-1)
    nan = np.isnan(w)
    if nan.any():
        last = w.shape[-1] - 1 - np.argmax(nan[..., ::-1], axis=-1)
        idx = np.where(nan.any(axis=-1), last, idx)
    return idx


def _max_pool_index(x, a):
    """The padded input's windows (lead, *out, prod(kernel)) and the offset PyTorch picks
    in each, on real parts."""
    d = len(a["kernel"])
    out, size = _pool_layout(x.shape, a)
    k, s, p, dl = a["kernel"], a["stride"], a["padding"], a["dilation"]
    re = _pad_to(_re(x), d, p, size, -np.inf)
    w = _windows(re, k, s, dl, out, kernel_first=False).reshape(
        x.shape[:-d] + out + (math.prod(k),)
    )
    valid = None
    if any(p) or size != x.shape[-d:]:  # windows that reach into the padding
        mask = _pad_to(np.ones(x.shape[-d:], dtype=bool), d, p, size, False)
        valid = _windows(mask, k, s, dl, out, kernel_first=False).reshape(out + (math.prod(k),))
    return w, _first_max(w, valid), out, size


def _over_offsets(ufunc, xp, a, out):
    """ufunc-reduce the windows by looping over the kernel offsets: each step is one
    elementwise pass over the output (faster than numpy's reduce over small strided axes)."""
    acc = None
    for _, _, key in _offsets(a["kernel"], a["stride"], a["dilation"], out):
        v = xp[(...,) + tuple(key)]
        acc = v.copy() if acc is None else ufunc(acc, v, out=acc)
    assert acc is not None  # the kernel sizes were checked to be > 0
    return acc


def _max_pool(x, **a):
    if not np.iscomplexobj(x):  # the maximum of each window, straight off the strided view
        d = len(a["kernel"])
        out, size = _pool_layout(x.shape, a)
        xp = _pad_to(x, d, a["padding"], size, -np.inf)
        return _over_offsets(np.maximum, xp, a, out)
    w, idx, out, size = _max_pool_index(x, a)
    d = len(a["kernel"])
    xp = _pad_to(x, d, a["padding"], size)
    view = _windows(xp, a["kernel"], a["stride"], a["dilation"], out, kernel_first=False)
    return np.take_along_axis(view.reshape(w.shape), idx[..., None], axis=-1)[..., 0]


def select(mask, g):
    """np.where(mask, g, 0) for float g, bit for bit (-0.0, NaN and inf pass through where
    the mask holds, +0.0 elsewhere), as a bitwise and: numpy's where branches on every
    element, which costs ~4 ns each on a random mask against ~0.2 ns here."""
    g = np.asarray(g)
    ints = {2: np.int16, 4: np.int32, 8: np.int64}.get(g.dtype.itemsize)
    if g.dtype.kind != "f" or ints is None:
        return np.where(mask, g, 0)
    bits = np.asarray(mask).astype(ints)
    np.negative(bits, out=bits)  # all ones where the mask holds
    np.bitwise_and(bits, g.view(ints), out=bits)
    return bits.view(g.dtype)


def _kernel_major(view, d):
    """A window view (lead, *kernel, *out) copied to (prod(kernel), lead, *out): each
    offset's slab contiguous, so the per-offset passes run at full speed."""
    lead = view.ndim - 2 * d
    order = (*range(lead, lead + d), *range(lead), *range(lead + d, view.ndim))
    moved = view.transpose(order)
    out = _scratch("cols", moved.shape, view.dtype)
    np.copyto(out, moved)
    shape = (math.prod(view.shape[lead : lead + d]), *view.shape[:lead], *view.shape[lead + d :])
    return out.reshape(shape)


def _max_pool_grad(g, o, x, **a):
    d = len(a["kernel"])
    out, size = _pool_layout(x.shape, a)
    buf = np.zeros(x.shape[:-d] + size, dtype=g.dtype)
    k, s, dl = a["kernel"], a["stride"], a["dilation"]
    if not np.iscomplexobj(x) and not np.any(np.isnan(o) | (o == -np.inf)):
        # Each window's maximum is known (o) and lies in the input: the first offset that
        # reaches it takes the gradient, as PyTorch's strict > does on ties. The windows are
        # copied offset-major once, so each offset's test is one contiguous pass.
        xp = _pad_to(x, d, a["padding"], size, -np.inf, scratch="pad")
        cols = _kernel_major(_windows(xp, k, s, dl, out, kernel_first=True), d)
        taken = np.zeros(o.shape, dtype=bool)
        for j, _, key in _offsets(k, s, dl, out):
            hit = np.greater(cols[j] == o, taken)  # a maximum not taken by an earlier offset
            taken |= hit
            # added into zeros, as ATen does (a -0.0 seed arrives as +0.0)
            buf[(...,) + tuple(key)] += select(hit, g)
    else:  # NaN (the last one wins), all -inf (the first valid one), dual numbers
        idx = _max_pool_index(x, a)[1]
        for j, _, key in _offsets(k, s, dl, out):
            buf[(...,) + tuple(key)] += np.where(idx == j, g, 0)
    return _crop(buf, d, a["padding"], x.shape[-d:])


def _avg_divisor(xs, a, out):
    d = len(a["kernel"])
    if a["divisor_override"] is not None:
        return float(a["divisor_override"])
    counts = []
    for n, k, s, p, o in zip(xs[-d:], a["kernel"], a["stride"], a["padding"], out, strict=True):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        pool = end - start
        inside = np.minimum(end, n) - np.maximum(start, 0)
        counts.append(pool if a["count_include_pad"] else inside)
    div = counts[0]
    for c in counts[1:]:
        div = np.multiply.outer(div, c)
    return div


def _avg_pool(x, **a):
    d = len(a["kernel"])
    out, size = _pool_layout(x.shape, a)
    total = _over_offsets(np.add, _pad_to(x, d, a["padding"], size), a, out)
    return total / _avg_divisor(x.shape, a, out)


def _avg_pool_grad(g, o, x, **a):
    d = len(a["kernel"])
    out, size = _pool_layout(x.shape, a)
    share = g / _avg_divisor(x.shape, a, out)
    buf = np.zeros(x.shape[:-d] + size, dtype=share.dtype)
    for _, _, key in _offsets(a["kernel"], a["stride"], a["dilation"], out):
        buf[(...,) + tuple(key)] += share
    return _crop(buf, d, a["padding"], x.shape[-d:])


def _pool_label(stem):
    def label(kinds, attrs):
        return stem.format(len(attrs.get("kernel") or attrs.get("output_size")))

    label.__doc__ = stem.format("2") + " / " + stem.format("3")
    return label


def _pool_lower(kind, d):
    """max_poolNd / avg_poolNd: the checks and defaults of PyTorch's function, then the 2-D
    or 3-D pooling node (1-D: between an unsqueeze and a squeeze, as PyTorch records)."""
    name = f"{kind}_pool{d}d"

    def lower(emit, node, args, attrs):
        x = args[0]
        xs = node(x).shape
        kernel, stride, padding, dilation = _pool_attrs(name, d, attrs, kind == "max")
        pair = kind == "max" and attrs.get("return_indices") is True
        if kind == "avg" and attrs.get("divisor_override") == 0:
            raise ShapeError("divisor must be not zero")
        a = {
            "kernel": kernel,
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "ceil_mode": attrs.get("ceil_mode", False),
        }
        if kind == "avg":
            a["count_include_pad"] = attrs.get("count_include_pad", True)
            a["divisor_override"] = attrs.get("divisor_override")
        if d == 1:
            _check_1d(name, kind, xs, a)
            a = {k: ((1,) + v if isinstance(v, tuple) else v) for k, v in a.items()}
            a["padding"] = (0,) + a["padding"][1:]
            wide: list = []  # the unsqueezed input, made once for the values and the indices

            def one(row):
                if not wide:
                    wide.append(emit("unsqueeze", (x,), {"dim": -2}))
                return emit("squeeze", (emit(row, (wide[0],), a),), {"dim": -2})

        else:
            if kind == "avg" and d == 2 and len(xs) < 3:
                raise ShapeError(
                    f"Dimension out of range (expected to be in range of [{-len(xs)}, "
                    f"{len(xs) - 1}], but got {-d - 1})"
                )

            def one(row):
                return emit(row, (x,), a)

        if pair:  # (values, int64 indices), a plain tuple as in PyTorch
            return Results("tuple", [lambda: one("max_pool"), lambda: one("max_pool_indices")])
        return one(f"{kind}_pool")

    return lower


def _max_pool_indices(x, **a):
    """Where each window's maximum lies: a flat index into the input's spatial dims (the
    unpadded ones), as max_poolNd(return_indices=True) gives it."""
    d = len(a["kernel"])
    _, idx, out, _ = _max_pool_index(x, a)
    offsets = np.unravel_index(idx, a["kernel"])
    flat = np.zeros(idx.shape, dtype=np.int64)
    for j in range(d):
        o = np.arange(out[j]).reshape((-1,) + (1,) * (d - 1 - j))
        pos = o * a["stride"][j] - a["padding"][j] + offsets[j] * a["dilation"][j]
        flat = flat * x.shape[x.ndim - d + j] + pos
    return flat


def _check_1d(name, kind, xs, a):
    if len(xs) not in (2, 3):
        if kind == "max":
            raise ShapeError(
                f"{name}: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch "
                f"size for input, but got:{fmt_shape(xs)}"
            )
        raise ShapeError(
            f"Expected 2 to 3 dimensions, but got {len(xs)}-dimensional tensor for argument "
            f"#1 'self' (while checking arguments for {name})"
        )
    if kind != "max":
        return
    (k,), (s,), (p,), (dl,) = a["kernel"], a["stride"], a["padding"], a["dilation"]
    for what, v, ok in (
        ("kernel_size", k, k > 0),
        ("stride", s, s > 0),
        ("padding", p, p >= 0),
    ):
        if not ok:
            adjective = "non-negative" if what == "padding" else "greater than zero"
            raise ShapeError(f"{name}() {what} must be {adjective}, but got {v}")
    if p > k // 2:
        raise ShapeError(
            f"{name}() padding should be at most half of kernel size, but got padding={p} and "
            f"kernel_size={k}"
        )
    if dl <= 0:
        raise ShapeError(f"{name}() dilation must be greater than zero, but got {dl}")
    o = _pool_size(xs[-1], k, s, p, dl, a["ceil_mode"])
    if o <= 0:
        raise ShapeError(f"{name}() Invalid computed output size: {o}")


# -- adaptive pooling -------------------------------------------------------------------


def _adaptive_ranges(n, o):
    start = (np.arange(o) * n) // o
    end = -((-(np.arange(o) + 1) * n) // o)  # ceil((i + 1)·n / o)
    return start, end


def _adaptive_shape(shapes, attrs):
    xs, out = shapes[0], attrs["output_size"]
    d = len(out)
    return xs[:-d] + out


def _nonempty(name, xs, first):
    """PyTorch's check that no dimension from ``first`` on is empty: max pooling and the 3-d
    average pool check every dimension after the first, the 1-d and 2-d average pools only the
    pooled ones (an average over 0 channels is an empty result; over 0 positions, an error)."""
    for i in range(first, len(xs)):
        if xs[i] == 0:
            raise ShapeError(
                f"{name}(): Expected input to have non-zero size for non-batch dimensions, but "
                f"input has sizes {fmt_shape(xs)} with dimension {i} being empty"
            )


def _adaptive_check(name, d, xs, output_size):
    if name == "adaptive_avg_pool3d":  # checks emptiness before the number of dimensions
        _nonempty(name, xs, 1)
    if len(xs) not in (d + 1, d + 2):
        colon = ":" if name.startswith("adaptive_max") else ""
        raise ShapeError(
            f"{name}(): Expected {d + 1}D or {d + 2}D tensor, but got{colon} {fmt_shape(xs)}"
        )
    _nonempty(name, xs, 1 if name.startswith("adaptive_max") or d == 3 else len(xs) - d)
    if isinstance(output_size, int):
        output_size = (output_size,) * d
    is_max = name.startswith("adaptive_max")
    if not isinstance(output_size, tuple) or len(output_size) != d:
        if is_max:
            raise ShapeError(f"{name}(): internal error: output_size.size() must be {d}")
        raise ShapeError(f"{name}: output_size must be {d}")
    if not all(isinstance(o, int) for o in output_size):
        raise ShapeError(f"{name}: output_size must be integers, got {list(output_size)}")
    if is_max and any(o < 0 for o in output_size):
        shape = list(xs[:-d] + output_size)
        first = next(o for o in output_size if o < 0)
        raise ShapeError(f"Trying to create tensor with negative dimension {first}: {shape}")
    if any(o < 0 for o in output_size):
        raise ShapeError(
            f"{name}: elements of output_size must be greater than or equal to 0 but received "
            f"{{{', '.join(map(str, output_size))}}}"
        )
    return output_size


def _window_taps(n, o):
    """Adaptive windows along one axis as taps (see _apply_taps): tap k reads position
    start + k for the outputs whose window is longer than k."""
    start, end = _adaptive_ranges(n, o)
    length = int((end - start).max()) if o else 0
    taps = []
    for k in range(length):
        dst = np.flatnonzero(start + k < end)
        taps.append((None if dst.size == o else dst, start[dst] + k, None))
    return taps


def _apply_taps(x, axis, taps, n_out, n_in, transpose=False):
    """A linear map along one axis, as a few gathers: each tap (dst, src, w) adds
    w · x[src] to the outputs dst (None: all of them; w None: weight 1). ``transpose``:
    the adjoint, each tap's contributions summed back onto its (non-decreasing) sources.
    Nothing is multiplied by a zero weight, so a NaN or an infinity reaches only the
    outputs whose taps read it, as in ATen's kernels."""
    shape = list(x.shape)
    shape[axis] = n_in if transpose else n_out
    out = None
    key: list[Any] = [slice(None)] * x.ndim
    for dst, src, w in taps:
        if src.size == 0:
            continue
        if transpose:
            v = x if dst is None else np.take(x, dst, axis=axis)
            v = v if w is None else v * _along_axis(w, axis, x.ndim)
            starts = np.flatnonzero(np.r_[True, src[1:] != src[:-1]])
            key[axis] = src[starts]
            v = np.add.reduceat(v, starts, axis=axis)
        else:
            v = np.take(x, src, axis=axis)
            v = v if w is None else v * _along_axis(w, axis, x.ndim)
            key[axis] = slice(None) if dst is None else dst
            if out is None and dst is None:
                out = v
                continue
        if out is None:
            out = np.zeros(shape, dtype=np.result_type(x, v))
        out[tuple(key)] += v
    return np.zeros(shape, dtype=x.dtype) if out is None else out


def _along_axis(w, axis, ndim):
    shape = [1] * ndim
    shape[axis] = -1
    return w.reshape(shape)


def _separable(x, taps, sizes, transpose=False):
    """Apply one list of taps per trailing axis (a separable linear map)."""
    d = len(taps)
    for j, (t, (n_in, n_out)) in enumerate(zip(taps, sizes, strict=True)):
        x = _apply_taps(x, x.ndim - d + j, t, n_out, n_in, transpose)
    return x


def _adaptive_counts(spatial, out):
    div = None
    for n, o in zip(spatial, out, strict=True):
        start, end = _adaptive_ranges(n, o)
        c = end - start
        div = c if div is None else np.multiply.outer(div, c)
    return div


def _adaptive_avg(x, output_size):
    spatial = x.shape[-len(output_size) :]
    pairs = list(zip(spatial, output_size, strict=True))
    taps = [_window_taps(n, o) for n, o in pairs]
    return _separable(x, taps, pairs) / _adaptive_counts(spatial, output_size)


def _adaptive_grad_check(kind, g, output_size):
    """PyTorch's backward refuses a gradient with an empty non-batch dimension (an output
    size of 0), though the forward gives one."""
    for i, n in enumerate(g.shape[1:], 1):
        if n == 0:
            raise EvaluationError(
                f"adaptive_{kind}_pool{len(output_size)}d_backward(): Expected grad_output to "
                f"have non-zero size for non-batch dimensions, but grad_output has sizes "
                f"{fmt_shape(g.shape)} with dimension {i} being empty"
            )


def _adaptive_avg_grad(g, o, x, output_size):
    _adaptive_grad_check("avg", g, output_size)
    spatial = x.shape[-len(output_size) :]
    pairs = list(zip(spatial, output_size, strict=True))
    taps = [_window_taps(n, o) for n, o in pairs]
    return _separable(g / _adaptive_counts(spatial, output_size), taps, pairs, transpose=True)


def _adaptive_windows(x, output_size):
    """Windows gathered to (lead, *out, L) with a validity mask (out, L): adaptive windows
    differ in length, so each is padded to the longest."""
    d = len(output_size)
    index, valid = [], []
    for j, (n, o) in enumerate(zip(x.shape[-d:], output_size, strict=True)):
        start, end = _adaptive_ranges(n, o)
        length = int((end - start).max()) if o else 0
        pos = start[:, None] + np.arange(length)
        ok = pos < end[:, None]
        shape = [1] * (2 * d)
        shape[j], shape[d + j] = o, length
        index.append(np.minimum(pos, n - 1).reshape(shape))
        valid.append(ok.reshape(shape))
    gathered = x[(...,) + tuple(index)]  # (lead, *out, *lengths)
    mask = valid[0]
    for v in valid[1:]:
        mask = mask & v
    flat = gathered.reshape(x.shape[:-d] + tuple(output_size) + (math.prod(gathered.shape[-d:]),))
    return flat, mask.reshape(flat.shape[-d - 1 :]), index


def _adaptive_choice(x, output_size):
    """The offset PyTorch picks in each window (on real parts; the slots past a shorter
    window's end are -inf, so they never count)."""
    w, mask, index = _adaptive_windows(_re(x), output_size)
    return _first_max(np.where(mask, w, -np.inf), mask), index


def _adaptive_max(x, output_size):
    if x.size == 0 or 0 in output_size:
        return np.zeros(x.shape[: -len(output_size)] + tuple(output_size), dtype=x.dtype)
    w = _adaptive_windows(x, output_size)[0]
    idx = _adaptive_choice(x, output_size)[0]
    return np.take_along_axis(w, idx[..., None], axis=-1)[..., 0]


def _adaptive_positions(x, output_size):
    """Where each window's maximum lies: a flat index into the input's spatial dims,
    (lead, *out), as adaptive_max_poolNd(return_indices=True) gives it."""
    d = len(output_size)
    idx, index = _adaptive_choice(x, output_size)
    lengths = tuple(ix.shape[d + j] for j, ix in enumerate(index))
    offsets = np.unravel_index(idx, lengths)
    spatial = x.shape[-d:]
    pos = np.zeros(idx.shape, dtype=np.int64)
    for j in range(d):
        starts = _adaptive_ranges(spatial[j], output_size[j])[0]
        shape = [1] * idx.ndim
        shape[idx.ndim - d + j] = output_size[j]
        pos = pos * spatial[j] + starts.reshape(shape) + offsets[j]
    return pos


def _adaptive_max_indices(x, output_size):
    if x.size == 0 or 0 in output_size:
        return np.zeros(x.shape[: -len(output_size)] + tuple(output_size), dtype=np.int64)
    return _adaptive_positions(x, output_size)


def _adaptive_max_grad(g, o, x, output_size):
    _adaptive_grad_check("max", g, output_size)
    d = len(output_size)
    if x.size == 0 or 0 in output_size:
        return np.zeros(x.shape, dtype=g.dtype)
    pos = _adaptive_positions(x, output_size)
    plane = math.prod(x.shape[-d:])
    lead = math.prod(x.shape[:-d])
    pos = pos + (np.arange(lead) * plane).reshape(x.shape[:-d] + (1,) * d)
    size = lead * plane
    pos, gg = pos.reshape(-1), np.broadcast_to(g, pos.shape).reshape(-1)
    out = np.bincount(pos, weights=gg.real, minlength=size)
    if np.iscomplexobj(g):
        out = out + 1j * np.bincount(pos, weights=gg.imag, minlength=size)
    return out.astype(g.dtype).reshape(x.shape)


def _adaptive_lower(kind, d):
    name = f"adaptive_{kind}_pool{d}d"

    def lower(emit, node, args, attrs):
        x = args[0]
        xs = node(x).shape
        pair = kind == "max" and attrs.get("return_indices") is True
        size = attrs["output_size"]
        if d == 1:
            if len(xs) not in (2, 3):
                raise ShapeError(
                    f"Expected 2 to 3 dimensions, but got {len(xs)}-dimensional tensor for "
                    f"argument #1 'self' (while checking arguments for {name})"
                )
            if isinstance(size, tuple) and len(size) != 1:
                raise ShapeError(
                    f"{name}() argument 'output_size' should contain one int (got {len(size)})"
                )
            size = (1, *(size if isinstance(size, tuple) else (size,)))
            name2 = f"adaptive_{kind}_pool2d"
            if kind == "max":  # checked as itself; the average pool as the 2-d one it runs
                _nonempty(name, xs, 1)
            _adaptive_check(name2, 2, xs[:-1] + (1, xs[-1]), size)
            wide: list = []  # the unsqueezed input, made once for the values and the indices

            def one(row):
                if not wide:
                    wide.append(emit("unsqueeze", (x,), {"dim": -2}))
                y = _adaptive_node(emit, kind, name2, wide[0], size, node, row)
                return emit("squeeze", (y,), {"dim": -2})

        else:
            size = _adaptive_check(name, d, xs, size)

            def one(row):
                return _adaptive_node(emit, kind, name, x, size, node, row)

        if pair:  # (values, int64 indices), a plain tuple as in PyTorch
            return Results(
                "tuple", [lambda: one("adaptive_max_pool"), lambda: one("adaptive_max_indices")]
            )
        return one(f"adaptive_{kind}_pool")

    return lower


def _adaptive_node(emit, kind, name, x, size, node, row):
    d = 3 if name.endswith("3d") else 2
    size = _adaptive_check(name, d, node(x).shape, size)
    if kind == "avg" and all(o == 1 for o in size):  # PyTorch takes the mean
        return emit("mean", (x,), {"dim": tuple(range(-d, 0))[::-1], "keepdim": True})
    return emit(row, (x,), {"output_size": size})


# -- lp pooling -------------------------------------------------------------------------


def _lp_lower(d):
    """F.lp_poolNd as PyTorch writes it: avg_pool of x^p, then
    (sign(out) · relu(|out|)) · prod(kernel), to the power 1/p."""
    name = f"lp_pool{d}d"

    def lower(emit, node, args, attrs):
        p = attrs["norm_type"]
        if p == 0:  # PyTorch: ZeroDivisionError, from its pow(1.0 / norm_type)
            raise EvaluationError(
                f"{name}(): norm_type 0 divides by zero (the result is out^(1/p))"
            )
        kernel = _expand(
            attrs["kernel_size"], d, f"{name}: kernel_size must be an int or {_WORDS[d]}"
        )
        pooled = emit("lp_pow", args, {"exponent": p})
        avg = _pool_lower("avg", d)
        out = avg(
            emit,
            node,
            (pooled,),
            {
                "kernel_size": attrs["kernel_size"],
                "stride": attrs["stride"],
                "padding": 0,
                "ceil_mode": attrs["ceil_mode"],
                "count_include_pad": True,
                "divisor_override": None,
            },
        )
        signed = emit("mul", (emit("sign", (out,)), emit("relu", (emit("abs", (out,)),))))
        scaled = emit("lp_scale", (signed,), {"factor": float(math.prod(kernel))})
        return emit("lp_pow", (scaled,), {"exponent": 1.0 / p})

    return lower


# -- unfold, fold, pixel shuffle --------------------------------------------------------


def _fold_attrs(name, attrs, keys):
    out = {}
    for key in keys:
        v = attrs[key]
        out[key] = _expand(v, 2, f"{name}(): {key} must be an int or a tuple of two ints")
    return out


def _unfold_geometry(xs, a):
    if len(xs) not in (3, 4) or 0 in xs[-3:]:
        raise ShapeError(
            f"Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, "
            f"but got: {fmt_shape(xs)}"
        )
    k, dl, p, s = a["kernel_size"], a["dilation"], a["padding"], a["stride"]
    _positive(k, dl, p, s)
    out = tuple(
        (n + 2 * pp - (dd * (kk - 1) + 1)) // ss + 1
        for n, kk, dd, pp, ss in zip(xs[-2:], k, dl, p, s, strict=True)
    )
    if min(out) < 1:
        raise ShapeError(
            f"Given input with spatial size ({xs[-2]}, {xs[-1]}), kernel_size=({k[0]}, {k[1]}),"
            f" dilation=({dl[0]}, {dl[1]}), padding=({p[0]}, {p[1]}), calculated shape of the "
            f"array of sliding blocks as ({out[0]}, {out[1]}), but its components must be at "
            f"least one."
        )
    return out


def _positive(k, dl, p, s):
    for what, v, ok in (
        ("kernel size", k, min(k) > 0),
        ("stride", s, min(s) > 0),
        ("dilation", dl, min(dl) > 0),
    ):
        if not ok:
            raise ShapeError(
                f"{what} should be greater than zero, but got {what.split()[0][0]}H: {v[0]} "
                f"{what.split()[0][0]}W: {v[1]}"
            )
    if min(p) < 0:
        raise ShapeError(f"padding should be non-negative, but got padH: {p[0]} padW: {p[1]}")


def _im2col_shape(shapes, attrs):
    xs = shapes[0]
    out = _unfold_geometry(xs, attrs)
    return xs[:-3] + (xs[-3] * math.prod(attrs["kernel_size"]), math.prod(out))


def _unfold(x, kernel_size, dilation, padding, stride):
    geometry = {"kernel_size": kernel_size, "dilation": dilation, "padding": padding}
    out = _unfold_geometry(x.shape, {**geometry, "stride": stride})
    batched = x if x.ndim == 4 else x[None]
    cols = _im2col(batched, kernel_size, stride, padding, dilation, out, 1)
    cols = cols.reshape(batched.shape[0], cols.shape[2], math.prod(out))
    return cols if x.ndim == 4 else cols[0]


def _fold_core(c, output_size, kernel_size, dilation, padding, stride):
    """col2im: (N, C·prod(kernel), L) -> (N, C, *output_size)."""
    blocks = tuple(
        (n + 2 * p - (dl * (k - 1) + 1)) // s + 1
        for n, k, dl, p, s in zip(output_size, kernel_size, dilation, padding, stride, strict=True)
    )
    n = c.shape[0]
    cols = c.reshape((n, c.shape[1] // math.prod(kernel_size), *kernel_size, *blocks))
    size = tuple(o + 2 * p for o, p in zip(output_size, padding, strict=True))
    full = _col2im(cols, size, kernel_size, stride, dilation, blocks)
    return _crop(full, 2, padding, output_size)


def _unfold_grad(g, o, x, kernel_size, dilation, padding, stride):
    batched = g if g.ndim == 3 else g[None]
    out = _fold_core(batched, x.shape[-2:], kernel_size, dilation, padding, stride)
    return out if x.ndim == 4 else out[0]


def _col2im_shape(shapes, attrs):
    cs = shapes[0]
    k, size = attrs["kernel_size"], attrs["output_size"]
    dl, p, s = attrs["dilation"], attrs["padding"], attrs["stride"]
    if len(cs) not in (2, 3) or 0 in cs[-2:]:
        raise ShapeError(
            f"Expected 2D or 3D (batch mode) tensor for input with possible 0 batch size and "
            f"non-zero dimensions, but got: {fmt_shape(cs)}"
        )
    _positive(k, dl, p, s)
    kk = math.prod(k)
    if cs[-2] % kk:
        raise ShapeError(
            f"Expected size of input's first non-batch dimension to be divisible by the product "
            f"of kernel_size, but got input.size({len(cs) - 2}) = {cs[-2]} and "
            f"kernel_size=({k[0]}, {k[1]})"
        )
    blocks = [
        (n + 2 * pp - (dd * (kx - 1) + 1)) // ss + 1
        for n, kx, dd, pp, ss in zip(size, k, dl, p, s, strict=True)
    ]
    if min(blocks) < 1 or math.prod(blocks) != cs[-1]:
        raise ShapeError(
            f"Given output_size=({size[0]}, {size[1]}), kernel_size=({k[0]}, {k[1]}), "
            f"dilation=({dl[0]}, {dl[1]}), padding=({p[0]}, {p[1]}), stride=({s[0]}, {s[1]}), "
            f"expected size of input's dimension {len(cs) - 1} to match the calculated number "
            f"of sliding blocks {blocks[0]} * {blocks[1]} = {math.prod(blocks)}, but got "
            f"input.size({len(cs) - 1}) = {cs[-1]}."
        )
    return cs[:-2] + (cs[-2] // kk, *size)


def _fold(c, output_size, kernel_size, dilation, padding, stride):
    batched = c if c.ndim == 3 else c[None]
    out = _fold_core(batched, output_size, kernel_size, dilation, padding, stride)
    return out if c.ndim == 3 else out[0]


def _fold_grad(g, o, c, output_size, kernel_size, dilation, padding, stride):
    return _unfold(g, kernel_size, dilation, padding, stride).reshape(c.shape)


def _unfold_lower(emit, node, args, attrs):
    a = _fold_attrs("unfold", attrs, ("kernel_size", "dilation", "padding", "stride"))
    return emit("im2col", args, a)


def _fold_lower(emit, node, args, attrs):
    a = _fold_attrs("fold", attrs, ("output_size", "kernel_size", "dilation", "padding", "stride"))
    return emit("col2im", args, a)


def _shuffle_shape(shapes, attrs):
    xs, r = shapes[0], attrs["upscale_factor"]
    if len(xs) < 3:
        raise ShapeError(
            f"pixel_shuffle expects input to have at least 3 dimensions, but got input with "
            f"{len(xs)} dimension(s)"
        )
    if r <= 0:
        raise ShapeError(f"pixel_shuffle expects a positive upscale_factor, but got {r}")
    if xs[-3] % (r * r):
        raise ShapeError(
            f"pixel_shuffle expects its input's 'channel' dimension to be divisible by the "
            f"square of upscale_factor, but input.size(-3)={xs[-3]} is not divisible by {r * r}"
        )
    return xs[:-3] + (xs[-3] // (r * r), xs[-2] * r, xs[-1] * r)


def _unshuffle_shape(shapes, attrs):
    xs, r = shapes[0], attrs["downscale_factor"]
    if len(xs) < 3:
        raise ShapeError(
            f"pixel_unshuffle expects input to have at least 3 dimensions, but got input with "
            f"{len(xs)} dimension(s)"
        )
    if r <= 0:
        raise ShapeError(f"pixel_unshuffle expects a positive downscale_factor, but got {r}")
    for axis, n in (("height", xs[-2]), ("width", xs[-1])):
        if n % r:
            raise ShapeError(
                f"pixel_unshuffle expects {axis} to be divisible by downscale_factor, but "
                f"input.size({-2 if axis == 'height' else -1})={n} is not divisible by {r}"
            )
    return xs[:-3] + (xs[-3] * r * r, xs[-2] // r, xs[-1] // r)


def _shuffle(x, r):
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c // (r * r), r, r, h, w)
    n = len(lead)
    y = y.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return y.reshape(*lead, c // (r * r), h * r, w * r)


def _unshuffle(x, r):
    *lead, c, h, w = x.shape
    y = x.reshape(*lead, c, h // r, r, w // r, r)
    n = len(lead)
    y = y.transpose(*range(n), n, n + 2, n + 4, n + 1, n + 3)
    return y.reshape(*lead, c * r * r, h // r, w // r)


# -- interpolation ----------------------------------------------------------------------

_MODES = ("nearest", "linear", "bilinear", "bicubic", "trilinear", "area", "nearest-exact")
_MODE_DIMS = {"linear": 1, "bilinear": 2, "trilinear": 3, "bicubic": 2}
_AXES = {1: ("W",), 2: ("H", "W"), 3: ("D", "H", "W")}
_CUBIC_A = -0.75  # PyTorch's bicubic convolution coefficient


def _source_scale(n_in, n_out, scale, align_corners, dtype):
    """ATen's area_pixel_compute_scale: input pixels per output pixel, in the op's dtype."""
    if align_corners:
        return dtype.type((n_in - 1) / (n_out - 1)) if n_out > 1 else dtype.type(0)
    if scale is not None and scale > 0:
        return dtype.type(1.0 / scale)
    return dtype.type(n_in) / dtype.type(n_out)


def _cubic_weights(t):
    """The four weights of PyTorch's cubic convolution at fraction t (A = -0.75)."""
    a = _CUBIC_A

    def near(x):
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return (far(t + 1), near(t), near(1 - t), far(2 - t))


def _resample_taps(n_in, n_out, mode, scale, align_corners, dtype, backward=False):
    """Along one axis: the taps (see _apply_taps) of ATen's upsample kernels (1 for nearest,
    2 for linear, 4 for cubic), with source indices and lambdas computed as ATen computes
    them. ATen's nearest backward keeps two special cases its forward dropped (an unchanged
    axis is copied, a doubled one shifts the index), and so does this."""
    dtype = np.dtype(dtype)
    o = np.arange(n_out)
    if mode in ("nearest", "nearest-exact"):
        s = np.float32(1.0 / scale if scale is not None and scale > 0 else n_in / n_out)
        if mode == "nearest" and backward and n_out == n_in:
            idx = o
        elif mode == "nearest" and backward and n_out == 2 * n_in:
            idx = o >> 1
        elif mode == "nearest":
            idx = np.floor(o.astype(np.float32) * s).astype(np.int64)
        else:
            idx = np.floor(((o + 0.5) * np.float64(s)).astype(np.float32)).astype(np.int64)
        return [(None, np.minimum(idx, n_in - 1), None)]
    if mode == "linear" and n_out == n_in:  # ATen copies an axis whose size does not change
        return [(None, o, None)]
    s = _source_scale(n_in, n_out, scale, align_corners, dtype)
    od = o.astype(dtype)
    src = s * od if align_corners else s * (od + dtype.type(0.5)) - dtype.type(0.5)
    if mode == "linear":
        src = np.maximum(src, 0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    t = np.clip(src - i0, 0, 1).astype(dtype)
    if mode == "linear":
        return [(None, i0, 1 - t), (None, i0 + (i0 < n_in - 1), t)]
    # cubic: neighbours i-1 .. i+2, clamped to the edge
    return [
        (None, np.clip(i0 - 1 + k, 0, n_in - 1), w.astype(dtype))
        for k, w in enumerate(_cubic_weights(t))
    ]


def _aa_filter(x, mode):
    """ATen's antialiasing filters: the triangle, or Keys' cubic with a = -0.5 (as PIL;
    not the -0.75 of plain bicubic)."""
    x = np.abs(x)
    if mode == "linear":
        return np.where(x < 1, 1 - x, 0).astype(x.dtype)
    a = -0.5
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return np.where(x < 1, near, np.where(x < 2, far, 0)).astype(x.dtype)


def _aa_taps(n_in, n_out, mode, scale, align_corners, dtype):
    """Along one axis: the taps of ATen's antialiased resampling
    (_compute_indices_min_size_weights_aa): output i averages the inputs within
    ``support`` of its centre scale·(i + ½), weighted by the filter stretched by the scale
    when downsampling, normalised to sum 1; in the op's dtype where ATen uses it."""
    dtype = np.dtype(dtype)
    s = _source_scale(n_in, n_out, scale, align_corners, dtype)
    size = 2 if mode == "linear" else 4
    support = dtype.type(size * 0.5 * float(s) if s >= 1 else size * 0.5)
    width = math.ceil(support) * 2 + 1
    invscale = dtype.type(1.0 / float(s)) if s >= 1 else dtype.type(1)
    center = (float(s) * (np.arange(n_out) + 0.5)).astype(dtype)
    low = np.trunc((center - support).astype(np.float64) + 0.5).astype(np.int64)
    high = np.trunc((center + support).astype(np.float64) + 0.5).astype(np.int64)
    xmin = np.maximum(low, 0)
    xsize = np.clip(np.minimum(high, n_in) - xmin, 0, width)
    length = int(xsize.max()) if n_out else 0
    weights, total = [], np.zeros(n_out, dtype=dtype)
    for j in range(length):
        arg = ((j + xmin).astype(dtype) - center).astype(np.float64) + 0.5
        w = _aa_filter((arg * float(invscale)).astype(dtype), mode)
        w = np.where(j < xsize, w, 0).astype(dtype)
        weights.append(w)
        total += w  # in order, as ATen sums them
    div = np.where(total != 0, total, 1).astype(dtype)
    taps = []
    for j, w in enumerate(weights):
        dst = np.flatnonzero(j < xsize)
        taps.append((None if dst.size == n_out else dst, xmin[dst] + j, (w / div)[dst]))
    return taps


def _resample_aa(x, a, spatial, transpose):
    """Antialiased bilinear / bicubic: separable, the last axis first; the forward skips an
    axis whose size does not change, the backward (ATen's direct 2-D loop) does not."""
    d = len(a["size"])
    y = x
    for j in reversed(range(d)):
        n, o = spatial[j], a["size"][j]
        if n == o and not transpose:
            continue
        taps = _aa_taps(n, o, a["mode"], a["scales"][j], a["align_corners"], x.real.dtype)
        y = _apply_taps(y, y.ndim - d + j, taps, o, n, transpose)
    return x.copy() if y is x else y  # (a new array, as ATen's copy)


def _resample(x, a, spatial, transpose):
    if a.get("antialias"):
        return _resample_aa(x, a, spatial, transpose)
    pairs = list(zip(spatial, a["size"], strict=True))
    if transpose and a["mode"] == "cubic" and all(n == o for n, o in pairs):
        return x  # ATen's bicubic backward copies when no size changes
    taps = [
        _resample_taps(n, o, a["mode"], s, a["align_corners"], x.real.dtype, transpose)
        for (n, o), s in zip(pairs, a["scales"], strict=True)
    ]
    return _separable(x, taps, pairs, transpose)


def _upsample(x, **a):
    return _resample(x, a, x.shape[-len(a["size"]) :], transpose=False)


def _upsample_grad(g, o, x, **a):
    return _resample(g, a, x.shape[-len(a["size"]) :], transpose=True)


_UPSAMPLE_LABELS = {
    "nearest": "UpsampleNearest{d}DBackward0",
    "nearest-exact": "UpsampleNearestExact{d}DBackward0",
    "linear": "UpsampleLinear1DBackward0",
    "bilinear": "UpsampleBilinear2DBackward0",
    "bicubic": "UpsampleBicubic2DBackward0",
    "trilinear": "UpsampleTrilinear3DBackward0",
}


def _upsample_label(kinds, attrs):
    if attrs.get("antialias"):
        return f"Upsample{attrs['label'].capitalize()}2DAaBackward0"
    return _UPSAMPLE_LABELS[attrs["label"]].format(d=len(attrs["size"]))


_upsample_label.__doc__ = (
    "UpsampleNearest1D/2D/3D, UpsampleNearestExact1D/2D/3D, ..., UpsampleBilinear2DAa, ..."
)


def _upsample_shape(shapes, attrs):
    xs, size = shapes[0], attrs["size"]
    d = len(size)
    spatial = xs[-d:]
    if min(spatial) <= 0 or min(size) <= 0:
        names = _AXES[d]
        join = " and " if d == 1 else " "
        raise ShapeError(
            "Input and output sizes should be greater than 0, but got input ("
            + ", ".join(f"{k}: {n}" for k, n in zip(names, spatial, strict=True))
            + f"){join}output ("
            + ", ".join(f"{k}: {n}" for k, n in zip(names, size, strict=True))
            + ")"
        )
    if xs[1] == 0:
        raise ShapeError(
            f"Non-empty {len(xs)}D data tensor expected but got a tensor with sizes {fmt_shape(xs)}"
        )
    return xs[:-d] + tuple(size)


def _interpolate_sizes(xs, size, scale_factor, recompute):
    """F.interpolate's choice between size and scale_factor: the output size, and the
    scales the kernel is given (None where it derives them from the sizes)."""
    d = len(xs) - 2
    if size is not None and scale_factor is not None:
        raise ShapeError("only one of size or scale_factor should be defined")
    if size is not None:
        if recompute:
            raise ShapeError("recompute_scale_factor is not meaningful with an explicit size.")
        size = size * d if len(size) == 1 else size
        if len(size) != d:
            raise ShapeError(
                f"Input and output must have the same number of spatial dimensions, but got "
                f"input with spatial dimensions of {list(xs[2:])} and output size of "
                f"{tuple(size)}. Please provide input tensor in (N, C, d1, d2, ...,dK) format "
                f"and output size in (o1, o2, ...,oK) format."
            )
        return tuple(size), (None,) * d
    if scale_factor is None:
        raise ShapeError("either size or scale_factor should be defined")
    scales = tuple(scale_factor) if isinstance(scale_factor, (list, tuple)) else (scale_factor,) * d
    if not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scales):
        raise ShapeError("interpolate(): scale_factor must be a number or a tuple of numbers")
    if len(scales) != d:
        raise ShapeError(
            f"Input and scale_factor must have the same number of spatial dimensions, but got "
            f"input with spatial dimensions of {list(xs[2:])} and scale_factor of shape "
            f"{list(scales)}. Please provide input tensor in (N, C, d1, d2, ...,dK) format and "
            f"scale_factor in (s1, s2, ...,sK) format."
        )
    if not all(math.isfinite(s) for s in scales):
        raise ShapeError(f"interpolate(): scale_factor must be finite, got {list(scales)}")
    out = tuple(math.floor(n * s) for n, s in zip(xs[2:], scales, strict=True))
    return out, (None,) * d if recompute else tuple(float(s) for s in scales)


def _interpolate(emit, node, x, attrs):
    """F.interpolate: PyTorch's checks in its order, then one upsample node (area: the
    adaptive average pooling PyTorch calls)."""
    mode, align = attrs.get("mode", "nearest"), attrs.get("align_corners")
    if not isinstance(mode, str):
        raise ShapeError(f"interpolate(): mode must be a string, got {mode!r}")
    if align is not None and not isinstance(align, bool):
        raise ShapeError("interpolate(): align_corners must be True, False or None")
    recompute = attrs.get("recompute_scale_factor")
    if recompute is not None and not isinstance(recompute, bool):
        raise ShapeError("interpolate(): recompute_scale_factor must be True, False or None")
    if mode in ("nearest", "area", "nearest-exact"):
        if align is not None:
            raise ShapeError(
                "align_corners option can only be set with the interpolating modes: "
                "linear | bilinear | bicubic | trilinear"
            )
    elif align is None:
        align = False
    xs = node(x).shape
    d = len(xs) - 2
    if d < 1:
        raise ShapeError(_mode_error(len(xs), mode))
    scale_factor = attrs.get("scale_factor")
    size, scales = _interpolate_sizes(xs, attrs.get("size"), scale_factor, recompute)
    if mode == "area" and attrs.get("size") is None:
        scales = (None,) * d
    antialias = bool(attrs.get("antialias"))  # (truthiness, as F.interpolate tests it)
    if antialias and not (mode in ("bilinear", "bicubic") and len(xs) == 4):
        raise ShapeError(
            "Anti-alias option is restricted to bilinear, bicubic, and lanczos modes and "
            "requires a 4-D tensor as input"
        )
    if mode not in _MODES or d > 3 or (mode == "bicubic" and d != 2):
        raise ShapeError(_mode_error(len(xs), mode))
    want = _MODE_DIMS.get(mode)
    if want is not None and want != d:
        raise ShapeError(f"Got {len(xs)}D input, but {mode} mode needs {want + 2}D input")
    if mode == "area":
        return _adaptive_lower("avg", d)(emit, node, (x,), {"output_size": size})
    kernel = {"linear": "linear", "bilinear": "linear", "trilinear": "linear"}.get(mode, mode)
    kernel = "cubic" if mode == "bicubic" else kernel
    a = {"size": size, "scales": scales, "mode": kernel, "align_corners": bool(align)}
    if antialias:
        a["antialias"] = True
    return emit("resample", (x,), {**a, "label": mode})


def _mode_error(ndim, mode):
    return (
        f"Input Error: Only 3D, 4D and 5D input Tensors supported (got {ndim}D) for the modes: "
        f"nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact "
        f"(got {mode})"
    )


def _interpolate_lower(fixed=None):
    """interpolate and its older spellings (upsample_nearest is mode='nearest',
    upsample_bilinear mode='bilinear' with align_corners=True)."""

    def lower(emit, node, args, attrs):
        return _interpolate(emit, node, args[0], {**attrs, **(fixed or {})})

    return lower


# -- affine_grid and grid_sample --------------------------------------------------------


def _base_grid(size, align_corners, dtype):
    """(*spatial, d + 1): each output position's normalised (x, y[, z], 1), ATen's
    linspace_from_neg_one per axis (x runs along the last dimension)."""
    axes = []
    for n in size:
        r = np.linspace(-1, 1, n, dtype=dtype) if n > 1 else np.zeros(1, dtype=dtype)
        axes.append(r if align_corners or n <= 1 else r * dtype.type((n - 1) / n))
    mesh = np.meshgrid(*axes, indexing="ij")  # mesh[k] varies along spatial axis k
    return np.stack([*mesh[::-1], np.ones(tuple(size), dtype=dtype)], axis=-1)


def _affine_grid(theta, size, align_corners):
    base = _base_grid(size[2:], align_corners, np.dtype(theta.real.dtype))
    n, d = theta.shape[0], len(size) - 2
    flat = base.reshape(1, -1, d + 1)
    return np.matmul(flat, theta.transpose(0, 2, 1)).reshape((n, *size[2:], d))


def _affine_grid_grad(g, o, theta, size, align_corners):
    base = _base_grid(size[2:], align_corners, np.dtype(g.real.dtype))
    d = len(size) - 2
    flat = base.reshape(-1, d + 1)
    return np.matmul(g.reshape(g.shape[0], -1, d).transpose(0, 2, 1), flat)


def _affine_grid_shape(shapes, attrs):
    ts, size = shapes[0], attrs["size"]
    if ts[0] != size[0]:
        raise ShapeError(
            f"Expected size for first two dimensions of batch2 tensor to be: [{size[0]}, "
            f"{ts[-1]}] but got: [{ts[0]}, {ts[-1]}]."
        )
    return (size[0], *size[2:], len(size) - 2)


def _affine_grid_lower(emit, node, args, attrs):
    size, align = attrs["size"], attrs.get("align_corners")
    ts = node(args[0]).shape
    if align is not None and not isinstance(align, bool):
        raise ShapeError("affine_grid(): align_corners must be True, False or None")
    d = len(size) - 2
    if d == 2 and (len(ts) != 3 or ts[-2:] != (2, 3)):
        raise ShapeError(
            f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {tuple(size)}. "
            f"Got torch.Size({list(ts)})."
        )
    if d == 3 and (len(ts) != 3 or ts[-2:] != (3, 4)):
        raise ShapeError(
            f"Expected a batch of 3D affine matrices of shape Nx3x4 for size {tuple(size)}. "
            f"Got torch.Size({list(ts)})."
        )
    if d not in (2, 3):
        raise ShapeError(
            f"affine_grid only supports 4D and 5D sizes, for 2D and 3D affine transforms, "
            f"respectively. Got size {tuple(size)}."
        )
    if min(size) <= 0:
        raise ShapeError(f"Expected non-zero, positive output size. Got {tuple(size)}")
    return emit("affine_grid_generator", args, {"size": tuple(size), "align_corners": bool(align)})


def _reflect(x, low, high):
    """ATen's reflect_coordinates over [low/2, high/2] (twice the bounds, as it takes them),
    and the derivative's sign; decisions on real parts, so it runs on dual numbers."""
    if low == high:
        return 0 * x, np.zeros(np.shape(x))
    lo, span = low / 2, (high - low) / 2
    d = x - lo
    sign = np.where(_re(d) < 0, -1.0, 1.0)
    d = d * sign
    flips = np.floor(_re(d) / span)
    extra = d - flips * span
    even = flips % 2 == 0
    return np.where(even, extra + lo, span - extra + lo), np.where(even, sign, -sign)


def _source_coords(coord, n, padding, align):
    """A grid coordinate (normalised, along one axis of size n) as a source position, and
    d position / d coordinate; ATen's grid_sampler_compute_source_index_set_grad."""
    scale = (n - 1) / 2 if align else n / 2
    x = (coord + 1) * scale if align else ((coord + 1) * n - 1) / 2
    grad = np.full(np.shape(coord), scale)
    if padding == "reflection":
        x, sign = _reflect(x, 0, 2 * (n - 1)) if align else _reflect(x, -1, 2 * n - 1)
        grad = grad * sign
    if padding in ("border", "reflection"):
        inside = (_re(x) > 0) & (_re(x) < n - 1)
        x = np.where(_re(x) <= 0, 0 * x, np.where(_re(x) >= n - 1, 0 * x + (n - 1), x))
        grad = np.where(inside, grad, 0.0)
    return x, grad


def _grid_taps(x, grid, mode, padding, align):
    """Per tap (a corner of the cell around each sample, one of the 4×4 bicubic
    neighbours, or the nearest position): the flat source index (N, *out) into one (N, ·)
    plane, the weight, d weight / d coordinate per axis, and whether the tap reads the
    input (outside it reads zero)."""
    d = grid.shape[-1]
    spatial = x.shape[2:]
    if mode == "bicubic":
        corners, weights, slopes, dpos = _cubic_axes(grid, spatial, padding, align)
    else:
        pos, dpos = [], []
        for k in range(d):  # grid[..., 0] is x: the last spatial axis
            n = spatial[d - 1 - k]
            p, gp = _source_coords(grid[..., k], n, padding, align)
            pos.append(p)
            dpos.append(gp)
        pos, dpos = pos[::-1], dpos[::-1]  # now in the order of the spatial axes
        if mode == "nearest":
            # round half to even, as nearbyint
            corners = [[_in_bounds(np.rint(_re(p)), n)] for p, n in zip(pos, spatial, strict=True)]
            weights = [[np.ones(np.shape(p))] for p in pos]
            slopes = [[np.zeros(np.shape(p))] for p in pos]
        else:
            corners, weights, slopes = [], [], []
            for p, n in zip(pos, spatial, strict=True):
                f = np.floor(_re(p))
                corners.append([_in_bounds(f, n), _in_bounds(f + 1, n)])
                weights.append([f + 1 - p, p - f])
                slopes.append([-1.0, 1.0])
    taps = []
    for pick in np.ndindex(*(len(c) for c in corners)):
        index = np.zeros(grid.shape[:-1], dtype=np.int64)
        inside = np.ones(grid.shape[:-1], dtype=bool)
        for axis, j in enumerate(pick):
            c, ok = corners[axis][j]
            inside &= ok
            index = index * spatial[axis] + np.where(ok, c, 0).astype(np.int64)
        w = math.prod(weights[axis][j] for axis, j in enumerate(pick))
        dw = [
            slopes[axis][j]
            * math.prod(weights[b][i] for b, i in enumerate(pick) if b != axis)
            * dpos[axis]
            for axis, j in enumerate(pick)
        ]
        taps.append((index, inside, w, dw))
    return taps


def _in_bounds(c, n):
    """A tap at position c (floats, maybe NaN or huge) of an axis of size n: c, and
    whether it lies inside (NaN is outside)."""
    return c, (c >= 0) & (c <= n - 1)


def _cubic_axes(grid, spatial, padding, align):
    """ATen's bicubic grid sampling, per spatial axis: the four neighbours floor(p)-1 ..
    floor(p)+2 of the unnormalised position p with the padding applied to each neighbour's
    index (not to p), the cubic convolution weights at t = p - floor(p), d weight / dt, and
    d p / d coordinate (the padding is not differentiated)."""
    d = grid.shape[-1]
    corners, weights, slopes, dpos = [], [], [], []
    for axis in range(d):
        n = spatial[axis]
        coord = grid[..., d - 1 - axis]  # grid[..., 0] is x: the last spatial axis
        scale = (n - 1) / 2 if align else n / 2
        p = (coord + 1) * scale if align else coord * scale + (scale - 0.5)
        f = np.floor(_re(p))
        t = p - f
        corners.append([_cubic_tap(f + (k - 1), n, padding, align) for k in range(4)])
        weights.append(list(_cubic_weights(t)))
        slopes.append(list(_cubic_slopes(t)))
        dpos.append(scale)
    return corners, weights, slopes, dpos


def _cubic_slopes(t):
    """d/dt of _cubic_weights(t), ATen's get_cubic_coefficients_grad negated (it subtracts
    them)."""
    a = _CUBIC_A
    x = -1 - t
    c0 = ((-3 * a) * x - 10 * a) * x - 8 * a
    x = 0 - t
    c1 = (-3 * (a + 2) * x - 2 * (a + 3)) * x
    x = 1 - t
    c2 = (3 * (a + 2) * x - 2 * (a + 3)) * x
    x = 2 - t
    c3 = (3 * a * x - 10 * a) * x + 8 * a
    return -c0, -c1, -c2, -c3


def _cubic_tap(c, n, padding, align):
    """A bicubic neighbour's index with ATen's compute_coordinates: zeros reads nothing
    outside; border clips; reflection reflects, then clips (a NaN clips to 0)."""
    if padding == "zeros":
        return _in_bounds(c, n)
    if padding == "reflection":
        span = 2 * (n - 1) if align else 2 * n
        if span == 0:
            c = np.zeros_like(c)
        else:
            r = np.abs(c) if align else np.abs(c + 0.5)
            extra = r - np.trunc(r / span) * span
            c = np.minimum(extra, span - extra) - (0 if align else 0.5)
    c = np.clip(np.where(np.isnan(c), 0, c), 0, n - 1)
    return c, np.ones(c.shape, dtype=bool)


def _gather_plane(x, index):
    """x (N, C, *S) at flat positions index (N, *out) of each plane: (N, C, *out)."""
    n, c = x.shape[:2]
    flat = x.reshape(n, c, -1)
    return np.take_along_axis(flat, index.reshape(n, 1, -1), axis=2).reshape(
        (n, c, *index.shape[1:])
    )


def _grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False, dims=2):
    out = None
    for index, inside, w, _ in _grid_taps(x, grid, mode, padding_mode, align_corners):
        v = select_taps(_gather_plane(x, index), inside, w)
        out = v if out is None else out + v
    return out


def select_taps(values, inside, w):
    """values (0 where the tap lies outside the input: an infinity there is never read)
    times the weights, as ATen's vectorised kernel masks them (a NaN coordinate's NaN
    weights make a NaN)."""
    return np.where(inside[:, None], values, 0) * np.expand_dims(w, 1)


def _grid_grad_input(
    g, o, x, grid, mode="bilinear", padding_mode="zeros", align_corners=False, dims=2
):
    n, c = x.shape[:2]
    plane = math.prod(x.shape[2:])
    out = np.zeros((n, c, plane), dtype=np.result_type(g, x))
    base = (np.arange(n * c) * plane).reshape(n, c, 1)
    for index, inside, w, _ in _grid_taps(x, grid, mode, padding_mode, align_corners):
        contrib = np.where(inside[:, None], g * np.expand_dims(w, 1), 0).reshape(n, c, -1)
        pos = (base + index.reshape(n, 1, -1)).reshape(-1)
        flat = contrib.reshape(-1)
        summed = np.bincount(pos, weights=flat.real, minlength=n * c * plane)
        if np.iscomplexobj(flat):
            summed = summed + 1j * np.bincount(pos, weights=flat.imag, minlength=n * c * plane)
        out += summed.reshape(n, c, plane).astype(out.dtype)
    return out.reshape(x.shape)


def _grid_grad_grid(
    g, o, x, grid, mode="bilinear", padding_mode="zeros", align_corners=False, dims=2
):
    d = grid.shape[-1]
    out = np.zeros(grid.shape, dtype=np.result_type(g, grid))
    if mode == "nearest":
        return out
    for index, inside, _, dw in _grid_taps(x, grid, mode, padding_mode, align_corners):
        v = np.where(inside[:, None], _gather_plane(x, index), 0)
        gv = np.sum(g * v, axis=1)  # (N, *out)
        for axis in range(d):  # spatial axis `axis` is grid component d - 1 - axis
            out[..., d - 1 - axis] += gv * dw[axis]
    return out


def _grid_label(kinds, attrs):
    return f"GridSampler{attrs['dims']}DBackward0"


_grid_label.__doc__ = "GridSampler2DBackward0 / GridSampler3DBackward0"


def _grid_sample_shape(shapes, attrs):
    xs, gs = shapes
    if len(xs) != len(gs):
        raise ShapeError(
            f"grid_sampler(): expected {len(xs)}D input and grid with same number of "
            f"dimensions, but got input with sizes {fmt_shape(xs)} and grid with sizes "
            f"{fmt_shape(gs)}"
        )
    if xs[0] != gs[0]:
        raise ShapeError(
            f"grid_sampler(): expected grid and input to have same batch size, but got input "
            f"with sizes {fmt_shape(xs)} and grid with sizes {fmt_shape(gs)}"
        )
    if gs[-1] != len(xs) - 2:
        raise ShapeError(
            f"grid_sampler(): expected grid to have size {len(xs) - 2} in last dimension, but "
            f"got grid with sizes {fmt_shape(gs)}"
        )
    for i in range(2, len(xs)):
        if xs[i] == 0:
            raise ShapeError(
                f"grid_sampler(): expected input to have non-empty spatial dimensions, but "
                f"input has sizes {fmt_shape(xs)} with dimension {i} being empty"
            )
    if len(xs) not in (4, 5):
        raise ShapeError(
            f"grid_sampler(): expected 4D or 5D input, but got input with sizes {fmt_shape(xs)}"
        )
    return (xs[0], xs[1], *gs[1:-1])


def _grid_sample_lower(emit, node, args, attrs):
    mode, padding = attrs.get("mode", "bilinear"), attrs.get("padding_mode", "zeros")
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ShapeError(
            f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or "
            f"'bicubic', but got: '{mode}'"
        )
    if padding not in ("zeros", "border", "reflection"):
        raise ShapeError(
            f"nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
            f"'reflection', but got: '{padding}'"
        )
    align = attrs.get("align_corners")
    if align is not None and not isinstance(align, bool):
        raise ShapeError("grid_sample(): align_corners must be True, False or None")
    a = {"mode": mode, "padding_mode": padding, "align_corners": bool(align)}
    _grid_sample_shape([node(v).shape for v in args], a)
    a["dims"] = len(node(args[0]).shape) - 2
    if mode == "bicubic" and len(node(args[0]).shape) != 4:
        raise ShapeError("grid_sampler(): bicubic interpolation only supports 4D input")
    return emit("grid_sampler", args, a)


# -- the rows ---------------------------------------------------------------------------

X1 = {"x": ((1, 2, 6), REAL), "w": ((3, 2, 3), REAL), "b": ((3,), REAL)}
X2 = {"x": ((1, 2, 5, 5), REAL), "w": ((3, 2, 3, 3), REAL), "b": ((3,), REAL)}
X3 = {"x": ((1, 2, 4, 3, 3), REAL), "w": ((2, 2, 2, 2, 2), REAL), "b": ((2,), REAL)}
B3 = {"b": ((3,), REAL)}
P1: dict[str, tuple[tuple[int, ...], str]] = {"x": ((2, 2, 7), "distinct")}
P2: dict[str, tuple[tuple[int, ...], str]] = {"x": ((1, 2, 5, 5), "distinct")}
P3: dict[str, tuple[tuple[int, ...], str]] = {"x": ((1, 2, 4, 4, 3), "distinct")}


def _conv_row(d):
    params = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}
    examples = {
        1: (
            ("conv1d(x, w, b)", X1),
            ("conv1d(x, w, stride=2, padding=1)", X1),
            (
                "conv1d(x, w, b, padding='same', dilation=3, groups=2)",
                {"x": ((2, 4, 5), REAL), "w": ((2, 2, 2), REAL), "b": ((2,), REAL)},
            ),
            ("conv1d(x, w)", {"x": ((2, 5), REAL), "w": ((3, 2, 2), REAL)}),
        ),
        2: (
            ("conv2d(x, w, b)", X2),
            ("conv2d(x, w, b, stride=2, padding=(1, 2))", X2),
            ("conv2d(x, w, padding='same', dilation=(1, 2))", X2),
            (
                "conv2d(x, w, b, padding='same', groups=2)",
                {"x": ((1, 4, 4, 4), REAL), "w": ((4, 2, 2, 3), REAL), "b": ((4,), REAL)},
            ),
            ("conv2d(x, w, b, padding='valid')", {**X2, "x": ((2, 5, 4), REAL)}),
        ),
        3: (
            ("conv3d(x, w, b)", X3),
            ("conv3d(x, w, stride=(2, 1, 1), padding=1, dilation=(1, 2, 1))", X3),
        ),
    }[d]
    return Op(
        f"conv{d}d",
        None,
        (),
        "ConvolutionBackward0 (unbatched: UnsqueezeBackward0 and SqueezeBackward1 around it; "
        "padding='same' with an odd total: ConstantPadNdBackward0 first)",
        None,
        arity=2,
        params=params,
        tensor_params=("bias",),
        lower=_conv_lower(d, False),
        mirror=f"F.conv{d}d(input, weight, bias, stride, padding, dilation, groups)",
        inputs=("input", "weight"),
        rule="im2col and one matrix product per group; ∂/∂input is col2im of Wᵀ·g",
        examples=examples,
        **_spelling(f"conv{d}d"),
    )


def _conv_t_row(d):
    params = {
        "bias": None,
        "stride": 1,
        "padding": 0,
        "output_padding": 0,
        "groups": 1,
        "dilation": 1,
    }
    examples = {
        1: (
            ("conv_transpose1d(x, w, b)", {"x": ((1, 2, 4), REAL), "w": ((2, 3, 3), REAL)} | B3),
            (
                "conv_transpose1d(x, w, stride=2, padding=1, output_padding=1, groups=2)",
                {"x": ((1, 4, 3), REAL), "w": ((4, 1, 3), REAL)},
            ),
        ),
        2: (
            (
                "conv_transpose2d(x, w, b)",
                {"x": ((1, 2, 3, 3), REAL), "w": ((2, 3, 2, 2), REAL)} | B3,
            ),
            (
                "conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=(1, 0), "
                "dilation=(1, 2))",
                {"x": ((1, 2, 3, 3), REAL), "w": ((2, 3, 3, 2), REAL)} | B3,
            ),
            ("conv_transpose2d(x, w)", {"x": ((2, 3, 2), REAL), "w": ((2, 2, 2, 2), REAL)}),
        ),
        3: (
            (
                "conv_transpose3d(x, w, b, stride=(1, 2, 1))",
                {"x": ((1, 2, 2, 2, 2), REAL), "w": ((2, 3, 2, 2, 2), REAL)} | B3,
            ),
        ),
    }[d]
    return Op(
        f"conv_transpose{d}d",
        None,
        (),
        "ConvolutionBackward0 (unbatched: UnsqueezeBackward0 and SqueezeBackward1 around it)",
        None,
        arity=2,
        params=params,
        tensor_params=("bias",),
        lower=_conv_lower(d, True),
        mirror=(
            f"F.conv_transpose{d}d(input, weight, bias, stride, padding, output_padding, "
            f"groups, dilation)"
        ),
        rule="the input gradient of a convolution: Wᵀ·x then col2im",
        inputs=("input", "weight"),
        examples=examples,
        **_spelling(f"conv_transpose{d}d"),
    )


def _max_row(d):
    examples = {
        1: (
            ("max_pool1d(x, 2)", P1),
            ("max_pool1d(x, 3, stride=2, padding=1, dilation=2)", P1),
            ("max_pool1d(x, 2, ceil_mode=True)", P1),
        ),
        2: (
            ("max_pool2d(x, 2)", P2),
            ("max_pool2d(x, 2, ceil_mode=True)", P2),
            ("max_pool2d(x, (3, 2), stride=(2, 1), padding=1)", P2),
            ("max_pool2d(x, 2, stride=1, dilation=(2, 1))", {"x": ((2, 4, 5), "distinct")}),
        ),
        3: (
            ("max_pool3d(x, 2)", P3),
            ("max_pool3d(x, (2, 3, 2), stride=1, padding=1, ceil_mode=True)", P3),
        ),
    }[d]
    return Op(
        f"max_pool{d}d",
        None,
        (),
        f"MaxPool{max(d, 2)}DWithIndicesBackward0"
        + (" between UnsqueezeBackward0 and SqueezeBackward1" if d == 1 else ""),
        None,
        params={
            "kernel_size": REQUIRED,
            "stride": None,
            "padding": 0,
            "dilation": 1,
            "ceil_mode": False,
            "return_indices": False,
        },
        lower=_pool_lower("max", d),
        mirror=f"F.max_pool{d}d(input, kernel_size, stride, padding, dilation, ceil_mode)",
        rule="the gradient goes to the first maximum of each window (the last NaN)",
        examples=examples,
        **_spelling(f"max_pool{d}d"),
    )


def _with_indices(d):
    """max_poolNd(..., return_indices=True): the hidden row of the call that returns
    (values, indices); the values are the same node as without return_indices."""
    row = _max_row(d)
    name = f"max_pool{d}d_with_indices"
    results.TUPLES[name] = ("tuple", ())
    results.INDICES_OVERLOADS[f"max_pool{d}d"] = name
    return Op(name, None, (), row.label, None, params=row.params, lower=row.lower, public=False)


def _max_unpool(x, i, out, label=2):
    """Each input value written at its index into a zero output of spatial size ``out``."""
    d = len(out)
    lead, n = x.shape[: x.ndim - d], math.prod(out)
    idx = i.reshape(lead + (-1,)).astype(np.int64, copy=False)
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise EvaluationError(
            f"Found an invalid max index: {int(bad.flat[0])} (output volumes are of size "
            f"{'x'.join(map(str, out))})",
            hint="the indices are flat positions in output_size, as max_pool gives them",
        )
    y = np.zeros(lead + (n,), dtype=x.dtype)
    np.put_along_axis(y, idx, x.reshape(lead + (-1,)), axis=-1)
    return y.reshape(lead + tuple(out))


def _max_unpool_grad(g, o, x, i, out, label=2):
    d = len(out)
    lead = x.shape[: x.ndim - d]
    idx = i.reshape(lead + (-1,)).astype(np.int64, copy=False)
    return np.take_along_axis(g.reshape(lead + (-1,)), idx, axis=-1).reshape(x.shape)


def _unpool_lower(d):
    """F.max_unpoolNd: PyTorch's _unpool_output_size, then one MaxUnpool{2,3}D node (1-D:
    the 2-D one between unsqueeze(-1) and squeeze(-1), as F.max_unpool1d records it)."""
    name = f"max_unpool{d}d"

    def lower(emit, node, args, attrs):
        x, i = args
        xs, ins = node(x).shape, node(i).shape
        if _re(node(i).value).dtype != np.int64:
            raise EvaluationError(
                f"{name}(): the indices must be int64, as max_pool{d}d(return_indices=True) "
                "gives them",
                hint="pass the indices max_pool returns, or convert them with .long()",
            )
        if len(xs) not in (d + 1, d + 2) or not all(xs[-d - 1 :]):
            raise ShapeError(
                f"{name}(): expected a non-empty {d + 1}D or {d + 2}D input, got {fmt_shape(xs)}"
            )
        if xs != ins:
            raise ShapeError(
                f"Expected shape of indices to be same as that of the input tensor "
                f"({fmt_shape(xs)}) but got indices tensor with shape: {fmt_shape(ins)}"
            )

        def msg(key):
            return f"{name}(): {key} must be an int or a tuple of {d} ints"

        kernel = _expand(attrs["kernel_size"], d, msg("kernel_size"))
        stride = attrs.get("stride")
        stride = kernel if stride is None else _expand(stride, d, msg("stride"))
        padding = _expand(attrs.get("padding", 0), d, msg("padding"))
        default = tuple((xs[j - d] - 1) * stride[j] + kernel[j] - 2 * padding[j] for j in range(d))
        given = attrs.get("output_size")
        if given is None:
            out = default
        else:
            kind = list if isinstance(given, list) else tuple  # (PyTorch's message shows it)
            given = kind(int(v) for v in given) if isinstance(given, (tuple, list)) else (given,)
            if len(given) == d + 2:
                given = given[2:]
            if len(given) != d:
                raise ShapeError(
                    f"output_size should be a sequence containing {d} or {d + 2} elements, "
                    f"but it has a length of '{len(given)}'"
                )
            out = tuple(int(v) for v in given)
            for j in range(d):
                lo, hi = default[j] - stride[j], default[j] + stride[j]
                if not lo < out[j] < hi:
                    raise ShapeError(
                        f'invalid output_size "{given}" (dim {j} must be between {lo} and {hi})'
                    )
        if min(out) < 0:
            j = next(j for j in range(d) if out[j] < 0)
            raise ShapeError(
                f"max_unpooling: output_size must contain non-negative spatial dimensions, "
                f"but got output_size[{j}]={out[j]}"
            )
        if d == 1:
            wide = [emit("unsqueeze", (a,), {"dim": -1}) for a in (x, i)]
            y = emit("max_unpool", tuple(wide), {"out": out + (1,), "label": 2})
            return emit("squeeze", (y,), {"dim": -1})
        return emit("max_unpool", (x, i), {"out": out, "label": d})

    return lower


def _unpool_row(d):
    return Op(
        f"max_unpool{d}d",
        None,
        (),
        f"MaxUnpool{max(d, 2)}DBackward0"
        + (" between UnsqueezeBackward0 and SqueezeBackward1" if d == 1 else ""),
        None,
        arity=2,
        params={"kernel_size": REQUIRED, "stride": None, "padding": 0, "output_size": None},
        lower=_unpool_lower(d),
        mirror=f"F.max_unpool{d}d(input, indices, kernel_size, stride, padding, output_size)",
        rule="input values placed at their indices in zeros; ∂/∂input = g at the indices",
        inputs=("input", "indices"),
        **_spelling(f"max_unpool{d}d"),
    )


def _avg_row(d):
    params = {
        "kernel_size": REQUIRED,
        "stride": None,
        "padding": 0,
        "ceil_mode": False,
        "count_include_pad": True,
    }
    if d > 1:
        params["divisor_override"] = None
    examples = {
        1: (
            ("avg_pool1d(x, 2)", P1),
            ("avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)", P1),
            ("avg_pool1d(x, 2, ceil_mode=True)", P1),
        ),
        2: (
            ("avg_pool2d(x, 2)", P2),
            ("avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)", P2),
            ("avg_pool2d(x, 2, ceil_mode=True, count_include_pad=False)", P2),
            ("avg_pool2d(x, (2, 3), padding=1, count_include_pad=False)", P2),
            ("avg_pool2d(x, 2, divisor_override=3)", {"x": ((2, 5, 4), REAL)}),
        ),
        3: (
            ("avg_pool3d(x, 2)", P3),
            ("avg_pool3d(x, 2, stride=1, padding=1, ceil_mode=True, count_include_pad=False)", P3),
        ),
    }[d]
    return Op(
        f"avg_pool{d}d",
        None,
        (),
        f"AvgPool{max(d, 2)}DBackward0"
        + (" between UnsqueezeBackward0 and SqueezeBackward1" if d == 1 else ""),
        None,
        params=params,
        lower=_pool_lower("avg", d),
        mirror=f"F.avg_pool{d}d(input, kernel_size, stride, padding, ceil_mode, "
        f"count_include_pad{', divisor_override' if d > 1 else ''})",
        rule="∂/∂x: each window's share g/divisor, summed over overlapping windows",
        examples=examples,
        **_spelling(f"avg_pool{d}d"),
    )


# torch.conv2d & co. exist beside F.conv2d; the other pooling functions are F.'s only, and
# none is a Tensor method (Tensor.unfold is a different function)
_TORCH_TOO = {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d"}
_TORCH_TOO |= {"conv_transpose3d", "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d"}
_TORCH_TOO |= {"adaptive_avg_pool1d"}  # (torch.adaptive_max_pool1d is a row of its own)


def _spelling(name):
    return {
        "namespaces": ("torch", "torch.nn.functional")
        if name in _TORCH_TOO
        else ("torch.nn.functional",),
        "methods": (),
    }


def _adaptive_row(kind, d):
    params = {"output_size": REQUIRED}
    if kind == "max":
        params["return_indices"] = False
    shape = {1: ((2, 2, 7), "distinct"), 2: ((1, 2, 5, 7), "distinct")}.get(d)
    shape = shape or ((1, 2, 3, 4, 5), "distinct")
    out = {1: ("3", "1", "9"), 2: ("(2, 3)", "1"), 3: ("(2, 3, 2)", "1")}[d]
    label = f"Adaptive{kind.capitalize()}Pool{max(d, 2)}DBackward0"
    if kind == "avg":
        label += " (output size 1: MeanBackward1)"
    return Op(
        f"adaptive_{kind}_pool{d}d",
        None,
        (),
        label + (" between UnsqueezeBackward0 and SqueezeBackward1" if d == 1 else ""),
        None,
        params=params,
        lower=_adaptive_lower(kind, d),
        mirror=f"F.adaptive_{kind}_pool{d}d(input, output_size)",
        rule="window i spans [⌊i·n/o⌋, ⌈(i+1)·n/o⌉)",
        examples=tuple((f"adaptive_{kind}_pool{d}d(x, {o})", {"x": shape}) for o in out),
        **_spelling(f"adaptive_{kind}_pool{d}d"),
    )


def _adaptive_with_indices(d):
    """adaptive_max_poolNd(..., return_indices=True): the hidden row of the call that
    returns (values, indices), as _with_indices for max_poolNd."""
    row = _adaptive_row("max", d)
    name = f"adaptive_max_pool{d}d_with_indices"
    results.TUPLES[name] = ("tuple", ())
    results.INDICES_OVERLOADS[f"adaptive_max_pool{d}d"] = name
    return Op(name, None, (), row.label, None, params=row.params, lower=row.lower, public=False)


def _torch_adaptive_max1d():
    """torch.adaptive_max_pool1d(input, output_size): ATen's own function, which returns
    (values, indices) always, where F.adaptive_max_pool1d gives the values alone unless
    return_indices=True."""
    name = "torch_adaptive_max_pool1d"
    results.TUPLES[name] = ("tuple", ())
    pair = _adaptive_lower("max", 1)
    x = ((2, 2, 7), "distinct")
    return Op(
        name,
        None,
        (),
        "AdaptiveMaxPool2DBackward0 between UnsqueezeBackward0 and SqueezeBackward1",
        None,
        params={"output_size": REQUIRED},
        lower=lambda emit, node, args, attrs: pair(
            emit, node, args, {**attrs, "return_indices": True}
        ),
        call="torch.adaptive_max_pool1d(input, output_size)",
        mirror="F.adaptive_max_pool1d(input, output_size, return_indices=True)",
        rule="(values, their int64 indices) over F.adaptive_max_pool1d's windows",
        examples=(
            ("torch.adaptive_max_pool1d(x, 3)[0]", {"x": x}),
            ("torch.adaptive_max_pool1d(x, 9)[0]", {"x": x}),
        ),
        namespaces=(),
        methods=(),
        bare=False,
        spellings=("torch.adaptive_max_pool1d",),
    )


def _lp_row(d):
    shape = {1: P1, 2: P2, 3: P3}[d]
    positive = {"x": (shape["x"][0], "positive")}
    return Op(
        f"lp_pool{d}d",
        None,
        (),
        "PowBackward0 over MulBackward0 over MulBackward0 of SignBackward0 and ReluBackward0 "
        f"of AbsBackward0 of the AvgPool{max(d, 2)}DBackward0 of PowBackward0",
        None,
        params={"norm_type": REQUIRED, "kernel_size": REQUIRED, "stride": None, "ceil_mode": False},
        lower=_lp_lower(d),
        mirror=f"F.lp_pool{d}d(input, norm_type, kernel_size, stride, ceil_mode)",
        rule="(Σ xᵖ over the window)^(1/p), through avg_pool as PyTorch computes it",
        examples=(
            (f"lp_pool{d}d(x, 2, 2)", positive),
            (f"lp_pool{d}d(x, 3, 2, stride=1, ceil_mode=True)", positive),
        ),
        **_spelling(f"lp_pool{d}d"),
    )


I3 = {"x": ((1, 2, 3), REAL)}
I4 = {"x": ((2, 1, 3, 4), REAL)}
I5 = {"x": ((1, 1, 2, 3, 2), REAL)}


def _interpolate_rows():
    """F.interpolate, and F.upsample / upsample_nearest / upsample_bilinear, its older
    spellings."""
    params = {"size": None, "scale_factor": None, "mode": "nearest", "align_corners": None}
    examples = (
        ("F.interpolate(x, scale_factor=2)", I3),
        ("F.interpolate(x, size=5, mode='nearest')", I4),
        ("F.interpolate(x, size=(4, 7), mode='nearest-exact')", I4),
        ("F.interpolate(x, scale_factor=1.7, mode='linear')", I3),
        ("F.interpolate(x, size=5, mode='linear', align_corners=True)", I3),
        ("F.interpolate(x, size=(5, 3), mode='bilinear')", I4),
        ("F.interpolate(x, scale_factor=(0.7, 2.5), mode='bilinear', align_corners=True)", I4),
        ("F.interpolate(x, scale_factor=1.5, mode='bilinear', recompute_scale_factor=True)", I4),
        ("F.interpolate(x, size=(5, 6), mode='bicubic')", I4),
        ("F.interpolate(x, scale_factor=(1.5, 0.8), mode='bicubic', align_corners=True)", I4),
        ("F.interpolate(x, size=(3, 4, 3), mode='trilinear')", I5),
        ("F.interpolate(x, scale_factor=(2, 1.5, 1), mode='trilinear', align_corners=True)", I5),
        ("F.interpolate(x, scale_factor=(1, 2, 2), mode='nearest')", I5),
        ("F.interpolate(x, size=(2, 3), mode='area')", I4),
        ("F.interpolate(x, scale_factor=0.6, mode='area')", I3),
        ("F.interpolate(x, scale_factor=0.5, mode='area')", {"x": ((1, 2, 2, 3, 4), REAL)}),
        (
            "F.interpolate(x, size=(3, 2), mode='bilinear', antialias=True)",
            {"x": ((1, 2, 7, 5), REAL)},
        ),
        (
            "F.interpolate(x, scale_factor=0.6, mode='bicubic', antialias=True)",
            {"x": ((2, 1, 6, 7), REAL)},
        ),
    )
    labels = (
        "UpsampleNearest1D/2D/3DBackward0, UpsampleNearestExact1D/2D/3DBackward0, "
        "UpsampleLinear1DBackward0, UpsampleBilinear2DBackward0, UpsampleBicubic2DBackward0, "
        "UpsampleTrilinear3DBackward0, antialias=True: UpsampleBilinear2DAaBackward0, "
        "UpsampleBicubic2DAaBackward0; area: AdaptiveAvgPool2D/3DBackward0 (1-D between "
        "UnsqueezeBackward0 and SqueezeBackward1; output size 1: MeanBackward1)"
    )
    common = {
        "namespaces": ("torch.nn.functional",),
        "methods": (),
        "free": ("scale_factor", "align_corners", "recompute_scale_factor"),
        "rule": "a separable linear map along each spatial axis: ∂/∂x applies its transpose",
    }
    return [
        Op(
            "interpolate",
            None,
            (),
            labels,
            None,
            params={**params, "recompute_scale_factor": None, "antialias": False},
            lower=_interpolate_lower(),
            mirror="F.interpolate(input, size, scale_factor, mode, align_corners, "
            "recompute_scale_factor, antialias)",
            examples=examples,
            **common,
        ),
        Op(
            "upsample",
            None,
            (),
            "as interpolate",
            None,
            params=params,
            lower=_interpolate_lower(),
            mirror="F.upsample(input, size, scale_factor, mode, align_corners)",
            examples=(("F.upsample(x, scale_factor=2, mode='bilinear')", I4),),
            **common,
        ),
        Op(
            "upsample_nearest",
            None,
            (),
            "UpsampleNearest1D/2D/3DBackward0",
            None,
            params={"size": None, "scale_factor": None},
            lower=_interpolate_lower({"mode": "nearest"}),
            mirror="F.upsample_nearest(input, size, scale_factor)",
            examples=(("F.upsample_nearest(x, size=(5, 6))", I4),),
            **common,
        ),
        Op(
            "upsample_bilinear",
            None,
            (),
            "UpsampleBilinear2DBackward0",
            None,
            params={"size": None, "scale_factor": None},
            lower=_interpolate_lower({"mode": "bilinear", "align_corners": True}),
            mirror="F.upsample_bilinear(input, size, scale_factor)",
            examples=(("F.upsample_bilinear(x, scale_factor=2)", I4),),
            **common,
        ),
    ]


ROWS = [
    *(_conv_row(d) for d in (1, 2, 3)),
    *(_conv_t_row(d) for d in (1, 2, 3)),
    *(_max_row(d) for d in (1, 2, 3)),
    *(_avg_row(d) for d in (1, 2, 3)),
    *(_adaptive_row("avg", d) for d in (1, 2, 3)),
    *(_adaptive_row("max", d) for d in (1, 2, 3)),
    _torch_adaptive_max1d(),
    *(_lp_row(d) for d in (1, 2, 3)),
    Op(
        "unfold",
        None,
        (),
        "Im2ColBackward0",
        None,
        params={"kernel_size": REQUIRED, "dilation": 1, "padding": 0, "stride": 1},
        lower=_unfold_lower,
        mirror="F.unfold(input, kernel_size, dilation, padding, stride)",
        rule="∂/∂x is fold (col2im) of g",
        examples=(
            ("unfold(x, 2)", {"x": ((1, 2, 3, 4), REAL)}),
            ("unfold(x, (2, 3), dilation=(2, 1), padding=1, stride=2)", {"x": ((2, 4, 3), REAL)}),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
    ),
    Op(
        "fold",
        None,
        (),
        "Col2ImBackward0",
        None,
        params={
            "output_size": REQUIRED,
            "kernel_size": REQUIRED,
            "dilation": 1,
            "padding": 0,
            "stride": 1,
        },
        lower=_fold_lower,
        mirror="F.fold(input, output_size, kernel_size, dilation, padding, stride)",
        rule="∂/∂c is unfold (im2col) of g",
        examples=(
            ("fold(c, (3, 4), 2)", {"c": ((1, 8, 6), REAL)}),
            ("fold(c, 4, (2, 3), padding=1, stride=(2, 1))", {"c": ((6, 12), REAL)}),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
    ),
    Op(
        "pixel_shuffle",
        lambda x, upscale_factor: _shuffle(x, upscale_factor),
        (lambda g, o, x, upscale_factor: _unshuffle(g, upscale_factor),),
        "PixelShuffleBackward0",
        _shuffle_shape,
        params={"upscale_factor": REQUIRED},
        saves="none",
        mirror="F.pixel_shuffle(input, upscale_factor)",
        rule="a permutation: ∂/∂x is pixel_unshuffle of g",
        examples=(("pixel_shuffle(x, 2)", {"x": ((1, 8, 2, 3), REAL)}),),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
    ),
    Op(
        "pixel_unshuffle",
        lambda x, downscale_factor: _unshuffle(x, downscale_factor),
        (lambda g, o, x, downscale_factor: _shuffle(g, downscale_factor),),
        "PixelUnshuffleBackward0",
        _unshuffle_shape,
        params={"downscale_factor": REQUIRED},
        saves="none",
        mirror="F.pixel_unshuffle(input, downscale_factor)",
        rule="a permutation: ∂/∂x is pixel_shuffle of g",
        examples=(("pixel_unshuffle(x, 2)", {"x": ((2, 4, 6), REAL)}),),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
    ),
    *_interpolate_rows(),
    Op(
        "affine_grid",
        None,
        (),
        "AffineGridGeneratorBackward0",
        None,
        params={"size": REQUIRED, "align_corners": None},
        lower=_affine_grid_lower,
        mirror="F.affine_grid(theta, size, align_corners)",
        rule="grid = base · θᵀ, base the normalised output positions; ∂/∂θ = gᵀ · base",
        examples=(
            ("F.affine_grid(t, (2, 3, 4, 5), align_corners=False)", {"t": ((2, 2, 3), REAL)}),
            ("F.affine_grid(t, (1, 1, 3, 1), align_corners=True)", {"t": ((1, 2, 3), REAL)}),
            ("F.affine_grid(t, [1, 2, 2, 3, 4], align_corners=True)", {"t": ((1, 3, 4), REAL)}),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
        free=("align_corners",),
        inputs=("theta",),
    ),
    Op(
        "grid_sample",
        None,
        (),
        "GridSampler2DBackward0 / GridSampler3DBackward0",
        None,
        arity=2,
        params={"mode": "bilinear", "padding_mode": "zeros", "align_corners": None},
        lower=_grid_sample_lower,
        mirror="F.grid_sample(input, grid, mode, padding_mode, align_corners)",
        rule="bilinear (trilinear), bicubic (4×4, each neighbour padded) or nearest taps at "
        "each grid point; ∂/∂grid through the tap weights (0 for nearest)",
        examples=(
            (
                "F.grid_sample(x, g, align_corners=False)",
                {"x": ((2, 2, 3, 4), REAL), "g": ((2, 3, 2, 2), "unit")},
            ),
            (
                "F.grid_sample(x, g * 1.5, padding_mode='border', align_corners=True)",
                {"x": ((1, 2, 3, 4), REAL), "g": ((1, 2, 5, 2), "unit")},
            ),
            (
                "F.grid_sample(x, g * 2.5, padding_mode='reflection', align_corners=False)",
                {"x": ((1, 1, 3, 4), REAL), "g": ((1, 4, 3, 2), "unit")},
            ),
            (
                "F.grid_sample(x, g * 2.5, padding_mode='reflection', align_corners=True)",
                {"x": ((1, 1, 3, 4), REAL), "g": ((1, 4, 3, 2), "unit")},
            ),
            (
                "F.grid_sample(x, g, mode='nearest', align_corners=False)",
                {"x": ((1, 2, 3, 4), REAL), "g": ((1, 2, 3, 2), "unit")},
            ),
            (
                "F.grid_sample(x, g * 1.3, mode='bicubic', padding_mode='reflection', "
                "align_corners=False)",
                {"x": ((1, 2, 3, 4), REAL), "g": ((1, 2, 3, 2), "unit")},
            ),
            (
                "F.grid_sample(x, g, mode='bicubic', align_corners=True)",
                {"x": ((2, 1, 4, 3), REAL), "g": ((2, 3, 2, 2), "unit")},
            ),
            (
                "F.grid_sample(x, g * 1.2, padding_mode='border', align_corners=False)",
                {"x": ((1, 2, 2, 3, 4), REAL), "g": ((1, 2, 2, 3, 3), "unit")},
            ),
            (
                "F.grid_sample(x, F.affine_grid(t, (2, 1, 3, 3), align_corners=False), "
                "align_corners=False)",
                {"x": ((2, 1, 4, 4), REAL), "t": ((2, 2, 3), "unit")},
            ),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
        free=("align_corners",),
        inputs=("input", "grid"),
    ),
    # the nodes the public rows lower to
    Op(
        "convolution",
        _convolution,
        (_conv_grad_input, _conv_grad_weight, _conv_grad_bias),
        "ConvolutionBackward0",
        _conv_shape,
        arity=3,
        saves="inputs",
        public=False,
    ),
    Op(
        "resample",
        _upsample,
        (_upsample_grad,),
        _upsample_label,
        _upsample_shape,
        saves="none",
        public=False,
    ),
    Op(
        "affine_grid_generator",
        _affine_grid,
        (_affine_grid_grad,),
        "AffineGridGeneratorBackward0",
        _affine_grid_shape,
        saves="none",
        public=False,
    ),
    Op(
        "grid_sampler",
        _grid_sample,
        (_grid_grad_input, _grid_grad_grid),
        _grid_label,
        _grid_sample_shape,
        arity=2,
        saves="inputs",
        public=False,
    ),
    Op(
        "conv_pad",
        _conv_pad,
        (lambda g, o, x, after: _crop(g, len(after), (0,) * len(after), x.shape[-len(after) :]),),
        "ConstantPadNdBackward0",
        _conv_pad_shape,
        saves="none",
        public=False,
    ),
    Op(
        "max_pool",
        _max_pool,
        (_max_pool_grad,),
        _pool_label("MaxPool{}DWithIndicesBackward0"),
        _pool_shape,
        saves="inputs",
        public=False,
    ),
    Op(
        "max_pool_indices",
        _max_pool_indices,
        None,
        "",
        _pool_shape,
        public=False,
        dtype="int64",
    ),
    *(_with_indices(d) for d in (1, 2, 3)),
    *(_unpool_row(d) for d in (1, 2, 3)),
    Op(
        "max_unpool",
        _max_unpool,
        (_max_unpool_grad, None),
        lambda kinds, attrs: f"MaxUnpool{attrs['label']}DBackward0",
        lambda shapes, attrs: shapes[0][: len(shapes[0]) - len(attrs["out"])] + attrs["out"],
        arity=2,
        params={"out": REQUIRED, "label": 2},
        public=False,
        saves="inputs",
    ),
    Op(
        "avg_pool",
        _avg_pool,
        (_avg_pool_grad,),
        _pool_label("AvgPool{}DBackward0"),
        _pool_shape,
        saves="none",
        public=False,
    ),
    Op(
        "adaptive_avg_pool",
        _adaptive_avg,
        (_adaptive_avg_grad,),
        _pool_label("AdaptiveAvgPool{}DBackward0"),
        _adaptive_shape,
        saves="none",
        public=False,
    ),
    Op(
        "adaptive_max_pool",
        _adaptive_max,
        (_adaptive_max_grad,),
        _pool_label("AdaptiveMaxPool{}DBackward0"),
        _adaptive_shape,
        saves="inputs",
        public=False,
    ),
    Op(
        "adaptive_max_indices",
        _adaptive_max_indices,
        None,
        "",
        _adaptive_shape,
        public=False,
        dtype="int64",
    ),
    *(_adaptive_with_indices(d) for d in (1, 2, 3)),
    Op(
        "lp_pow",
        lambda a, exponent: _pow(a, exponent),
        (lambda g, o, a, exponent: _pow_grad_base(g, o, a, exponent),),
        "PowBackward0",
        lambda shapes, attrs: shapes[0],
        saves="inputs",
        public=False,
    ),
    Op(
        "lp_scale",
        lambda a, factor: a * factor,
        (lambda g, o, a, factor: _scale(g, factor),),
        "MulBackward0",
        lambda shapes, attrs: shapes[0],
        saves="none",
        public=False,
    ),
    Op(
        "im2col",
        _unfold,
        (_unfold_grad,),
        "Im2ColBackward0",
        _im2col_shape,
        saves="none",
        public=False,
    ),
    Op(
        "col2im",
        _fold,
        (_fold_grad,),
        "Col2ImBackward0",
        _col2im_shape,
        saves="none",
        public=False,
    ),
]
