"""Reductions and scans."""

import math

from ..errors import ShapeError
from .core import (
    REAL,
    REQUIRED,
    DType,
    M,
    Op,
    V,
    _complex,
    _count,
    _dim_shape,
    _expand_reduced,
    _one_dim,
    _re,
    _reduce_shape,
    broadcast_shapes,
    lazy_numpy,
    norm_dims,
)

np = lazy_numpy(globals())


def _empty_error(name, dim=None):
    """PyTorch's error for a max/min-like reduction of nothing."""
    if dim is None:
        return ShapeError(
            f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
            f"Specify the reduction dim with the 'dim' argument."
        )
    return ShapeError(f"{name}(): Expected reduction dim {dim} to have non-zero size.")


def _evenly(g, out, x):
    """PyTorch's evenly_distribute_backward: ties (and NaNs) share the gradient."""
    x, out_ = _re(x), _re(out)
    mask = np.isnan(x) if np.isnan(out_) else (x == out_)
    return np.where(mask, g / mask.sum(), 0).astype(np.result_type(g, x))


def _reduce_label(stem):
    def label(kinds, attrs):
        return stem + ("1" if attrs.get("dim") is not None else "0")

    label.__doc__ = f"{stem}0; {stem}1 with dim="
    return label


def _moved(a, axis):
    return np.moveaxis(a, axis, -1)


def _prod_others(a, axis):
    """The product of all other elements along ``axis``: exact where there are zeros."""
    m = _moved(a, axis)
    one = np.ones(m.shape[:-1] + (1,), m.dtype)
    left = np.cumprod(np.concatenate([one, m[..., :-1]], -1), -1)
    right = np.flip(np.cumprod(np.flip(np.concatenate([m[..., 1:], one], -1), -1), -1), -1)
    return np.moveaxis(left * right, -1, axis)


def _prod(a, dim=None, keepdim=False):
    if dim is None:
        return np.prod(a)
    return np.prod(a, axis=_one_dim(dim, a.ndim) if a.ndim else None, keepdims=keepdim)


def _prod_grad(g, o, a, dim=None, keepdim=False):
    if a.ndim == 0:
        return g * np.ones_like(a)
    if a.size == 0:
        return np.zeros(a.shape, dtype=np.result_type(g, a))
    if dim is None:
        return g * _prod_others(a.reshape(-1), 0).reshape(a.shape)
    d = _one_dim(dim, a.ndim)
    return _expand_reduced(g, a, d, keepdim) * _prod_others(a, d)


def _prod_shape(shapes, attrs):
    dim = attrs.get("dim")
    if dim is None and attrs.get("keepdim"):
        raise ShapeError("prod(): keepdim=True needs a dim (PyTorch has no such overload)")
    if dim is not None and shapes[0]:
        _one_dim(dim, len(shapes[0]))
    return _reduce_shape(shapes, attrs)


def _logsumexp(a, dim, keepdim=False):
    axes = norm_dims(dim, a.ndim)
    m = np.amax(a, axis=axes, keepdims=True) if a.size else np.zeros((1,) * a.ndim, a.dtype)
    m = np.where(np.isfinite(m), m, 0)
    out = np.log(np.sum(np.exp(a - m), axis=axes, keepdims=True)) + m
    return out if keepdim else np.squeeze(out, axis=axes)


def _logsumexp_grad(g, o, a, dim, keepdim=False):
    return _expand_reduced(g, a, dim, keepdim) * np.exp(a - _expand_reduced(o, a, dim, keepdim))


def _var(a, dim=None, correction=1.0, keepdim=False):
    axes = None if dim is None else norm_dims(dim, a.ndim)
    d = a - np.mean(a, axis=axes, keepdims=True)  # as np.var does, but without |d|² for duals
    return np.sum(d * d, axis=axes, keepdims=keepdim) / max(0, _count(a, dim) - correction)


def _var_grad(g, o, a, dim=None, correction=1.0, keepdim=False):
    """PyTorch's var_backward: 2(a - mean)/(N - correction), N - correction unclamped with
    dim=; without dim, no degrees of freedom give inf (nan where a equals the mean)."""
    axes = None if dim is None else norm_dims(dim, a.ndim)
    mean = np.mean(a, axis=axes, keepdims=True)
    dof = _count(a, dim) - correction
    if (dim is None or a.ndim == 0) and dof <= 0:
        return g * np.where(_re(a) == _re(mean), np.nan, np.inf)
    return _expand_reduced(g, a, dim, keepdim) * 2 * (a - mean) / dof


def _std_grad(g, o, a, dim=None, correction=1.0, keepdim=False):
    return _var_grad(np.where(_re(o) == 0, 0, g / (2 * o)), None, a, dim, correction, keepdim)


def _extremum(reduce, arg):
    def forward(a, dim=None, keepdim=False):
        if dim is None:
            return reduce(a)
        return reduce(a, axis=_one_dim(dim, a.ndim), keepdims=keepdim) if a.ndim else a.copy()

    def grad(g, o, a, dim=None, keepdim=False):
        if dim is None:
            return _evenly(g, o, a)
        if a.ndim == 0:
            return g
        d = _one_dim(dim, a.ndim)  # the gradient goes to the index the value came from
        idx = arg(a, axis=d, keepdims=True)
        out = np.zeros(a.shape, dtype=np.result_type(g, a))
        np.put_along_axis(out, idx, g if keepdim else np.expand_dims(g, d), axis=d)
        return out

    return forward, grad


def _extremum_shape(name):
    def shape(shapes, attrs):
        if attrs.get("dim") is None:
            if 0 in shapes[0]:
                raise _empty_error(name)
            return ()
        if shapes[0]:
            d = _one_dim(attrs["dim"], len(shapes[0]))
            if shapes[0][d] == 0:
                raise _empty_error(name, d)
        return _reduce_shape(shapes, attrs)

    return shape


def _extremum_label(stem):
    def label(kinds, attrs):
        return stem + ("0" if attrs.get("dim") is not None else "1")

    label.__doc__ = f"{stem}1; {stem}0 with dim= (the gradient goes to the index)"
    return label


_max_fwd, _max_grad = _extremum(np.max, np.argmax)


_min_fwd, _min_grad = _extremum(np.min, np.argmin)


def _amax_grad(g, o, a, dim=None, keepdim=False):
    """Ties share the gradient evenly (PyTorch's scale_grad_by_count)."""
    axes = None if dim is None else norm_dims(dim, a.ndim)
    mask = _re(a) == _re(_expand_reduced(o, a, dim, keepdim))
    return _expand_reduced(g, a, dim, keepdim) * mask / np.sum(mask, axis=axes, keepdims=True)


def _amax_shape(shapes, attrs):
    if 0 in shapes[0]:
        raise ShapeError("amax()/amin() of an empty tensor: the reduction has no identity")
    return _reduce_shape(shapes, attrs)


def _cumsum(a, dim):
    return np.cumsum(a, axis=_one_dim(dim, a.ndim)) if a.ndim else a.copy()


def _cumsum_grad(g, o, a, dim):
    if a.ndim == 0:
        return g
    d = _one_dim(dim, a.ndim)
    return np.flip(np.cumsum(np.flip(g, d), axis=d), d)


def _mean(a, dim=None, keepdim=False):
    # np.mean's own steps (a pairwise sum in the input's dtype, then a division by the
    # count) without its Python wrapper, which costs more than a small mean itself
    return np.add.reduce(a, axis=_axes(a, dim), keepdims=keepdim) / _count(a, dim)


def _axes(a, dim):
    return None if dim is None else norm_dims(dim, a.ndim)


ROWS = [
    Op(
        "sum",
        lambda a, dim=None, keepdim=False: np.sum(a, axis=_axes(a, dim), keepdims=keepdim),
        (lambda g, o, a, dim=None, keepdim=False: _expand_reduced(g, a, dim, keepdim),),
        _reduce_label("SumBackward"),
        _reduce_shape,
        params={"dim": None, "keepdim": False, "dtype": None},
        saves="none",
        stack="reduce",
        mirror="a.sum() / a.sum(dim, keepdim)",
        rule="∂Σa/∂aᵢ = 1",
        examples=(
            ("sum(A)", {"A": ((2, 3), REAL)}),
            ("sum(A, dim=0)", {"A": ((2, 3), REAL)}),
            ("sum(A, dim=1, keepdim=True)", {"A": ((2, 3), REAL)}),
            ("sum(A, dim=[0, 1])", {"A": ((2, 3), REAL)}),
        ),
        reduction=True,
    ),
    Op(
        "mean",
        lambda a, dim=None, keepdim=False: _mean(a, dim, keepdim),
        (
            lambda g, o, a, dim=None, keepdim=False: _expand_reduced(
                g / _count(a, dim), a, dim, keepdim
            ),
        ),
        _reduce_label("MeanBackward"),
        _reduce_shape,
        params={"dim": None, "keepdim": False, "dtype": None},
        saves="none",
        stack="reduce",
        mirror="a.mean() / a.mean(dim, keepdim)",
        rule="∂mean(a)/∂aᵢ = 1/n",
        examples=(
            ("mean(A)", {"A": ((2, 3), REAL)}),
            ("mean(A, dim=-1)", {"A": ((2, 3), REAL)}),
            ("mean(A, dim=0, keepdim=True)", {"A": ((2, 3), REAL)}),
        ),
        reduction=True,
    ),
    Op(
        "max",
        _max_fwd,
        (_max_grad,),
        _extremum_label("MaxBackward"),
        _extremum_shape("max"),
        params={"dim": None, "keepdim": False},
        mirror="a.max() / a.max(dim, keepdim) -> (values, indices)",
        rule="∂max(a)/∂aᵢ = 1/k at the k maxima (with dim: 1 at the index)",
        examples=(
            ("max(a)", {"a": ((4,), "distinct")}),
            ("max(A)", {"A": ((2, 3), "distinct")}),
            ("max(A, dim=1).values", {"A": ((2, 3), "distinct")}),
            ("max(A, 0, keepdim=True)[0]", {"A": ((2, 3), "distinct")}),
            ("torch.max(a, b)", {"a": ((3,), "distinct"), "b": ((2, 3), "distinct")}),
        ),
        tensor_overload="maximum",
    ),
    Op(
        "min",
        _min_fwd,
        (_min_grad,),
        _extremum_label("MinBackward"),
        _extremum_shape("min"),
        params={"dim": None, "keepdim": False},
        mirror="a.min() / a.min(dim, keepdim) -> (values, indices)",
        rule="∂min(a)/∂aᵢ = 1/k at the k minima (with dim: 1 at the index)",
        examples=(
            ("min(a)", {"a": ((4,), "distinct")}),
            ("min(A, dim=0).values", {"A": ((2, 3), "distinct")}),
            ("a.min(b)", {"a": ((3,), "distinct"), "b": ((3,), "distinct")}),
        ),
        tensor_overload="minimum",
    ),
    Op(
        "prod",
        _prod,
        (_prod_grad,),
        _reduce_label("ProdBackward"),
        _prod_shape,
        params={"dim": None, "keepdim": False, "dtype": None},
        mirror="a.prod() / a.prod(dim, keepdim)",
        rule="∂Πa/∂aᵢ = product of the others",
        examples=(("prod(a)", V), ("prod(A, dim=1)", M), ("prod(A, 0, keepdim=True)", M)),
    ),
    Op(
        "logsumexp",
        _logsumexp,
        (_logsumexp_grad,),
        "LogsumexpBackward0",
        _reduce_shape,
        params={"dim": REQUIRED, "keepdim": False},
        mirror="torch.logsumexp(a, dim, keepdim)",
        rule="∂lse(a)/∂aᵢ = softmax(a)ᵢ",
        examples=(("logsumexp(A, 1)", M), ("logsumexp(a, dim=0, keepdim=True)", V)),
        namespaces=("torch", "torch.special"),
        dim_list=True,
    ),
    Op(
        "var",
        _var,
        (_var_grad,),
        "VarBackward0",
        _reduce_shape,
        params={"dim": None, "correction": 1.0, "keepdim": False},
        mirror="a.var(dim, correction=1, keepdim)",
        rule="∂var/∂aᵢ = 2(aᵢ - mean)/(N - correction); var divides by max(0, N - correction)",
        examples=(("var(a)", V), ("var(A, dim=0)", M), ("var(A, 1, correction=0)", M)),
        reduction=True,
    ),
    Op(
        "std",
        lambda a, dim=None, correction=1.0, keepdim=False: np.sqrt(
            _var(a, dim, correction, keepdim)
        ),
        (_std_grad,),
        "StdBackward0",
        _reduce_shape,
        params={"dim": None, "correction": 1.0, "keepdim": False},
        mirror="a.std(dim, correction=1, keepdim)",
        rule="∂std/∂aᵢ = (aᵢ - mean)/((N - correction)·std)",
        examples=(("std(a)", V), ("std(A, dim=1, keepdim=True)", M)),
        reduction=True,
    ),
    Op(
        "amax",
        lambda a, dim=None, keepdim=False: np.amax(a, axis=_axes(a, dim), keepdims=keepdim),
        (_amax_grad,),
        "AmaxBackward0",
        _amax_shape,
        params={"dim": None, "keepdim": False},
        mirror="a.amax(dim, keepdim)",
        rule="ties share the gradient evenly",
        examples=(
            ("amax(A, dim=0)", {"A": ((2, 3), "distinct")}),
            ("amax(a)", {"a": ((4,), "distinct")}),
        ),
        reduction=True,
    ),
    Op(
        "amin",
        lambda a, dim=None, keepdim=False: np.amin(a, axis=_axes(a, dim), keepdims=keepdim),
        (_amax_grad,),
        "AminBackward0",
        _amax_shape,
        params={"dim": None, "keepdim": False},
        mirror="a.amin(dim, keepdim)",
        rule="ties share the gradient evenly",
        examples=(("amin(A, dim=1)", {"A": ((2, 3), "distinct")}),),
        reduction=True,
    ),
    Op(
        "cumsum",
        _cumsum,
        (_cumsum_grad,),
        "CumsumBackward0",
        _dim_shape,
        params={"dim": REQUIRED, "dtype": None},
        mirror="torch.cumsum(a, dim)",
        rule="reverse cumulative sum",
        examples=(("cumsum(a, 0)", V), ("cumsum(A, dim=1)", M)),
    ),
]


# ---- issue 12: order statistics, scans, NaN-aware and boolean reductions ----------------


def _arg_extremum(name, pick):
    """argmax/argmin: the first index of the extremum (of a NaN, if any), int64."""

    def forward(a, dim=None, keepdim=False):
        r = _re(a)
        if dim is None:
            i = pick(r.reshape(-1)) if r.size else 0
            return np.full((1,) * r.ndim if keepdim else (), i, dtype=np.int64)
        return (
            pick(r, axis=_one_dim(dim, r.ndim), keepdims=keepdim)
            if r.ndim
            else np.zeros((), np.int64)
        )

    def shape(shapes, attrs):
        s, dim = shapes[0], attrs.get("dim")
        if dim is None:
            if 0 in s:
                raise ShapeError(
                    f"{name}(): Expected reduction dim to be specified for input.numel() == 0."
                )
            return (1,) * len(s) if attrs.get("keepdim") else ()
        if s:
            d = _one_dim(dim, len(s))
            if s[d] == 0:
                raise ShapeError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
        return _reduce_shape(shapes, attrs)

    return forward, shape


_argmax_fwd, _argmax_shape = _arg_extremum("argmax", lambda r, **k: np.argmax(r, **k))
_argmin_fwd, _argmin_shape = _arg_extremum("argmin", lambda r, **k: np.argmin(r, **k))


def _sorted_order(a, dim=-1, descending=False, stable=False):
    from .results import _stable_order

    r = _re(a)
    return _stable_order(r, _one_dim(dim, r.ndim), descending) if r.ndim else np.zeros((), np.int64)


def _msort_lower(emit, node, args, attrs):
    shape = node(args[0]).shape
    at = {"dim": 0 if shape else None, "descending": False, "stable": False}
    return emit("sort_values", args, at)


def _median_all(a, skip_nan):
    """The lower middle value of all elements (NaN if any is NaN, unless ``skip_nan``)."""
    r = _re(a).reshape(-1)
    flat = a.reshape(-1)
    keep = ~np.isnan(r) if skip_nan else np.ones(r.shape, bool)
    if not skip_nan and np.isnan(r).any():
        return flat[np.argmax(np.isnan(r))]
    if not keep.any():
        return np.asarray(np.nan, dtype=a.dtype)
    vals = flat[keep]
    return vals[np.argsort(_re(vals), kind="stable")[(len(vals) - 1) // 2]]


def _pair_label(stem):
    def label(kinds, attrs):
        return stem + "0"

    label.__doc__ = f"{stem}0; with dim= a (values, indices) pair, {stem}1"
    return label


def _median_shape(shapes, attrs):
    return ()  # (of an empty tensor: nan, as PyTorch)


def _cumprod(a, dim):
    return np.cumprod(a, axis=_one_dim(dim, a.ndim)) if a.ndim else a.copy()


def _cumprod_grad(g, o, a, dim):
    """Exact where there are zeros: before a slice's first zero, Σ_{j≥i} g_j·out_j / a_i;
    at the first zero, the same sum with that zero taken as 1; after it, 0."""
    if a.ndim == 0:
        return g
    d = _one_dim(dim, a.ndim)
    zero = _re(a) == 0
    first = zero & (np.cumsum(zero, axis=d) == 1)
    after = (np.cumsum(zero, axis=d) - zero) > 0
    ones = np.where(first, 1, a)
    out1 = np.cumprod(ones, axis=d)

    def rev_cumsum(v):
        return np.flip(np.cumsum(np.flip(v, d), axis=d), d)

    with np.errstate(divide="ignore", invalid="ignore"):
        before = rev_cumsum(g * o) / np.where(zero, 1, a)
    at_zero = rev_cumsum(g * out1)
    return np.where(after, 0, np.where(first, at_zero, before))


def _logcumsumexp(a, dim):
    if a.ndim == 0:
        return a.copy()
    d = _one_dim(dim, a.ndim)
    if not _complex(a):
        return np.logaddexp.accumulate(a, axis=d) if a.shape[d] else a.copy()
    m = np.max(a.real, axis=d, keepdims=True) if a.shape[d] else 0
    m = np.where(np.isfinite(m), m, 0)
    return np.log(np.cumsum(np.exp(a - m), axis=d)) + m


def _logcumsumexp_grad(g, o, a, dim):
    """Σ_{j≥i} g_j·exp(a_i - out_j), in log space for the positive and negative parts of g
    (as PyTorch's logcumsumexp_backward), so that nothing overflows."""
    if a.ndim == 0:
        return g
    d = _one_dim(dim, a.ndim)
    if _complex(a) or _complex(g):
        rev = np.flip(np.cumsum(np.flip(g * np.exp(-o), d), axis=d), d)
        return rev * np.exp(a)

    def part(w):
        with np.errstate(divide="ignore"):
            logs = np.where(w > 0, np.log(np.where(w > 0, w, 1)) - o, -np.inf)
        rev = np.flip(np.logaddexp.accumulate(np.flip(logs, d), axis=d), d)
        return np.exp(a + rev)

    if not a.shape[d]:
        return np.zeros_like(a)
    return part(g) - part(-g)


def _nansum(a, dim=None, keepdim=False):
    return np.nansum(a, axis=_axes(a, dim), keepdims=keepdim)


def _nan_count(a, dim=None, keepdim=False):
    return np.sum(~np.isnan(_re(a)), axis=_axes(a, dim), keepdims=keepdim)


def _nanmean_lower(emit, node, args, attrs):
    """nanmean = nansum / (number of non-NaN elements): DivBackward0 over NansumBackward0."""
    total = emit("nansum", args, attrs)
    return emit("div", (total, emit("nan_count", args, attrs)))


def _count_nonzero(a, dim=None):
    return np.count_nonzero(_re(a), axis=_axes(a, dim))


def _allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    return np.allclose(_re(a), _re(b), rtol=rtol, atol=atol, equal_nan=equal_nan)


def _equal(a, b):
    return a.shape == b.shape and bool(np.array_equal(_re(a), _re(b)))


def _diff_lower(emit, node, args, attrs):
    """torch.diff: cat([prepend, a, append]) then n times x[1:] - x[:-1] along dim (each a
    SubBackward0 of two SliceBackward0)."""
    a = args[0]
    shape = node(a).shape
    if not shape:
        raise ShapeError("diff expects input to be at least one-dimensional")
    d = _one_dim(attrs["dim"], len(shape))
    n = attrs["n"]
    if n < 0:
        raise ShapeError(f"order must be non-negative but got {n}")
    extra = [args[1 + k] for k in range(len(args) - 1)]
    parts = []
    rest = iter(extra)
    if attrs["prepend"]:
        parts.append(next(rest))
    parts.append(a)
    if attrs["append"]:
        parts.append(next(rest))
    for p in parts:
        if len(node(p).shape) != len(shape):
            raise ShapeError(
                f"diff expects prepend or append to be the same dimension as input "
                f"({len(shape)}), but got {len(node(p).shape)}"
            )
    cur = emit("cat", tuple(parts), {"dim": d}) if len(parts) > 1 else a
    for _ in range(n):
        size = node(cur).shape[d]
        if size == 0:
            break
        hi = emit("slice", (cur,), {"dim": d, "start": 1, "stop": size, "step": 1})
        lo = emit("slice", (cur,), {"dim": d, "start": 0, "stop": size - 1, "step": 1})
        cur = emit("sub", (hi, lo))
    return cur


_MODES = ("linear", "lower", "higher", "midpoint", "nearest")


def _ranks(s, q, mode, ignore_nan):
    """PyTorch's quantile ranks along the last axis of the sorted values ``s``: q·(n - 1),
    or the last index where a NaN makes the quantile NaN (nanquantile: q·(non-NaN count - 1),
    0 if all are NaN), rounded as ``mode`` says."""
    r = _re(s)
    n = r.shape[-1]
    q = np.asarray(q, dtype=r.dtype)
    if ignore_nan:
        ranks = np.maximum(q * (np.sum(~np.isnan(r), axis=-1, keepdims=True) - 1), 0)
    else:
        nan = np.isnan(r).any(axis=-1, keepdims=True)
        ranks = np.where(nan, np.asarray(n - 1, r.dtype), q * (n - 1))
    return {"lower": np.floor, "higher": np.ceil, "nearest": np.round}.get(mode, np.asarray)(ranks)


def _quantile_index(s, q, mode, ignore_nan, which):
    ranks = _ranks(s, q, mode, ignore_nan)
    return (np.ceil(ranks) if which == "above" else np.floor(ranks)).astype(np.int64)


def _quantile_lower(name, ignore_nan):
    def lower(emit, node, args, attrs):
        """As PyTorch's quantile_compute: sort (of the flattened input, or with the dim moved
        last), view, gather the ranks below (and above), lerp, squeeze."""
        a = args[0]
        shape = node(a).shape
        q, dim, keepdim, mode = attrs["q"], attrs["dim"], attrs["keepdim"], attrs["interpolation"]
        qnode = args[1] if q is True and node(args[1]).op != "number" else None
        if q is True and qnode is None:  # a number literal (it came as an operand)
            q = float(node(args[1]).value)
        if qnode is not None:  # a tensor q: 1-D gives a leading dimension
            qv = np.asarray(_re(node(qnode).value))
            if qv.ndim > 1:
                raise ShapeError(f"{name}() q must be a scalar or 1D tensor")
            if qv.dtype != _re(np.asarray(node(a).value)).dtype:
                raise ShapeError(f"{name}() q tensor must be same dtype as the input tensor")
            if not ((qv >= 0) & (qv <= 1)).all():
                raise ShapeError(f"{name}() q values must be in the range [0, 1]")
            q = float(qv) if qv.ndim == 0 else tuple(float(v) for v in qv)
        elif not isinstance(q, float):
            raise ShapeError(f"{name}(): q must be a number or a tensor, not {type(q).__name__}")
        elif not 0 <= q <= 1:
            raise ShapeError(f"{name}() q must be in the range [0, 1] but got {q:g}")
        if mode not in _MODES:
            raise ShapeError(
                f"{name}() interpolation must be one of linear, lower, higher, midpoint or "
                f"nearest, but got {mode}"
            )
        if 0 in shape:
            raise ShapeError(f"{name}() input tensor must be non-empty")
        if dim is None:
            rest = [1] * len(shape) if keepdim else []
            cur = emit("reshape_view", (a,), {"shape": (math.prod(shape),), "kind": "view"})
            cur = cur if len(shape) > 1 else a  # flatten() of a vector is itself
        else:
            d = _one_dim(dim, len(shape)) if shape else 0
            rest = [1 if i == d else n for i, n in enumerate(shape) if keepdim or i != d]
            cur = a
            if shape and d != len(shape) - 1:
                cur = emit("unsqueeze", (a,), {"dim": -1})
                cur = emit("transpose", (cur,), {"dim0": d, "dim1": -1})
        n = math.prod(shape) if dim is None else (shape[d] if shape else 1)
        if not node(cur).shape:  # a 0-d input: PyTorch sorts it as a vector of one
            cur = emit("reshape_view", (cur,), {"shape": (1,), "kind": "view"})
        last = len(node(cur).shape) - 1
        cur = emit("sort_values", (cur,), {"dim": last, "descending": False, "stable": False})
        cur = emit("reshape_view", (cur,), {"shape": tuple(rest) + (n,), "kind": "view"})
        at = {"q": q, "mode": mode, "ignore_nan": ignore_nan}
        out = emit("quantile_gather", (cur,), {**at, "which": "below"})
        if mode in ("linear", "midpoint"):
            above = emit("quantile_gather", (cur,), {**at, "which": "above"})
            if mode == "linear" and qnode is not None:  # (q's tangent flows in forward mode)
                weight = _quantile_q_weight(emit, node, cur, qnode, ignore_nan)
            else:
                weight = emit("quantile_weight", (cur,), at)
            out = emit("lerp", (out, above, weight))
        if isinstance(q, tuple):  # PyTorch's unsqueeze_(0).transpose_(0, -1).squeeze_(-1)
            out = emit("quantile_unsqueeze_", (out,))
            out = emit("quantile_transpose_", (out,))
        return emit("squeeze_dims", (out,), {"dim": -1})

    return lower


def _quantile_q_weight(emit, node, cur, qnode, ignore_nan):
    """The weights for a tensor q, as PyTorch computes them: ranks from q
    (q·(n - 1) with NaN rows at the last index, or q·(non-NaN count - 1) at least 0), less
    the ranks below them; so q gets the gradient (above - below)·(n - 1)."""
    r = _re(np.asarray(node(cur).value))
    nan = np.isnan(r)
    if ignore_nan:
        count = np.sum(~nan, axis=-1, keepdims=True) - 1
        ranks = emit("mul", (qnode, _constant(emit, count, "int64")))
        fill, mask = 0.0, _re(np.asarray(node(ranks).value)) < 0
    else:
        last = r.shape[-1] - 1
        ranks = emit(
            "nn_scalar", (qnode,), {"fn": "mul", "other": float(last), "label": "MulBackward1"}
        )
        nan = nan.any(axis=-1, keepdims=True)
        both = np.broadcast_shapes(node(ranks).shape, nan.shape)
        if node(ranks).shape != both:
            ranks = emit("expand", (ranks,), {"size": both})
        fill, mask = float(last), np.broadcast_to(nan, both)
    ranks = emit("masked_fill", (ranks, _constant(emit, mask, "bool")), {"value": fill})
    below = np.floor(_re(np.asarray(node(ranks).value)))
    return emit("sub", (ranks, _constant(emit, below, "int64")))


def _constant(emit, array, dtype):
    return emit("tensor", (), {"data": np.asarray(array).tolist(), "dtype": DType(dtype)})


def _unsqueeze_front(a):
    return a[None]


def _transpose_ends(a):
    return np.swapaxes(a, 0, -1)


def _gathered(s, q):
    return s[:-1] + (len(q) if isinstance(q, tuple) else 1,)


def _add_along(shape, idx, g):
    """The gradient of a gather along the last axis: repeated indices (two q with the same
    rank) add."""
    out = np.zeros(shape, dtype=g.dtype)
    rows = np.arange(math.prod(shape[:-1]))[:, None]
    k = idx.shape[-1]
    np.add.at(out.reshape(-1, shape[-1]), (rows, idx.reshape(-1, k)), np.reshape(g, (-1, k)))
    return out


D5 = {"a": ((5,), "distinct")}


RESULT_ROWS = [
    Op(
        "argmax",
        _argmax_fwd,
        None,
        "",
        _argmax_shape,
        params={"dim": None, "keepdim": False},
        dtype="int64",
        mirror="torch.argmax(a, dim=None, keepdim=False)",
        rule="not differentiable (int64); the first index of the maximum, or of a NaN",
        examples=(),
    ),
    Op(
        "argmin",
        _argmin_fwd,
        None,
        "",
        _argmin_shape,
        params={"dim": None, "keepdim": False},
        dtype="int64",
        mirror="torch.argmin(a, dim=None, keepdim=False)",
        rule="not differentiable (int64); the first index of the minimum, or of a NaN",
    ),
    Op(
        "argsort",
        _sorted_order,
        None,
        "",
        lambda s, at: (_one_dim(at["dim"], len(s[0])), s[0])[1],
        params={"dim": -1, "descending": False, "stable": False},
        dtype="int64",
        mirror="torch.argsort(a, dim=-1, descending=False, stable=False)",
        rule="not differentiable (int64); sort's indices (stable, NaN largest)",
    ),
    Op(
        "msort",
        None,
        (),
        "SortBackward0",
        None,
        lower=_msort_lower,
        mirror="torch.msort(a) (sort along dim 0)",
        rule="the gradient goes back to where each value came from",
        examples=(("torch.msort(A)", {"A": ((3, 2), "distinct")}),),
    ),
    Op(
        "median",
        lambda a, dim=None, keepdim=False: _median_all(a, False),
        (lambda g, o, a, dim=None, keepdim=False: _evenly(g, o, a),),
        _pair_label("MedianBackward"),
        _median_shape,
        params={"dim": None, "keepdim": False},
        mirror="a.median() / a.median(dim, keepdim) -> (values, indices)",
        rule="the lower middle value; ties share the gradient evenly (with dim: to its index)",
        examples=(
            ("a.median()", {"a": ((5,), "distinct")}),
            ("A.median(dim=1).values", {"A": ((2, 3), "distinct")}),
            ("torch.median(A, 0, True)[0]", {"A": ((4, 3), "distinct")}),
        ),
    ),
    Op(
        "nanmedian",
        lambda a, dim=None, keepdim=False: _median_all(a, True),
        (lambda g, o, a, dim=None, keepdim=False: _evenly(g, o, a),),
        _pair_label("NanmedianBackward"),
        _median_shape,
        params={"dim": None, "keepdim": False},
        mirror="a.nanmedian() / a.nanmedian(dim, keepdim) -> (values, indices)",
        rule="the median of the non-NaN values; ties share the gradient evenly",
        examples=(
            ("a.nanmedian()", {"a": ((4,), "distinct")}),
            ("A.nanmedian(1).values", {"A": ((2, 3), "distinct")}),
        ),
    ),
    *(
        Op(
            name,
            None,
            (),
            "SqueezeBackward4 over LerpBackward1 over GatherBackward0 (two) over ViewBackward0 "
            "over SortBackward0 (one GatherBackward0 and no Lerp for lower/higher/nearest)",
            None,
            params={"q": REQUIRED, "dim": None, "keepdim": False, "interpolation": "linear"},
            free=("q",),
            tensor_params=("q",),  # (a number too comes as an operand; the lower tells)
            lower=_quantile_lower(name, name == "nanquantile"),
            mirror=f"torch.{name}(a, q, dim=None, keepdim=False, interpolation='linear')",
            rule="the gradient goes to the two order statistics around rank q·(n - 1) (and to "
            "a tensor q, whose 1-D form gives a leading dimension: (above - below)·(n - 1))",
            examples=examples,
        )
        for name, examples in (
            (
                "quantile",
                (
                    ("torch.quantile(A, 0.3)", {"A": ((2, 3), "distinct")}),
                    ("A.quantile(0.75, dim=0, keepdim=True)", {"A": ((4, 3), "distinct")}),
                    ("torch.quantile(a, 0.4, interpolation='midpoint')", D5),
                    ("A.quantile(q, dim=1)", {"A": ((2, 5), "distinct"), "q": ((3,), "prob")}),
                    (
                        "torch.quantile(A, 0.6, 1, interpolation='nearest')",
                        {"A": ((2, 5), "distinct")},
                    ),
                ),
            ),
            (
                "nanquantile",
                (
                    ("a.nanquantile(0.25)", D5),
                    ("torch.nanquantile(A, 0.5, dim=1)", {"A": ((2, 4), "distinct")}),
                    ("torch.nanquantile(a, q)", {"a": ((5,), "distinct"), "q": ((), "prob")}),
                ),
            ),
        )
    ),
    Op(
        "quantile_gather",
        lambda s, q, mode, ignore_nan, which: np.take_along_axis(
            s, _quantile_index(s, q, mode, ignore_nan, which), axis=-1
        ),
        (
            lambda g, o, s, q, mode, ignore_nan, which: _add_along(
                s.shape, _quantile_index(s, q, mode, ignore_nan, which), g
            ),
        ),
        "GatherBackward0",
        lambda shapes, at: _gathered(shapes[0], at["q"]),
        public=False,
        saves="inputs",
    ),
    Op(
        "quantile_weight",
        lambda s, q, mode, ignore_nan: (
            np.full(_gathered(s.shape, q), 0.5)
            if mode == "midpoint"
            else _ranks(s, q, mode, ignore_nan) - np.floor(_ranks(s, q, mode, ignore_nan))
        ),
        None,
        "",
        lambda shapes, at: _gathered(shapes[0], at["q"]),
        public=False,
    ),
    Op(
        "quantile_unsqueeze_",
        _unsqueeze_front,
        (lambda g, o, a: g[0],),
        "UnsqueezeBackward1",
        lambda shapes, at: (1, *shapes[0]),
        public=False,
        saves="none",
    ),
    Op(
        "quantile_transpose_",
        _transpose_ends,
        (lambda g, o, a: _transpose_ends(g),),
        "TransposeBackward1",
        lambda shapes, at: (shapes[0][-1], *shapes[0][1:-1], shapes[0][0]),
        public=False,
        saves="none",
    ),
    Op(
        "cumprod",
        _cumprod,
        (_cumprod_grad,),
        "CumprodBackward0",
        _dim_shape,
        params={"dim": REQUIRED},
        mirror="torch.cumprod(a, dim)",
        rule="Σ_{j≥i} g_j·out_j/a_i, exact at zeros",
        examples=(("torch.cumprod(a, 0)", V), ("A.cumprod(dim=1)", M)),
    ),
    Op(
        "logcumsumexp",
        _logcumsumexp,
        (_logcumsumexp_grad,),
        "LogcumsumexpBackward0",
        _dim_shape,
        params={"dim": REQUIRED},
        mirror="torch.logcumsumexp(a, dim)",
        rule="Σ_{j≥i} g_j·exp(a_i - out_j)",
        # (tests/test_results.py checks it: PyTorch's double backward of it, which
        # torch.autograd.functional.jvp and hessian use, is nan)
    ),
    Op(
        "any",
        lambda a, dim=None, keepdim=False: np.any(
            _re(a) != 0, axis=_axes(a, dim), keepdims=keepdim
        ),
        None,
        "",
        _reduce_shape,
        params={"dim": None, "keepdim": False},
        dtype="bool",
        mirror="torch.any(a, dim=None, keepdim=False)",
        rule="not differentiable (bool)",
        reduction=True,
    ),
    Op(
        "all",
        lambda a, dim=None, keepdim=False: np.all(
            _re(a) != 0, axis=_axes(a, dim), keepdims=keepdim
        ),
        None,
        "",
        _reduce_shape,
        params={"dim": None, "keepdim": False},
        dtype="bool",
        mirror="torch.all(a, dim=None, keepdim=False)",
        rule="not differentiable (bool)",
        reduction=True,
    ),
    Op(
        "count_nonzero",
        _count_nonzero,
        None,
        "",
        _reduce_shape,
        params={"dim": None},
        dtype="int64",
        mirror="torch.count_nonzero(a, dim=None)",
        rule="not differentiable (int64)",
        reduction=True,
    ),
    Op(
        "nansum",
        _nansum,
        (
            lambda g, o, a, dim=None, keepdim=False: (
                _expand_reduced(g, a, dim, keepdim) * ~np.isnan(_re(a))
            ),
        ),
        "NansumBackward0",
        _reduce_shape,
        params={"dim": None, "keepdim": False},
        mirror="torch.nansum(a, dim=None, keepdim=False)",
        rule="1 where aᵢ is not NaN, else 0",
        examples=(("torch.nansum(A)", M), ("A.nansum(dim=1, keepdim=True)", M)),
        reduction=True,
    ),
    Op(
        "nan_count",
        _nan_count,
        None,
        "",
        _reduce_shape,
        params={"dim": None, "keepdim": False},
        public=False,
        mirror="(~a.isnan()).sum(dim, keepdim)",
    ),
    Op(
        "nanmean",
        None,
        (),
        "DivBackward0 over NansumBackward0",
        None,
        params={"dim": None, "keepdim": False},
        lower=_nanmean_lower,
        mirror="torch.nanmean(a, dim=None, keepdim=False)",
        rule="1/(number of non-NaN elements) where aᵢ is not NaN, else 0",
        examples=(("torch.nanmean(A)", M), ("A.nanmean(0)", M)),
        reduction=True,
    ),
    Op(
        "allclose",
        _allclose,
        None,
        "",
        lambda s, at: (broadcast_shapes(*s), ())[1],
        arity=2,
        params={"rtol": 1e-05, "atol": 1e-08, "equal_nan": False},
        dtype="bool",
        mirror="torch.allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False)",
        rule="not differentiable (a 0-d bool tensor where PyTorch gives a Python bool)",
    ),
    Op(
        "equal",
        _equal,
        None,
        "",
        lambda s, at: (),
        arity=2,
        dtype="bool",
        mirror="torch.equal(a, b)",
        rule="not differentiable (a 0-d bool tensor where PyTorch gives a Python bool)",
    ),
    Op(
        "diff",
        None,
        (),
        "SubBackward0 over two SliceBackward0 per order (CatBackward0 with prepend/append)",
        None,
        params={"n": 1, "dim": -1, "prepend": None, "append": None},
        tensor_params=("prepend", "append"),
        lower=_diff_lower,
        mirror="torch.diff(a, n=1, dim=-1, prepend=None, append=None)",
        rule="each order: ∂(x[1:] - x[:-1])",
        examples=(
            ("torch.diff(a)", V),
            ("A.diff(dim=0)", M),
            ("torch.diff(a, n=2, prepend=b, append=a)", {"a": ((3,), REAL), "b": ((2,), REAL)}),
        ),
    ),
]


ROWS += RESULT_ROWS
