"""Shape and movement: views, reshapes, squeezes, transposes, concatenation."""

import math

from .. import dtypes
from ..errors import EvaluationError, ParseError, ShapeError
from .core import (
    REAL,
    REQUIRED,
    DType,
    M,
    Op,
    V,
    _one_dim,
    _re,
    _reshape_ids,
    _resolve_shape,
    _same,
    check_rank,
    fmt_shape,
    lazy_numpy,
    norm_dims,
)

np = lazy_numpy(globals())


def _squeeze_label(kinds, attrs):
    """SqueezeBackward0; SqueezeBackward1 with dim=int; SqueezeBackward2 with a tuple of dims"""
    dim = attrs.get("dim")
    return (
        "SqueezeBackward0"
        if dim is None
        else ("SqueezeBackward2" if isinstance(dim, (list, tuple)) else "SqueezeBackward1")
    )


def _squeeze(x, dim=None):
    if dim is None:
        return np.squeeze(x)
    dims = tuple(d for d in norm_dims(dim, x.ndim) if x.shape[d] == 1) if dim != () else ()
    return np.squeeze(x, axis=dims)


def _squeeze_shape(shapes, attrs):
    shape = shapes[0]
    dim = attrs.get("dim")
    dims = norm_dims(dim, len(shape)) if dim != () else ()
    return tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1))


def _unsqueeze_shape(shapes, attrs):
    shape, d = shapes[0], attrs["dim"]
    if not -len(shape) - 1 <= d <= len(shape):
        raise ShapeError(
            f"Dimension out of range (expected to be in range of "
            f"[{-len(shape) - 1}, {len(shape)}], but got {d})"
        )
    d = d % (len(shape) + 1)
    return check_rank(shape[:d] + (1,) + shape[d:])


def _transpose_shape(shapes, attrs):
    shape = shapes[0]
    if attrs.get("dim0") is None and attrs.get("dim1") is None:
        if len(shape) > 2:
            raise ShapeError(
                f"t() expects a tensor with <= 2 dimensions, but self is {len(shape)}D"
            )
        return shape[::-1]
    if attrs.get("dim0") is None or attrs.get("dim1") is None:
        raise ShapeError("transpose() takes both dim0 and dim1 (or neither, for t())")
    d0, d1 = _axis(attrs["dim0"], len(shape)), _axis(attrs["dim1"], len(shape))
    if not shape:
        return shape
    out = list(shape)
    out[d0], out[d1] = out[d1], out[d0]
    return tuple(out)


def _transpose(a, dim0=None, dim1=None):
    if dim0 is None or a.ndim == 0:
        return a.T
    return np.swapaxes(a, _axis(dim0, a.ndim), _axis(dim1, a.ndim))


def _transpose_label(kinds, attrs):
    """TBackward0 (a.t(), transpose(a)); TransposeBackward0 with dim0, dim1"""
    return "TBackward0" if attrs.get("dim0") is None else "TransposeBackward0"


def _axis(d, ndim):
    """One dimension, PyTorch's range check (a 0-d tensor has dims 0 and -1)."""
    if not ndim and d not in (0, -1):
        raise ShapeError(
            f"Dimension out of range (expected to be in range of [-1, 0], but got {d})"
        )
    return norm_dims(d, ndim)[0] if ndim else 0


def _reshape_lower(emit, node, args, attrs):
    return _reshape_ids(emit, node, args[0], attrs["shape"])


def _flatten_lower(emit, node, args, attrs):
    a = args[0]
    shape = node(a).shape
    if not shape:  # (PyTorch checks the dims as for a tensor of one dimension)
        norm_dims(attrs.get("start_dim", 0), 0)
        norm_dims(attrs.get("end_dim", -1), 0)
        return _reshape_ids(emit, node, a, (1,))
    start = norm_dims(attrs.get("start_dim", 0), len(shape))[0]
    end = norm_dims(attrs.get("end_dim", -1), len(shape))[0]
    if start > end:
        raise ShapeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if start == end:
        return a  # PyTorch returns the tensor itself: no node
    flat = shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :]
    return _reshape_ids(emit, node, a, flat)


def _view_label(kinds, attrs):
    """ViewBackward0 (contiguous), ReshapeAliasBackward0 (strided), UnsafeViewBackward0 (after a clone)"""  # noqa: E501
    return {
        "view": "ViewBackward0",
        "alias": "ReshapeAliasBackward0",
        "unsafe": "UnsafeViewBackward0",
    }[attrs["kind"]]


def _cat_shape(shapes, attrs):
    first = shapes[0]
    if not first:
        raise ShapeError("zero-dimensional tensor cannot be concatenated")
    d = _one_dim(attrs["dim"], len(first))
    for s in shapes[1:]:
        if len(s) != len(first) or any(
            x != y for i, (x, y) in enumerate(zip(s, first, strict=True)) if i != d
        ):
            raise ShapeError(
                f"cat: sizes of tensors must match except in dimension {d}: "
                f"{fmt_shape(first)} and {fmt_shape(s)}"
            )
    return first[:d] + (sum(s[d] for s in shapes),) + first[d + 1 :]


# the dimension order, innermost first, of a channels-last 4-D and 5-D layout
_CHANNELS_LAST = {4: (1, 3, 2, 0), 5: (1, 4, 3, 2, 0)}


def _channels_last(a):
    """Whether PyTorch's suggest_memory_format() names ``a``'s strides channels-last (4-D)
    or channels-last-3d (5-D), by c10's is_channels_last_strides_2d/3d."""
    order = _CHANNELS_LAST.get(a.ndim)
    if order is None:
        return False
    strides = [st // a.itemsize for st in a.strides]
    if strides[1] == 0:  # (a trivial C dimension: NCHW)
        return False
    least = 0
    for d in order:
        if a.shape[d] == 0 or strides[d] < least or (d == 0 and least == strides[1]):
            return False
        least = strides[d] * a.shape[d] if a.shape[d] > 1 else strides[d]
    return True


def _cat(*args, dim=0):
    """torch.cat's value in PyTorch's memory layout (which a later view can depend on):
    channels-last when every input is channels-last, else contiguous -- numpy would keep
    its inputs' layout (a cat of transposes is transposed)."""
    out = np.concatenate(args, axis=_one_dim(dim, args[0].ndim))
    if all(_channels_last(a) for a in args):
        return np.moveaxis(np.ascontiguousarray(np.moveaxis(out, 1, -1)), -1, 1)
    return np.ascontiguousarray(out)


def _stack(*args, dim=0):
    """torch.stack's value in its layout: PyTorch cats the inputs along dim and views the
    result with dim split in two (or, at the last dim, cats them unsqueezed)."""
    shape = args[0].shape
    d = _one_dim(dim, len(shape) + 1)
    if d == len(shape):  # (unsqueezed with stride 1, as PyTorch does; numpy's differs)
        parts = (
            np.lib.stride_tricks.as_strided(a, (*shape, 1), (*a.strides, a.itemsize)) for a in args
        )
        return _cat(*parts, dim=d)
    out = _cat(*args, dim=d)
    st = out.strides
    strides = st[:d] + (st[d] * shape[d], st[d]) + st[d + 1 :]
    return np.lib.stride_tricks.as_strided(out, shape[:d] + (len(args),) + shape[d:], strides)


def _cat_grads(g, o, *args, dim=0):
    d = _one_dim(dim, g.ndim)
    bounds = np.cumsum([a.shape[d] for a in args])[:-1]
    return np.split(g, bounds, axis=d)


def _stack_shape(shapes, attrs):
    first = shapes[0]
    if any(s != first for s in shapes):
        raise ShapeError(
            f"stack expects each tensor to be equal size, but got "
            f"{fmt_shape(first)} and {fmt_shape(next(s for s in shapes if s != first))}"
        )
    d = attrs["dim"]
    if not -len(first) - 1 <= d <= len(first):
        raise ShapeError(
            f"Dimension out of range (expected to be in range of "
            f"[{-len(first) - 1}, {len(first)}], but got {d})"
        )
    d %= len(first) + 1
    return check_rank(first[:d] + (len(shapes),) + first[d:])


def _stack_grads(g, o, *args, dim=0):
    d = dim % g.ndim
    return [np.take(g, k, axis=d) for k in range(len(args))]


# ---- issue 12: movement, repetition, flips, rolls, triangles and diagonals ---------------


def _seq(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _view_lower(emit, node, args, attrs):
    """Tensor.view: ViewBackward0, and PyTorch's error where only a copy would do; with a
    dtype, the same bits read as that dtype."""
    a = args[0]
    value = np.asarray(node(a).value)
    if isinstance(attrs["shape"], DType):
        return _view_dtype_lower(emit, value, a, attrs["shape"])
    items = attrs["shape"] if isinstance(attrs["shape"], (list, tuple)) else [attrs["shape"]]
    if not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v == int(v)
        for v in items
    ):
        raise ParseError("view(): shape must be an integer, a list of integers or a dtype")
    shape = _resolve_shape(tuple(int(v) for v in items), value.size)
    if not value.flags.c_contiguous:
        try:
            np.reshape(value, shape, copy=False)
        except ValueError:
            raise ShapeError(
                "view size is not compatible with input tensor's size and stride (at least "
                "one dimension spans across two contiguous subspaces). Use .reshape(...) instead."
            ) from None
    return emit("reshape_view", (a,), {"shape": shape, "kind": "view"})


def _view_dtype_lower(emit, value, a, dtype):
    """x.view(dtype), as PyTorch checks it: the same shape for the same element size; else
    the last dimension, contiguous, scales by the ratio of the sizes. The result never
    requires grad (PyTorch's view.dtype is not differentiable, even float32 as float32)."""
    if dtype not in dtypes.DTYPES:
        raise EvaluationError(f"view(): torch.{dtype} is not supported")
    old, new = value.dtype, dtypes.DTYPES[dtype]
    if value.dtype.kind == "c":  # (a dual number of forward mode: its value's bits)
        old = np.dtype(np.float32 if old.itemsize == 8 else np.float64)
    shape = value.shape
    if old.itemsize != new.itemsize:
        names = dtypes.SCALAR_TYPE_NAMES
        what = f"to view {names[old.name]} as {names[new.name]} (different element sizes)"
        if not shape:
            raise ShapeError(f"self.dim() cannot be 0 {what}")
        stride = value.strides[-1] // value.itemsize
        if stride != 1 and shape[-1] > 1:
            raise ShapeError(f"self.stride(-1) must be 1 {what}, but got {stride}")
        if new.itemsize > old.itemsize:
            k = new.itemsize // old.itemsize
            if shape[-1] % k:
                raise ShapeError(
                    f"self.size(-1) must be divisible by {k} {what}, but got {shape[-1]}"
                )
            shape = shape[:-1] + (shape[-1] // k,)
        else:
            shape = shape[:-1] + (shape[-1] * (old.itemsize // new.itemsize),)
    return emit("view_dtype", (a,), {"dtype": new.name, "shape": shape})


def _view_dtype(a, dtype, shape):
    a = np.ascontiguousarray(_re(a))
    a = a.reshape(1) if a.ndim == 0 else a
    new = dtypes.DTYPES[dtype]
    out = a.view(np.uint8) != 0 if new.kind == "b" else a.view(new)
    return out.reshape(shape)


def _unflatten_lower(emit, node, args, attrs):
    a = args[0]
    shape = node(a).shape
    if not shape:
        raise ShapeError("unflatten: a 0-d tensor has no dimension to unflatten")
    d = _axis(attrs["dim"], len(shape))
    sizes = _seq(attrs["sizes"])
    if not sizes:
        raise ShapeError("unflatten: sizes must be non-empty")
    try:
        inner = _resolve_shape(sizes, shape[d])
    except ShapeError:
        raise ShapeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {d} "
            f"({shape[d]}) in the input tensor"
        ) from None
    return _reshape_ids(emit, node, a, shape[:d] + inner + shape[d + 1 :])


def _perm(dims, ndim):
    dims = _seq(dims)
    if len(dims) != ndim:
        raise ShapeError(
            f"permute: number of dimensions in the tensor input does not match the length of "
            f"the desired ordering of dimensions i.e. input.dim() = {ndim} is not equal to "
            f"len(dims) = {len(dims)}"
        )
    out = tuple(_axis(d, ndim) for d in dims)
    if len(set(out)) != len(out):
        raise ShapeError("permute(): duplicate dims are not allowed.")
    return out


def _movedim_lower(emit, node, args, attrs):
    """movedim/moveaxis: recorded as one permute."""
    a = args[0]
    ndim = len(node(a).shape)
    src, dst = _seq(attrs["source"]), _seq(attrs["destination"])
    if len(src) != len(dst):
        raise ShapeError(
            f"movedim: Invalid source or destination dims: source ({list(src)} dims) should "
            f"contain the same number of dims as destination ({list(dst)} dims)"
        )
    src = [_axis(d, ndim) for d in src]
    dst = [_axis(d, ndim) for d in dst]
    if ndim == 0:
        return emit("alias", (a,))  # as PyTorch records it
    for what, dims in (("source", src), ("destination", dst)):
        if len(set(dims)) != len(dims):
            raise ShapeError(f"movedim: repeated dim in `{what}` ({dims})")
    placed: list[int | None] = [None] * ndim
    for s_, d_ in zip(src, dst, strict=True):
        placed[d_] = s_
    rest = iter(n for n in range(ndim) if n not in src)
    perm = tuple(p if p is not None else next(rest) for p in placed)
    return emit("permute", (a,), {"dims": perm})


def _expanded(shape, size):
    """Tensor.expand's sizes: -1 keeps a dimension, new ones lead, size-1 ones stretch."""
    size = _seq(size)
    if len(size) < len(shape):
        raise ShapeError(
            f"expand: the number of sizes provided ({len(size)}) must be greater or equal to "
            f"the number of dimensions in the tensor ({len(shape)})"
        )
    lead = len(size) - len(shape)
    out = []
    for i, n in enumerate(size):
        have = shape[i - lead] if i >= lead else None
        if have is None and n < 0:
            raise ShapeError(
                f"expand: the expanded size of the tensor ({n}) isn't allowed in a leading, "
                f"non-existing dimension {i}"
            )
        if have is not None and n == -1:
            n = have
        elif have is not None and have != 1 and n != have:
            raise ShapeError(
                f"The expanded size of the tensor ({n}) must match the existing size ({have}) "
                f"at non-singleton dimension {i}.  Target sizes: {list(size)}.  Tensor sizes: "
                f"{list(shape)}"
            )
        if n < 0:
            raise ShapeError(f"expand: invalid size {n} in {list(size)}")
        out.append(n)
    return check_rank(tuple(out))


def _contiguous_lower(emit, node, args, attrs):
    """A contiguous tensor is returned itself (no node); a strided one is cloned."""
    if np.asarray(node(args[0]).value).flags.c_contiguous:
        return args[0]
    return emit("clone", (args[0],))


def _expand_as_lower(emit, node, args, attrs):
    return emit("expand", (args[0],), {"size": node(args[1]).shape})


def _view_as_lower(emit, node, args, attrs):
    """a.view_as(b) is a.view(b.size()): b gives only its shape."""
    return _view_lower(emit, node, args[:1], {"shape": node(args[1]).shape})


def _reshape_as_lower(emit, node, args, attrs):
    """a.reshape_as(b) is a.reshape(b.shape): b gives only its shape."""
    return _reshape_ids(emit, node, args[0], node(args[1]).shape)


def _repeated(shape, sizes):
    sizes = _seq(sizes)
    if len(sizes) < len(shape):
        raise ShapeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions "
            "of tensor"
        )
    if any(r < 0 for r in sizes):
        raise ShapeError(f"Trying to create tensor with negative dimension: {list(sizes)}")
    padded = (1,) * (len(sizes) - len(shape)) + tuple(shape)
    return padded, sizes


def _repeat(a, sizes):
    padded, sizes = _repeated(a.shape, sizes)
    return np.tile(a.reshape(padded), sizes)


def _repeat_grad(g, o, a, sizes):
    """Each copy's gradient summed back: g as (r0, n0, r1, n1, ...), summed over the r's."""
    padded, sizes = _repeated(a.shape, sizes)
    split = tuple(x for r, n in zip(sizes, padded, strict=True) for x in (r, n))
    return g.reshape(split).sum(axis=tuple(range(0, len(split), 2))).reshape(a.shape)


def _repeat_shape(shapes, attrs):
    padded, sizes = _repeated(shapes[0], attrs["sizes"])
    return check_rank(tuple(n * r for n, r in zip(padded, sizes, strict=True)))


def _whole(fname, pname, v):
    """A parameter PyTorch takes only as an int (the parser gives numbers as floats)."""
    if isinstance(v, tuple) and len(v) == 1:  # (size is a shape parameter elsewhere)
        v = v[0]
    if isinstance(v, bool) or not (isinstance(v, (int, float)) and float(v).is_integer()):
        raise ParseError(f"{fname}(): {pname} must be an integer")
    return int(v)


def _unfold_windows(shape, dimension, size, step):
    """Tensor.unfold's checks, in PyTorch's order: the axis, the window's size and step, and
    the number of windows (a 0-d tensor is one of length 1, and gets no new dimension)."""
    dimension, size, step = (
        _whole("unfold", k, v)
        for k, v in (("dimension", dimension), ("size", size), ("step", step))
    )
    d = _axis(dimension, len(shape))
    n = shape[d] if shape else 1
    if size > n:
        raise ShapeError(f"maximum size for tensor at dimension {d} is {n} but size is {size}")
    if size < 0:
        raise ShapeError(f"size is {size} but must be >= 0")
    if step <= 0:
        raise ShapeError(f"step is {step} but must be > 0")
    return d, size, step, (n - size) // step + 1


def _unfold_dim_shape(shapes, attrs):
    shape = shapes[0]
    d, size, _, count = _unfold_windows(shape, attrs["dimension"], attrs["size"], attrs["step"])
    if not shape:
        return (size,)
    return check_rank(shape[:d] + (count,) + shape[d + 1 :] + (size,))


def _unfold_dim(a, dimension, size, step):
    """The windows as a strided view of a (read-only, as PyTorch's result is a view)."""
    d, size, step, count = _unfold_windows(a.shape, dimension, size, step)
    if not a.ndim:
        return np.array(a.reshape(1)[:size])
    shape = a.shape[:d] + (count,) + a.shape[d + 1 :] + (size,)
    strides = a.strides[:d] + (a.strides[d] * step,) + a.strides[d + 1 :] + (a.strides[d],)
    return np.lib.stride_tricks.as_strided(a, shape, strides, writeable=False)


def _unfold_dim_grad(g, o, a, dimension, size, step):
    """Each window's gradient added back where it came from: for each offset k in the window,
    the windows' k-th elements are the positions k, k + step, ... (distinct, so one slice)."""
    if not a.ndim:
        return g.sum().reshape(())
    d, size, step, count = _unfold_windows(a.shape, dimension, size, step)
    out = np.zeros(a.shape, dtype=g.dtype)
    at = [slice(None)] * a.ndim
    for k in range(size if count else 0):
        at[d] = slice(k, k + step * (count - 1) + 1, step)
        out[tuple(at)] += g[..., k]
    return out


def _tile_lower(emit, node, args, attrs):
    """torch.tile: repeat, with ones prepended to dims when it has fewer than the tensor."""
    dims = _seq(attrs["dims"])
    ndim = len(node(args[0]).shape)
    return emit("repeat", (args[0],), {"sizes": (1,) * (ndim - len(dims)) + dims})


def _flip_dims(dims, ndim):
    return () if dims == () else norm_dims(dims, ndim)


def _flip_shape(shapes, attrs):
    _flip_dims(attrs["dims"], len(shapes[0]))  # checks the dims
    return shapes[0]


def _flip_lower(dim, least):
    def lower(emit, node, args, attrs):
        if len(node(args[0]).shape) < least:
            raise ShapeError(f"Input must be >= {least}-d.")
        return emit("flip", (args[0],), {"dims": (dim,)})

    return lower


def _roll_axes(shifts, dims, ndim):
    shifts = _seq(shifts)
    if not shifts:
        raise ShapeError("roll: `shifts` required")
    if dims is None:
        if len(shifts) != 1:
            raise ShapeError(f"shifts and dimensions must align. shifts: {len(shifts)}, dims:0")
        return shifts, None
    dims = _seq(dims)
    if len(shifts) != len(dims):
        raise ShapeError(
            f"shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}"
        )
    if ndim == 0:
        raise ShapeError(f"Dimension specified as {dims[0]} but tensor has no dimensions")
    return shifts, tuple(_axis(d, ndim) for d in dims)


def _roll(a, shifts, dims=None):
    shifts, axes = _roll_axes(shifts, dims, a.ndim)
    return np.roll(a, shifts[0] if axes is None else shifts, axis=axes)


def _roll_grad(g, o, a, shifts, dims=None):
    return _roll(g, tuple(-k for k in _seq(shifts)), dims)


def _roll_shape(shapes, attrs):
    _roll_axes(attrs["shifts"], attrs.get("dims"), len(shapes[0]))
    return shapes[0]


def _matrix_shape(name):
    def rule(shapes, attrs):
        if len(shapes[0]) < 2:
            raise ShapeError(f"{name}: input tensor must have at least 2 dimensions")
        return shapes[0]

    return rule


def _diagonal_axes(ndim, offset, dim1, dim2):
    if ndim < 2:
        raise ShapeError("diagonal: the tensor must have at least 2 dimensions")
    d1, d2 = _axis(dim1, ndim), _axis(dim2, ndim)
    if d1 == d2:
        raise ShapeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    return d1, d2


def _diagonal(a, offset=0, dim1=0, dim2=1):
    d1, d2 = _diagonal_axes(a.ndim, offset, dim1, dim2)
    return np.diagonal(a, offset, d1, d2).copy()


def _diagonal_grad(g, o, a, offset=0, dim1=0, dim2=1):
    d1, d2 = _diagonal_axes(a.ndim, offset, dim1, dim2)
    out = np.zeros(a.shape, dtype=g.dtype)
    moved = np.moveaxis(out, (d1, d2), (-2, -1))  # a view: writing it writes out
    i = np.arange(g.shape[-1])
    moved[..., i + max(-offset, 0), i + max(offset, 0)] = g
    return out


def _diagonal_shape(shapes, attrs):
    shape = shapes[0]
    offset = attrs.get("offset", 0)
    d1, d2 = _diagonal_axes(len(shape), offset, attrs.get("dim1", 0), attrs.get("dim2", 1))
    n = max(0, min(shape[d1] - max(-offset, 0), shape[d2] - max(offset, 0)))
    return tuple(m for k, m in enumerate(shape) if k not in (d1, d2)) + (n,)


def _trace_shape(shapes, attrs):
    if len(shapes[0]) != 2:
        raise ShapeError(f"trace: expected a matrix, but got tensor with dim {len(shapes[0])}")
    return ()


def _narrow_lower(emit, node, args, attrs):
    """narrow(dim, start, length): a SliceBackward0, always (even of everything)."""
    shape = node(args[0]).shape
    if not shape:
        raise ShapeError("narrow() cannot be applied to a 0-dim tensor.")
    d = _axis(attrs["dim"], len(shape))
    size, start, length = shape[d], attrs["start"], attrs["length"]
    if not -size <= start <= size:
        raise ShapeError(
            f"start out of range (expected to be in range of [{-size}, {size}], but got {start})"
        )
    start = start + size if start < 0 else start
    if length < 0 or start + length > size:
        raise ShapeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return emit("slice", (args[0],), {"dim": d, "start": start, "stop": start + length, "step": 1})


# ---- issue 12: hstack and its kin, rot90, repeat_interleave, requires_grad_ ---------------


def _at_least(emit, node, a, ndim):
    """torch.atleast_{1,2,3}d as PyTorch records them: a 0-d tensor is viewed, a 1-d one
    gains a leading dimension, a 2-d one (for 3) a trailing one."""
    shape = node(a).shape
    if len(shape) >= ndim:
        return a
    if not shape:
        return _reshape_ids(emit, node, a, (1,) * ndim)
    if len(shape) == 1 and ndim >= 2:
        a = emit("unsqueeze", (a,), {"dim": 0})
    if ndim == 3:
        a = emit("unsqueeze", (a,), {"dim": -1})
    return a


def _stack_lower(name, ndim, dim):
    """hstack/vstack/dstack: each tensor made at least ``ndim``-d, then one cat."""

    def lower(emit, node, args, attrs):
        if not args:
            raise ShapeError(f"{name} expects a non-empty TensorList")
        tensors = tuple(_at_least(emit, node, a, ndim) for a in args)
        d = 0 if name == "hstack" and len(node(tensors[0]).shape) == 1 else dim
        return emit("cat", tensors, {"dim": d})

    return lower


def _column_stack_lower(emit, node, args, attrs):
    """column_stack: 0-d and 1-d tensors viewed as columns (n, 1), then hstack."""
    if not args:
        raise ShapeError("column_stack expects a non-empty TensorList")
    cols = []
    for a in args:
        shape = node(a).shape
        cols.append(_reshape_ids(emit, node, a, (math.prod(shape), 1)) if len(shape) < 2 else a)
    return emit("cat", tuple(cols), {"dim": 1})


def _rot90_axes(k, dims, ndim):
    dims = _seq(dims)
    if len(dims) != 2:
        raise ShapeError(f"expected total rotation dims == 2, but got dims = {len(dims)}")
    if ndim < 2:
        raise ShapeError(f"expected total dims >= 2, but got total dims = {ndim}")
    d0, d1 = _axis(dims[0], ndim), _axis(dims[1], ndim)
    if d0 == d1:
        raise ShapeError(
            f"expected rotation dims to be different, but got dim0 = {d0} and dim1 = {d1}"
        )
    return k % 4, (d0, d1)


def _rot90(a, k=1, dims=(0, 1)):
    k, axes = _rot90_axes(k, dims, a.ndim)
    return np.rot90(a, k, axes).copy()


def _rot90_shape(shapes, attrs):
    k, (d0, d1) = _rot90_axes(attrs.get("k", 1), attrs.get("dims", (0, 1)), len(shapes[0]))
    out = list(shapes[0])
    if k % 2:
        out[d0], out[d1] = out[d1], out[d0]
    return tuple(out)


def _repeat_interleave_lower(emit, node, args, attrs):
    """repeat_interleave with a whole number of repeats, as ATen composes it: unsqueeze after
    ``dim``, expand, clone and view (the tensor flattened first when dim is None)."""
    repeats, dim = attrs["repeats"], attrs.get("dim")
    if (
        not isinstance(repeats, (int, float))
        or isinstance(repeats, bool)
        or repeats != int(repeats)
    ):
        raise ShapeError(
            "repeat_interleave: repeats must be a whole number here (a tensor of "
            "repeats is not supported)"
        )
    repeats = int(repeats)
    if repeats < 0:
        raise ShapeError("repeats can not be negative")
    a = args[0]
    if dim is None:
        shape = node(a).shape
        a = _reshape_ids(emit, node, a, (math.prod(shape),)) if len(shape) != 1 else a
        d = 0
    else:
        d = _axis(dim, len(node(a).shape))
    shape = node(a).shape or (1,)
    out_size = attrs.get("output_size")
    if out_size is not None and out_size != shape[d] * repeats:
        raise ShapeError(
            f"repeat_interleave: Invalid output_size {out_size}, expected {shape[d] * repeats}"
        )
    u = emit("unsqueeze", (a,), {"dim": d + 1})
    big = shape[: d + 1] + (repeats,) + shape[d + 1 :]
    c = emit("clone", (emit("expand", (u,), {"size": big}),))
    return _reshape_ids(emit, node, c, shape[:d] + (shape[d] * repeats,) + shape[d + 1 :])


def _requires_grad_lower(emit, node, args, attrs):
    """x.requires_grad_(): x itself (no node), so every input's gradient is PyTorch's;
    PyTorch's errors where it refuses. (A tensor made in the program and marked becomes a
    leaf in PyTorch whose own .grad gradcli does not report.)"""
    a, flag = args[0], attrs.get("requires_grad", True)
    n = node(a)
    kind = getattr(n.value, "dtype", np.dtype(float)).kind
    if flag and kind not in "fc":
        raise ShapeError("only Tensors of floating point dtype can require gradients")
    if not flag and n.requires_grad and n.op != "input":
        raise ShapeError(
            "you can only change requires_grad flags of leaf variables. If you want to use a "
            "computed variable in a subgraph that doesn't require differentiation use "
            "var_no_grad = var.detach()."
        )
    if not flag and n.requires_grad:
        raise ShapeError(
            "requires_grad_(False) on a differentiated input is not supported: write "
            "x.detach(), or leave the input out of --wrt"
        )
    return a


def _pad_sources(n, left, right, mode):
    """For one padded dimension of size n: the source index of each output position (-1
    where the constant goes)."""
    src = np.arange(n + left + right) - left
    if mode == "replicate":
        return np.clip(src, 0, n - 1)
    if mode == "reflect":
        m = np.abs(src) % (2 * n - 2) if n > 1 else np.zeros_like(src)
        return np.where(m >= n, 2 * n - 2 - m, m)
    return np.where((src >= 0) & (src < n), src, -1)


def _pad_nd(a, pads, mode, value=0.0):
    out = a
    for axis, left, right in pads:
        src = _pad_sources(a.shape[axis], left, right, mode)
        if not a.shape[axis]:  # (constant mode) nothing to take: all of it is the constant
            shape = out.shape[:axis] + (len(src),) + out.shape[axis + 1 :]
            out = np.full(shape, value, dtype=a.dtype)
            continue
        out = np.take(out, np.maximum(src, 0), axis=axis)
        if mode == "constant" and (src < 0).any():
            where = [slice(None)] * out.ndim
            where[axis] = src < 0
            out[tuple(where)] = value
    return out


def _pad_nd_grad(g, o, a, pads, mode, value=0.0):
    """Each output position's gradient added to its source (none for the constant)."""
    if not pads:
        return g
    shapes = [a.shape]
    for axis, _, _ in pads[:-1]:
        shapes.append(shapes[-1][:axis] + (o.shape[axis],) + shapes[-1][axis + 1 :])
    for (axis, left, right), shape in zip(reversed(pads), reversed(shapes), strict=True):
        src = _pad_sources(a.shape[axis], left, right, mode)
        keep = src >= 0
        moved = np.moveaxis(g, axis, 0)[keep]
        out = np.zeros((shape[axis],) + moved.shape[1:], dtype=g.dtype)
        np.add.at(out, src[keep], moved)
        g = np.moveaxis(out, 0, axis)
    return g


def _pad_shape(shapes, attrs):
    shape = list(shapes[0])
    for axis, left, right in attrs["pads"]:
        shape[axis] += left + right
    return check_rank(tuple(shape))


def _pad_label(kinds, attrs):
    """ConstantPadNdBackward0; ReflectionPad{1,2,3}DBackward0, ReplicationPad{1,2,3}DBackward0"""
    if attrs["mode"] == "constant":
        return "ConstantPadNdBackward0"
    kind = "Reflection" if attrs["mode"] == "reflect" else "Replication"
    return f"{kind}Pad{len(attrs['pads'])}DBackward0"


def _pad_lower(emit, node, args, attrs):
    """F.pad: pairs (left, right) from the last dimension backwards; PyTorch's checks."""
    shape = node(args[0]).shape
    mode, value = attrs.get("mode", "constant"), attrs.get("value")
    pad = _seq(attrs["pad"])
    if any(isinstance(p, bool) or not isinstance(p, (int, float)) or p != int(p) for p in pad):
        raise ShapeError(f"pad must be a tuple of whole numbers, got {pad!r}")
    pad = [int(p) for p in pad]
    if len(pad) % 2:
        raise ShapeError("Padding length must be divisible by 2")
    if mode not in ("constant", "reflect", "replicate", "circular"):
        raise ShapeError(
            f"Unrecognised padding mode {mode}",
            hint="mode is one of 'constant', 'reflect', 'replicate', 'circular'",
        )
    if mode != "constant" and value is not None:
        raise ShapeError(f'Padding mode "{mode}" doesn\'t take in value argument')
    n = len(pad) // 2
    if mode == "constant" and len(pad) > 2 * len(shape):
        raise ShapeError(
            f"Padding length should be less than or equal to two times the input dimension "
            f"but got padding length {len(pad)} and input of dimension {len(shape)}"
        )
    if mode != "constant" and not (n in (1, 2, 3) and len(shape) in (n + 1, n + 2)):
        raise ShapeError(
            f"Padding size {len(pad)} is not supported for {len(shape)}D input tensor. Supported "
            "combinations for non-constant padding: 2D or 3D input: padding size = 2 (pads "
            "last dimension); 3D or 4D input: padding size = 4 (pads last 2 dimensions); 4D or "
            "5D input: padding size = 6 (pads last 3 dimensions)"
        )
    if mode != "constant" and 0 in shape[len(shape) - n - 1 :]:
        raise ShapeError(
            f"Expected {n + 1}D or {n + 2}D (batch mode) tensor with possibly 0 batch size and "
            f"other non-zero dimensions for input, but got: {fmt_shape(shape)}"
        )
    pads = []
    for k in range(n):
        axis, left, right = len(shape) - 1 - k, pad[2 * k], pad[2 * k + 1]
        size = shape[axis]
        if mode == "circular" and (left > size or right > size):
            raise ShapeError("Padding value causes wrapping around more than once.")
        kept = size - max(-left, 0) - max(-right, 0)
        if mode == "circular" and max(left, right) > kept:
            raise ShapeError(
                f"circular padding ({left}, {right}) of dimension {axis} wraps around more than "
                f"the {kept} element(s) kept after the negative padding, which PyTorch leaves "
                "undefined"
            )
        if mode == "reflect" and (left >= size or right >= size):
            raise ShapeError(
                f"Argument #4: Padding size should be less than the corresponding input "
                f"dimension, but got: padding ({left}, {right}) at dimension {axis} of input "
                f"{fmt_shape(shape)}"
            )
        if size + left + right < 0:
            raise ShapeError(
                f"narrow(): length must be non-negative (padding ({left}, {right}) of "
                f"dimension {axis}, of size {size})"
            )
        pads.append((axis, left, right))
    if mode == "circular":
        return _circular_pad(emit, node, args[0], pads)
    return emit(
        "pad_nd",
        (args[0],),
        {"pads": tuple(pads), "mode": mode, "value": 0.0 if value is None else float(value)},
    )


def _circular_pad(emit, node, a, pads):
    """Circular padding as ATen writes it: the input (sliced) copied into a new tensor, then
    per padded dimension, last first, the left and then the right wrap copied from slices
    of the result (CopySlices over SliceBackward0 each)."""
    shape = list(node(a).shape)
    for axis, left, right in pads:
        shape[axis] += left + right
    src, region = a, []
    for axis, left, right in pads:
        n = node(a).shape[axis]
        start, stop = max(-left, 0), n - max(-right, 0)
        src = emit("slice", (src,), {"dim": axis, "start": start, "stop": stop, "step": 1})
        region.append((axis, max(left, 0), shape[axis] - max(right, 0)))
    out = emit("copy_slices_new", (src,), {"shape": tuple(shape), "region": tuple(region)})
    for axis, left, right in pads:
        size = shape[axis]
        copies = []
        if left > 0:
            copies.append(((0, left), (size - left - max(right, 0), size - max(right, 0))))
        if right > 0:
            copies.append(((size - right, size), (max(left, 0), max(left, 0) + right)))
        for (to0, to1), (from0, from1) in copies:
            part = emit("slice", (out,), {"dim": axis, "start": from0, "stop": from1, "step": 1})
            out = emit("copy_slices", (out, part), {"region": ((axis, to0, to1),)})
    return out


def _region(ndim, region):
    where = [slice(None)] * ndim
    for axis, start, stop in region:
        where[axis] = slice(start, stop)
    return tuple(where)


def _copy_slices(base, src, region):
    out = np.array(base, copy=True)
    out[_region(out.ndim, region)] = src
    return out


def _copy_slices_new(src, shape, region):
    return _copy_slices(np.zeros(shape, dtype=src.dtype), src, region)


def _copy_slices_base_grad(g, o, base, src, region):
    g = np.array(g, copy=True)
    g[_region(g.ndim, region)] = 0
    return g


ROWS = [
    Op(
        "unsqueeze",
        lambda a, dim: np.expand_dims(a, dim),
        (lambda g, o, a, dim: g.reshape(a.shape),),
        "UnsqueezeBackward0",
        _unsqueeze_shape,
        params={"dim": REQUIRED},
        mirror="a.unsqueeze(dim)",
        rule="reshape back",
        examples=(("unsqueeze(a, 0)", V), ("unsqueeze(a, dim=-1)", V)),
    ),
    Op(
        "squeeze",
        _squeeze,
        (lambda g, o, a, dim=None: g.reshape(a.shape),),
        _squeeze_label,
        _squeeze_shape,
        params={"dim": None},
        mirror="a.squeeze() / a.squeeze(dim)",
        rule="reshape back",
        examples=(
            ("squeeze(A)", {"A": ((1, 3), REAL)}),
            ("squeeze(A, 0)", {"A": ((1, 3), REAL)}),
            ("A.squeeze((0, 2))", {"A": ((1, 3, 1), REAL)}),
            ("A.squeeze(dim=[1])", {"A": ((1, 3, 1), REAL)}),
            ("A.squeeze(())", M),
        ),
        dim_list=True,
    ),
    Op(
        "squeeze_dims",  # what matmul records (an in-place squeeze in PyTorch's C++)
        _squeeze,
        (lambda g, o, a, dim=None: g.reshape(a.shape),),
        "SqueezeBackward4",
        _squeeze_shape,
        params={"dim": None},
        saves="none",
        public=False,
        rule="reshape back",
    ),
    Op(
        "transpose",
        _transpose,
        (lambda g, o, a, dim0=None, dim1=None: _transpose(g, dim0, dim1),),
        _transpose_label,
        _transpose_shape,
        params={"dim0": None, "dim1": None},
        saves="none",
        mirror="a.t() / a.transpose(dim0, dim1)",
        rule="transpose back",
        examples=(
            ("transpose(A)", M),
            ("A.t()", M),
            ("A.transpose(0, 1)", M),
            ("torch.transpose(B, -1, 0)", {"B": ((2, 3, 4), REAL)}),
            ("B.swapaxes(1, 2)", {"B": ((2, 3, 4), REAL)}),
            ("A.swapdims(1, 1)", M),
        ),
        aliases=("t", "swapaxes", "swapdims"),
    ),
    Op(
        "permute_T",
        lambda a: np.transpose(a),
        (lambda g, o, a: np.transpose(g),),
        "PermuteBackward0",
        lambda s, a: s[0][::-1],
        mirror="a.T",
        rule="transpose back",
        public=False,
        call="a.T",
        examples=(("A.T", {"A": ((2, 3), REAL)}),),
    ),
    Op(
        "expand",
        lambda a, size: np.broadcast_to(a, _expanded(a.shape, size)),
        (lambda g, o, a, size: g,),  # the engine sums g back to a's shape
        "ExpandBackward0",
        lambda s, at: _expanded(s[0], at["size"]),
        params={"size": REQUIRED},
        variadic=True,
        saves="none",
        mirror="a.expand(*size)",
        rule="sum the gradient over the expanded dimensions",
        examples=(
            ("a.expand(2, 3)", V),
            ("a.expand((2, -1))", V),
            ("A[:, None].expand(-1, 4, 3)", M),
            ("torch.broadcast_to(a, (2, 3))", V),
            ("a.broadcast_to([3])", V),
        ),
        aliases=("broadcast_to",),
        namespaces=(),  # torch has broadcast_to, not expand
        methods=("expand", "broadcast_to"),
        spellings=("torch.broadcast_to",),
    ),
    Op(
        "reshape",
        None,
        (),
        "ViewBackward0, or ReshapeAliasBackward0 / CloneBackward0 + "
        "UnsafeViewBackward0 for strided tensors",
        None,
        params={"shape": REQUIRED},
        variadic=True,
        lower=_reshape_lower,
        mirror="a.reshape(*shape)",
        rule="reshape back",
        examples=(
            ("reshape(A, 3, 2)", M),
            ("A.reshape(-1)", M),
            ("reshape(a, [3, 1])", V),
            ("reshape(A.T, 6)", M),
            ("A[:, 1].reshape(2)", M),
        ),
    ),
    Op(
        "flatten",
        None,
        (),
        "ViewBackward0 (as reshape); none for a 1-D tensor",
        None,
        params={"start_dim": 0, "end_dim": -1},
        lower=_flatten_lower,
        mirror="torch.flatten(a, start_dim, end_dim)",
        rule="reshape back",
        examples=(
            ("flatten(A)", M),
            ("flatten(A.T)", M),
            ("B.flatten(1)", {"B": ((2, 3, 4), REAL)}),
            ("torch.flatten(B, 0, 1)", {"B": ((2, 3, 4), REAL)}),
            ("B.flatten(start_dim=-2)", {"B": ((2, 3, 4), REAL)}),
        ),
    ),
    Op(
        "cat",
        _cat,
        _cat_grads,
        "CatBackward0",
        _cat_shape,
        params={"dim": 0},
        listarg=True,
        mirror="torch.cat([a, b, ...], dim)",
        rule="split the gradient back",
        examples=(
            ("cat([a, b], 0)", {"a": ((3,), REAL), "b": ((2,), REAL)}),
            ("cat([A, A * 2], dim=1)", M),
        ),
        aliases=("concat", "concatenate"),
        methods=(),
        inputs=("tensors",),
    ),
    Op(
        "stack",
        _stack,
        _stack_grads,
        "StackBackward0",
        _stack_shape,
        params={"dim": 0},
        listarg=True,
        mirror="torch.stack([a, b, ...], dim)",
        rule="take each slice of the gradient back",
        examples=(
            ("stack([a, b])", {"a": ((3,), REAL), "b": ((3,), REAL)}),
            ("stack([A, A], dim=-1)", M),
        ),
        methods=(),
        inputs=("tensors",),
    ),
    Op(
        "reshape_view",
        lambda a, shape, kind: np.reshape(a, shape),
        (lambda g, o, a, shape, kind: g.reshape(a.shape),),
        _view_label,
        lambda s, at: tuple(at["shape"]),
        saves="none",
        public=False,
        rule="reshape back",
    ),
    Op(
        "clone",
        lambda a: np.array(a, order="C", copy=True),
        (lambda g, o, a: g,),
        "CloneBackward0",
        _same,
        saves="none",
        mirror="a.clone()",
        rule="the identity",
        examples=(("a.clone()", V), ("torch.clone(A.t())", M)),
    ),
    Op(
        "contiguous",
        None,
        (),
        "CloneBackward0 of a strided tensor; none of a contiguous one",
        None,
        lower=_contiguous_lower,
        mirror="a.contiguous()",
        rule="the identity",
        examples=(("A.t().contiguous()", M), ("A[:, ::2].contiguous()", M)),
        namespaces=(),
        methods=("contiguous",),
    ),
    Op(
        "detach",
        lambda a: np.array(_re(a)),  # (a dual number's tangent stops here too)
        None,
        "",
        _same,
        saves="none",
        mirror="a.detach()",
        rule="no gradient: the value as a constant",
        # no table examples: finite differences see through a detach (tested on its own)
    ),
    Op(
        "view",
        None,
        (),
        "ViewBackward0",
        None,
        params={"shape": REQUIRED},
        free=("shape",),  # (or a dtype: the row checks it)
        variadic=True,
        lower=_view_lower,
        mirror="a.view(*shape), a.view(dtype)",
        rule="reshape back; a view as another dtype has no gradient",
        examples=(
            ("A.view(-1)", M),
            ("A.view(3, 2)", M),
            ("B.view((4, -1))", {"B": ((2, 3, 4), REAL)}),
            ("a.view([3, 1])", V),
            ("a * torch.tensor([1.5, -2, 0], dtype=torch.float32).view(torch.int32)", V),
        ),
        namespaces=(),
        methods=("view",),
    ),
    Op(
        "view_dtype",
        _view_dtype,
        None,
        "",
        lambda shapes, attrs: attrs["shape"],
        params={"dtype": REQUIRED, "shape": REQUIRED},
        dtype=lambda attrs, values, real: attrs["dtype"],
        public=False,
        mirror="a.view(dtype)",
        rule="no gradient: the bits read as another dtype",
    ),
    Op(
        "unflatten",
        None,
        (),
        "ViewBackward0 (as reshape)",
        None,
        params={"dim": REQUIRED, "sizes": REQUIRED},
        lower=_unflatten_lower,
        mirror="a.unflatten(dim, sizes)",
        rule="reshape back",
        examples=(
            ("A.unflatten(1, (3, 1))", M),
            ("torch.unflatten(B, -1, [2, -1])", {"B": ((2, 3, 4), REAL)}),
        ),
    ),
    Op(
        "permute",
        lambda a, dims: np.transpose(a, _perm(dims, a.ndim)),
        (lambda g, o, a, dims: np.transpose(g, np.argsort(_perm(dims, a.ndim))),),
        "PermuteBackward0",
        lambda s, at: tuple(s[0][d] for d in _perm(at["dims"], len(s[0]))),
        params={"dims": REQUIRED},
        variadic=True,
        saves="none",
        mirror="a.permute(*dims)",
        rule="permute back (the inverse permutation)",
        examples=(
            ("A.permute(1, 0)", M),
            ("B.permute((2, 0, 1))", {"B": ((2, 3, 4), REAL)}),
            ("torch.permute(B, [-1, 1, 0])", {"B": ((2, 3, 4), REAL)}),
            ("A.permute(0, 1)", M),
        ),
    ),
    Op(
        "movedim",
        None,
        (),
        "PermuteBackward0",
        None,
        params={"source": REQUIRED, "destination": REQUIRED},
        lower=_movedim_lower,
        mirror="a.movedim(source, destination)",
        rule="permute back",
        examples=(
            ("B.movedim(0, 2)", {"B": ((2, 3, 4), REAL)}),
            ("torch.moveaxis(B, (0, 1), (2, 0))", {"B": ((2, 3, 4), REAL)}),
        ),
        aliases=("moveaxis",),
    ),
    Op(
        "expand_as",
        None,
        (),
        "ExpandBackward0",
        None,
        arity=2,
        lower=_expand_as_lower,
        mirror="a.expand_as(b)",
        rule="sum the gradient over the expanded dimensions (b gives only its shape)",
        examples=(("a.expand_as(A)", {"a": ((3,), REAL), "A": ((2, 3), REAL)}),),
        namespaces=(),
        methods=("expand_as",),
    ),
    Op(
        "view_as",
        None,
        (),
        "ViewBackward0",
        None,
        arity=2,
        lower=_view_as_lower,
        mirror="a.view_as(b)",
        rule="reshape back (b gives only its shape)",
        examples=(("a.view_as(A)", {"a": ((6,), REAL), "A": ((2, 3), REAL)}),),
        namespaces=(),
        methods=("view_as",),
    ),
    Op(
        "reshape_as",
        None,
        (),
        "ViewBackward0, or as reshape for strided tensors",
        None,
        arity=2,
        lower=_reshape_as_lower,
        mirror="a.reshape_as(b)",
        rule="reshape back (b gives only its shape)",
        examples=(
            ("a.reshape_as(A)", {"a": ((6,), REAL), "A": ((2, 3), REAL)}),
            ("A.t().reshape_as(A)", {"A": ((2, 3), REAL)}),
        ),
        namespaces=(),
        methods=("reshape_as",),
    ),
    Op(
        "repeat",
        _repeat,
        (_repeat_grad,),
        "RepeatBackward0",
        _repeat_shape,
        params={"sizes": REQUIRED},
        variadic=True,
        saves="none",
        mirror="a.repeat(*sizes)",
        rule="sum the copies' gradients",
        examples=(
            ("a.repeat(2)", V),
            ("A.repeat(2, 1)", M),
            ("A.repeat((1, 2, 3))", M),
            ("a.repeat(1)", V),
        ),
        methods=("repeat",),
        namespaces=(),
    ),
    Op(
        "unfold_dim",
        _unfold_dim,
        (_unfold_dim_grad,),
        "UnfoldBackward0",
        _unfold_dim_shape,
        params={"dimension": REQUIRED, "size": REQUIRED, "step": REQUIRED},
        free=("size",),  # an int, as in PyTorch: not a shape (x.unfold(0, [2], 1) is refused)
        saves="none",
        call="a.unfold(dimension, size, step)",
        mirror="a.unfold(dimension, size, step)",
        rule="sum each window's gradient back into the positions it was taken from",
        examples=(
            ("a.unfold(0, 2, 1)", V),
            ("A.unfold(1, 2, 1)", M),
            ("A.unfold(0, 1, 3)", M),
            ("B.unfold(-1, 3, 2)", {"B": ((2, 3, 5), REAL)}),
            ("s.unfold(0, 1, 1)", {"s": ((), REAL)}),
        ),
        namespaces=(),
        methods=("unfold",),
        bare=False,
    ),
    Op(
        "tile",
        None,
        (),
        "RepeatBackward0",
        None,
        params={"dims": REQUIRED},
        variadic=True,
        lower=_tile_lower,
        mirror="torch.tile(a, dims)",
        rule="sum the copies' gradients",
        examples=(("a.tile(2)", V), ("A.tile((2,))", M), ("torch.tile(a, (2, 2))", V)),
    ),
    Op(
        "flip",
        lambda a, dims: np.flip(a, _flip_dims(dims, a.ndim)),
        (lambda g, o, a, dims: np.flip(g, _flip_dims(dims, a.ndim)),),
        "FlipBackward0",
        _flip_shape,
        params={"dims": REQUIRED},
        variadic=True,
        saves="none",
        mirror="torch.flip(a, dims)",
        rule="flip back",
        examples=(
            ("a.flip(0)", V),
            ("A.flip((0, 1))", M),
            ("torch.flip(B, [-1])", {"B": ((2, 3, 4), REAL)}),
        ),
    ),
    Op(
        "fliplr",
        None,
        (),
        "FlipBackward0",
        None,
        lower=_flip_lower(1, 2),
        mirror="torch.fliplr(a)",
        rule="flip back",
        examples=(("A.fliplr()", M),),
    ),
    Op(
        "flipud",
        None,
        (),
        "FlipBackward0",
        None,
        lower=_flip_lower(0, 1),
        mirror="torch.flipud(a)",
        rule="flip back",
        examples=(("A.flipud()", M), ("torch.flipud(a)", V)),
    ),
    Op(
        "roll",
        _roll,
        (_roll_grad,),
        "RollBackward0",
        _roll_shape,
        params={"shifts": REQUIRED, "dims": None},
        saves="none",
        mirror="torch.roll(a, shifts, dims)",
        rule="roll back",
        examples=(
            ("a.roll(1)", V),
            ("A.roll(1, 0)", M),
            ("A.roll((1, -1), (0, 1))", M),
            ("torch.roll(A, shifts=4)", M),
        ),
    ),
    Op(
        "tril",
        lambda a, diagonal=0: np.tril(a, diagonal),
        (lambda g, o, a, diagonal=0: np.tril(g, diagonal),),
        "TrilBackward0",
        _matrix_shape("tril"),
        params={"diagonal": 0},
        saves="none",
        mirror="torch.tril(a, diagonal)",
        rule="the same triangle of the gradient",
        examples=(
            ("S.tril()", {"S": ((3, 3), REAL)}),
            ("A.tril(-1)", M),
            ("torch.tril(B, 1)", {"B": ((2, 3, 4), REAL)}),
        ),
    ),
    Op(
        "triu",
        lambda a, diagonal=0: np.triu(a, diagonal),
        (lambda g, o, a, diagonal=0: np.triu(g, diagonal),),
        "TriuBackward0",
        _matrix_shape("triu"),
        params={"diagonal": 0},
        saves="none",
        mirror="torch.triu(a, diagonal)",
        rule="the same triangle of the gradient",
        examples=(("S.triu(1)", {"S": ((3, 3), REAL)}), ("torch.triu(A)", M)),
    ),
    Op(
        "diagonal",
        _diagonal,
        (_diagonal_grad,),
        "DiagonalBackward0",
        _diagonal_shape,
        params={"offset": 0, "dim1": 0, "dim2": 1},
        saves="none",
        mirror="torch.diagonal(a, offset, dim1, dim2)",
        rule="the gradient on the diagonal, zero elsewhere",
        examples=(
            ("S.diagonal()", {"S": ((3, 3), REAL)}),
            ("A.diagonal(1)", M),
            ("torch.diagonal(B, -1, 2, 1)", {"B": ((2, 3, 4), REAL)}),
            ("B.diagonal(dim1=0, dim2=2)", {"B": ((2, 3, 4), REAL)}),
        ),
    ),
    Op(
        "trace",
        lambda a: np.trace(a),
        (lambda g, o, a: g * np.eye(*a.shape),),
        "TraceBackward0",
        _trace_shape,
        saves="none",
        mirror="torch.trace(a)",
        rule="∂tr(A)/∂A = I",
        examples=(("S.trace()", {"S": ((3, 3), REAL)}), ("torch.trace(A)", M)),
    ),
    Op(
        "narrow",
        None,
        (),
        "SliceBackward0",
        None,
        params={"dim": REQUIRED, "start": REQUIRED, "length": REQUIRED},
        lower=_narrow_lower,
        mirror="torch.narrow(a, dim, start, length)",
        rule="scatter the gradient back",
        examples=(("A.narrow(1, 0, 2)", M), ("a.narrow(0, -2, 2)", V), ("A.narrow(0, 0, 2)", M)),
    ),
    Op(
        "hstack",
        None,
        (),
        "CatBackward0 (over ViewBackward0 for 0-d tensors)",
        None,
        listarg=True,
        lower=_stack_lower("hstack", 1, 1),
        mirror="torch.hstack([a, b, ...])",
        rule="split the gradient back",
        examples=(
            ("torch.hstack([a, b])", {"a": ((3,), REAL), "b": ((2,), REAL)}),
            ("torch.hstack((A, A * 2))", M),
            ("torch.hstack([s, a])", {"s": ((), REAL), "a": ((3,), REAL)}),
        ),
        methods=(),
        inputs=("tensors",),
    ),
    Op(
        "vstack",
        None,
        (),
        "CatBackward0 (over UnsqueezeBackward0 for 1-d, ViewBackward0 for 0-d tensors)",
        None,
        listarg=True,
        lower=_stack_lower("vstack", 2, 0),
        mirror="torch.vstack([a, b, ...])",
        rule="split the gradient back",
        examples=(
            ("torch.vstack([a, b])", {"a": ((3,), REAL), "b": ((3,), REAL)}),
            ("torch.vstack([A, a])", {"A": ((2, 3), REAL), "a": ((3,), REAL)}),
            ("torch.row_stack([s, s])", {"s": ((), REAL)}),
        ),
        aliases=("row_stack",),
        methods=(),
        inputs=("tensors",),
    ),
    Op(
        "dstack",
        None,
        (),
        "CatBackward0 (over UnsqueezeBackward0 for 1-d and 2-d, ViewBackward0 for 0-d tensors)",
        None,
        listarg=True,
        lower=_stack_lower("dstack", 3, 2),
        mirror="torch.dstack([a, b, ...])",
        rule="split the gradient back",
        examples=(
            ("torch.dstack([a, b])", {"a": ((3,), REAL), "b": ((3,), REAL)}),
            ("torch.dstack([A, A])", M),
            ("torch.dstack([B, B[:, :, :1]])", {"B": ((2, 3, 4), REAL)}),
        ),
        methods=(),
        inputs=("tensors",),
    ),
    Op(
        "column_stack",
        None,
        (),
        "CatBackward0 (over ViewBackward0 for 0-d and 1-d tensors)",
        None,
        listarg=True,
        lower=_column_stack_lower,
        mirror="torch.column_stack([a, b, ...])",
        rule="split the gradient back",
        examples=(
            ("torch.column_stack([a, b])", {"a": ((3,), REAL), "b": ((3,), REAL)}),
            ("torch.column_stack([a, A.T])", {"a": ((3,), REAL), "A": ((2, 3), REAL)}),
            ("torch.column_stack([s, s])", {"s": ((), REAL)}),
        ),
        methods=(),
        inputs=("tensors",),
    ),
    Op(
        "rot90",
        _rot90,
        (lambda g, o, a, k=1, dims=(0, 1): _rot90(g, -k, dims),),
        "Rot90Backward0",
        _rot90_shape,
        params={"k": 1, "dims": (0, 1)},
        saves="none",
        mirror="torch.rot90(a, k, dims)",
        rule="rotate back (-k)",
        examples=(
            ("A.rot90()", M),
            ("torch.rot90(A, 2)", M),
            ("A.rot90(-1)", M),
            ("A.rot90(0)", M),
            ("B.rot90(1, [2, 0])", {"B": ((2, 3, 4), REAL)}),
            ("torch.rot90(B, k=3, dims=(-1, 1))", {"B": ((2, 3, 4), REAL)}),
        ),
    ),
    Op(
        "repeat_interleave",
        None,
        (),
        "ViewBackward0 over CloneBackward0, ExpandBackward0 and UnsqueezeBackward0 (and "
        "ViewBackward0 when dim=None flattens)",
        None,
        params={"repeats": REQUIRED, "dim": None, "output_size": None},
        free=("repeats",),
        lower=_repeat_interleave_lower,
        mirror="torch.repeat_interleave(a, repeats, dim)",
        rule="sum the copies' gradients",
        examples=(
            ("a.repeat_interleave(2)", V),
            ("A.repeat_interleave(2, dim=1)", M),
            ("torch.repeat_interleave(A, 3, 0)", M),
            ("A.repeat_interleave(2)", M),
            ("A.T.repeat_interleave(2, 1)", M),
            ("s.repeat_interleave(3)", {"s": ((), REAL)}),
        ),
    ),
    Op(
        "requires_grad_",
        None,
        (),
        "none: the tensor itself",
        None,
        params={"requires_grad": True},
        lower=_requires_grad_lower,
        mirror="a.requires_grad_()",
        rule="the identity (no node)",
        examples=(("(a.requires_grad_() * 2).sum()", V),),
        namespaces=(),
        methods=("requires_grad_",),
        bare=False,
    ),
    Op(
        "pad",
        None,
        (),
        "ConstantPadNdBackward0; ReflectionPad{1,2,3}DBackward0, ReplicationPad{1,2,3}DBackward0; "
        "circular: CopySlices over SliceBackward0 per copy",
        None,
        params={"pad": REQUIRED, "mode": "constant", "value": None},
        free=("pad",),
        lower=_pad_lower,
        mirror="F.pad(a, pad, mode, value)",
        rule="the gradient of each source position, summed over its copies; none for the constant",
        examples=(
            ("F.pad(A, (1, 2))", M),
            ("F.pad(A, (1, 1, 2, 0), value=3.5)", M),
            ("F.pad(A, [-1, 1])", M),
            ("torch.nn.functional.pad(A, (1, 2), mode='reflect')", M),
            ("F.pad(B, (1, 1, 1, 0), 'reflect')", {"B": ((2, 3, 4), REAL)}),
            ("F.pad(B, (3, -1), mode='reflect')", {"B": ((2, 3, 4), REAL)}),
            ("F.pad(A, (1, 2), mode='replicate')", M),
            ("F.pad(C, (1, 1, 2, 1, 1, 0), mode='replicate')", {"C": ((1, 2, 3, 2), REAL)}),
            ("F.pad(A, (1, 2), mode='circular')", M),
            ("F.pad(B, (2, 0, -1, 2), mode='circular')", {"B": ((2, 3, 4), REAL)}),
            ("F.pad(C, (1, 1, 0, 2, 1, 0), mode='circular')", {"C": ((1, 2, 3, 2), REAL)}),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
    ),
    Op(
        "pad_nd",
        _pad_nd,
        (_pad_nd_grad,),
        _pad_label,
        _pad_shape,
        params={"pads": REQUIRED, "mode": "constant", "value": 0.0},
        saves="none",
        public=False,
        rule="the gradient of each source position, summed over its copies",
    ),
    Op(
        "copy_slices",
        _copy_slices,
        (_copy_slices_base_grad, lambda g, o, base, src, region: g[_region(g.ndim, region)]),
        "CopySlices",
        lambda s, at: s[0],
        arity=2,
        params={"region": REQUIRED},
        saves="none",
        public=False,
        rule="the region's gradient to the copied tensor, the rest to the base",
    ),
    Op(
        "copy_slices_new",
        _copy_slices_new,
        (lambda g, o, src, shape, region: g[_region(g.ndim, region)],),
        "CopySlices",
        lambda s, at: tuple(at["shape"]),
        params={"shape": REQUIRED, "region": REQUIRED},
        saves="none",
        public=False,
        rule="the region's gradient to the copied tensor",
    ),
]
