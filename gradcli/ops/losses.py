"""Loss functions of torch.nn.functional."""

from ..errors import EvaluationError, ShapeError
from .core import (
    P3,
    REAL,
    M,
    Op,
    V,
    _re,
    _sigmoid,
    broadcast_shapes,
    fmt_shape,
    lazy_numpy,
)

np = lazy_numpy(globals())


def _reduce_loss(x, reduction):
    if reduction == "mean":
        return np.mean(x)
    if reduction == "sum":
        return np.sum(x)
    return x


def _loss_grad_scale(g, x, reduction):
    """The incoming gradient of a reduced loss, spread over the elementwise losses."""
    if reduction == "mean":
        return np.broadcast_to(g / max(x.size, 1) if x.size else g, x.shape)
    return np.broadcast_to(g, x.shape)


def _loss_shape(shapes, attrs):
    shape = broadcast_shapes(*shapes)
    return shape if attrs.get("reduction") == "none" else ()


def _mse_grad(sign):
    def rule(g, o, a, b, reduction="mean"):
        d = a - b
        return sign * 2 * d * _loss_grad_scale(g, d, reduction)

    return rule


def _same_size_loss_shape(shapes, attrs):
    if shapes[0] != shapes[1]:
        raise ShapeError(
            f"target size ({fmt_shape(shapes[1])}) must be the same as input size "
            f"({fmt_shape(shapes[0])})"
        )
    return _loss_shape(shapes, attrs)


_BCE_EPS = 9.999999960041972e-13  # PyTorch clamps with a float 1e-12, even in float64


def _bce(p, t, reduction="mean"):
    if np.any((_re(p) < 0) | (_re(p) > 1)):
        raise EvaluationError("all elements of input should be between 0 and 1")
    loss = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log1p(-p), -100))
    return _reduce_loss(loss, reduction)


def _bce_grad_p(g, o, p, t, reduction="mean"):
    scale = _loss_grad_scale(
        g, np.broadcast_to(p - t, np.broadcast_shapes(p.shape, t.shape)), reduction
    )
    return scale * (p - t) / np.maximum((1 - p) * p, _BCE_EPS)


def _bce_grad_t(g, o, p, t, reduction="mean"):
    scale = _loss_grad_scale(
        g, np.broadcast_to(p - t, np.broadcast_shapes(p.shape, t.shape)), reduction
    )
    return scale * (np.log1p(-p) - np.log(p))


def _bce_logits(z, t, reduction="mean"):
    # PyTorch's stable form: (1 - t) z + m + log(exp(-m) + exp(-z - m)), m = max(-z, 0)
    m = np.maximum(-z, 0)
    loss = (1 - t) * z + m + np.log(np.exp(-m) + np.exp(-z - m))
    return _reduce_loss(loss, reduction)


def _bce_logits_grad(which):
    def rule(g, o, z, t, reduction="mean"):
        d = _sigmoid(z) - t
        scale = _loss_grad_scale(g, d, reduction)
        return scale * (d if which == 0 else -z)

    return rule


def _class_index(t, classes):
    """Class-index targets: whole numbers in [0, classes)."""
    t = _re(np.asarray(t))
    if not np.all(np.isfinite(t)) or not np.all(t == np.round(t)):
        raise EvaluationError("class index targets must be whole numbers")
    bad = t[(t < 0) | (t >= classes)]
    if bad.size:
        raise EvaluationError(f"Target {int(bad.flat[0])} is out of bounds.")
    return t.astype(np.int64)


def _nll_loss(logp, t, reduction="mean"):
    if logp.ndim == 1:
        picked = -logp[_class_index(t, logp.shape[0])]
    else:
        idx = _class_index(t, logp.shape[1])
        picked = -logp[np.arange(logp.shape[0]), idx]
    return _reduce_loss(picked, reduction)


def _nll_grad(g, o, logp, t, reduction="mean"):
    out = np.zeros(logp.shape, dtype=np.result_type(g, logp))
    if logp.ndim == 1:
        out[_class_index(t, logp.shape[0])] = -g
        return out
    n = logp.shape[0]
    idx = _class_index(t, logp.shape[1])
    scale = _loss_grad_scale(g, np.empty(n), reduction)
    out[np.arange(n), idx] = -scale
    return out


def _nll_shape(shapes, attrs):
    x, t = shapes
    if len(x) not in (1, 2):
        raise ShapeError(f"nll_loss expects a 1-D or 2-D input, got {fmt_shape(x)}")
    if t != x[:-1]:
        raise ShapeError(
            f"expected a target of shape {fmt_shape(x[:-1])} for an input of "
            f"shape {fmt_shape(x)}, got {fmt_shape(t)}"
        )
    return x[:1] if attrs.get("reduction") == "none" and len(x) == 2 else ()


def _cross_entropy_lower(emit, node, args, attrs):
    """What F.cross_entropy records: log_softmax, then nll_loss for class indices, or
    -(logp * target).sum() [/ batch] for class probabilities."""
    x, t = args
    sx, st = node(x).shape, node(t).shape
    if len(sx) not in (1, 2):
        raise ShapeError(f"cross_entropy expects 1-D (C) or 2-D (N, C) logits, got {fmt_shape(sx)}")
    cls = len(sx) - 1
    logp = emit("log_softmax", (x,), {"dim": cls})
    reduction = attrs.get("reduction", "mean")
    if st != sx:
        return emit("nll_loss", (logp, t), {"reduction": reduction})
    prod = emit("mul", (logp, t))
    if reduction == "none":
        return emit("neg", (emit("sum", (prod,), {"dim": cls, "keepdim": False}),))
    total = emit("neg", (emit("sum", (prod,), {"dim": None, "keepdim": False}),))
    if reduction == "sum":
        return total
    return emit("div_scalar", (total,), {"divisor": float(sx[0] if cls else 1)})


def _broadcast_tensors(emit, node, args):
    """torch.broadcast_tensors, as F.mse_loss and F.l1_loss call it: ExpandBackward0 on each
    operand whose shape is not already the common one."""
    shape = broadcast_shapes(*[node(a).shape for a in args])
    return [a if node(a).shape == shape else emit("expand", (a,), {"size": shape}) for a in args]


def _mse_lower(emit, node, args, attrs):
    return emit("mse", _broadcast_tensors(emit, node, args), attrs)


def _l1_lower(emit, node, args, attrs):
    """F.l1_loss is recorded as (a - b).abs() then mean or sum."""
    diff = emit("abs", (emit("sub", _broadcast_tensors(emit, node, args)),))
    reduction = attrs.get("reduction", "mean")
    if reduction == "none":
        return diff
    return emit(reduction, (diff,), {"dim": None, "keepdim": False})


ROWS = [
    Op(
        "mse_loss",
        None,
        (),
        "MseLossBackward0 (ExpandBackward0 on a broadcast operand)",
        None,
        arity=2,
        params={"reduction": "mean"},
        lower=_mse_lower,
        mirror="F.mse_loss(a, b, reduction)",
        rule="∂/∂a = 2(a - b)/N",
        examples=(
            ("mse_loss(a, b)", {"a": ((3,), REAL), "b": ((3,), REAL)}),
            ("mse_loss(A, b, reduction='sum')", {"A": ((2, 3), REAL), "b": ((3,), REAL)}),
            ("mse_loss(a, b, reduction='none')", {"a": ((3,), REAL), "b": ((3,), REAL)}),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "l1_loss",
        None,
        (),
        "(a - b).abs() then MeanBackward0 / SumBackward0",
        None,
        arity=2,
        params={"reduction": "mean"},
        lower=_l1_lower,
        mirror="F.l1_loss(a, b, reduction)",
        rule="recorded as AbsBackward0 over SubBackward0",
        examples=(
            ("l1_loss(a, b)", {"a": ((3,), "away"), "b": ((3,), "away")}),
            ("l1_loss(a, b, reduction='sum')", {"a": ((3,), "away"), "b": ((3,), "away")}),
            ("l1_loss(a, b, reduction='none')", {"a": ((3,), "away"), "b": ((3,), "away")}),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "cross_entropy",
        None,
        (),
        "NllLossBackward0 over LogSoftmaxBackward0 (class indices); "
        "probabilities: LogSoftmax, Mul, Sum, Neg[, DivBackward1]",
        None,
        arity=2,
        params={"reduction": "mean"},
        lower=_cross_entropy_lower,
        mirror="F.cross_entropy(a, target, reduction)",
        rule="target: a class index, a vector of indices, or class probabilities",
        examples=(
            ("cross_entropy(a, 2)", V),
            ("cross_entropy(A, [0, 2])", M),
            ("cross_entropy(A, [2, 1], reduction='sum')", M),
            ("cross_entropy(A, [1, 0], reduction='none')", M),
            ("cross_entropy(A, P)", {"A": ((2, 3), REAL), "P": ((2, 3), "prob")}),
            ("cross_entropy(A, P, reduction='none')", {"A": ((2, 3), REAL), "P": ((2, 3), "prob")}),
            ("cross_entropy(a, p)", {"a": ((3,), REAL), "p": ((3,), "prob")}),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "nll_loss",
        _nll_loss,
        (_nll_grad, None),
        "NllLossBackward0",
        _nll_shape,
        arity=2,
        params={"reduction": "mean"},
        mirror="F.nll_loss(a, target, reduction)",
        rule="∂/∂aᵢ,ₜ = -1/N at the target class",
        examples=(
            ("nll_loss(A, [0, 2])", M),
            ("nll_loss(a, 1)", V),
            ("nll_loss(A, [1, 1], reduction='none')", M),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "binary_cross_entropy",
        _bce,
        (_bce_grad_p, _bce_grad_t),
        "BinaryCrossEntropyBackward0",
        _same_size_loss_shape,
        arity=2,
        params={"reduction": "mean"},
        mirror="F.binary_cross_entropy(a, target, reduction)",
        rule="∂/∂p = (p - t)/(p(1 - p)); logs clamped at -100",
        examples=(
            ("binary_cross_entropy(a, b)", P3),
            ("binary_cross_entropy(a, b, reduction='sum')", P3),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "binary_cross_entropy_with_logits",
        _bce_logits,
        (_bce_logits_grad(0), _bce_logits_grad(1)),
        "BinaryCrossEntropyWithLogitsBackward0",
        _same_size_loss_shape,
        arity=2,
        params={"reduction": "mean"},
        mirror="F.binary_cross_entropy_with_logits(a, target, reduction)",
        rule="∂/∂z = σ(z) - t; stable for |z| large",
        examples=(
            ("binary_cross_entropy_with_logits(a, b)", {"a": ((3,), REAL), "b": ((3,), "prob")}),
            (
                "binary_cross_entropy_with_logits(a, b, reduction='none')",
                {"a": ((3,), REAL), "b": ((3,), "prob")},
            ),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
        inputs=("input", "target"),
    ),
    Op(
        "mse",
        lambda a, b, reduction="mean": _reduce_loss((a - b) * (a - b), reduction),
        (_mse_grad(1), _mse_grad(-1)),
        "MseLossBackward0",
        _loss_shape,
        arity=2,
        params={"reduction": "mean"},
        public=False,
        rule="∂/∂a = 2(a - b)/N",
    ),
]
