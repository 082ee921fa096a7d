"""Reductions and scans."""

from ..errors import ShapeError
from .core import (
    REAL,
    REQUIRED,
    M,
    Op,
    V,
    _count,
    _dim_shape,
    _expand_reduced,
    _one_dim,
    _re,
    _reduce_shape,
    lazy_numpy,
    norm_dims,
)

np = lazy_numpy(globals())


def _full_reduce_shape(shapes, attrs):
    if 0 in shapes[0]:
        raise ShapeError("max()/min() of an empty tensor: the reduction has no identity")
    return ()


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


def _extremum_shape(shapes, attrs):
    if attrs.get("dim") is None:
        return _full_reduce_shape(shapes, attrs)
    if shapes[0]:
        d = _one_dim(attrs["dim"], len(shapes[0]))
        if shapes[0][d] == 0:
            raise ShapeError("max()/min() over an empty dimension: the reduction has no identity")
    return _reduce_shape(shapes, attrs)


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
        _extremum_shape,
        params={"dim": None, "keepdim": False},
        mirror="a.max() / a.max(dim, keepdim).values",
        rule="∂max(a)/∂aᵢ = 1/k at the k maxima (with dim: 1 at the index)",
        examples=(
            ("max(a)", {"a": ((4,), "distinct")}),
            ("max(A)", {"A": ((2, 3), "distinct")}),
            ("max(A, dim=1)", {"A": ((2, 3), "distinct")}),
            ("max(A, 0, keepdim=True)", {"A": ((2, 3), "distinct")}),
            ("torch.max(a, b)", {"a": ((3,), "distinct"), "b": ((2, 3), "distinct")}),
        ),
        tensor_overload="maximum",
    ),
    Op(
        "min",
        _min_fwd,
        (_min_grad,),
        _extremum_label("MinBackward"),
        _extremum_shape,
        params={"dim": None, "keepdim": False},
        mirror="a.min() / a.min(dim, keepdim).values",
        rule="∂min(a)/∂aᵢ = 1/k at the k minima (with dim: 1 at the index)",
        examples=(
            ("min(a)", {"a": ((4,), "distinct")}),
            ("min(A, dim=0)", {"A": ((2, 3), "distinct")}),
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
