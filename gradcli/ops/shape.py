"""Shape and movement: views, reshapes, squeezes, transposes, concatenation."""

import math

from ..errors import ShapeError
from .core import (
    REAL,
    REQUIRED,
    M,
    Op,
    V,
    _one_dim,
    _reshape_ids,
    _same,
    check_rank,
    fmt_shape,
    lazy_numpy,
    norm_dims,
)

np = lazy_numpy(globals())


def _squeeze_label(kinds, attrs):
    """SqueezeBackward0; SqueezeBackward1 with dim=int; SqueezeBackward4 with a list of dims"""
    dim = attrs.get("dim")
    return (
        "SqueezeBackward0"
        if dim is None
        else ("SqueezeBackward4" if isinstance(dim, (list, tuple)) else "SqueezeBackward1")
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
            f"dimension out of range (expected to be in range of "
            f"[{-len(shape) - 1}, {len(shape)}], but got {d})"
        )
    d = d % (len(shape) + 1)
    return check_rank(shape[:d] + (1,) + shape[d:])


def _transpose_shape(shapes, attrs):
    if len(shapes[0]) > 2:
        raise ShapeError(
            f"t() expects a tensor with <= 2 dimensions, but self is {len(shapes[0])}D"
        )
    return shapes[0][::-1]


def _reshape_lower(emit, node, args, attrs):
    return _reshape_ids(emit, node, args[0], attrs["shape"])


def _flatten_lower(emit, node, args, attrs):
    a = args[0]
    shape = node(a).shape
    if not shape:
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
            f"dimension out of range (expected to be in range of "
            f"[{-len(first) - 1}, {len(first)}], but got {d})"
        )
    d %= len(first) + 1
    return check_rank(first[:d] + (len(shapes),) + first[d:])


def _stack_grads(g, o, *args, dim=0):
    d = dim % g.ndim
    return [np.take(g, k, axis=d) for k in range(len(args))]


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
        examples=(("squeeze(A)", {"A": ((1, 3), REAL)}), ("squeeze(A, 0)", {"A": ((1, 3), REAL)})),
        dim_list=True,
    ),
    Op(
        "transpose",
        lambda a: a.T,
        (lambda g, o, a: g.T,),
        "TBackward0",
        _transpose_shape,
        mirror="a.t()",
        rule="transpose back",
        examples=(("transpose(A)", {"A": ((2, 3), REAL)}), ("A.t()", {"A": ((2, 3), REAL)})),
        aliases=("t",),
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
        lambda a, shape: np.broadcast_to(a, shape),
        (lambda g, o, a, shape: g,),
        "ExpandBackward0",
        lambda s, at: tuple(at["shape"]),
        params={"shape": ()},
        public=False,
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
        examples=(("flatten(A)", M), ("flatten(A.T)", M)),
    ),
    Op(
        "cat",
        lambda *args, dim=0: np.concatenate(args, axis=_one_dim(dim, args[0].ndim)),
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
        lambda *args, dim=0: np.stack(args, axis=dim),
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
        "view",
        lambda a, shape, kind: np.reshape(a, shape),
        (lambda g, o, a, shape, kind: g.reshape(a.shape),),
        _view_label,
        lambda s, at: tuple(at["shape"]),
        public=False,
    ),
    Op(
        "clone",
        lambda a: np.array(a, order="C", copy=True),
        (lambda g, o, a: g,),
        "CloneBackward0",
        _same,
        public=False,
    ),
]
