"""Matrix products and norms."""

import math

from ..errors import EvaluationError, ShapeError
from .core import (
    REAL,
    REQUIRED,
    M,
    Op,
    V,
    _abs,
    _expand_reduced,
    _re,
    _reduce_shape,
    _reshape_ids,
    broadcast_shapes,
    fmt_shape,
    lazy_numpy,
    norm_dims,
)

np = lazy_numpy(globals())


def _dims(shapes):
    return "".join(f"{len(s)}D" if i == 0 else f" and {len(s)}D" for i, s in enumerate(shapes))


def _dot_shape(shapes, attrs):
    a, b = shapes
    if len(a) != 1 or len(b) != 1:
        raise ShapeError(f"dot: 1D tensors expected, but got {_dims(shapes)} tensors")
    if a != b:
        raise ShapeError(
            f"dot: inconsistent tensor size, expected tensor {fmt_shape(a)} and "
            f"{fmt_shape(b)} to have the same number of elements"
        )
    return ()


def _mv_shape(shapes, attrs):
    a, b = shapes
    if len(a) != 2 or len(b) != 1:
        raise ShapeError(f"vector + matrix @ vector expected, got 1, {len(a)}, {len(b)}")
    if a[1] != b[0]:
        raise ShapeError(f"size mismatch, got input ({a[0]}), mat ({a[0]}x{a[1]}), vec ({b[0]})")
    return (a[0],)


def _mm_shape(shapes, attrs):
    a, b = shapes
    if len(a) != 2 or len(b) != 2:
        raise ShapeError(f"mm: 2D tensors expected, but got {_dims(shapes)} tensors")
    if a[1] != b[0]:
        raise ShapeError(
            f"mat1 and mat2 shapes cannot be multiplied ({a[0]}x{a[1]} and {b[0]}x{b[1]})"
        )
    return (a[0], b[1])


def _matmul_lower(emit, node, args, attrs):
    """What torch.matmul records, by the operands' ranks."""
    a, b = args
    sa, sb = node(a).shape, node(b).shape
    if len(sa) == 1 and len(sb) == 1:
        return emit("dot", (a, b))
    if len(sa) == 2 and len(sb) == 1:
        return emit("mv", (a, b))
    if len(sa) == 2 and len(sb) == 2:
        return emit("mm", (a, b))
    if len(sa) == 1 and len(sb) == 2:
        row = emit("unsqueeze", (a,), {"dim": 0})
        return emit("squeeze_dims", (emit("mm", (row, b)),), {"dim": (0,)})
    if not sa or not sb:
        raise ShapeError(
            f"both arguments to matmul need to be at least 1D, but they are {_dims((sa, sb))}"
        )
    if len(sa) == 3 and len(sb) == 3 and sa[0] != sb[0]:
        # a batch of one that requires grad is squeezed, so that the fold below applies
        if sa[0] == 1 and node(a).requires_grad:
            a = emit("squeeze", (a,), {"dim": 0})
        elif sb[0] == 1 and node(b).requires_grad:
            b = emit("squeeze", (b,), {"dim": 0})
        if len(node(a).shape) == 2 or len(node(b).shape) == 2:
            return _fold_matmul(emit, node, a, b)
    if _should_fold(node, a, b):
        return _fold_matmul(emit, node, a, b)
    return _batched_matmul(emit, node, a, b)


def _should_fold(node, a, b):
    """torch.matmul folds the batch of an N-D operand (N >= 3) into one mm or mv when the
    other is 1-D or 2-D and requires grad, or when the fold needs no copy."""
    sa, sb = node(a).shape, node(b).shape
    larger = len(sa) >= len(sb)
    if max(len(sa), len(sb)) < 3 or min(len(sa), len(sb)) > 2:
        return False
    if node(b if larger else a).requires_grad:
        return True
    if len(sa) == 2:
        return False
    t1 = node(a).value if larger else np.swapaxes(node(b).value, -1, -2)
    if t1.size == 0:
        return True
    st, sh = t1.strides, t1.shape
    return all(st[i] == st[i + 1] * sh[i + 1] for i in range(t1.ndim - 2))


def _fold_matmul(emit, node, a, b):
    """N-D @ 1-D/2-D (or the reverse, transposed) as one mm or mv on the folded batch."""
    transpose = len(node(b).shape) > len(node(a).shape)
    t1 = emit("transpose_last", (b,)) if transpose else a
    t2 = b if not transpose else emit("transpose", (a,)) if len(node(a).shape) == 2 else a
    s1, s2 = node(t1).shape, node(t2).shape
    shape = s1[:-1] + ((s2[1],) if len(s2) == 2 else ())
    folded = _reshape_ids(emit, node, t1, (math.prod(s1[:-1]), s1[-1]))
    out = emit("mm" if len(s2) == 2 else "mv", (folded, t2))
    out = emit("reshape_view", (out,), {"shape": shape, "kind": "unsafe"})
    if transpose and len(s2) == 2:
        out = emit("transpose_last", (out,))
        if not node(out).value.flags.c_contiguous:
            out = emit("clone", (out,))
    return out


def _batched_matmul(emit, node, a, b):
    """Broadcast the batch dimensions, flatten them into one, and call bmm."""
    sa, sb = node(a).shape, node(b).shape
    n, m1 = (sa[-2] if len(sa) > 1 else 1), sa[-1]
    m2, p = (sb[-2], sb[-1]) if len(sb) > 1 else (sb[0], 1)
    batch = broadcast_shapes(sa[:-2], sb[:-2])
    size = math.prod(batch)
    a3 = _reshape_ids(emit, node, emit("expand", (a,), {"size": batch + (n, m1)}), (size, n, m1))
    vector = len(sb) == 1
    b3 = emit("expand", (b,), {"size": batch + ((m2,) if vector else (m2, p))})
    if vector:
        b3 = emit("unsqueeze", (_reshape_ids(emit, node, b3, (size, m2)),), {"dim": 2})
    else:
        b3 = _reshape_ids(emit, node, b3, (size, m2, p))
    out = emit("bmm", (a3, b3))
    if vector:
        out = emit("squeeze", (out,), {"dim": -1})
    shape = batch + ((n,) if len(sa) > 1 else ()) + ((p,) if len(sb) > 1 else ())
    return emit("reshape_view", (out,), {"shape": shape, "kind": "unsafe"})


def _norm(a, p=2.0, dim=None, keepdim=False):
    axes = None if dim is None else norm_dims(dim, a.ndim)
    if abs(p) == math.inf and 0 in (a.shape if axes is None else [a.shape[d] for d in axes]):
        raise EvaluationError(
            "linalg.vector_norm cannot compute the inf norm on an empty tensor because the "
            "operation does not have an identity"
        )
    x = _abs(a)
    if p == 2:
        out = np.sqrt(np.sum(x * x, axis=axes, keepdims=keepdim))
    elif p == 1:
        out = np.sum(x, axis=axes, keepdims=keepdim)
    elif p == math.inf:
        out = np.amax(x, axis=axes, keepdims=keepdim)
    elif p == -math.inf:
        out = np.amin(x, axis=axes, keepdims=keepdim)
    elif p == 0:
        out = np.sum(_re(x) != 0, axis=axes, keepdims=keepdim)
    else:
        out = np.sum(x**p, axis=axes, keepdims=keepdim) ** (1.0 / p)
    return out


def _norm_grad(g, o, a, p=2.0, dim=None, keepdim=False):
    """PyTorch's norm_backward: zero where the norm is zero; ties share an inf-norm."""
    g = _expand_reduced(g, a, dim, keepdim)
    n = _expand_reduced(o, a, dim, keepdim)
    if p == 0:
        return np.zeros_like(a)
    sign = np.sign(np.where(np.isnan(_re(a)), 0, _re(a)))  # torch.sign: 0 at nan
    if p == 1:
        return g * sign
    if p == 2:
        return np.where(_re(n) == 0, 0, g * a / n)
    if abs(p) == math.inf:
        mask = (_re(_abs(a)) == _re(n)) | np.isnan(_re(a))  # a nan is where the max is
        count = np.sum(mask, axis=None if dim is None else norm_dims(dim, a.ndim), keepdims=True)
        return g * sign * mask / count
    if p < 1:
        scaled = np.where(_re(a) == 0, 0, sign * _abs(a) ** (p - 1))
    else:
        scaled = a * _abs(a) ** (p - 2)
    return np.where(_re(n) == 0, 0, scaled * g / n ** (p - 1))


def _outer_lower(emit, node, args, attrs):
    a, b = args
    if len(node(a).shape) != 1 or len(node(b).shape) != 1:
        raise ShapeError(
            f"outer: 1D tensors expected, but got {_dims((node(a).shape, node(b).shape))} tensors"
        )
    return emit("mul", (_reshape_ids(emit, node, a, (-1, 1)), b))


def _swap(a):
    return np.swapaxes(a, -1, -2)


def _bmm_shape(shapes, attrs):
    a, b = shapes
    for name, s in (("batch1", a), ("batch2", b)):
        if len(s) != 3:
            raise ShapeError(f"{name} must be a 3D tensor")
    if b[:2] != (a[0], a[2]):
        raise ShapeError(
            f"Expected size for first two dimensions of batch2 tensor to be: "
            f"[{a[0]}, {a[2]}] but got: [{b[0]}, {b[1]}]."
        )
    return (a[0], a[1], b[2])


def _expand_check(shape, target):
    """Tensor.expand's rule: ``shape`` must broadcast to ``target`` without growing it."""
    if len(shape) > len(target):
        raise ShapeError(
            f"expand(size={fmt_shape(target)}): the number of sizes provided "
            f"({len(target)}) must be greater or equal to the number of dimensions in the "
            f"tensor ({len(shape)})"
        )
    bad = [i for i in range(1, len(shape) + 1) if shape[-i] not in (1, target[-i])]
    if bad:
        k = bad[0]
        raise ShapeError(
            f"The expanded size of the tensor ({target[-k]}) must match the existing size "
            f"({shape[-k]}) at non-singleton dimension {len(target) - k}.  Target sizes: "
            f"{fmt_shape(target)}.  Tensor sizes: {fmt_shape(shape)}"
        )


def _addmm_shape(shapes, attrs):
    s, a, b = shapes
    for name, m in (("mat1", a), ("mat2", b)):
        if len(m) != 2:
            raise ShapeError(f"{name} must be a matrix, got {len(m)}-D tensor")
    out = _mm_shape((a, b), attrs)
    _expand_check(s, out)
    return out


def _addmv_shape(shapes, attrs):
    s, a, b = shapes
    if len(a) != 2 or len(b) != 1 or len(s) > 1:
        raise ShapeError(f"vector + matrix @ vector expected, got {len(s)}, {len(a)}, {len(b)}")
    if a[1] != b[0] or math.prod(s) not in (1, a[0]):
        raise ShapeError(
            f"size mismatch, got input ({s[0] if s else 1}), mat ({a[0]}x{a[1]}), vec ({b[0]})"
        )
    return (a[0],)


def _addr_shape(shapes, attrs):
    s, a, b = shapes
    for name, v in (("vec1", a), ("vec2", b)):
        if len(v) != 1:
            raise ShapeError(f"addr: Expected 1-D argument {name}, but got {len(v)}-D")
    out = (a[0], b[0])
    _expand_check(s, out)
    return out


def _baddbmm_shape(shapes, attrs):
    out = _bmm_shape(shapes[1:], attrs)
    _expand_check(shapes[0], out)
    return out


def _add_product(product):
    """beta·input + alpha·product(a, b); with beta = 0 the input is ignored (its nan and
    inf do not propagate), as PyTorch documents."""

    def forward(s, a, b, beta=1.0, alpha=1.0):
        p = product(a, b)
        return alpha * p if beta == 0 else beta * s + alpha * p

    return forward


def _cross_dim(shapes, dim):
    a, b = shapes
    if len(a) != len(b):
        raise ShapeError("linalg.cross: inputs must have the same number of dimensions.")
    if dim is None:  # torch.cross's old default: the first dimension of size 3
        dim = next((i for i, n in enumerate(a) if n == 3), None)
        if dim is None:
            raise ShapeError("no dimension of size 3 in input")
    d = norm_dims(dim, len(a))[0]
    if a[d] != 3 or b[d] != 3:
        raise ShapeError(
            f"linalg.cross: inputs dimension {dim} must have length 3. Got {a[d]} and {b[d]}"
        )
    return d


def _cross_shape(shapes, attrs):
    _cross_dim(shapes, attrs.get("dim"))
    return broadcast_shapes(*shapes)


def _cross(a, b, dim=None):
    d = _cross_dim((a.shape, b.shape), dim)
    a, b = np.moveaxis(a, d, -1), np.moveaxis(b, d, -1)
    c = [
        a[..., (i + 1) % 3] * b[..., (i + 2) % 3] - a[..., (i + 2) % 3] * b[..., (i + 1) % 3]
        for i in range(3)
    ]
    return np.moveaxis(np.stack(np.broadcast_arrays(*c), axis=-1), -1, d)


def _dist_shape(shapes, attrs):
    broadcast_shapes(*shapes)
    return ()


def _dist(a, b, p=2.0):
    return _norm(a - b, p)


def _dist_grad(sign):
    def rule(g, o, a, b, p=2.0):
        return sign * _norm_grad(g, o, a - b, p)

    return rule


def _cdist_shape(shapes, attrs):
    a, b = shapes
    for name, s in (("X1", a), ("X2", b)):
        if len(s) < 2:
            raise ShapeError(f"cdist only supports at least 2D tensors, {name} got: {len(s)}D")
    if a[-1] != b[-1]:
        raise ShapeError(f"X1 and X2 must have the same number of columns. X1: {a[-1]} X2: {b[-1]}")
    if attrs.get("p", 2.0) < 0:
        raise ShapeError("cdist only supports non-negative p values")
    return broadcast_shapes(a[:-2], b[:-2]) + (a[-2], b[-2])


def _pairs(a, b):
    """Every row of a minus every row of b: shape (..., P, R, M)."""
    return a[..., :, None, :] - b[..., None, :, :]


PAIR_BLOCK = 1 << 22  # elements in one block of pairwise differences


def _row_blocks(a, b):
    """Slices of a's rows small enough that their differences with every row of b stay
    within PAIR_BLOCK elements."""
    batch = math.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]))
    step = max(1, PAIR_BLOCK // max(1, batch * b.shape[-2] * a.shape[-1]))
    return [slice(i, i + step) for i in range(0, a.shape[-2], step)] or [slice(0, 0)]


def _cdist(a, b, p=2.0, compute_mode=None):
    rows = [_norm(_pairs(a[..., s, :], b), p, dim=-1) for s in _row_blocks(a, b)]
    return np.concatenate(rows, axis=-2)


def _cdist_grads(g, o, a, b, p=2.0, compute_mode=None):
    """Both inputs' gradients, a block of a's rows at a time."""
    ga, gb = [], 0
    for s in _row_blocks(a, b):
        d = _cdist_diff_grad(g[..., s, :], o[..., s, :], a[..., s, :], b, p)
        ga.append(np.sum(d, axis=-2))
        gb = gb - np.sum(d, axis=-3)
    return [np.concatenate(ga, axis=-2), gb]


def _cdist_diff_grad(g, o, a, b, p):
    """PyTorch's _cdist_backward, per pair of rows (before summing over the other side)."""
    diff = _pairs(a, b)
    g, o = g[..., None], o[..., None]
    if p == 0:
        return np.zeros_like(diff)
    sign = np.sign(_re(diff))
    if p == 1:
        return g * sign
    if p == math.inf:  # PyTorch's own form, which also decides what a nan or an inf gives
        return g * sign * (1 - np.minimum(1, np.ceil(np.abs(_re(_abs(diff)) - _re(o)))))
    zero = _re(o) == 0
    if p == 2:
        return np.where(zero, 0, g * diff / np.where(zero, 1, o))
    if p < 2:
        scaled = np.where(_re(diff) == 0, 0, sign * _abs(diff) ** (p - 1))
    else:
        scaled = diff * _abs(diff) ** (p - 2)
    return np.where(zero, 0, scaled * g / np.where(zero, 1, o) ** (p - 1))


def _euclidean(a, b):
    """PyTorch's _euclidean_dist: ‖a‖² + ‖b‖² − 2a·b from one matrix product of padded
    operands, clamped at 0: no (rows × rows × columns) intermediate."""
    an, bn = np.sum(a * a, axis=-1, keepdims=True), np.sum(b * b, axis=-1, keepdims=True)
    left = np.concatenate([-2 * a, an, np.ones_like(an)], axis=-1)
    right = np.concatenate([b, np.ones_like(bn), bn], axis=-1)
    d2 = left @ _swap(right)
    return np.sqrt(np.where(_re(d2) < 0, 0, d2))


def _euclidean_ratio(g, o):
    zero = _re(o) == 0
    return np.where(zero, 0, g / np.where(zero, 1, o))


def _cdist_label(kinds, attrs):
    """CdistBackward0; ViewBackward0 over EuclideanDistBackward0 for p = 2 past 25 rows"""
    return "CdistBackward0"


MM_IF_NECESSARY = "use_mm_for_euclid_dist_if_necessary"
COMPUTE_MODES = (MM_IF_NECESSARY, "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist")


def _cdist_lower(emit, node, args, attrs):
    """PyTorch computes p = 2 through matrix products (_euclidean_dist) when either side
    has more than 25 rows (or compute_mode says so): EuclideanDistBackward0 under a view,
    on the operands themselves for one batch, else on their expanded, contiguous batches
    viewed as one."""
    a, b = args
    shape = _cdist_shape([node(a).shape, node(b).shape], attrs)
    empty = not node(a).value.size or not node(b).value.size
    mode = attrs.get("compute_mode", MM_IF_NECESSARY)
    if mode not in COMPUTE_MODES:
        raise ShapeError(f"{mode} is not a valid value for compute_mode")
    mm = mode == "use_mm_for_euclid_dist" or (mode == MM_IF_NECESSARY and max(shape[-2:]) > 25)
    if attrs.get("p", 2.0) != 2 or not mm or empty:
        return emit("cdist", (a, b), attrs)  # this row itself: the lowering only chose
    batch = shape[:-2]
    if math.prod(batch) != 1:
        flat = []
        for x in (a, b):
            rows = node(x).shape[-2:]
            x = emit("expand", (x,), {"size": batch + rows})
            if not node(x).value.flags.c_contiguous:
                x = emit("clone", (x,))
            flat.append(
                emit("reshape_view", (x,), {"shape": (math.prod(batch),) + rows, "kind": "view"})
            )
        a, b = flat
    out = emit("euclidean_dist", (a, b))
    return emit("reshape_view", (out,), {"shape": shape, "kind": "view"})


def _diag_shape(shapes, attrs):
    s, k = shapes[0], _int(attrs.get("diagonal", 0.0), "diagonal")
    if len(s) == 1:
        return (s[0] + abs(k),) * 2
    if len(s) == 2:
        return (max(0, min(s[0] + min(k, 0), s[1] - max(k, 0))),)
    raise ShapeError(f"diag(): Supports 1D or 2D tensors. Got {len(s)}D")


def _diag_label(kinds, attrs):
    """DiagEmbedBackward0 (vector to matrix) or DiagonalBackward0_copy (matrix to vector)"""
    return "DiagEmbedBackward0" if attrs["ndim"] == 1 else "DiagonalBackward0_copy"


def _diag_lower(emit, node, args, attrs):
    # this row itself, told the input's rank, which picks PyTorch's label
    return emit("diag", args, dict(attrs, ndim=len(node(args[0]).shape)))


def _diag(a, diagonal=0.0, ndim=None):
    k = int(diagonal)
    return np.diagonal(a, k).copy() if a.ndim == 2 else _embed(a, k, 0, 1)


def _diag_grad(g, o, a, diagonal=0.0, ndim=None):
    k = int(diagonal)
    if a.ndim == 1:
        return np.diagonal(g, k)
    out = np.zeros(a.shape, dtype=g.dtype)
    i = np.arange(g.shape[0])
    out[i + max(-k, 0), i + max(k, 0)] = g
    return out


def _int(value, what):
    if not float(value).is_integer():
        raise ShapeError(f"{what} must be an integer, got {value:g}")
    return int(value)


def _embed(a, offset, dim1, dim2):
    """a's last dimension laid on the diagonal ``offset`` of dimensions dim1, dim2 of a
    new tensor (torch.diag_embed)."""
    ndim = a.ndim + 1
    d1, d2 = norm_dims(int(dim1), ndim)[0], norm_dims(int(dim2), ndim)[0]
    n = a.shape[-1] + abs(offset)
    out = np.zeros(a.shape[:-1] + (n, n), dtype=a.dtype)
    i = np.arange(a.shape[-1])
    out[..., i + max(-offset, 0), i + max(offset, 0)] = a
    return np.moveaxis(out, (-2, -1), (d1, d2))


def _diag_embed_shape(shapes, attrs):
    s = shapes[0]
    ndim = len(s) + 1
    dim1, dim2 = _int(attrs["dim1"], "dim1"), _int(attrs["dim2"], "dim2")
    d1, d2 = norm_dims(dim1, ndim)[0], norm_dims(dim2, ndim)[0]
    if d1 == d2:
        raise ShapeError(f"diagonal dimensions cannot be identical {dim1}, {dim2}")
    if not s:
        raise ShapeError("diag_embed: the input needs at least 1 dimension, got a 0-d tensor")
    rest = list(s[:-1])
    n = s[-1] + abs(_int(attrs["offset"], "offset"))
    for d in sorted((d1, d2)):
        rest.insert(d, n)
    return tuple(rest)


def _renorm_check(shapes, attrs):
    s = shapes[0]
    if len(s) < 2:
        raise ShapeError(f"renorm: input needs at least 2 dimensions, got {len(s)} dimensions")
    norm_dims(attrs["dim"], len(s))
    if attrs["p"] <= 0:
        raise ShapeError("renorm: non-positive-norm not supported")
    if attrs["maxnorm"] < 0:
        raise ShapeError(f"renorm: expected maxnorm to be >= 0 but got {attrs['maxnorm']:g}")
    return s


def _renorm_norm(a, p, dim):
    d = norm_dims(dim, a.ndim)[0]
    others = tuple(i for i in range(a.ndim) if i != d)
    return others, _norm(a, p, dim=others, keepdim=True)


def _renorm(a, p, dim, maxnorm):
    others, n = _renorm_norm(a, p, dim)
    return a * np.where(_re(n) > maxnorm, maxnorm / (n + 1e-7), 1)


def _renorm_grad(g, o, a, p, dim, maxnorm):
    """PyTorch's renorm_backward: where a slice was rescaled, the factor maxnorm/(norm +
    1e-7) and its derivative through the norm; elsewhere the gradient passes."""
    others, n = _renorm_norm(a, p, dim)
    nb = _norm_grad(np.sum(a * g, axis=others, keepdims=True), n, a, p, others, True)
    inv = 1 / (n + 1e-7)
    factor = inv * maxnorm
    return np.where(_re(n) > maxnorm, factor * g - factor * inv * nb, g)


def _kron_lower(emit, node, args, attrs):
    """torch.kron: each operand viewed with its dimensions interleaved with ones, one
    broadcast product, one view to the result."""
    a, b = args
    sa, sb = node(a).shape, node(b).shape
    nd = max(len(sa), len(sb))
    pa, pb = (1,) * (nd - len(sa)) + sa, (1,) * (nd - len(sb)) + sb
    va = emit(
        "reshape_view", (a,), {"shape": tuple(x for n in pa for x in (n, 1)), "kind": "unsafe"}
    )
    vb = emit(
        "reshape_view", (b,), {"shape": tuple(x for n in pb for x in (1, n)), "kind": "unsafe"}
    )
    out = emit("mul", (va, vb))
    shape = tuple(x * y for x, y in zip(pa, pb, strict=True))
    return emit("reshape_view", (out,), {"shape": shape, "kind": "unsafe"})


def _tensordot_dims(dims, na, nb):
    """dims as PyTorch takes it: a count (the last dims of a with the first of b) or a
    pair of lists."""
    if isinstance(dims, (int, float)) and not isinstance(dims, bool):
        dims = float(dims)
        if not dims.is_integer():
            raise ShapeError(f"tensordot expects dims to be an integer, got {dims}")
        k = int(dims)
        if k < 0:
            raise ShapeError(f"tensordot expects dims >= 0, but got dims={k}")
        if k > min(na, nb):
            raise ShapeError(f"tensordot expects dims < ndim_a or ndim_b, but got dims={k}")
        return list(range(-k, 0)), list(range(k))
    if not (
        isinstance(dims, list)
        and len(dims) == 2
        and all(isinstance(d, (list, float)) for d in dims)
    ):
        raise ShapeError("tensordot expects dims as an integer or a pair of lists of dims")
    d1, d2 = ([d] if isinstance(d, float) else d for d in dims)
    if not all(isinstance(x, float) and x.is_integer() for x in d1 + d2):
        raise ShapeError("tensordot: dims must be integers")
    if len(d1) != len(d2):
        raise ShapeError("both dimension lists should have same length")
    return [int(x) for x in d1], [int(x) for x in d2]


def _permute(emit, a, order):
    return emit("permute_axes", (a,), {"dims": tuple(order)})


def _tensordot_lower(emit, node, args, attrs):
    """torch.tensordot: sum away contracted dimensions of size 1, permute the contracted
    dimensions together, and one mm between the two reshaped operands (a dot when the result
    is one number)."""
    a, b = args
    sa, sb = node(a).shape, node(b).shape
    d1, d2 = _tensordot_dims(attrs.get("dims", 2), len(sa), len(sb))
    c1, c2 = [], []
    csize = 1
    for x, y in zip(d1, d2, strict=True):
        i, j = norm_dims(x, len(sa))[0], norm_dims(y, len(sb))[0]
        s1, s2 = sa[i], sb[j]
        if s2 == 1:
            a = emit("sum", (a,), {"dim": i, "keepdim": True})
        elif s1 == 1:
            b = emit("sum", (b,), {"dim": j, "keepdim": True})
        elif s1 != s2:
            raise ShapeError(
                f"contracted dimensions need to match, but first has size {s1} in dim {x} "
                f"and second has size {s2} in dim {y}"
            )
        else:
            csize *= s1
        c1.append(i)
        c2.append(j)
    for dims, ndim in ((d1, len(sa)), (d2, len(sb))):
        norm_dims(dims, ndim)  # PyTorch's error for a dimension contracted twice
    ta, tb = node(a).shape, node(b).shape
    free1 = [i for i in range(len(sa)) if i not in c1]
    free2 = [j for j in range(len(sb)) if j not in c2]
    size1, size2 = math.prod(ta[i] for i in free1), math.prod(tb[j] for j in free2)
    a, b = _permute(emit, a, free1 + c1), _permute(emit, b, c2 + free2)
    if size1 == 1 and size2 == 1:  # one number out: a dot of the flattened operands
        a, b = (
            x if len(node(x).shape) == 1 else _reshape_ids(emit, node, x, (csize,)) for x in (a, b)
        )
        out = emit("dot", (a, b))
    else:
        a = _reshape_ids(emit, node, a, (size1, csize))
        b = _reshape_ids(emit, node, b, (csize, size2))
        out = emit("mm", (a, b))
    shape = tuple(ta[i] for i in free1) + tuple(tb[j] for j in free2)
    return _reshape_ids(emit, node, out, shape)


ELLIPSIS = "..."


def _label_order(c):
    return (c.islower(), c)  # PyTorch numbers subscripts A-Z before a-z


def _einsum_parse(eq, shapes):
    """The subscripts of each operand, the output's, and the position of every subscript in
    the aligned operands (output dimensions first, then those summed), as torch.einsum."""
    n = len(shapes)
    arrow = eq.find("->")
    lhs = eq if arrow < 0 else eq[:arrow]
    labels: list[list[str]] = [[]]
    seen_ellipsis = False
    i = 0
    while i < len(lhs):
        c = lhs[i]
        if c == ".":
            k = len(labels) - 1
            if seen_ellipsis:
                raise ShapeError(
                    f"einsum(): found '.' for operand {k} for which an ellipsis was already found"
                )
            if lhs[i : i + 3] != "...":
                raise ShapeError(
                    f"einsum(): found '.' for operand {k} that is not part of any ellipsis"
                )
            labels[-1].append(ELLIPSIS)
            seen_ellipsis = True
            i += 2
        elif c == ",":
            if len(labels) == n:
                raise ShapeError(
                    "einsum(): fewer operands were provided than specified in the equation"
                )
            labels.append([])
            seen_ellipsis = False
        elif c != " ":
            if not (c.isascii() and c.isalpha()):
                raise ShapeError(
                    f"einsum(): invalid subscript given at index {i} in the equation string, "
                    f"subscripts must be in [a-zA-Z]"
                )
            labels[-1].append(c)
        i += 1
    if len(labels) != n:
        raise ShapeError("einsum(): more operands were provided than specified in the equation")
    count: dict[str, int] = {}
    ell_dims = 0
    for k, (subs, shape) in enumerate(zip(labels, shapes, strict=True)):
        has = ELLIPSIS in subs
        nl = len(subs) - has
        if has:
            ell_dims = max(ell_dims, len(shape) - nl)
        for c in subs:
            if c != ELLIPSIS:
                count[c] = count.get(c, 0) + 1
        if nl > len(shape) if has else nl != len(shape):
            raise ShapeError(
                f"einsum(): the number of subscripts in the equation ({nl}) "
                + ("is more than" if has else "does not match")
                + f" the number of dimensions ({len(shape)}) for operand {k}"
                + ("" if has else " and no ellipsis was given")
            )
    perm = {}
    ell_at, ell_out = 0, False
    if arrow < 0:  # implicit output: the ellipsis, then the subscripts seen once
        at, ell_out = ell_dims, True
        for c in sorted(count, key=_label_order):
            if count[c] == 1:
                perm[c], at = at, at + 1
    else:
        rhs, at = eq[arrow + 2 :], 0
        i = 0
        while i < len(rhs):
            c = rhs[i]
            if c == ".":
                if ell_out:
                    raise ShapeError(
                        "einsum(): found '.' for output but an ellipsis (...) was already found"
                    )
                if rhs[i : i + 3] != "...":
                    raise ShapeError(
                        "einsum(): found '.' for output that is not part of any ellipsis (...)"
                    )
                ell_at, at, ell_out = at, at + ell_dims, True
                i += 2
            elif c != " ":
                if not (c.isascii() and c.isalpha()):
                    raise ShapeError(
                        f"einsum(): invalid subscript given at index {len(lhs) + 2 + i} in the "
                        f"equation string, subscripts must be in [a-zA-Z]"
                    )
                if c not in count or c in perm:
                    raise ShapeError(
                        f"einsum(): output subscript {c}"
                        + (
                            " appears more than once in the output"
                            if c in perm
                            else " does not appear in the equation for any input operand"
                        )
                    )
                perm[c], at = at, at + 1
            i += 1
    out_dims = at
    if not ell_out:
        ell_at, at = at, at + ell_dims
    for c in sorted(count, key=_label_order):
        if c not in perm:
            perm[c], at = at, at + 1
    return labels, perm, out_dims, at, ell_at, ell_dims


def _einsum_lower(emit, node, args, attrs):
    """torch.einsum as ATen computes it: diagonals for repeated subscripts, unsqueezes and a
    permutation that align every operand, then left to right one pairwise sum-product (a
    bmm between permuted reshapes) at a time, summing each dimension as soon as no later
    operand has it."""
    eq = attrs.get("equation")
    if not isinstance(eq, str):
        raise ShapeError("einsum(): the equation must be a string, e.g. einsum('ij,jk->ik', a, b)")
    labels, perm, out_dims, total, ell_at, ell_dims = _einsum_parse(
        eq, [node(a).shape for a in args]
    )
    sizes: dict[str, int] = {}
    ell_sizes, counts = [1] * ell_dims, [0] * total
    ops = []
    for k, (op, subs) in enumerate(zip(args, labels, strict=True)):
        order, dim = [-1] * total, 0
        for s in subs:
            shape = node(op).shape
            if s == ELLIPSIS:
                covered = len(node(args[k]).shape) - (len(subs) - 1)
                for j in range(ell_dims - covered, ell_dims):
                    if shape[dim] != 1:
                        if ell_sizes[j] not in (1, shape[dim]):
                            raise ShapeError(
                                f"einsum(): dimension {dim} covered by ellipsis in operand {k}"
                                f"has size {shape[dim]} which does not broadcast with previously "
                                f"seen ellipsis with size {ell_sizes[j]} for the respective "
                                f"dimension"
                            )
                        ell_sizes[j] = shape[dim]
                        counts[ell_at + j] += 1
                    order[ell_at + j], dim = dim, dim + 1
            elif order[perm[s]] == -1:
                if shape[dim] != 1:
                    if sizes.get(s, 1) not in (1, shape[dim]):
                        raise ShapeError(
                            f"einsum(): subscript {s} has size {shape[dim]} for operand {k} "
                            f"which does not broadcast with previously seen size {sizes[s]}"
                        )
                    sizes[s] = shape[dim]
                    counts[perm[s]] += 1
                order[perm[s]], dim = dim, dim + 1
            else:  # a repeated subscript: its diagonal, moved to the first one's place
                prev = order[perm[s]]
                if shape[dim] != shape[prev]:
                    raise ShapeError(
                        f"einsum(): subscript {s} is repeated for operand {k} but the sizes "
                        f"don't match, {shape[dim]} != {shape[prev]}"
                    )
                op = emit("diagonal_view", (op,), {"dim1": prev, "dim2": dim})
                moved = list(range(len(shape) - 1))
                moved.insert(prev, moved.pop())
                op = _permute(emit, op, moved)
        for j in range(total):  # subscripts this operand lacks: dimensions of size 1
            if order[j] == -1:
                op = emit("unsqueeze", (op,), {"dim": dim})
                order[j], dim = dim, dim + 1
        ops.append(_permute(emit, op, order))
    while len(ops) > 1:
        a, b = ops[0], ops[1]
        both, only_a, only_b = [], [], []
        for d in range(out_dims, total):
            na, nb = node(a).shape[d], node(b).shape[d]
            if na != 1 and nb != 1:
                counts[d] -= 1
                if counts[d] == 1:
                    both.append(d)
                    counts[d] = 0
            elif counts[d] == 1:
                if na != 1:
                    only_a.append(d)
                    counts[d] = 0
                elif nb != 1:
                    only_b.append(d)
                    counts[d] = 0
        if only_a:
            a = emit("sum", (a,), {"dim": tuple(only_a), "keepdim": True})
        if only_b:
            b = emit("sum", (b,), {"dim": tuple(only_b), "keepdim": True})
        ops = [_sumproduct_pair(emit, node, a, b, both)] + ops[2:]
    out = ops[0]
    if total > out_dims:
        if len(args) > 1:  # the summed dimensions are all 1 by now
            return emit(
                "reshape_view", (out,), {"shape": node(out).shape[:out_dims], "kind": "view"}
            )
        return emit("sum", (out,), {"dim": tuple(range(out_dims, total)), "keepdim": False})
    return out


def _sumproduct_pair(emit, node, left, right, summed):
    """(left * right).sum(summed, keepdim=True) for aligned operands, as one bmm between
    permuted reshapes (ATen's sumproduct_pair)."""
    if not summed:
        return emit("mul", (left, right))
    lro, lo, ro = [], [], []
    lro_size = lo_size = ro_size = sum_size = 1
    for i in range(len(node(left).shape)):
        nl, nr = node(left).shape[i], node(right).shape[i]
        if i in summed:
            if nl != 1 and nr != 1:
                sum_size *= nl
            elif nl != 1:
                left = emit("sum", (left,), {"dim": i, "keepdim": True})
            elif nr != 1:
                right = emit("sum", (right,), {"dim": i, "keepdim": True})
        elif nl != 1 and nr != 1:
            lro.append(i)
            lro_size *= nl
        elif nl != 1:
            lo.append(i)
            lo_size *= nl
        else:
            ro.append(i)
            ro_size *= nr
    sl, sr = node(left).shape, node(right).shape
    out_size = tuple(sl[d] for d in lro + lo) + (1,) * len(summed) + tuple(sr[d] for d in ro)
    left = _permute(emit, left, lro + lo + summed + ro)
    left = _reshape_ids(emit, node, left, (lro_size, lo_size, sum_size))
    right = _permute(emit, right, lro + summed + ro + lo)
    right = _reshape_ids(emit, node, right, (lro_size, sum_size, ro_size))
    out = emit("reshape_view", (emit("bmm", (left, right)),), {"shape": out_size, "kind": "view"})
    placed = lro + lo + summed + ro
    back = [0] * len(placed)
    for i, d in enumerate(placed):
        back[d] = i
    return _permute(emit, out, back)


def _diagonal_grad(g, o, a, dim1, dim2):
    z = np.zeros(np.moveaxis(a, (dim1, dim2), (-2, -1)).shape, dtype=g.dtype)
    i = np.arange(g.shape[-1])
    z[..., i, i] = g
    return np.moveaxis(z, (-2, -1), (dim1, dim2))


ROWS = [
    Op(
        "matmul",
        None,
        (),
        "by rank: DotBackward0, MvBackward0, MmBackward0, or SqueezeBackward4 over "
        "MmBackward0 over UnsqueezeBackward0; beyond 2-D, MmBackward0/MvBackward0 on the "
        "folded batch or BmmBackward0 on expanded views, under UnsafeViewBackward0",
        None,
        arity=2,
        lower=_matmul_lower,
        mirror="a @ b",
        rule="by rank: dot, mv, mm, unsqueeze · mm · squeeze, or batched mm/mv/bmm",
        examples=(
            ("a @ b", {"a": ((3,), REAL), "b": ((3,), REAL)}),
            ("A @ b", {"A": ((2, 3), REAL), "b": ((3,), REAL)}),
            ("A @ B", {"A": ((2, 3), REAL), "B": ((3, 2), REAL)}),
            ("b @ A", {"b": ((2,), REAL), "A": ((2, 3), REAL)}),
            ("A @ B", {"A": ((2, 2, 3), REAL), "B": ((2, 3, 2), REAL)}),
            ("A @ B", {"A": ((2, 2, 3), REAL), "B": ((3, 2), REAL)}),
            ("A @ B", {"A": ((2, 3), REAL), "B": ((2, 3, 2), REAL)}),
            ("a @ B", {"a": ((3,), REAL), "B": ((2, 3, 2), REAL)}),
            ("A @ b", {"A": ((2, 2, 3), REAL), "b": ((3,), REAL)}),
            ("A @ B", {"A": ((2, 1, 2, 3), REAL), "B": ((1, 2, 3, 2), REAL)}),
            ("A @ B", {"A": ((1, 2, 3), REAL), "B": ((2, 3, 2), REAL)}),
            ("matmul(A, B.T)", {"A": ((2, 2, 3), REAL), "B": ((2, 3), REAL)}),
        ),
        namespaces=("torch", "torch.linalg"),
    ),
    Op(
        "dot",
        lambda a, b: np.dot(a, b),
        (lambda g, o, a, b: g * b, lambda g, o, a, b: g * a),
        "DotBackward0",
        _dot_shape,
        arity=2,
        stack="rows",
        mirror="torch.dot(a, b)",
        rule="∂(a·b)/∂a = b",
        examples=(("dot(a, b)", {"a": ((3,), REAL), "b": ((3,), REAL)}),),
        inputs=("input", "tensor"),
    ),
    Op(
        "mv",
        lambda a, b: a @ b,
        (lambda g, o, a, b: np.outer(g, b), lambda g, o, a, b: a.T @ g),
        "MvBackward0",
        _mv_shape,
        arity=2,
        stack="matmul",
        mirror="torch.mv(a, b)",
        rule="∂(Av)/∂A = g vᵀ, ∂(Av)/∂v = Aᵀg",
        examples=(("mv(A, b)", {"A": ((2, 3), REAL), "b": ((3,), REAL)}),),
        inputs=("input", "vec"),
    ),
    Op(
        "mm",
        lambda a, b: a @ b,
        (lambda g, o, a, b: g @ b.T, lambda g, o, a, b: a.T @ g),
        "MmBackward0",
        _mm_shape,
        arity=2,
        stack="matmul",
        mirror="torch.mm(a, b)",
        rule="∂(AB)/∂A = G Bᵀ, ∂(AB)/∂B = Aᵀ G",
        examples=(("mm(A, B)", {"A": ((2, 3), REAL), "B": ((3, 2), REAL)}),),
        inputs=("input", "mat2"),
    ),
    Op(
        "norm",
        _norm,
        (_norm_grad,),
        "LinalgVectorNormBackward0",
        _reduce_shape,
        params={"p": 2.0, "dim": None, "keepdim": False},
        mirror="a.norm(p, dim, keepdim)",
        rule="∂‖a‖₂/∂a = a/‖a‖₂ (0 at 0)",
        examples=(
            ("norm(a)", V),
            ("norm(A, dim=1)", M),
            ("norm(a, p=1)", {"a": ((3,), "away")}),
            ("norm(a, 3)", V),
            ("norm(a, p=inf)", {"a": ((4,), "distinct")}),
        ),
        spellings=("torch.linalg.vector_norm",),
        keywords={"ord": "p"},
        reduction=True,
    ),
    Op(
        "outer",
        None,
        (),
        "MulBackward0 over ViewBackward0",
        None,
        arity=2,
        lower=_outer_lower,
        mirror="torch.outer(a, b)",
        rule="∂(abᵀ)/∂a = G b",
        examples=(("outer(a, b)", {"a": ((3,), REAL), "b": ((2,), REAL)}),),
        aliases=("ger",),
        inputs=("input", "vec2"),
    ),
    Op(
        "transpose_last",
        _swap,
        (lambda g, o, a: _swap(g),),
        "TransposeBackward0",
        lambda s, at: s[0][:-2] + s[0][:-3:-1],
        saves="none",
        public=False,
    ),
    Op(
        "permute_axes",
        lambda a, dims: np.transpose(a, dims),
        (lambda g, o, a, dims: np.transpose(g, np.argsort(dims)),),
        "PermuteBackward0",
        lambda s, at: tuple(s[0][d] for d in at["dims"]),
        saves="none",
        public=False,
    ),
    Op(
        "bmm",
        lambda a, b: np.matmul(a, b),
        (lambda g, o, a, b: g @ _swap(b), lambda g, o, a, b: _swap(a) @ g),
        "BmmBackward0",
        _bmm_shape,
        arity=2,
        mirror="torch.bmm(a, b)",
        inputs=("input", "mat2"),
        rule="∂(AB)/∂A = G Bᵀ, ∂(AB)/∂B = Aᵀ G, per batch",
        examples=(("bmm(A, B)", {"A": ((2, 2, 3), REAL), "B": ((2, 3, 2), REAL)}),),
    ),
    Op(
        "baddbmm",
        _add_product(np.matmul),
        (
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: g * beta,
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: (g @ _swap(b)) * alpha,
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: (_swap(a) @ g) * alpha,
        ),
        "BaddbmmBackward0",
        _baddbmm_shape,
        arity=3,
        params={"beta": 1.0, "alpha": 1.0},
        mirror="torch.baddbmm(a, b, c, beta=beta, alpha=alpha)",
        inputs=("input", "batch1", "batch2"),
        rule="β·∂a + α·(∂(BC)/∂B = G Cᵀ, ∂(BC)/∂C = Bᵀ G)",
        examples=(
            (
                "baddbmm(S, A, B)",
                {"S": ((2, 2, 2), REAL), "A": ((2, 2, 3), REAL), "B": ((2, 3, 2), REAL)},
            ),
            (
                "baddbmm(s, A, B, beta=0.5, alpha=-2)",
                {"s": ((2,), REAL), "A": ((2, 2, 3), REAL), "B": ((2, 3, 2), REAL)},
            ),
        ),
    ),
    Op(
        "addmm",
        _add_product(lambda a, b: a @ b),
        (
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: g * beta,
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: (g @ b.T) * alpha,
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: (a.T @ g) * alpha,
        ),
        "AddmmBackward0",
        _addmm_shape,
        arity=3,
        params={"beta": 1.0, "alpha": 1.0},
        mirror="torch.addmm(a, b, c, beta=beta, alpha=alpha)",
        inputs=("input", "mat1", "mat2"),
        rule="β·∂a + α·(∂(BC)/∂B = G Cᵀ, ∂(BC)/∂C = Bᵀ G)",
        examples=(
            ("addmm(s, A, B)", {"s": ((2,), REAL), "A": ((3, 4), REAL), "B": ((4, 2), REAL)}),
            (
                "addmm(S, A, B, beta=2, alpha=0.5)",
                {"S": ((3, 2), REAL), "A": ((3, 4), REAL), "B": ((4, 2), REAL)},
            ),
        ),
    ),
    Op(
        "addmv",
        _add_product(lambda a, b: a @ b),
        (
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: g * beta,
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: np.multiply.outer(g, b) * alpha,
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: (a.T @ g) * alpha,
        ),
        "AddmvBackward0",
        _addmv_shape,
        arity=3,
        params={"beta": 1.0, "alpha": 1.0},
        mirror="torch.addmv(a, b, c, beta=beta, alpha=alpha)",
        inputs=("input", "mat", "vec"),
        rule="β·∂a + α·(∂(Av)/∂A = g vᵀ, ∂(Av)/∂v = Aᵀg)",
        examples=(
            ("addmv(s, A, v)", {"s": ((3,), REAL), "A": ((3, 4), REAL), "v": ((4,), REAL)}),
            (
                "addmv(s, A, v, beta=-1, alpha=3)",
                {"s": ((3,), REAL), "A": ((3, 4), REAL), "v": ((4,), REAL)},
            ),
        ),
    ),
    Op(
        "addr",
        _add_product(np.multiply.outer),
        (
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: g * beta,
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: (g @ b) * alpha,
            lambda g, o, s, a, b, beta=1.0, alpha=1.0: (a @ g) * alpha,
        ),
        "AddrBackward0",
        _addr_shape,
        arity=3,
        params={"beta": 1.0, "alpha": 1.0},
        mirror="torch.addr(a, b, c, beta=beta, alpha=alpha)",
        inputs=("input", "vec1", "vec2"),
        rule="β·∂a + α·(∂(u vᵀ)/∂u = G v, ∂(u vᵀ)/∂v = Gᵀ u)",
        examples=(
            ("torch.addr(S, u, v)", {"S": ((3, 2), REAL), "u": ((3,), REAL), "v": ((2,), REAL)}),
            (
                "torch.addr(s, u, v, beta=0.5, alpha=-2)",
                {"s": ((2,), REAL), "u": ((3,), REAL), "v": ((2,), REAL)},
            ),
        ),
    ),
    Op(
        "kron",
        None,
        (),
        "UnsafeViewBackward0 over MulBackward0 over two UnsafeViewBackward0",
        None,
        arity=2,
        lower=_kron_lower,
        mirror="torch.kron(a, b)",
        rule="a product of interleaved views: ∂ as for a * b",
        examples=(
            ("kron(A, B)", {"A": ((2, 3), REAL), "B": ((2, 2), REAL)}),
            ("kron(a, B)", {"a": ((2,), REAL), "B": ((2, 3), REAL)}),
        ),
    ),
    Op(
        "cross",
        _cross,
        (
            lambda g, o, a, b, dim=None: _cross(b, g, _cross_dim((b.shape, g.shape), dim)),
            lambda g, o, a, b, dim=None: _cross(g, a, _cross_dim((g.shape, a.shape), dim)),
        ),
        "LinalgCrossBackward0",
        _cross_shape,
        arity=2,
        params={"dim": None},
        mirror="torch.cross(a, b, dim)",
        rule="∂(a×b)/∂a = b × g, ∂(a×b)/∂b = g × a",
        saves="others",
        examples=(
            ("cross(a, b, dim=0)", {"a": ((3,), REAL), "b": ((3,), REAL)}),
            ("cross(A, B, dim=1)", {"A": ((2, 3), REAL), "B": ((1, 3), REAL)}),
            ("cross(A, B)", {"A": ((3, 2), REAL), "B": ((3, 2), REAL)}),
        ),
        namespaces=("torch", "torch.linalg"),
        methods=("cross",),
    ),
    Op(
        "tensordot",
        None,
        (),
        "ViewBackward0 over MmBackward0 over reshapes of PermuteBackward0 (SumBackward1 for "
        "contracted dimensions of size 1)",
        None,
        arity=2,
        params={"dims": 2},
        free=("dims",),
        lower=_tensordot_lower,
        mirror="torch.tensordot(a, b, dims)",
        inputs=("a", "b"),
        rule="a permutation, reshapes and one mm",
        examples=(
            ("tensordot(A, B)", {"A": ((2, 3, 2), REAL), "B": ((3, 2, 2), REAL)}),
            (
                "tensordot(A, B, dims=([1, 0], [0, 2]))",
                {"A": ((2, 3, 2), REAL), "B": ((3, 2, 2), REAL)},
            ),
            ("tensordot(A, B, dims=0)", {"A": ((2, 2), REAL), "B": ((3,), REAL)}),
            ("tensordot(A, B, 1)", {"A": ((2, 1), REAL), "B": ((3, 2), REAL)}),
        ),
        namespaces=("torch",),
        methods=(),
    ),
    Op(
        "dist",
        _dist,
        (_dist_grad(1), _dist_grad(-1)),
        "DistBackward0",
        _dist_shape,
        arity=2,
        params={"p": 2.0},
        mirror="torch.dist(a, b, p)",
        rule="∂‖a − b‖ₚ/∂a as for norm, ∂/∂b its negative",
        examples=(
            ("dist(A, b)", {"A": ((2, 3), REAL), "b": ((3,), REAL)}),
            ("dist(a, b, 3)", {"a": ((3,), REAL), "b": ((3,), REAL)}),
            ("dist(a, b, p=1)", {"a": ((3,), "away"), "b": ((3,), "distinct")}),
        ),
    ),
    Op(
        "cdist",
        _cdist,
        _cdist_grads,
        _cdist_label,
        _cdist_shape,
        arity=2,
        params={"p": 2.0, "compute_mode": MM_IF_NECESSARY},
        lower=_cdist_lower,
        mirror="torch.cdist(a, b, p)",
        inputs=("x1", "x2"),
        rule="∂‖aᵢ − bⱼ‖ₚ per pair of rows, summed",
        examples=(
            # (PyTorch cannot differentiate its CdistBackward0 again, which the table's jvp
            # and Hessian checks need: tests/test_linalg.py checks those cases)
            ("cdist(A, B)", {"A": ((26, 2), REAL), "B": ((1, 2), REAL)}),
        ),
        namespaces=("torch",),
        methods=(),
    ),
    Op(
        "euclidean_dist",
        _euclidean,
        (
            lambda g, o, a, b: (
                a * np.sum(_euclidean_ratio(g, o), axis=-1, keepdims=True)
                - _euclidean_ratio(g, o) @ b
            ),
            lambda g, o, a, b: (
                b * _swap(np.sum(_euclidean_ratio(g, o), axis=-2, keepdims=True))
                - _swap(_euclidean_ratio(g, o)) @ a
            ),
        ),
        "EuclideanDistBackward0",
        _cdist_shape,
        arity=2,
        public=False,
    ),
    Op(
        "diag",
        _diag,
        (_diag_grad,),
        _diag_label,
        _diag_shape,
        params={"diagonal": 0.0},
        lower=_diag_lower,
        mirror="torch.diag(a, diagonal)",
        rule="a vector onto a diagonal and back",
        saves="none",
        examples=(
            ("diag(a)", V),
            ("diag(a, 1)", V),
            ("diag(A)", {"A": ((3, 3), REAL)}),
            ("diag(A, diagonal=-1)", M),
        ),
    ),
    Op(
        "diag_embed",
        lambda a, offset=0.0, dim1=-2.0, dim2=-1.0: _embed(a, int(offset), dim1, dim2),
        (
            lambda g, o, a, offset=0.0, dim1=-2.0, dim2=-1.0: np.diagonal(
                g, int(offset), norm_dims(int(dim1), g.ndim)[0], norm_dims(int(dim2), g.ndim)[0]
            ),
        ),
        "DiagEmbedBackward0",
        _diag_embed_shape,
        params={"offset": 0.0, "dim1": -2.0, "dim2": -1.0},
        mirror="torch.diag_embed(a, offset, dim1, dim2)",
        rule="the diagonal of the gradient",
        saves="none",
        examples=(
            ("diag_embed(A)", M),
            ("diag_embed(A, offset=1, dim1=0, dim2=2)", M),
            ("diag_embed(a, -1)", V),
        ),
    ),
    Op(
        "renorm",
        _renorm,
        (_renorm_grad,),
        "RenormBackward0",
        _renorm_check,
        params={"p": REQUIRED, "dim": REQUIRED, "maxnorm": REQUIRED},
        mirror="torch.renorm(a, p, dim, maxnorm)",
        rule="slices over maxnorm scaled by maxnorm/‖slice‖ₚ, and that factor's derivative",
        examples=(
            ("renorm(A, 2, 0, 1)", M),
            ("renorm(A, p=1, dim=1, maxnorm=1.5)", {"A": ((2, 3), "away")}),
            ("renorm(A, 3, -1, 0.5)", {"A": ((2, 2, 2), REAL)}),
        ),
    ),
    Op(
        "diagonal_view",
        lambda a, dim1, dim2: np.diagonal(a, 0, dim1, dim2),
        (_diagonal_grad,),
        "DiagonalBackward0",
        lambda s, at: (
            tuple(n for i, n in enumerate(s[0]) if i not in (at["dim1"], at["dim2"]))
            + (min(s[0][at["dim1"]], s[0][at["dim2"]]),)
        ),
        saves="none",
        public=False,
    ),
    Op(
        "einsum",
        None,
        (),
        "what ATen's einsum records: PermuteBackward0 (with UnsqueezeBackward0, "
        "DiagonalBackward0) per operand, then per pair MulBackward0, or BmmBackward0 between "
        "reshapes under ViewBackward0 and PermuteBackward0; SumBackward1 for summed dimensions",
        None,
        params={"equation": ""},
        listarg=True,
        variadic=True,
        lower=_einsum_lower,
        call="einsum(equation, a, b, ...)",
        mirror="torch.einsum(equation, a, b, ...)",
        rule="permutations, diagonals, sums and bmm: each differentiated in turn",
        examples=(
            ("einsum('ij,jk->ik', A, B)", {"A": ((2, 3), REAL), "B": ((3, 2), REAL)}),
            ("einsum('i,i->', a, b)", {"a": ((3,), REAL), "b": ((3,), REAL)}),
            ("einsum('i,i->i', [a, b])", {"a": ((3,), REAL), "b": ((3,), REAL)}),
            ("einsum('ii', A)", {"A": ((3, 3), REAL)}),
            ("einsum('ii->i', A)", {"A": ((3, 3), REAL)}),
            ("einsum('ij->ji', A)", M),
            ("einsum('...ij,...jk', A, B)", {"A": ((2, 2, 3), REAL), "B": ((2, 3, 2), REAL)}),
            (
                "einsum('bn,anm,bm->ba', x, W, y)",
                {"x": ((2, 3), REAL), "W": ((2, 3, 2), REAL), "y": ((2, 2), REAL)},
            ),
            ("einsum('iji->j', A)", {"A": ((2, 3, 2), REAL)}),
            ("einsum('i,j', a, b)", {"a": ((3,), REAL), "b": ((2,), REAL)}),
            ("einsum('ij->', A)", M),
            ("einsum('b...,b...->...', A, B)", {"A": ((2, 3), REAL), "B": ((2, 1), REAL)}),
        ),
        namespaces=("torch",),
        methods=(),
    ),
]
