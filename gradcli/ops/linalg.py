"""Matrix products and norms."""

import math

from ..errors import EvaluationError, ShapeError
from .core import (
    REAL,
    M,
    Op,
    V,
    _abs,
    _expand_reduced,
    _re,
    _reduce_shape,
    _reshape_ids,
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
    if len(a) != 2 or len(b) != 1 or a[1] != b[0]:
        raise ShapeError(f"mv: size mismatch, got matrix {fmt_shape(a)} and vector {fmt_shape(b)}")
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
    raise ShapeError(
        f"matmul of {_dims((sa, sb))} tensors is not supported: "
        f"gradcli's @ takes vectors and matrices"
    )


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
    sign = np.sign(_re(a))
    if p == 1:
        return g * sign
    if p == 2:
        return np.where(_re(n) == 0, 0, g * a / n)
    if abs(p) == math.inf:
        mask = _re(_abs(a)) == _re(n)
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


ROWS = [
    Op(
        "matmul",
        None,
        (),
        "by rank: DotBackward0, MvBackward0, MmBackward0, or SqueezeBackward4 over "
        "MmBackward0 over UnsqueezeBackward0",
        None,
        arity=2,
        lower=_matmul_lower,
        mirror="a @ b",
        rule="by rank: dot, mv, mm, or unsqueeze · mm · squeeze",
        examples=(
            ("a @ b", {"a": ((3,), REAL), "b": ((3,), REAL)}),
            ("A @ b", {"A": ((2, 3), REAL), "b": ((3,), REAL)}),
            ("A @ B", {"A": ((2, 3), REAL), "B": ((3, 2), REAL)}),
            ("b @ A", {"b": ((2,), REAL), "A": ((2, 3), REAL)}),
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
]
