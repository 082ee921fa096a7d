"""Loss functions of torch.nn.functional."""

import math

from ..errors import EvaluationError, ShapeError
from .core import (
    P3,
    REAL,
    REQUIRED,
    M,
    Op,
    V,
    _abs,
    _re,
    _reshape_ids,
    _sigmoid,
    broadcast_shapes,
    fmt_shape,
    lazy_numpy,
)
from .nn import optional, scalar

np = lazy_numpy(globals())


def check_reduction(reduction, batchmean=False):
    """PyTorch's refusal of a reduction it does not know ('batchmean' is kl_div's alone)."""
    if reduction not in ("mean", "sum", "none") and not (batchmean and reduction == "batchmean"):
        raise EvaluationError(f"{reduction} is not a valid value for reduction")
    return reduction


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
    check_reduction(attrs.get("reduction", "mean"))
    shape = broadcast_shapes(*shapes)
    return shape if attrs.get("reduction") == "none" else ()


def _mse_grad(sign):
    def rule(g, o, a, b, reduction="mean"):
        d = a - b
        return sign * 2 * d * _loss_grad_scale(g, d, reduction)

    return rule


def _same_size_loss_shape(shapes, attrs):
    check_reduction(attrs.get("reduction", "mean"))
    if shapes[0] != shapes[1]:
        raise ShapeError(
            f"target size ({fmt_shape(shapes[1])}) must be the same as input size "
            f"({fmt_shape(shapes[0])})"
        )
    return _loss_shape(shapes, attrs)


_BCE_EPS = 9.999999960041972e-13  # PyTorch clamps with a float 1e-12, even in float64


def _weights(extra, attrs, names):
    """The optional weight tensors of a loss, as constants (PyTorch never differentiates
    them): 1.0 for each one not given."""
    return [1.0 if v is None else v for v in optional(extra, attrs, names).values()]


def _bce(p, t, *extra, weight=None, reduction="mean"):
    if np.any((_re(p) < 0) | (_re(p) > 1)):
        raise EvaluationError("all elements of input should be between 0 and 1")
    (w,) = _weights(extra, {"weight": weight}, ("weight",))
    loss = -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log1p(-p), -100)) * w
    return _reduce_loss(loss, reduction)


def _bce_grad_p(g, o, p, t, *extra, weight=None, reduction="mean"):
    (w,) = _weights(extra, {"weight": weight}, ("weight",))
    scale = _loss_grad_scale(
        g, np.broadcast_to(p - t, np.broadcast_shapes(p.shape, t.shape)), reduction
    )
    return scale * w * (p - t) / np.maximum((1 - p) * p, _BCE_EPS)


def _bce_grad_t(g, o, p, t, *extra, weight=None, reduction="mean"):
    (w,) = _weights(extra, {"weight": weight}, ("weight",))
    scale = _loss_grad_scale(
        g, np.broadcast_to(p - t, np.broadcast_shapes(p.shape, t.shape)), reduction
    )
    return scale * w * (np.log1p(-p) - np.log(p))


def _log_sigmoid(z):
    return np.where(_re(z) < 0, z, 0 * z) - np.log1p(np.exp(-_abs(z)))


def _bce_logits(z, t, *extra, weight=None, pos_weight=None, reduction="mean"):
    w, pw = _weights(extra, {"weight": weight, "pos_weight": pos_weight}, _LOGIT_WEIGHTS)
    if pos_weight is True:  # PyTorch's form: (1 - t) z - ((pw - 1) t + 1) log σ(z)
        loss = (1 - t) * z - ((pw - 1) * t + 1) * _log_sigmoid(z)
    else:  # (1 - t) z + m + log(exp(-m) + exp(-z - m)), m = max(-z, 0)
        m = np.maximum(-z, 0)
        loss = (1 - t) * z + m + np.log(np.exp(-m) + np.exp(-z - m))
    return _reduce_loss(loss * w, reduction)


_LOGIT_WEIGHTS = ("weight", "pos_weight")


def _bce_logits_grad(which):
    def rule(g, o, z, t, *extra, weight=None, pos_weight=None, reduction="mean"):
        w, pw = _weights(extra, {"weight": weight, "pos_weight": pos_weight}, _LOGIT_WEIGHTS)
        if which == 0:
            d = (pw * t + 1 - t) * _sigmoid(z) - pw * t if pos_weight is True else _sigmoid(z) - t
        else:
            d = _log_sigmoid(-z) - _log_sigmoid(z) * pw if pos_weight is True else -z
        d = d * w
        return (
            _loss_grad_scale(
                g, np.broadcast_to(d, np.broadcast_shapes(z.shape, np.shape(d))), reduction
            )
            * d
        )

    return rule


def _weighted_shape(shapes, attrs):
    shape = _same_size_loss_shape(shapes[:2], attrs)
    for w in shapes[2:]:
        if broadcast_shapes(shapes[0], w) != shapes[0]:
            raise ShapeError(
                f"the weight of shape {fmt_shape(w)} must broadcast to the input's shape "
                f"{fmt_shape(shapes[0])}"
            )
    return shape


def _weights_lower(op, fn, names):
    def lower(emit, node, args, attrs):
        given = [n for n in names if attrs.get(n) is True]
        for name, arg in zip(given, args[2:], strict=True):
            no_grad_for(node, arg, fn, name)
        return emit(op, args, attrs)

    return lower


def _class_index(t, classes, ignore_index=-100):
    """Class-index targets: whole numbers in [0, classes), or ignore_index."""
    t = _re(np.asarray(t))
    if not np.all(np.isfinite(t)) or not np.all(t == np.round(t)):
        raise EvaluationError("class index targets must be whole numbers")
    bad = t[((t < 0) | (t >= classes)) & (t != ignore_index)]
    if bad.size:
        raise EvaluationError(f"Target {int(bad.flat[0])} is out of bounds.")
    return t.astype(np.int64)


def _nll_parts(logp, t, extra, weight, ignore_index):
    """(picked log-probabilities, per-element weights) with the class axis taken out, and
    the index that picks them."""
    cls = 1 if logp.ndim > 1 else 0
    idx = _class_index(t, logp.shape[cls], ignore_index)
    keep = idx != ignore_index
    safe = np.where(keep, idx, 0)
    w = np.ones(logp.shape[cls]) if weight is not True else _re(np.asarray(extra[0]))
    wt = np.where(keep, w[safe], 0.0)
    take = np.expand_dims(safe, cls)
    picked = np.squeeze(np.take_along_axis(logp, take, axis=cls), cls)
    return picked, wt.astype(_re(logp).dtype), take, cls


def _plain_index(logp, t, weight, ignore_index):
    """The class indices of nll's common case, cheaply, or None: a real 2-D float32/float64
    input, no weight, and every target a whole number in [0, classes) that ignore_index
    cannot equal. Anything else (and every error) takes _nll_parts's general path."""
    n, classes = logp.shape if logp.ndim == 2 else (0, 0)
    if not n or weight is True or 0 <= ignore_index < classes or n >= 1 << 24:
        return None
    if logp.dtype not in (np.float32, np.float64):
        return None
    t = np.asarray(t)
    if t.dtype.kind not in "biuf" or t.shape != (n,):
        return None
    if n <= 256:  # a CNN's batch: Python's loop over a list beats numpy's calls
        tl = t.tolist()
        if not all(0 <= v < classes for v in tl):
            return None  # (nan fails)
        idx = t.astype(np.int64)
        return idx if idx.tolist() == tl else None
    if not (t.min() >= 0 and t.max() < classes):
        return None  # (nan fails)
    idx = t.astype(np.int64)
    return idx if np.array_equal(idx, t) else None


def _nll_loss(logp, t, *extra, weight=None, ignore_index=-100, reduction="mean", nd=False):
    idx = _plain_index(logp, t, weight, ignore_index)
    if idx is not None:  # every weight 1: the general path's -picked * 1 and sum(ones)
        loss = -logp[np.arange(idx.size), idx]
        if reduction == "mean":
            return loss.sum() / logp.dtype.type(idx.size)
        return loss.sum() if reduction == "sum" else loss
    picked, wt, _, _ = _nll_parts(logp, t, extra, weight, ignore_index)
    loss = -picked * wt
    if reduction == "mean":
        return np.sum(loss) / np.sum(wt)
    return np.sum(loss) if reduction == "sum" else loss


def _nll_grad(g, o, logp, t, *extra, weight=None, ignore_index=-100, reduction="mean", nd=False):
    idx = _plain_index(logp, t, weight, ignore_index)
    if idx is not None:  # the general path's arithmetic, each weight a 1 of logp's dtype
        n = idx.size
        scale = -logp.dtype.type(1) * (g / logp.dtype.type(n) if reduction == "mean" else g)
        out = np.zeros(logp.shape, dtype=np.result_type(g, logp))
        out[np.arange(n), idx] = scale
        return out
    _, wt, take, cls = _nll_parts(logp, t, extra, weight, ignore_index)
    scale = -wt * (g / np.sum(wt) if reduction == "mean" else g)
    out = np.zeros(logp.shape, dtype=np.result_type(g, logp))
    np.put_along_axis(out, take, np.expand_dims(scale.astype(out.dtype), cls), axis=cls)
    return out


def _nll_shape(shapes, attrs):
    reduction = check_reduction(attrs.get("reduction", "mean"))
    x, t = shapes[:2]
    if not x:
        raise ShapeError("input tensor should be 1D or more, got a 0-D tensor")
    classes = x[1] if len(x) > 1 else x[0]
    if len(shapes) > 2 and shapes[2] != (classes,):
        raise ShapeError(
            f"weight tensor should be defined either for all {classes} classes or no classes "
            f"but got weight tensor of shape: {fmt_shape(shapes[2])}"
        )
    want = x[:1] + x[2:] if len(x) > 1 else ()
    if len(x) <= 2 and t[:1] != want[:1] and len(t) == len(want):
        raise ShapeError(f"Expected input batch_size ({x[0]}) to match target batch_size ({t[0]}).")
    if t != want:
        raise ShapeError(f"Expected target size {fmt_shape(want)}, got {fmt_shape(t)}")
    return want if reduction == "none" else ()


def no_grad_for(node, arg, fn, what):
    """PyTorch's refusal to differentiate a loss with respect to a weight or target."""
    if node(arg).requires_grad:
        raise EvaluationError(
            f"The function '{fn}' is not differentiable with respect to argument '{what}'. "
            f"This input cannot have requires_grad True.",
            hint=f"give {what} as a constant, or leave it out of --wrt",
        )


def _nll_lower(emit, node, args, attrs, fn="nll_loss_forward"):
    """ATen's nll_loss_nd: nll_loss for 1-D and 2-D inputs, nll_loss2d for 4-D ones, and
    for the others nll_loss2d of the input viewed as (N, C, 1, -1) (the output viewed back)."""
    sx = node(args[0]).shape
    _nll_shape([node(a).shape for a in args], attrs)
    if attrs.get("weight") is True:
        no_grad_for(node, args[2], fn, "weight")
    if len(sx) <= 2:
        return emit("nll", args, attrs)
    nd = {**attrs, "nd": True}
    if len(sx) == 4:
        return emit("nll", args, nd)
    n, c = sx[:2]
    empty = math.prod(sx) == 0
    x = _reshape_ids(emit, node, args[0], (n, c, 0, 0) if empty else (n, c, 1, -1))
    t = _reshape_ids(emit, node, args[1], (n, 0, 0) if empty else (n, 1, -1))
    out = emit("nll", (x, t, *args[2:]), nd)
    if attrs.get("reduction", "mean") != "none":
        return out
    return _reshape_ids(emit, node, out, (n, *sx[2:]))


def _cross_entropy_lower(emit, node, args, attrs):
    """What F.cross_entropy records: log_softmax over the class dimension, then nll_loss
    for class indices, or -(logp * target).sum() [/ count] for class probabilities."""
    x, t = args[:2]
    sx, st = node(x).shape, node(t).shape
    if not sx:
        raise ShapeError("cross_entropy expects logits of 1 or more dimensions, got a 0-D tensor")
    cls = 1 if len(sx) > 1 else 0
    smoothing = attrs.get("label_smoothing", 0.0)
    if not 0.0 <= smoothing <= 1.0:
        raise EvaluationError(f"label_smoothing must be between 0.0 and 1.0. Got: {smoothing:g}")
    logp = emit("log_softmax", (x,), {"dim": cls})
    reduction = check_reduction(attrs.get("reduction", "mean"))
    nll_attrs = {k: attrs.get(k, d) for k, d in _NLL_PARAMS.items()}
    if st != sx:
        nll = _nll_lower(emit, node, (logp, *args[1:]), nll_attrs)
        if smoothing == 0:
            return nll
        return _smoothed(emit, node, logp, nll, args, nll_attrs, smoothing, cls)
    if attrs.get("weight") is True:
        raise EvaluationError(
            "cross_entropy with class-probability targets and a weight is not supported yet"
        )
    if smoothing:  # target·(1 - ε) + ε/C
        t = scalar(emit, "mul", t, 1 - smoothing, "MulBackward1")
        t = scalar(emit, "add", t, smoothing / sx[cls], "AddBackward1")
    prod = emit("mul", (logp, t))
    if reduction == "none":
        return emit("neg", (emit("sum", (prod,), {"dim": cls, "keepdim": False}),))
    total = emit("neg", (emit("sum", (prod,), {"dim": None, "keepdim": False}),))
    if reduction == "sum":
        return total
    return emit("div_scalar", (total,), {"divisor": float(math.prod(sx) // sx[cls])})


_NLL_PARAMS = {"weight": None, "ignore_index": -100, "reduction": "mean"}


def _smoothed(emit, node, logp, nll, args, attrs, smoothing, cls):
    """ATen's label smoothing for class indices: (1 - ε)·nll + ε/C · the loss against the
    uniform distribution, -Σ logp [· weight], zero where the target is ignored."""
    t = args[1]
    weighted = logp
    if attrs["weight"] is True:
        shape = tuple(-1 if d == cls else 1 for d in range(len(node(logp).shape)))
        weighted = emit("mul", (logp, _reshape_ids(emit, node, args[2], shape)))
    smooth = emit("neg", (emit("sum", (weighted,), {"dim": cls, "keepdim": False}),))
    smooth = emit("loss_masked_fill", (t, smooth), {"ignore_index": attrs["ignore_index"]})
    reduction = attrs["reduction"]
    if reduction != "none":
        smooth = emit("sum", (smooth,), {"dim": None, "keepdim": False})
    if reduction == "mean":
        smooth = emit(
            "loss_div_count", (smooth, *args[1:]), {**attrs, "classes": node(logp).shape[cls]}
        )
    classes = node(logp).shape[cls]
    return emit(
        "add",
        (
            scalar(emit, "mul", nll, 1 - smoothing, "MulBackward1"),
            scalar(emit, "mul", smooth, smoothing / classes, "MulBackward1"),
        ),
    )


def _count(t, *extra, weight=None, ignore_index=-100, classes=1):
    """The mean's denominator: the targets not ignored, or the sum of their weights."""
    idx = _class_index(t, classes, ignore_index)
    keep = idx != ignore_index
    if weight is not True:
        return np.sum(keep)
    w = _re(np.asarray(extra[0]))
    return np.sum(np.where(keep, w[np.where(keep, idx, 0)], 0.0))


def _broadcast_tensors(emit, node, args):
    """torch.broadcast_tensors, as F.mse_loss and F.l1_loss call it: ExpandBackward0 on each
    operand whose shape is not already the common one."""
    shape = broadcast_shapes(*[node(a).shape for a in args])
    return [a if node(a).shape == shape else emit("expand", (a,), {"size": shape}) for a in args]


def _mse_lower(emit, node, args, attrs):
    return emit("mse", _broadcast_tensors(emit, node, args), attrs)


def _l1_lower(emit, node, args, attrs):
    """F.l1_loss is recorded as (a - b).abs() then mean or sum."""
    reduction = check_reduction(attrs.get("reduction", "mean"))
    diff = emit("abs", (emit("sub", _broadcast_tensors(emit, node, args)),))
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
        params={
            "weight": None,
            "ignore_index": -100,
            "reduction": "mean",
            "label_smoothing": 0.0,
        },
        tensor_params=("weight",),
        lower=_cross_entropy_lower,
        mirror="F.cross_entropy(a, target, weight, ignore_index, reduction)",
        rule="target: class indices (N) or (N, d1, ...), or class probabilities",
        examples=(
            ("cross_entropy(a, 2)", V),
            ("cross_entropy(A, [0, 2])", M),
            ("cross_entropy(A, [2, 1], reduction='sum')", M),
            ("cross_entropy(A, [1, 0], reduction='none')", M),
            ("cross_entropy(A, P)", {"A": ((2, 3), REAL), "P": ((2, 3), "prob")}),
            ("cross_entropy(A, P, reduction='none')", {"A": ((2, 3), REAL), "P": ((2, 3), "prob")}),
            ("cross_entropy(a, p)", {"a": ((3,), REAL), "p": ((3,), "prob")}),
            ("cross_entropy(A, P)", {"A": ((2, 3, 2), REAL), "P": ((2, 3, 2), "prob")}),
            (
                "F.cross_entropy(A, P, label_smoothing=0.2)",
                {"A": ((2, 3), REAL), "P": ((2, 3), "prob")},
            ),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "nll_loss",
        None,
        (),
        "NllLossBackward0",
        None,
        arity=2,
        params={"weight": None, "ignore_index": -100, "reduction": "mean"},
        tensor_params=("weight",),
        lower=_nll_lower,
        mirror="F.nll_loss(a, target, weight, ignore_index, reduction)",
        rule="∂/∂aᵢ,ₜ = -wₜ/Σw at the target class (mean), -wₜ (sum, none)",
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
        None,
        (),
        "BinaryCrossEntropyBackward0",
        None,
        arity=2,
        params={"weight": None, "reduction": "mean"},
        tensor_params=("weight",),
        lower=_weights_lower("bce", "binary_cross_entropy", ("weight",)),
        mirror="F.binary_cross_entropy(a, target, weight, reduction)",
        rule="∂/∂p = w(p - t)/(p(1 - p)); logs clamped at -100",
        examples=(
            ("binary_cross_entropy(a, b)", P3),
            ("binary_cross_entropy(a, b, reduction='sum')", P3),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "binary_cross_entropy_with_logits",
        None,
        (),
        "BinaryCrossEntropyWithLogitsBackward0",
        None,
        arity=2,
        params={"weight": None, "reduction": "mean", "pos_weight": None},
        tensor_params=_LOGIT_WEIGHTS,
        lower=_weights_lower("bce_logits", "binary_cross_entropy_with_logits", _LOGIT_WEIGHTS),
        mirror="F.binary_cross_entropy_with_logits(a, target, weight, reduction, pos_weight)",
        rule="∂/∂z = w((pw·t + 1 - t)σ(z) - pw·t); stable for |z| large",
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
    Op(
        "bce",
        _bce,
        (_bce_grad_p, _bce_grad_t, None),
        "BinaryCrossEntropyBackward0",
        _weighted_shape,
        arity=2,
        params={"weight": None, "reduction": "mean"},
        tensor_params=("weight",),
        public=False,
    ),
    Op(
        "bce_logits",
        _bce_logits,
        (_bce_logits_grad(0), _bce_logits_grad(1), None, None),
        "BinaryCrossEntropyWithLogitsBackward0",
        _weighted_shape,
        arity=2,
        stack="loss",
        params={"weight": None, "reduction": "mean", "pos_weight": None},
        tensor_params=_LOGIT_WEIGHTS,
        public=False,
    ),
    Op(
        "nll",
        _nll_loss,
        (_nll_grad, None, None),
        lambda kinds, attrs: "NllLoss2DBackward0" if attrs.get("nd") else "NllLossBackward0",
        _nll_shape,
        arity=2,
        params={"weight": None, "ignore_index": -100, "reduction": "mean"},
        tensor_params=("weight",),
        public=False,
    ),
]


# ---- losses of issue 13 ------------------------------------------------------------------


def _smooth_l1(a, b, reduction="mean", beta=1.0):
    d = a - b
    r = _abs(d)
    return _reduce_loss(np.where(_re(r) < beta, 0.5 * d * d / beta, r - 0.5 * beta), reduction)


def _smooth_l1_grad(sign):
    def rule(g, o, a, b, reduction="mean", beta=1.0):
        d = a - b
        local = np.where(_re(d) < -beta, -1.0, np.where(_re(d) > beta, 1.0, d / beta))
        return sign * local * _loss_grad_scale(g, d, reduction)

    return rule


def _huber(a, b, reduction="mean", delta=1.0):
    d = a - b
    r = _abs(d)
    return _reduce_loss(np.where(_re(r) < delta, 0.5 * d * d, delta * (r - 0.5 * delta)), reduction)


def _huber_grad(sign):
    def rule(g, o, a, b, reduction="mean", delta=1.0):
        d = a - b
        local = np.where(_re(d) < -delta, -delta, np.where(_re(d) > delta, delta, d))
        return sign * local * _loss_grad_scale(g, d, reduction)

    return rule


def _smooth_l1_lower(emit, node, args, attrs):
    """F.smooth_l1_loss: broadcast_tensors, then one node (l1_loss's nodes when beta is 0)."""
    beta = attrs.get("beta", 1.0)
    if beta < 0:
        raise EvaluationError("smooth_l1_loss does not support negative values for beta.")
    if beta == 0:
        return _l1_lower(emit, node, args, attrs)
    check_reduction(attrs.get("reduction", "mean"))
    return emit("smooth_l1", _broadcast_tensors(emit, node, args), attrs)


def _huber_lower(emit, node, args, attrs):
    """F.huber_loss: broadcast_tensors, one node; with a weight, the unreduced loss times
    the weight, then reduced."""
    if attrs.get("delta", 1.0) <= 0:
        raise EvaluationError("huber_loss does not support non-positive values for delta.")
    reduction = check_reduction(attrs.get("reduction", "mean"))
    pair = _broadcast_tensors(emit, node, args[:2])
    if attrs.get("weight") is not True:
        return emit("huber", pair, {"reduction": reduction, "delta": attrs.get("delta", 1.0)})
    if node(args[2]).shape != node(args[0]).shape:
        raise ShapeError("Weights and input must have the same size.")
    loss = emit("huber", pair, {"reduction": "none", "delta": attrs.get("delta", 1.0)})
    return _reduced(emit, emit("mul", (loss, args[2])), reduction)


def _soft_margin_lower(emit, node, args, attrs):
    no_grad_for(node, args[1], "soft_margin_loss", "target")
    return emit("soft_margin", args, attrs)


def _soft_margin_grad(g, o, x, y, reduction="mean"):
    d = -y * _sigmoid(-x * y)
    return (
        _loss_grad_scale(g, np.broadcast_to(d, np.broadcast_shapes(x.shape, y.shape)), reduction)
        * d
    )


def _reduced(emit, x, reduction):
    """apply_loss_reduction: MeanBackward0 or SumBackward0 over the elementwise loss."""
    if reduction == "none":
        return x
    return emit(reduction, (x,), {"dim": None, "keepdim": False})


def _kl_div_lower(emit, node, args, attrs):
    """F.kl_div as ATen's composite records it: xlogy(t, t) - t * input (or, with
    log_target, exp(t) * (t - input)), reduced; 'batchmean' is the sum over size(0)."""
    x, t = args
    reduction = check_reduction(attrs.get("reduction", "mean"), batchmean=True)
    if attrs.get("log_target"):
        loss = emit("mul", (emit("exp", (t,)), emit("sub", (t, x))))
    else:
        loss = emit("sub", (emit("loss_xlogy", (t, t)), emit("mul", (t, x))))
    if reduction != "batchmean":
        return _reduced(emit, loss, reduction)
    total = _reduced(emit, loss, "sum")
    sx = node(x).shape
    return scalar(emit, "div", total, sx[0], "DivBackward0") if sx else total


def _poisson_nll_lower(emit, node, args, attrs):
    x, t = args
    reduction = check_reduction(attrs.get("reduction", "mean"))
    if attrs.get("log_input", True):
        loss = emit("sub", (emit("exp", (x,)), emit("mul", (t, x))))
    else:
        shifted = scalar(emit, "add", x, attrs.get("eps", 1e-8), "AddBackward1")
        loss = emit("sub", (x, emit("mul", (t, emit("log", (shifted,))))))
    if attrs.get("full"):  # + Stirling's t·log t - t + ½·log(2πt), 0 where t <= 1
        term = emit("sub", (emit("mul", (t, emit("log", (t,)))), t))
        two_pi_t = scalar(emit, "mul", t, 2 * math.pi, "MulBackward1")
        half_log = scalar(emit, "mul", emit("log", (two_pi_t,)), 0.5, "MulBackward1")
        stirling = emit("add", (term, half_log))
        loss = emit("add", (loss, emit("loss_masked_le_one", (t, stirling))))
    return _reduced(emit, loss, reduction)


def _margin_ranking_lower(emit, node, args, attrs):
    """ATen: (-target * (input1 - input2) + margin).clamp_min(0), reduced."""
    a, b, t = args
    shapes = [node(v).shape for v in args]
    if not len(shapes[0]) == len(shapes[1]) == len(shapes[2]):
        raise ShapeError(
            "margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {fmt_shape(shapes[0])}, input2: {fmt_shape(shapes[1])}, "
            f"target: {fmt_shape(shapes[2])}"
        )
    reduction = check_reduction(attrs.get("reduction", "mean"))
    prod = emit("mul", (emit("neg", (t,)), emit("sub", (a, b))))
    shifted = scalar(emit, "add", prod, attrs.get("margin", 0.0), "AddBackward1")
    return _reduced(emit, emit("loss_clamp_min", (shifted,), {"min": 0.0}), reduction)


def _hinge_embedding_lower(emit, node, args, attrs):
    """ATen: where(t != 1, (margin - x).clamp_min(0), 0) + where(t != -1, x, 0), reduced."""
    x, t = args
    reduction = check_reduction(attrs.get("reduction", "mean"))
    margin = scalar(emit, "rsub", x, attrs.get("margin", 1.0), "SubBackward0")
    clamped = emit("loss_clamp_min", (margin,), {"min": 0.0})
    out = emit(
        "add",
        (
            emit("loss_where_ne", (t, clamped), {"value": 1.0}),
            emit("loss_where_ne", (t, x), {"value": -1.0}),
        ),
    )
    return _reduced(emit, out, reduction)


def _xlogy(x, y):
    return np.where(_re(x) == 0, 0 * x * y, x * np.log(y))


def _pair(*names, domains=None, shape=(2, 3)):
    """Example inputs of one shape, each from its domain (default: real)."""
    return {n: (shape, d) for n, d in zip(names, domains or (REAL,) * len(names), strict=True)}


ROWS += [
    Op(
        "smooth_l1_loss",
        None,
        (),
        "SmoothL1LossBackward0 (ExpandBackward0 on a broadcast operand)",
        None,
        arity=2,
        params={"reduction": "mean", "beta": 1.0},
        lower=_smooth_l1_lower,
        mirror="F.smooth_l1_loss(a, b, reduction, beta)",
        rule="∂/∂a = (a - b)/β where |a - b| < β, else sign(a - b)",
        examples=(
            ("F.smooth_l1_loss(a, b)", _pair("a", "b")),
            ("F.smooth_l1_loss(a, b, reduction='sum', beta=0.5)", _pair("a", "b")),
            ("F.smooth_l1_loss(A, b, reduction='none')", {"A": ((2, 3), REAL), "b": ((3,), REAL)}),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "huber_loss",
        None,
        (),
        "HuberLossBackward0 (ExpandBackward0 on a broadcast operand)",
        None,
        arity=2,
        params={"reduction": "mean", "delta": 1.0, "weight": None},
        tensor_params=("weight",),
        lower=_huber_lower,
        mirror="F.huber_loss(a, b, reduction, delta, weight)",
        rule="∂/∂a = a - b where |a - b| < δ, else δ·sign(a - b)",
        examples=(
            ("F.huber_loss(a, b)", _pair("a", "b")),
            ("F.huber_loss(a, b, reduction='sum', delta=0.5)", _pair("a", "b")),
            ("F.huber_loss(A, b, reduction='none')", {"A": ((2, 3), REAL), "b": ((3,), REAL)}),
            ("F.huber_loss(a, b, weight=w)", _pair("a", "b", "w")),
            ("F.huber_loss(a, b, reduction='sum', weight=w)", _pair("a", "b", "w")),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "soft_margin_loss",
        None,
        (),
        "SoftMarginLossBackward0",
        None,
        arity=2,
        params={"reduction": "mean"},
        lower=_soft_margin_lower,
        mirror="F.soft_margin_loss(a, target, reduction)",
        rule="log(1 + exp(-y·a)); ∂/∂a = -y·σ(-y·a); the target is not differentiated",
        examples=(
            ("F.soft_margin_loss(a, (b > 0) * 2.0 - 1)", _pair("a", "b")),
            ("F.soft_margin_loss(a, (b > 0) * 2.0 - 1, reduction='none')", _pair("a", "b")),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "kl_div",
        None,
        (),
        "SubBackward0 over XlogyBackward0 and MulBackward0 (log_target: MulBackward0 over "
        "ExpBackward0 and SubBackward0), then MeanBackward0 / SumBackward0 [/ DivBackward0]",
        None,
        arity=2,
        params={"reduction": "mean", "log_target": False},
        lower=_kl_div_lower,
        mirror="F.kl_div(a, target, reduction, log_target)",
        rule="t·(log t - a), or exp(t)·(t - a) with log_target",
        examples=(
            ("F.kl_div(a, b)", _pair("a", "b", domains=("real", "prob"))),
            ("F.kl_div(a, b, reduction='batchmean')", _pair("a", "b", domains=("real", "prob"))),
            ("F.kl_div(a, b, reduction='sum', log_target=True)", _pair("a", "b")),
            ("F.kl_div(a, b, reduction='none')", _pair("a", "b", domains=("real", "prob"))),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "poisson_nll_loss",
        None,
        (),
        "SubBackward0 over ExpBackward0 and MulBackward0 (log_input=False: over MulBackward0, "
        "LogBackward0, AddBackward1), then MeanBackward0 / SumBackward0",
        None,
        arity=2,
        params={"log_input": True, "full": False, "eps": 1e-8, "reduction": "mean"},
        lower=_poisson_nll_lower,
        mirror="F.poisson_nll_loss(a, target, log_input, full, eps, reduction)",
        rule="exp(a) - t·a, or a - t·log(a + eps)",
        examples=(
            ("F.poisson_nll_loss(a, b)", _pair("a", "b", domains=("real", "positive"))),
            (
                "F.poisson_nll_loss(a, b, log_input=False)",
                _pair("a", "b", domains=("positive",) * 2),
            ),
            ("F.poisson_nll_loss(a, b, reduction='none')", _pair("a", "b")),
            (
                "F.poisson_nll_loss(a, b * 2, full=True)",
                _pair("a", "b", domains=(REAL, "positive")),
            ),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
        inputs=("input", "target"),
    ),
    Op(
        "margin_ranking_loss",
        None,
        (),
        "ClampMinBackward0 over AddBackward1 over MulBackward0 (NegBackward0, SubBackward0), "
        "then MeanBackward0 / SumBackward0",
        None,
        arity=3,
        params={"margin": 0.0, "reduction": "mean"},
        lower=_margin_ranking_lower,
        mirror="F.margin_ranking_loss(a, b, target, margin, reduction)",
        rule="max(0, -y·(a - b) + margin)",
        examples=(
            (
                "F.margin_ranking_loss(a, b, c)",
                _pair("a", "b", "c", domains=("real", "real", "away")),
            ),
            (
                "F.margin_ranking_loss(a, b, (c > 0) * 2.0 - 1, margin=0.3, reduction='sum')",
                _pair("a", "b", "c"),
            ),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
        inputs=("input1", "input2", "target"),
    ),
    Op(
        "hinge_embedding_loss",
        None,
        (),
        "AddBackward0 over WhereBackward0 (ClampMinBackward0, SubBackward0) and WhereBackward0, "
        "then MeanBackward0 / SumBackward0",
        None,
        arity=2,
        params={"margin": 1.0, "reduction": "mean"},
        lower=_hinge_embedding_lower,
        mirror="F.hinge_embedding_loss(a, target, margin, reduction)",
        rule="a where y = 1, max(0, margin - a) where y = -1",
        examples=(
            ("F.hinge_embedding_loss(a, (b > 0) * 2.0 - 1)", _pair("a", "b")),
            (
                "F.hinge_embedding_loss(a, (b > 0) * 2.0 - 1, margin=0.5, reduction='none')",
                _pair("a", "b"),
            ),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
        inputs=("input", "target"),
    ),
    Op(
        "smooth_l1",
        _smooth_l1,
        (_smooth_l1_grad(1), _smooth_l1_grad(-1)),
        "SmoothL1LossBackward0",
        _loss_shape,
        arity=2,
        params={"reduction": "mean", "beta": 1.0},
        public=False,
    ),
    Op(
        "huber",
        _huber,
        (_huber_grad(1), _huber_grad(-1)),
        "HuberLossBackward0",
        _loss_shape,
        arity=2,
        params={"reduction": "mean", "delta": 1.0},
        public=False,
    ),
    Op(
        "soft_margin",
        lambda x, y, reduction="mean": _reduce_loss(np.log1p(np.exp(-x * y)), reduction),
        (_soft_margin_grad, None),
        "SoftMarginLossBackward0",
        _loss_shape,
        arity=2,
        params={"reduction": "mean"},
        public=False,
    ),
    Op(
        "loss_xlogy",
        _xlogy,
        (
            lambda g, o, x, y: g * np.where(_re(x) == 0, 0 * x, np.log(y)),
            lambda g, o, x, y: g * x / y,
        ),
        "XlogyBackward0",
        lambda shapes, attrs: broadcast_shapes(*shapes),
        arity=2,
        public=False,
    ),
    Op(
        "loss_clamp_min",
        lambda a, min=0.0: np.where(_re(a) < min, min + 0 * a, a),
        (lambda g, o, a, min=0.0: np.where(_re(a) >= min, g, 0 * g),),
        "ClampMinBackward0",
        lambda shapes, attrs: shapes[0],
        params={"min": 0.0},
        public=False,
    ),
    Op(
        "loss_where_ne",
        lambda t, x, value=1.0: np.where(_re(t) != value, x, 0 * x),
        (None, lambda g, o, t, x, value=1.0: np.where(_re(t) != value, g, 0 * g)),
        "WhereBackward0",
        lambda shapes, attrs: broadcast_shapes(*shapes),
        arity=2,
        params={"value": 1.0},
        public=False,
    ),
]


def _multilabel_soft_margin_lower(emit, node, args, attrs):
    """F.multilabel_soft_margin_loss, as functional.py computes it: -(t·logσ(x) +
    (1 - t)·logσ(-x)) [· weight], summed over the classes / C, then reduced."""
    x, t = args[:2]
    reduction = check_reduction(attrs.get("reduction", "mean"))
    sx = node(x).shape
    if not sx:
        raise ShapeError("multilabel_soft_margin_loss expects an input of 1 or more dimensions")
    pos = emit("mul", (t, emit("logsigmoid", (x,))))
    rest = scalar(emit, "rsub", t, 1.0, "RsubBackward1")
    neg = emit("mul", (rest, emit("logsigmoid", (emit("neg", (x,)),))))
    loss = emit("neg", (emit("add", (pos, neg)),))
    if attrs.get("weight") is True:
        loss = emit("mul", (loss, args[2]))
    cls = len(node(loss).shape) - 1
    per = emit("sum", (loss,), {"dim": cls, "keepdim": False})
    per = scalar(emit, "div", per, node(loss).shape[cls], "DivBackward0")
    return _reduced(emit, per, reduction)


def _gaussian_nll_lower(emit, node, args, attrs):
    """F.gaussian_nll_loss, as functional.py computes it: var (unsqueezed when one dimension
    short) cloned and clamped at eps outside autograd; 0.5·(log var + (x - t)²/var)."""
    x, t, var = args
    sx, sv = node(x).shape, node(var).shape
    reduction = attrs.get("reduction", "mean")
    if sv != sx:
        if sx[:-1] == sv:
            var = emit("unsqueeze", (var,), {"dim": -1})
        elif not (sx[:-1] == sv[:-1] and sv and sv[-1] == 1):
            raise ShapeError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise EvaluationError(f"{reduction} is not valid")
    if np.any(_re(np.asarray(node(var).value)) < 0):
        raise EvaluationError("var has negative entry/entries")
    var = emit("nn_clamped_clone", (var,), {"min": attrs.get("eps", 1e-6)})
    sq = emit(
        "nn_scalar", (emit("sub", (x, t)),), {"fn": "pow", "other": 2.0, "label": "PowBackward0"}
    )
    inner = emit("add", (emit("log", (var,)), emit("div", (sq, var))))
    loss = scalar(emit, "mul", inner, 0.5, "MulBackward0")
    if attrs.get("full"):
        loss = scalar(emit, "add", loss, 0.5 * math.log(2 * math.pi), "AddBackward0")
    return _reduced(emit, loss, reduction)


ROWS += [
    Op(
        "multilabel_soft_margin_loss",
        None,
        (),
        "DivBackward0 over SumBackward1 over NegBackward0 over AddBackward0 of MulBackward0s "
        "over LogSigmoidBackward0s, then MeanBackward0 / SumBackward0",
        None,
        arity=2,
        params={"weight": None, "reduction": "mean"},
        tensor_params=("weight",),
        lower=_multilabel_soft_margin_lower,
        mirror="F.multilabel_soft_margin_loss(a, target, weight, reduction)",
        rule="-(t·logσ(a) + (1 - t)·logσ(-a)) averaged over the classes",
        examples=(
            ("F.multilabel_soft_margin_loss(a, b)", _pair("a", "b", domains=(REAL, "prob"))),
            (
                "F.multilabel_soft_margin_loss(a, b, w, reduction='none')",
                {"a": ((2, 3), REAL), "b": ((2, 3), "prob"), "w": ((3,), "positive")},
            ),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "gaussian_nll_loss",
        None,
        (),
        "MulBackward0 over AddBackward0 of LogBackward0 and DivBackward0 (PowBackward0 over "
        "SubBackward0; the variance through CloneBackward0), then MeanBackward0 / SumBackward0",
        None,
        arity=3,
        params={"full": False, "eps": 1e-6, "reduction": "mean"},
        lower=_gaussian_nll_lower,
        mirror="F.gaussian_nll_loss(a, target, var, full, eps, reduction)",
        rule="½(log max(var, eps) + (a - t)²/max(var, eps)) [+ ½ log 2π]",
        examples=(
            (
                "F.gaussian_nll_loss(a, b, v)",
                _pair("a", "b", "v", domains=(REAL, REAL, "positive")),
            ),
            (
                "F.gaussian_nll_loss(a, b, v, full=True, reduction='sum')",
                {"a": ((2, 3), REAL), "b": ((2, 3), REAL), "v": ((2, 1), "positive")},
            ),
            (
                "F.gaussian_nll_loss(a, b, v, reduction='none')",
                {"a": ((2, 3), REAL), "b": ((2, 3), REAL), "v": ((2,), "positive")},
            ),
        ),
        namespaces=("torch.nn.functional",),
        inputs=("input", "target", "var"),
    ),
]


def _triplet_lower(emit, node, args, attrs, add="AddBackward1"):
    """ATen: clamp_min(margin + d(a, p) - d(a, n), 0), d the pairwise distance (with swap,
    d(a, n) is minimum(d(a, n), d(p, n)))."""
    from .nn import _pairwise_distance_lower

    a, p, n = args
    dims = [len(node(v).shape) for v in args]
    if not dims[0] == dims[1] == dims[2]:
        raise ShapeError(
            "The anchor, positive, and negative tensors are expected to have the same number "
            f"of dimensions, but got: anchor {dims[0]}D, positive {dims[1]}D, and negative "
            f"{dims[2]}D inputs"
        )
    reduction = check_reduction(attrs.get("reduction", "mean"))
    dist = {"p": attrs.get("p", 2.0), "eps": attrs.get("eps", 1e-6), "keepdim": False}
    pos = _pairwise_distance_lower(emit, node, (a, p), dist)
    neg = _pairwise_distance_lower(emit, node, (a, n), dist)
    if attrs.get("swap"):
        neg = emit("minimum", (neg, _pairwise_distance_lower(emit, node, (p, n), dist)))
    shifted = scalar(emit, "add", pos, attrs.get("margin", 1.0), add)
    return _reduced(emit, emit("loss_clamp_min", (emit("sub", (shifted, neg)),)), reduction)


def _cosine_embedding_lower(emit, node, args, attrs):
    """ATen's cosine_embedding_loss, node for node: cos = Σx₁x₂ / √((Σx₁² + ε)(Σx₂² + ε));
    1 - cos where the target is 1, max(cos - margin, 0) where it is -1."""
    x1, x2, t = args
    s1, s2, st = (node(v).shape for v in args)
    if len(st) not in (0, 1):
        raise ShapeError("0D or 1D target tensor expected, multi-target not supported")
    want = 2 if st else 1
    if len(s1) != want or len(s2) != want:
        raise ShapeError(
            f"{len(st)}D target tensor expects {want}D input tensors, but found inputs with "
            f"sizes {fmt_shape(s1)} and {fmt_shape(s2)}."
        )
    reduction = check_reduction(attrs.get("reduction", "mean"))
    d = len(st)

    def total(a, b):
        return emit("sum", (emit("mul", (a, b)),), {"dim": d, "keepdim": False})

    mag1 = scalar(emit, "add", total(x1, x1), 1e-12, "AddBackward1")
    mag2 = scalar(emit, "add", total(x2, x2), 1e-12, "AddBackward1")
    cos = emit("div", (total(x1, x2), emit("sqrt", (emit("mul", (mag1, mag2)),))))
    pos = scalar(emit, "rsub", cos, 1.0, "SubBackward0")
    neg = emit(
        "loss_clamp_min", (scalar(emit, "sub", cos, attrs.get("margin", 0.0), "SubBackward1"),)
    )
    out = emit(
        "add",
        (
            emit("loss_where_eq", (t, pos), {"value": 1.0}),
            emit("loss_where_eq", (t, neg), {"value": -1.0}),
        ),
    )
    return _reduced(emit, out, reduction)


ROWS += [
    Op(
        "triplet_margin_loss",
        None,
        (),
        "ClampMinBackward0 over SubBackward0 over AddBackward1 and the pairwise distances "
        "(NormBackward1, AddBackward1, SubBackward0; MinimumBackward0 with swap), then "
        "MeanBackward0 / SumBackward0",
        None,
        arity=3,
        params={"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False, "reduction": "mean"},
        lower=_triplet_lower,
        mirror="F.triplet_margin_loss(a, positive, negative, margin, p, eps, swap, reduction)",
        rule="max(0, margin + ‖a - p‖ - ‖a - n‖)",
        examples=(
            ("F.triplet_margin_loss(a, b, c)", _pair("a", "b", "c")),
            (
                "F.triplet_margin_loss(a, b, c, margin=2.0, p=1.0, swap=True, reduction='sum')",
                _pair("a", "b", "c", domains=("away", "away", "away")),
            ),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
        inputs=("anchor", "positive", "negative"),
    ),
    Op(
        "cosine_embedding_loss",
        None,
        (),
        "AddBackward0 over WhereBackward0s over the cosine (DivBackward0, SqrtBackward0, "
        "MulBackward0, AddBackward1, SumBackward1), then MeanBackward0 / SumBackward0",
        None,
        arity=3,
        params={"margin": 0.0, "reduction": "mean"},
        lower=_cosine_embedding_lower,
        mirror="F.cosine_embedding_loss(a, b, target, margin, reduction)",
        rule="1 - cos(a, b) where y = 1, max(0, cos(a, b) - margin) where y = -1",
        examples=(
            (
                "F.cosine_embedding_loss(a, b, (c > 0) * 2.0 - 1)",
                {"a": ((3, 4), REAL), "b": ((3, 4), REAL), "c": ((3,), REAL)},
            ),
            (
                "F.cosine_embedding_loss(a, b, (c > 0) * 2.0 - 1, margin=-0.5, reduction='none')",
                {"a": ((3, 4), REAL), "b": ((3, 4), REAL), "c": ((3,), REAL)},
            ),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
        inputs=("input1", "input2", "target"),
    ),
    Op(
        "loss_where_eq",
        lambda t, x, value=1.0: np.where(_re(t) == value, x, 0 * x),
        (None, lambda g, o, t, x, value=1.0: np.where(_re(t) == value, g, 0 * g)),
        "WhereBackward0",
        lambda shapes, attrs: broadcast_shapes(*shapes),
        arity=2,
        params={"value": 1.0},
        public=False,
    ),
]


ROWS += [
    Op(
        "loss_masked_fill",
        lambda t, x, ignore_index=-100: np.where(_re(t) == ignore_index, 0 * x, x),
        (None, lambda g, o, t, x, ignore_index=-100: np.where(_re(t) == ignore_index, 0 * g, g)),
        "MaskedFillBackward0",
        lambda shapes, attrs: shapes[1],
        arity=2,
        params={"ignore_index": -100},
        public=False,
    ),
    Op(
        "loss_div_count",
        lambda x, t, *extra, **attrs: x / _count(t, *extra, **_count_attrs(attrs)),
        (
            lambda g, o, x, t, *extra, **attrs: g / _count(t, *extra, **_count_attrs(attrs)),
            None,
            None,
        ),
        "DivBackward0",
        lambda shapes, attrs: shapes[0],
        arity=2,
        params={"weight": None, "ignore_index": -100, "reduction": "mean", "classes": 1},
        tensor_params=("weight",),
        public=False,
    ),
]


def _count_attrs(attrs):
    return {k: attrs[k] for k in ("weight", "ignore_index", "classes") if k in attrs}


ROWS += [
    Op(
        "loss_masked_le_one",
        lambda t, x: np.where(_re(t) <= 1, 0 * x, x),
        (None, lambda g, o, t, x: np.where(_re(t) <= 1, 0 * g, g)),
        "MaskedFillBackward0",
        lambda shapes, attrs: broadcast_shapes(*shapes),
        arity=2,
        public=False,
    ),
]


# ---- margin losses over class indices ----------------------------------------------------


def _frames(shape):
    """(frames, classes) of a margin loss's input: a vector (or a number) is one frame."""
    if len(shape) <= 1:
        return 1, math.prod(shape)
    return shape[0], shape[1]


def _margin_input_check(xs):
    if len(xs) > 2 or (len(xs) == 2 and xs[1] == 0) or (len(xs) == 1 and xs[0] == 0):
        raise ShapeError(
            f"Expected non-empty vector or matrix with optional 0-dim batch size, but got: "
            f"{fmt_shape(xs)}"
        )


def _multi_margin_shape(shapes, attrs):
    reduction = check_reduction(attrs.get("reduction", "mean"))
    xs, ts = shapes[:2]
    _margin_input_check(xs)
    frames, classes = _frames(xs)
    if len(ts) > 1 or math.prod(ts) != frames:
        raise ShapeError(
            f"multi_margin_loss: target tensor should be 1-D with size equal to the number of "
            f"input samples (batch size). Expected target size [{frames}], but got "
            f"{fmt_shape(ts)}. Input has shape {fmt_shape(xs)}."
        )
    if len(shapes) > 2 and shapes[2] != (classes,):
        raise ShapeError(
            f"inconsistent weight size, expected {classes} but got {fmt_shape(shapes[2])}"
        )
    return ts if reduction == "none" else ()


def _targets(t, low, classes, message):
    """Whole-number targets (float or int64 arrays alike) in [low, classes)."""
    t = _re(np.asarray(t))
    if t.dtype.kind == "f" and (not np.all(np.isfinite(t)) or not np.all(t == np.round(t))):
        raise EvaluationError("class index targets must be whole numbers")
    if np.any((t < low) | (t >= classes)):
        raise EvaluationError(message)
    return t.astype(np.int64)


def _multi_margin_parts(x, t, extra, p, margin, weight):
    """Per frame: the active terms z = margin - x[y] + x[j] > 0 (j ≠ y) and their weights."""
    frames, classes = _frames(x.shape)
    x2 = x.reshape(frames, classes)
    y = _targets(t, 0, classes, "target out of range").reshape(frames)
    z = margin - np.take_along_axis(x2, y[:, None], axis=1) + x2
    active = (_re(z) > 0) & (np.arange(classes) != y[:, None])
    w = (_re(np.asarray(extra[0]))[y] if weight is True else np.ones(frames))[:, None]
    return x2, y, z, active, w.astype(_re(x2).dtype), classes


def _multi_margin(x, t, *extra, p=1, margin=1.0, weight=None, reduction="mean"):
    _, _, z, active, w, classes = _multi_margin_parts(x, t, extra, p, margin, weight)
    h = np.where(active, z if p == 1 else z * z, 0)
    loss = np.sum(h * w, axis=1) / classes
    if reduction == "none":
        return loss.reshape(np.shape(t))
    return _margin_reduce(loss, reduction)


def _margin_reduce(loss, reduction):
    """mean over frames (0 for no frames, as ATen's kernels give) or sum."""
    if reduction == "sum" or loss.size == 0:
        return np.sum(loss)
    return np.sum(loss) / loss.size


def _margin_scale(g, frames, reduction):
    if reduction == "none":
        return np.reshape(g, (frames, 1))
    return g / frames if reduction == "mean" and frames else g


def _multi_margin_grad(g, o, x, t, *extra, p=1, margin=1.0, weight=None, reduction="mean"):
    x2, y, z, active, w, classes = _multi_margin_parts(x, t, extra, p, margin, weight)
    scale = _margin_scale(g, x2.shape[0], reduction) * w / classes
    gx = np.where(active, scale if p == 1 else 2 * z * scale, 0)
    np.put_along_axis(gx, y[:, None], -np.sum(gx, axis=1, keepdims=True), axis=1)
    return gx.reshape(x.shape)


def _multi_margin_lower(emit, node, args, attrs):
    p = attrs.get("p", 1)
    if p not in (1, 2):
        raise EvaluationError("only p == 1 and p == 2 supported")
    if attrs.get("weight") is True:
        if len(node(args[2]).shape) != 1:
            raise ShapeError("weight must be one-dimensional")
        no_grad_for(node, args[2], "multi_margin_loss", "weight")
    return emit("multi_margin", args, attrs)


def _multilabel_shape(shapes, attrs):
    reduction = check_reduction(attrs.get("reduction", "mean"))
    xs, ts = shapes
    _margin_input_check(xs)
    if ts != xs:
        raise ShapeError(
            f"inconsistent target size: {fmt_shape(ts)} for input of size: {fmt_shape(xs)}"
        )
    return (xs[0],) if reduction == "none" and len(xs) == 2 else ()


def _multilabel_parts(x, t):
    """z[i, k, d] = 1 - x[i, y_k] + x[i, d] for each listed target y_k (up to the first
    -1) and each class d that is not a target, where it is positive."""
    frames, classes = _frames(x.shape)
    x2 = x.reshape(frames, classes)
    y = _targets(t, -1, classes, "argument #2 'target' is out of range").reshape(frames, classes)
    listed = np.cumprod(y >= 0, axis=1).astype(bool)
    safe = np.where(listed, y, 0)
    target = np.any((safe[:, :, None] == np.arange(classes)) & listed[:, :, None], axis=1)
    z = 1 - np.take_along_axis(x2, safe, axis=1)[:, :, None] + x2[:, None, :]
    active = listed[:, :, None] & ~target[:, None, :] & (_re(z) > 0)
    return x2, safe, z, active, classes


def _multilabel(x, t, reduction="mean"):
    _, _, z, active, classes = _multilabel_parts(x, t)
    loss = np.sum(np.where(active, z, 0), axis=(1, 2)) / classes
    if reduction == "none":
        return loss if x.ndim == 2 else loss.reshape(())
    return _margin_reduce(loss, reduction)


def _multilabel_grad(g, o, x, t, reduction="mean"):
    x2, safe, z, active, classes = _multilabel_parts(x, t)
    scale = _margin_scale(g, x2.shape[0], reduction) / classes
    coef = np.where(active, scale[:, :, None] if np.ndim(scale) == 2 else scale, 0)
    gx = np.sum(coef, axis=1)
    rows = np.broadcast_to(np.arange(x2.shape[0])[:, None], safe.shape)
    np.add.at(gx, (rows, safe), -np.sum(coef, axis=2))
    return gx.reshape(x.shape)


def _multilabel_lower(emit, node, args, attrs):
    return emit("multilabel_margin", args, attrs)


def _triplet_distance_lower(emit, node, args, attrs):
    """F.triplet_margin_with_distance_loss with its default distance, pairwise_distance;
    margin + d(a, p) is a Python number plus a tensor there (AddBackward0)."""
    if attrs.get("distance_function") is not None:
        raise EvaluationError(
            "triplet_margin_with_distance_loss(): distance_function must be None (the default,"
            " pairwise_distance): a program cannot pass a Python function",
            hint="write the loss out: clamp_min(margin + d(a, p) - d(a, n), 0)",
        )
    margin = attrs.get("margin", 1.0)
    if margin <= 0:
        raise EvaluationError(f"margin must be greater than 0, got {margin}")
    return _triplet_lower(emit, node, args, {**attrs, "p": 2.0, "eps": 1e-6}, "AddBackward0")


ROWS += [
    Op(
        "multi_margin_loss",
        None,
        (),
        "MultiMarginLossBackward0",
        None,
        arity=2,
        params={"p": 1, "margin": 1.0, "weight": None, "reduction": "mean"},
        tensor_params=("weight",),
        lower=_multi_margin_lower,
        mirror="F.multi_margin_loss(input, target, p, margin, weight, reduction)",
        rule="Σ_{j≠y} w_y·max(0, margin - x_y + x_j)^p / C per sample",
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "multilabel_margin_loss",
        None,
        (),
        "MultilabelMarginLossBackward0",
        None,
        arity=2,
        params={"reduction": "mean"},
        lower=_multilabel_lower,
        mirror="F.multilabel_margin_loss(input, target, reduction)",
        rule="Σ over listed targets y and non-targets j of max(0, 1 - x_y + x_j) / C",
        namespaces=("torch.nn.functional",),
        inputs=("input", "target"),
    ),
    Op(
        "triplet_margin_with_distance_loss",
        None,
        (),
        "ClampMinBackward0 over SubBackward0 over AddBackward0 and the pairwise distances "
        "(NormBackward1, AddBackward1, SubBackward0; MinimumBackward0 with swap), then "
        "MeanBackward0 / SumBackward0",
        None,
        arity=3,
        params={"distance_function": None, "margin": 1.0, "swap": False, "reduction": "mean"},
        lower=_triplet_distance_lower,
        mirror="F.triplet_margin_with_distance_loss(a, positive, negative, margin=, swap=, "
        "reduction=)",
        rule="max(0, margin + d(a, p) - d(a, n)), d = pairwise_distance",
        examples=(
            ("F.triplet_margin_with_distance_loss(a, b, c)", _pair("a", "b", "c")),
            (
                "F.triplet_margin_with_distance_loss(a, b, c, margin=2.0, swap=True, "
                "reduction='sum')",
                _pair("a", "b", "c", domains=("away", "away", "away")),
            ),
            (
                "F.triplet_margin_with_distance_loss(a, b, c, reduction='none')",
                _pair("a", "b", "c"),
            ),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
        inputs=("anchor", "positive", "negative"),
    ),
    Op(
        "multi_margin",
        _multi_margin,
        (_multi_margin_grad, None, None),
        "MultiMarginLossBackward0",
        _multi_margin_shape,
        arity=2,
        params={"p": 1, "margin": 1.0, "weight": None, "reduction": "mean"},
        tensor_params=("weight",),
        public=False,
    ),
    Op(
        "multilabel_margin",
        _multilabel,
        (_multilabel_grad, None),
        "MultilabelMarginLossBackward0",
        _multilabel_shape,
        arity=2,
        params={"reduction": "mean"},
        public=False,
    ),
]


# ---- connectionist temporal classification ------------------------------------------------
# ATen's LossCTC.cpp, vectorised over the batch: the alpha recursion in log space over the
# extended targets l' = (blank, l1, blank, l2, ..., blank), one step per time frame; the
# backward runs the beta recursion and collects exp(α + β) per class (Graves et al. 2006,
# eq. 16). Every branch is taken on real parts, so both run on dual numbers too.

_NEG = -math.inf
_CTC_CHECK = " (while checking arguments for ctc_loss_allocate_outputs)"


def _ctc_lengths(value, name, batch):
    """input_lengths / target_lengths, a tensor or a tuple of integers, as int64 (N,)."""
    a = _re(np.asarray(value))
    if a.ndim > 1:
        raise EvaluationError(
            f"ctc_loss(): {name} must be a 1-D tensor or a tuple of integers, got a tensor of "
            f"shape {fmt_shape(a.shape)}"
        )
    if a.dtype.kind == "f" and not np.all(np.isfinite(a) & (a == np.round(a))):
        raise EvaluationError(f"ctc_loss(): {name} must be integral, got {a.tolist()}")
    a = a.reshape(-1).astype(np.int64)
    if a.size != batch:
        raise EvaluationError(f"{name} must be of size batch_size")
    return a


def _ctc_inputs(lp, tg, extra, input_lengths, target_lengths, blank):
    """ATen's checks, then (targets padded to (N, S), input lengths, target lengths)."""
    steps, batch, classes = lp.shape
    rest = list(extra)
    il = input_lengths if input_lengths is not True else rest.pop(0)
    tl = target_lengths if target_lengths is not True else rest.pop(0)
    if lp.size == 0:
        raise EvaluationError("log_probs tensor must not be empty")
    if not 0 <= blank < classes:
        raise EvaluationError("blank must be in label range")
    il = _ctc_lengths(il, "input_lengths", batch)
    tl = _ctc_lengths(tl, "target_lengths", batch)
    t = _re(np.asarray(tg))
    if t.dtype.kind == "f" and not np.all(np.isfinite(t)):
        raise EvaluationError("ctc_loss(): targets must be finite class indices")
    t = t.astype(np.int64)  # (PyTorch's targets.to(kLong): a float index is truncated)
    if np.any(tl < 0):
        raise EvaluationError(
            f"Expected target_lengths to have value at least 0, but got value "
            f"{tl[tl < 0][0]}{_CTC_CHECK}"
        )
    width = int(tl.max(initial=0))
    if t.ndim == 1:  # concatenated targets
        if t.shape[0] != tl.sum():
            raise EvaluationError(
                f"Expected tensor to have size {tl.sum()} at dimension 0, but got size "
                f"{t.shape[0]} for argument #2 'targets'{_CTC_CHECK}"
            )
        starts = np.cumsum(tl) - tl
        pos = np.minimum(starts[:, None] + np.arange(width), max(t.shape[0] - 1, 0))
        padded = t[pos] if t.size else np.zeros((batch, width), np.int64)
    else:
        if t.shape[0] != batch:
            raise EvaluationError(
                f"Expected tensor to have size {batch} at dimension 0, but got size "
                f"{t.shape[0]} for argument #2 'targets'{_CTC_CHECK}"
            )
        if t.shape[1] < width:
            raise EvaluationError(
                f"Expected tensor to have size at least {width} at dimension 1, but got size "
                f"{t.shape[1]} for argument #2 'targets'{_CTC_CHECK}"
            )
        padded = t
    for bad, word in ((il < 0, "at least 0"), (il > steps, f"at most {steps}")):
        if np.any(bad):
            raise EvaluationError(
                f"Expected input_lengths to have value {word}, but got value {il[bad][0]}"
                f"{_CTC_CHECK}"
            )
    used = np.arange(padded.shape[1]) < tl[:, None]
    padded = np.where(used, padded, blank)  # (the padding is never read)
    wrong = used & ((padded < 0) | (padded >= classes))
    if np.any(wrong):
        raise EvaluationError(
            f"ctc_loss(): target {padded[wrong][0]} is out of range: targets are class "
            f"indices in [0, {classes})",
            hint="PyTorch does not check this and reads past the end of log_probs",
        )
    return padded, il, tl


def _lse3(a1, a2, a3):
    """log(e^a1 + e^a2 + e^a3) as ATen computes it: shifted by the largest (0 if all -inf)."""
    m = np.maximum(np.maximum(_re(a1), _re(a2)), _re(a3))
    m = np.where(m == _NEG, 0.0, m)
    return np.log(np.exp(a1 - m) + np.exp(a2 - m) + np.exp(a3 - m)) + m


def _shift(a, k):
    """a[:, s - k] (k > 0) or a[:, s + |k|] (k < 0), -inf where it falls outside."""
    out = np.full_like(a, _NEG)
    if k > 0:
        out[:, k:] = a[:, :-k]
    else:
        out[:, :k] = a[:, -k:]
    return out


class _Lattice:
    """The extended targets of a batch and their log-probabilities at every frame."""

    def __init__(self, lp, padded, il, tl, blank):
        steps, batch, _ = lp.shape
        width = 2 * padded.shape[1] + 1
        self.ext = np.full((batch, width), blank, np.int64)
        self.ext[:, 1::2] = padded
        s = np.arange(width)
        self.states = s <= 2 * tl[:, None]  # (N, L)
        self.skip = np.zeros((batch, width), bool)  # l'[s] != l'[s - 2]: a label may skip
        self.skip[:, 2:] = self.ext[:, 2:] != self.ext[:, :-2]
        self.emit = np.take_along_axis(lp, np.broadcast_to(self.ext, (steps, batch, width)), 2)
        self.il, self.tl, self.s = np.asarray(il), np.asarray(tl), s  # int64 arrays (N,)

    def alpha(self):
        e, steps = self.emit, self.emit.shape[0]
        alpha = np.full(e.shape, _NEG, dtype=e.dtype)
        alpha[0, :, 0] = e[0, :, 0]
        if e.shape[2] > 1:
            alpha[0, :, 1] = np.where(self.tl > 0, e[0, :, 1], _NEG)
        for t in range(1, steps):
            prev = alpha[t - 1]
            la3 = np.where(self.skip, _shift(prev, 2), _NEG)
            alpha[t] = np.where(self.states, _lse3(prev, _shift(prev, 1), la3) + e[t], _NEG)
        return alpha

    def nll(self, alpha):
        batch = np.arange(alpha.shape[1])
        last = alpha[np.maximum(self.il - 1, 0), batch]  # (N, L)
        l1 = last[batch, 2 * self.tl]
        l2 = np.where(self.tl > 0, last[batch, np.maximum(2 * self.tl - 1, 0)], _NEG)
        m = np.maximum(_re(l1), _re(l2))
        m = np.where(m == _NEG, 0.0, m)
        both = np.log(np.exp(l1 - m) + np.exp(l2 - m)) + m
        ll = np.where(self.tl == 0, l1, both)
        return -np.where(self.il == 0, np.where(self.tl == 0, 0.0, _NEG), ll)

    def beta(self):
        e, steps = self.emit, self.emit.shape[0]
        beta = np.full(e.shape, _NEG, dtype=e.dtype)
        batch = np.arange(e.shape[1])
        two = 2 * self.tl
        s = self.s
        lb2 = s < two[:, None]
        lb3 = (s < two[:, None] - 1) & _shift(self.skip, -2)
        for t in range(steps - 1, -1, -1):
            row = np.full(e.shape[1:], _NEG, dtype=e.dtype)
            if t + 1 < steps:
                nxt = beta[t + 1]
                b2 = np.where(lb2, _shift(nxt, -1), _NEG)
                b3 = np.where(lb3, _shift(nxt, -2), _NEG)
                inner = (t < self.il - 1)[:, None] & self.states
                row = np.where(inner, _lse3(nxt, b2, b3) + e[t], _NEG)
            start = batch[self.il - 1 == t]
            row[start, two[start]] = e[t, start, two[start]]
            start = start[self.tl[start] > 0]
            row[start, two[start] - 1] = e[t, start, two[start] - 1]
            beta[t] = row
        return beta


def _ctc(lp, tg, *extra, input_lengths=None, target_lengths=None, blank=0, zero_infinity=False):
    padded, il, tl = _ctc_inputs(lp, tg, extra, input_lengths, target_lengths, blank)
    lattice = _Lattice(lp, padded, il, tl, blank)
    return lattice.nll(lattice.alpha())


def _ctc_grad(
    g, o, lp, tg, *extra, input_lengths=None, target_lengths=None, blank=0, zero_infinity=False
):
    """ATen's ctc_loss_backward: (exp(lp) - exp(log Σ_{s: l'[s] = c} α β + nll - lp)) · g for
    frames t < input_length, 0 after them and, with zero_infinity, for infinite losses. It
    does not assume log_probs normalised (the exp(lp) term), as ATen does not."""
    padded, il, tl = _ctc_inputs(lp, tg, extra, input_lengths, target_lengths, blank)
    lattice = _Lattice(lp, padded, il, tl, blank)
    alpha = lattice.alpha()
    nll = lattice.nll(alpha)
    ab = alpha + lattice.beta()
    steps, batch, _ = lp.shape
    frames = np.arange(steps)[:, None] < il  # (T, N)
    ab = np.where(frames[:, :, None] & lattice.states, ab, _NEG)
    # ATen assigns (not adds) the last frame's two end states: a target equal to blank
    # there overwrites the blank's share
    n = np.arange(batch)
    over = n[(il > 0) & (tl > 0)]
    over = over[lattice.ext[over, 2 * tl[over] - 1] == blank]
    ab[il[over] - 1, over, 2 * tl[over]] = _NEG
    where = (np.arange(steps)[:, None, None], n[None, :, None], lattice.ext[None])
    where = tuple(np.broadcast_to(w, ab.shape) for w in where)
    top = np.full(lp.shape, _NEG, dtype=_re(ab).dtype)
    np.maximum.at(top, where, _re(ab))
    top = np.where(top == _NEG, 0.0, top)
    total = np.zeros(lp.shape, dtype=ab.dtype)
    np.add.at(total, where, np.exp(ab - top[where]))
    collected = np.log(total) + top
    g = np.broadcast_to(g, nll.shape)
    grad = (np.exp(lp) - np.exp(collected + nll[None, :, None] - lp)) * g[None, :, None]
    keep = frames
    if zero_infinity:
        keep = keep & (_re(nll) != math.inf)
    return np.where(keep[:, :, None], grad, 0.0)


def _ctc_shape(shapes, attrs):
    lp, tg = shapes[:2]
    if len(tg) not in (1, 2):
        raise ShapeError(
            f"Expected 1 to 2 dimensions, but got {len(tg)}-dimensional tensor for argument "
            f"#2 'targets'{_CTC_CHECK}"
        )
    return lp[1:2]


def _ctc_lengths_of(extra, attrs):
    """The target lengths, clamped at 1, as the mean divides by them."""
    tl = attrs["target_lengths"] if attrs["target_lengths"] is not True else extra[-1]
    return np.maximum(_re(np.asarray(tl)).reshape(-1).astype(np.int64), 1)


def _ctc_lower(emit, node, args, attrs):
    """What F.ctc_loss records: [UnsqueezeBackward0 for one unbatched sequence,]
    CtcLossBackward0 (the per-sequence losses), [WhereBackward0 with zero_infinity,] then
    DivBackward0 by the target lengths and MeanBackward0, SumBackward0, or [for one
    unbatched sequence] SqueezeBackward1."""
    reduction = check_reduction(attrs.get("reduction", "mean"))
    lp = args[0]
    rank = len(node(lp).shape)
    if rank != 3:
        if rank == 2:
            lp = emit("unsqueeze", (lp,), {"dim": 1})
        else:
            raise ShapeError(
                f"Expected 3-dimensional tensor, but got {rank + 1}-dimensional tensor for "
                f"argument #1 'log_probs'{_CTC_CHECK}"
            )
    keys = ("input_lengths", "target_lengths")
    lengths = {k: attrs[k] for k in keys}
    for k in keys:
        if lengths[k] is not True:
            lengths[k] = _length_attr(lengths[k], k)
    given = [a for a, k in zip(args[2:], [k for k in keys if lengths[k] is True], strict=True)]
    out = emit(
        "ctc",
        (lp, args[1], *given),
        {**lengths, "blank": attrs.get("blank", 0), "zero_infinity": attrs["zero_infinity"]},
    )
    if attrs.get("zero_infinity"):
        out = emit("ctc_zero_infinity", (out,))
    if reduction == "mean":
        tl = given[-1:] if lengths["target_lengths"] is True else []
        out = emit("ctc_per_label", (out, *tl), {"target_lengths": lengths["target_lengths"]})
    if reduction != "none":
        return _reduced(emit, out, reduction)
    return out if rank == 3 else emit("squeeze", (out,), {"dim": 0})


def _length_attr(value, name):
    """A tuple (or list, or one number) of whole numbers given for a length."""
    items = value if isinstance(value, (list, tuple)) else [value]
    if not all(isinstance(v, (int, float)) and float(v).is_integer() for v in items):
        raise EvaluationError(
            f"ctc_loss(): {name} must be a tensor or a tuple of integers, got {value!r}"
        )
    return tuple(int(v) for v in items)


ROWS += [
    Op(
        "ctc_loss",
        None,
        (),
        "CtcLossBackward0, then DivBackward0 and MeanBackward0 (mean) or SumBackward0 "
        "(sum); WhereBackward0 with zero_infinity; UnsqueezeBackward0 for (T, C) log_probs",
        None,
        arity=2,
        params={
            "input_lengths": REQUIRED,
            "target_lengths": REQUIRED,
            "blank": 0,
            "reduction": "mean",
            "zero_infinity": False,
        },
        tensor_params=("input_lengths", "target_lengths"),
        free=("input_lengths", "target_lengths"),
        lower=_ctc_lower,
        mirror="F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, "
        "reduction, zero_infinity)",
        rule="-log Σ over alignments of Π exp(log_probs); ∂/∂lp = exp(lp) - Σ αβ/(p·exp(lp))",
        namespaces=("torch.nn.functional",),
        methods=(),
        inputs=("log_probs", "targets"),
    ),
    Op(
        "ctc",
        _ctc,
        (_ctc_grad, None, None, None),
        "CtcLossBackward0",
        _ctc_shape,
        arity=2,
        params={"input_lengths": None, "target_lengths": None, "blank": 0, "zero_infinity": False},
        tensor_params=("input_lengths", "target_lengths"),
        public=False,
    ),
    Op(
        "ctc_zero_infinity",
        lambda x: np.where(_re(x) == math.inf, 0.0, x),
        (lambda g, o, x: np.where(_re(x) == math.inf, 0.0, g),),
        "WhereBackward0",
        lambda shapes, attrs: shapes[0],
        public=False,
    ),
    Op(
        "ctc_per_label",
        lambda x, *extra, target_lengths=None: (
            x / _ctc_lengths_of(extra, {"target_lengths": target_lengths}).astype(_re(x).dtype)
        ),
        (
            lambda g, o, x, *extra, target_lengths=None: (
                g / _ctc_lengths_of(extra, {"target_lengths": target_lengths}).astype(_re(x).dtype)
            ),
            None,
        ),
        "DivBackward0",
        lambda shapes, attrs: shapes[0],
        params={"target_lengths": None},
        tensor_params=("target_lengths",),
        public=False,
    ),
]
