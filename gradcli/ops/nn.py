"""torch.nn.functional: softmax and friends, activations, normalisation and layers."""

import math

from ..errors import EvaluationError, ShapeError
from .core import (
    REAL,
    REQUIRED,
    M,
    Op,
    V,
    Whole,
    _abs,
    _dim_shape,
    _one_dim,
    _re,
    _reduce_shape,
    _reshape_ids,
    _same,
    _sigmoid,
    broadcast_shapes,
    fmt_shape,
    lazy_numpy,
)

np = lazy_numpy(globals())


def _softmax_dim(a, dim):
    if a.ndim == 0:
        return None
    if dim is None:  # PyTorch's implicit choice (_get_softmax_dim)
        return 0 if a.ndim in (0, 1, 3) else 1
    return _one_dim(dim, a.ndim)


def _softmax(a, dim=None):
    d = _softmax_dim(a, dim)
    if d is None:
        return np.ones_like(a)
    if a.size == 0:  # an empty softmax is empty (numpy's amax has no identity)
        return a.copy()
    e = np.exp(a - np.amax(a, axis=d, keepdims=True))
    return e / np.sum(e, axis=d, keepdims=True)


def _log_softmax(a, dim=None):
    d = _softmax_dim(a, dim)
    if d is None or a.size == 0:
        return np.zeros_like(a)
    shifted = a - np.amax(a, axis=d, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=d, keepdims=True))


def _softmax_grad(g, o, a, dim=None):
    d = _softmax_dim(a, dim)
    return np.zeros_like(g) if d is None else (g - np.sum(g * o, axis=d, keepdims=True)) * o


def _log_softmax_grad(g, o, a, dim=None):
    d = _softmax_dim(a, dim)
    return np.zeros_like(g) if d is None else g - np.exp(o) * np.sum(g, axis=d, keepdims=True)


def _softmax_shape(shapes, attrs):
    if attrs.get("dim") is not None:
        return _dim_shape(shapes, attrs)
    return shapes[0]


ROWS = [
    Op(
        "softmax",
        _softmax,
        (_softmax_grad,),
        "SoftmaxBackward0",
        _softmax_shape,
        params={"dim": None, "dtype": None},
        mirror="F.softmax(a, dim)",
        rule="∂s/∂a = s ⊙ (g - Σ g s)",
        examples=(("softmax(A, dim=1)", M), ("softmax(a, 0)", V), ("softmax(A)", M)),
        namespaces=("torch", "torch.nn.functional", "torch.special"),
    ),
    Op(
        "log_softmax",
        _log_softmax,
        (_log_softmax_grad,),
        "LogSoftmaxBackward0",
        _softmax_shape,
        params={"dim": None, "dtype": None},
        mirror="F.log_softmax(a, dim)",
        rule="∂/∂a = g - softmax(a)·Σg",
        examples=(("log_softmax(A, dim=1)", M), ("log_softmax(a, 0)", V)),
        namespaces=("torch", "torch.nn.functional", "torch.special"),
    ),
]


# ---- shared by the rows below and by losses.py ---------------------------------------------


def optional(extra, attrs, names):
    """The optional tensors of a call, by name (None where not given): ``extra`` holds the
    tensors given, in the order of ``names``."""
    out, it = {}, iter(extra)
    for n in names:
        out[n] = next(it) if attrs.get(n) is True else None
    return out


def _scalar_fn(a, fn, other, label):
    if fn == "add":
        return a + other
    if fn == "sub":
        return a - other
    if fn == "rsub":
        return other - a
    if fn == "mul":
        return a * other
    return a**other if fn == "pow" else a / other


def _scalar_grad(g, o, a, fn, other, label):
    if fn in ("add", "sub"):
        return g
    if fn == "rsub":
        return -g
    if fn == "pow":
        return g * other * a ** (other - 1)
    return g * other if fn == "mul" else g / other


def scalar(emit, fn, a, other, label):
    """``a`` combined with a Python number as PyTorch records it: the label says which
    overload (x + 1 is AddBackward0; C++'s x.add(1) AddBackward1; 1 - x RsubBackward1)."""
    return emit("nn_scalar", (a,), {"fn": fn, "other": float(other), "label": label})


def _act(name, forward, grad, rule, examples, params=None, label=None, namespaces=None, methods=()):
    """An elementwise activation of torch.nn.functional."""
    return Op(
        name,
        forward,
        (grad,),
        label or f"{name.capitalize()}Backward0",
        _same,
        params=params,
        mirror=f"F.{name}(a{''.join(', ' + k for k in params or ())})",
        rule=rule,
        examples=examples,
        namespaces=namespaces or ("torch.nn.functional",),
        methods=methods,
    )


def _ex(*programs, domain=REAL, shape=(2, 3)):
    return tuple((p, {"a": (shape, domain)}) for p in programs)


_SIXTH = 0.1666666716337204  # PyTorch's kernel multiplies by 1.0f / 6.0f, even in float64
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _pos(a):
    """Not on the negative side: PyTorch's kernels test x <= 0, so nan takes this branch."""
    return ~(_re(a) <= 0)


def _mish_grad(g, o, a):
    sp = np.tanh(np.log1p(np.exp(a)))
    return g * (sp + a * _sigmoid(a) * (1 - sp * sp))


def _lower_tanhshrink(emit, node, args, attrs):
    (x,) = args
    return emit("sub", (x, emit("tanh", (x,))))


def _lower_softsign(emit, node, args, attrs):
    (x,) = args
    return emit("div", (x, scalar(emit, "add", emit("abs", (x,)), 1, "AddBackward0")))


def _lower_softmin(emit, node, args, attrs):
    (x,) = args
    return emit("softmax", (emit("neg", (x,)),), {"dim": attrs.get("dim")})


def _glu_dim(shape, dim):
    if not shape:
        raise ShapeError("glu does not support scalars because halving size must be even")
    d = _one_dim(dim, len(shape))
    if shape[d] % 2:
        raise ShapeError(f"Halving dimension must be even, but dimension {d} is size {shape[d]}")
    return d


def _glu(a, dim=-1):
    d = _glu_dim(a.shape, dim)
    x, y = np.split(a, 2, axis=d)
    return x * _sigmoid(y)


def _glu_grad(g, o, a, dim=-1):
    d = _glu_dim(a.shape, dim)
    x, y = np.split(a, 2, axis=d)
    s = _sigmoid(y)
    return np.concatenate([g * s, g * x * s * (1 - s)], axis=d)


def _glu_shape(shapes, attrs):
    shape = list(shapes[0])
    d = _glu_dim(shapes[0], attrs.get("dim", -1))
    shape[d] //= 2
    return tuple(shape)


def _lower_prelu(emit, node, args, attrs):
    """F.prelu: the weight viewed to broadcast over dimension 1 (when ranks differ), then
    one kernel node."""
    x, w = args
    sx, sw = node(x).shape, node(w).shape
    n = math.prod(sw)
    if not sx:
        raise ShapeError("Not allow zero-dim input tensor.")
    if n != 1:
        channels = sx[1] if len(sx) > 1 else 1
        if channels != n:
            raise ShapeError(
                f"Mismatch of parameter numbers and input channel size. Found parameter "
                f"numbers = {n} and channel size = {channels}."
            )
    if len(sw) > 1:
        raise ShapeError(
            f"prelu: Expected `weight` to be a scalar or 1D tensor, but got: ndim = {len(sw)}"
        )
    if len(sx) != len(sw):
        w = _reshape_ids(emit, node, w, tuple(n if i == 1 else 1 for i in range(len(sx))))
    return emit("nn_prelu_kernel", (x, w))


def _rrelu_slope(lower, upper, training):
    if training:
        raise EvaluationError(
            "rrelu(training=True) draws a random slope per element, which gradcli does not do",
            hint="use training=False (the mean slope (lower + upper) / 2)",
        )
    return (lower + upper) / 2


def _rrelu_shape(shapes, attrs):
    _rrelu_slope(attrs["lower"], attrs["upper"], attrs["training"])
    return shapes[0]


def _shrink_check(lambd):
    if lambd < 0:
        raise ShapeError(f"lambda must be greater or equal to 0, but found to be {lambd:g}.")


def _softshrink(a, lambd=0.5):
    _shrink_check(lambd)
    r = _re(a)
    return np.where(r > lambd, a - lambd, np.where(r < -lambd, a + lambd, 0))


ROWS += [
    _act(
        "celu",
        lambda a, alpha=1.0: np.where(_pos(a), a, alpha * np.expm1(a / alpha)),
        lambda g, o, a, alpha=1.0: np.where(_pos(a), g, g * np.exp(a / alpha)),
        "∂/∂a = 1 if a > 0 else exp(a/α)",
        _ex("F.celu(a)", "F.celu(a, alpha=2.0)", domain="away"),
        params={"alpha": 1.0},
        namespaces=("torch", "torch.nn.functional"),
    ),
    _act(
        "selu",
        lambda a: _SELU_SCALE * np.where(_pos(a), a, _SELU_ALPHA * np.expm1(a)),
        lambda g, o, a: _SELU_SCALE * np.where(_pos(a), g, g * _SELU_ALPHA * np.exp(a)),
        "∂/∂a = λ if a > 0 else λα·exp(a)",
        _ex("F.selu(a)", domain="away"),
        label="EluBackward0",
        namespaces=("torch", "torch.nn.functional"),
    ),
    _act(
        "mish",
        lambda a: a * np.tanh(np.log1p(np.exp(a))),
        _mish_grad,
        "∂/∂a = tanh(softplus(a)) + a·σ(a)·(1 - tanh²(softplus(a)))",
        _ex("F.mish(a)"),
    ),
    _act(
        "hardswish",
        lambda a: np.where(_re(a) <= -3, 0 * a, np.where(_re(a) >= 3, a, a * (a + 3) / 6)),
        lambda g, o, a: np.where(_re(a) <= -3, 0 * g, np.where(_re(a) < 3, g * (a / 3 + 0.5), g)),
        "∂/∂a = 0 below -3, a/3 + 1/2 on [-3, 3], 1 above",
        _ex("F.hardswish(a * 3)"),
    ),
    _act(
        "hardsigmoid",
        lambda a: np.minimum(np.maximum(a + 3, 0), 6) / 6,
        lambda g, o, a: np.where((_re(a) > -3) & (_re(a) < 3), g * _SIXTH, 0.0),
        "∂/∂a = 1/6 strictly inside (-3, 3), else 0",
        (),  # PyTorch has no second derivative of it to compare with: tests/test_nn.py
    ),
    _act(
        "hardshrink",
        lambda a, lambd=0.5: np.where((_re(a) >= -lambd) & (_re(a) <= lambd), 0 * a, a),
        lambda g, o, a, lambd=0.5: np.where((_re(a) >= -lambd) & (_re(a) <= lambd), 0 * g, g),
        "∂/∂a = 0 on [-λ, λ], else 1",
        _ex("F.hardshrink(a)", "F.hardshrink(a, 0.3)", domain="real"),
        params={"lambd": 0.5},
        namespaces=("torch", "torch.nn.functional"),
        methods=("hardshrink",),
    ),
    _act(
        "softshrink",
        _softshrink,
        lambda g, o, a, lambd=0.5: np.where((_re(a) >= -lambd) & (_re(a) <= lambd), 0 * g, g),
        "∂/∂a = 0 on [-λ, λ], else 1",
        _ex("F.softshrink(a)", "F.softshrink(a, lambd=0.2)"),
        params={"lambd": 0.5},
    ),
    Op(
        "tanhshrink",
        None,
        (),
        "SubBackward0 over TanhBackward0",
        None,
        lower=_lower_tanhshrink,
        mirror="F.tanhshrink(a)",
        rule="recorded as a - tanh(a)",
        examples=_ex("F.tanhshrink(a)"),
        namespaces=("torch.nn.functional",),
        methods=(),
    ),
    Op(
        "softsign",
        None,
        (),
        "DivBackward0 over AddBackward0 over AbsBackward0",
        None,
        lower=_lower_softsign,
        mirror="F.softsign(a)",
        rule="recorded as a / (|a| + 1)",
        examples=_ex("F.softsign(a)", domain="away"),
        namespaces=("torch.nn.functional",),
        methods=(),
    ),
    _act(
        "logsigmoid",
        lambda a: np.where(_re(a) < 0, a, 0 * a) - np.log1p(np.exp(-_abs(a))),
        lambda g, o, a: g * _sigmoid(-a),
        "∂/∂a = σ(-a) = 1 - σ(a)",
        _ex("F.logsigmoid(a)"),
        label="LogSigmoidBackward0",
    ),
    _act(
        "relu6",
        lambda a: np.minimum(np.maximum(a, 0), 6),
        lambda g, o, a: np.where((_re(a) <= 0) | (_re(a) >= 6), 0 * g, g),
        "∂/∂a = 1 strictly inside (0, 6), else 0 (1 at nan, as PyTorch's hardtanh_backward)",
        _ex("F.relu6(a * 4)", domain="away"),
        label="HardtanhBackward0",
    ),
    Op(
        "glu",
        _glu,
        (_glu_grad,),
        "GluBackward0",
        _glu_shape,
        params={"dim": -1},
        mirror="F.glu(a, dim)",
        rule="a = [x, y] halved along dim: x·σ(y)",
        examples=(
            ("F.glu(A)", {"A": ((3, 4), REAL)}),
            ("F.glu(A, 0)", {"A": ((2, 3), REAL)}),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
    ),
    Op(
        "prelu",
        None,
        (),
        "PreluKernelBackward0 (over ViewBackward0 on the weight when the ranks differ)",
        None,
        arity=2,
        lower=_lower_prelu,
        mirror="F.prelu(a, weight)",
        rule="a if a > 0 else weight·a, the weight per channel (dimension 1) or shared",
        examples=(
            ("F.prelu(A, w)", {"A": ((2, 3), "away"), "w": ((3,), REAL)}),
            ("F.prelu(A, w)", {"A": ((2, 3, 2), "away"), "w": ((1,), REAL)}),
            ("F.prelu(a, w)", {"a": ((4,), "away"), "w": ((1,), REAL)}),
        ),
        namespaces=("torch", "torch.nn.functional"),
        inputs=("input", "weight"),
    ),
    _act(
        "rrelu",
        lambda a, lower=0.125, upper=1 / 3, training=False: np.where(
            _re(a) > 0, a, a * _rrelu_slope(lower, upper, training)
        ),
        lambda g, o, a, lower=0.125, upper=1 / 3, training=False: np.where(
            _re(a) > 0, g, g * _rrelu_slope(lower, upper, training)
        ),
        "training=False: leaky_relu with slope (lower + upper)/2",
        _ex("F.rrelu(a)", "F.rrelu(a, 0.2, 0.4)", domain="away"),
        params={"lower": 0.125, "upper": 1 / 3, "training": False},
        label="RreluWithNoiseBackward0",
        namespaces=("torch", "torch.nn.functional"),
    ),
    _act(
        "threshold",
        lambda a, threshold, value: np.where(_re(a) <= threshold, value + 0 * a, a),
        lambda g, o, a, threshold, value: np.where(_re(a) <= threshold, 0 * g, g),
        "∂/∂a = 1 where a > threshold, else 0",
        _ex("F.threshold(a, 0.1, 20.0)", domain="away"),
        params={"threshold": REQUIRED, "value": REQUIRED},
        namespaces=("torch", "torch.nn.functional"),
    ),
    Op(
        "softmin",
        None,
        (),
        "SoftmaxBackward0 over NegBackward0",
        None,
        lower=_lower_softmin,
        params={"dim": None},
        mirror="F.softmin(a, dim)",
        rule="recorded as softmax(-a, dim)",
        examples=(("F.softmin(A, dim=1)", M), ("F.softmin(a, 0)", V)),
        namespaces=("torch.nn.functional",),
        methods=(),
    ),
    Op(
        "nn_scalar",
        _scalar_fn,
        (_scalar_grad,),
        lambda kinds, attrs: attrs["label"],
        _same,
        params={"fn": "add", "other": 0.0, "label": "AddBackward0"},
        public=False,
        saves="inputs",  # pow reads its base
    ),
    Op(
        "nn_prelu_kernel",
        lambda a, w: np.where(_re(a) > 0, a, w * a),
        (
            lambda g, o, a, w: np.where(_re(a) > 0, g, w * g),
            lambda g, o, a, w: np.where(_re(a) > 0, 0 * g, a * g),
        ),
        "PreluKernelBackward0",
        lambda shapes, attrs: broadcast_shapes(*shapes),
        arity=2,
        public=False,
    ),
]


# ---- normalisation and layers ----------------------------------------------------------------


def _int_list(value, what):
    """A tuple of ints given as a tuple or list of numbers (normalized_shape=(3,))."""
    if not isinstance(value, (list, tuple)) or not all(
        isinstance(v, (int, float)) and float(v).is_integer() for v in value
    ):
        raise ShapeError(f"argument '{what}' must be tuple of ints, not {_kind(value)}")
    return tuple(int(v) for v in value)


def _kind(value):
    if isinstance(value, float):
        return "int" if value.is_integer() else "float"
    return type(value).__name__


def _layer_norm_axes(shape, normalized_shape):
    ns = _int_list(normalized_shape, "normalized_shape")
    if not ns:
        raise ShapeError("layer_norm() needs the argument 'normalized_shape'")
    if len(shape) < len(ns) or tuple(shape[len(shape) - len(ns) :]) != ns:
        raise ShapeError(
            f"Given normalized_shape={list(ns)}, expected input with shape "
            f"[*{''.join(', ' + str(d) for d in ns)}], but got input of size{list(shape)}"
        )
    return ns, tuple(range(len(shape) - len(ns), len(shape)))


def _layer_norm_shape(shapes, attrs):
    ns, _ = _layer_norm_axes(shapes[0], attrs["normalized_shape"])
    for name, s in zip(
        [n for n in ("weight", "bias") if attrs.get(n) is True], shapes[1:], strict=True
    ):
        if s != ns:
            raise ShapeError(
                f"Expected {name} to be of same shape as normalized_shape, but got {name} of "
                f"shape {list(s)} and normalized_shape = {list(ns)}"
            )
    return shapes[0]


def _normalized(x, axes, eps):
    mean = np.mean(x, axis=axes, keepdims=True)
    d = x - mean
    rstd = 1 / np.sqrt(np.mean(d * d, axis=axes, keepdims=True) + eps)
    return d * rstd, rstd


_LN_TENSORS = ("weight", "bias")


def _layer_norm(x, *extra, normalized_shape, weight=None, bias=None, eps=1e-5):
    _, axes = _layer_norm_axes(x.shape, normalized_shape)
    xhat, _ = _normalized(x, axes, eps)
    t = optional(extra, {"weight": weight, "bias": bias}, _LN_TENSORS)
    out = xhat if t["weight"] is None else xhat * t["weight"]
    return out if t["bias"] is None else out + t["bias"]


def _layer_norm_grads(g, o, x, *extra, normalized_shape, weight=None, bias=None, eps=1e-5):
    """NativeLayerNormBackward0: the input's gradient through mean and variance; the
    weight's Σ g·x̂ and the bias's Σ g (the engine sums over the leading dimensions)."""
    _, axes = _layer_norm_axes(x.shape, normalized_shape)
    xhat, rstd = _normalized(x, axes, eps)
    t = optional(extra, {"weight": weight, "bias": bias}, _LN_TENSORS)
    gy = g if t["weight"] is None else g * t["weight"]
    gx = rstd * (
        gy
        - np.mean(gy, axis=axes, keepdims=True)
        - xhat * np.mean(gy * xhat, axis=axes, keepdims=True)
    )
    out = [gx]
    if t["weight"] is not None:
        out.append(g * xhat)
    if t["bias"] is not None:
        out.append(g)
    return out


def _unsafe_view(a, shape):
    return np.reshape(a, shape)


def _linear_lower(emit, node, args, attrs):
    """What F.linear records, by ranks: x @ W.t() (DotBackward0, MvBackward0, MmBackward0,
    or unsqueeze/mm/squeeze) without a bias, AddmmBackward0 with one; an input of more than
    two dimensions is viewed as a matrix and the result viewed back."""
    x, w = args[:2]
    b = args[2] if attrs.get("bias") is True else None
    sx, sw = node(x).shape, node(w).shape
    if not sx:
        raise ShapeError(
            f"both arguments to linear need to be at least 1D, but they are 0D and {len(sw)}D"
        )
    if len(sw) not in (1, 2):
        raise ShapeError(f"weight must be a 1-D or 2-D tensor, got {len(sw)}-D")
    if sx[-1] != sw[-1]:
        rows = math.prod(sx[:-1])
        raise ShapeError(
            f"mat1 and mat2 shapes cannot be multiplied ({rows}x{sx[-1]} and "
            f"{sw[-1]}x{sw[0] if len(sw) == 2 else 1})"
        )
    wt = emit("transpose", (w,))
    if len(sw) == 1:
        if b is not None:
            raise ShapeError("linear with a 1-D weight and a bias is not supported")
        if len(sx) > 2:
            raise ShapeError("linear with a 1-D weight takes a 1-D or 2-D input")
        return emit("dot" if len(sx) == 1 else "mv", (x, wt))
    out_shape = sx[:-1] + (sw[0],)
    if b is not None:
        sb = node(b).shape
        if broadcast_shapes_ok(sb, (1, sw[0])) is False:
            raise ShapeError(
                f"The expanded size of the tensor ({sw[0]}) must match the existing size "
                f"({sb[-1]}) at non-singleton dimension 1.  Target sizes: [1, {sw[0]}].  "
                f"Tensor sizes: {list(sb)}"
            )
        if len(sx) == 2:
            return emit("nn_addmm", (b, x, wt))
        flat = _reshape_ids(emit, node, x, (-1, sx[-1]))
        return _reshape_ids(emit, node, emit("nn_addmm", (b, flat, wt)), out_shape)
    if len(sx) <= 2:
        from . import OPS  # torch.matmul's decomposition, as its row records it

        return OPS["matmul"].lower(emit, node, (x, wt), {})
    flat = _reshape_ids(emit, node, x, (-1, sx[-1]))
    return emit("nn_unsafe_view", (emit("mm", (flat, wt)),), {"shape": out_shape})


def broadcast_shapes_ok(a, b):
    try:
        return broadcast_shapes(a, b) == tuple(b)
    except ShapeError:
        return False


def _normalize_lower(emit, node, args, attrs):
    """F.normalize: x / norm(x, p, dim, keepdim=True).clamp_min(eps).expand_as(x)."""
    (x,) = args
    if not node(x).shape and attrs.get("dim", 1) not in (0, -1):
        _one_dim(attrs.get("dim", 1), 0)
    n = emit("norm", (x,), {"p": attrs.get("p", 2.0), "dim": attrs.get("dim", 1), "keepdim": True})
    clamped = emit("loss_clamp_min", (n,), {"min": attrs.get("eps", 1e-12)})
    return emit("div", (x, emit("nn_expand_as", (clamped,), {"shape": node(x).shape})))


ROWS += [
    Op(
        "layer_norm",
        _layer_norm,
        _layer_norm_grads,
        "NativeLayerNormBackward0",
        _layer_norm_shape,
        params={"normalized_shape": (), "weight": None, "bias": None, "eps": 1e-5},
        tensor_params=_LN_TENSORS,
        mirror="F.layer_norm(a, normalized_shape, weight, bias, eps)",
        rule="(a - mean)/√(var + eps)·weight + bias over the last dimensions",
        examples=(
            ("F.layer_norm(A, (3,))", M),
            ("F.layer_norm(A, [2, 3], eps=0.1)", M),
            (
                "F.layer_norm(A, (3,), w, b)",
                {"A": ((2, 2, 3), REAL), "w": ((3,), REAL), "b": ((3,), REAL)},
            ),
            ("F.layer_norm(A, (3,), w)", {"A": ((2, 3), REAL), "w": ((3,), REAL)}),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
    ),
    Op(
        "linear",
        None,
        (),
        "by ranks: MmBackward0 / AddmmBackward0 over TBackward0 (ViewBackward0 / "
        "UnsafeViewBackward0 around them for other ranks; DotBackward0 / MvBackward0 for a "
        "1-D weight)",
        None,
        arity=2,
        params={"bias": None},
        tensor_params=("bias",),
        lower=_linear_lower,
        mirror="F.linear(a, weight, bias)",
        rule="a @ weight.t() + bias",
        examples=(
            ("F.linear(A, W)", {"A": ((4, 3), REAL), "W": ((2, 3), REAL)}),
            ("F.linear(A, W, b)", {"A": ((4, 3), REAL), "W": ((2, 3), REAL), "b": ((2,), REAL)}),
            ("F.linear(a, W, b)", {"a": ((3,), REAL), "W": ((2, 3), REAL), "b": ((2,), REAL)}),
            ("F.linear(a, W)", {"a": ((3,), REAL), "W": ((2, 3), REAL)}),
            ("F.linear(A, W)", {"A": ((2, 4, 3), REAL), "W": ((2, 3), REAL)}),
            (
                "F.linear(A, W, bias=b)",
                {"A": ((2, 4, 3), REAL), "W": ((2, 3), REAL), "b": ((2,), REAL)},
            ),
            ("F.linear(A, w)", {"A": ((4, 3), REAL), "w": ((3,), REAL)}),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
        inputs=("input", "weight"),
    ),
    Op(
        "normalize",
        None,
        (),
        "DivBackward0 over ExpandBackward0 over ClampMinBackward0 over LinalgVectorNormBackward0",
        None,
        lower=_normalize_lower,
        params={"p": 2.0, "dim": 1, "eps": 1e-12},
        mirror="F.normalize(a, p, dim, eps)",
        rule="a / max(‖a‖ₚ along dim, eps)",
        examples=(
            ("F.normalize(A)", M),
            ("F.normalize(A, p=1.0, dim=0)", {"A": ((2, 3), "away")}),
            ("F.normalize(a, dim=0)", V),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
    ),
    Op(
        "nn_addmm",
        lambda b, x, w: b + x @ w,
        (
            lambda g, o, b, x, w: g,
            lambda g, o, b, x, w: g @ w.T,
            lambda g, o, b, x, w: x.T @ g,
        ),
        "AddmmBackward0",
        lambda shapes, attrs: (shapes[1][0], shapes[2][1]),
        arity=3,
        public=False,
    ),
    Op(
        "nn_expand_as",
        lambda a, shape: np.broadcast_to(a, shape),
        (lambda g, o, a, shape: g,),  # the engine sums the gradient back to a's shape
        "ExpandBackward0",
        lambda shapes, attrs: tuple(attrs["shape"]),
        params={"shape": ()},
        public=False,
        saves="none",
    ),
    Op(
        "nn_unsafe_view",
        _unsafe_view,
        (lambda g, o, a, shape: np.reshape(g, a.shape),),
        "UnsafeViewBackward0",
        lambda shapes, attrs: tuple(attrs["shape"]),
        params={"shape": ()},
        public=False,
        saves="none",
    ),
]


def _channel(v, ndim):
    """A per-channel vector (C,) shaped to broadcast over (N, C, *)."""
    return np.reshape(v, (1, -1) + (1,) * (ndim - 2))


def _centred_grad(gy, xhat, rstd, axes):
    """The input's gradient of (x - mean)·rstd over ``axes``, given the output's ``gy``."""
    return rstd * (
        gy
        - np.mean(gy, axis=axes, keepdims=True)
        - xhat * np.mean(gy * xhat, axis=axes, keepdims=True)
    )


def _affine_grads(g, xhat, t, axes):
    """The gradients of a per-channel weight and bias: Σ g·x̂ and Σ g over ``axes``."""
    out = []
    if t["weight"] is not None:
        out.append(np.sum(g * xhat, axis=axes))
    if t["bias"] is not None:
        out.append(np.sum(g, axis=axes))
    return out


def _affine(xhat, t):
    out = xhat if t["weight"] is None else xhat * _channel(t["weight"], xhat.ndim)
    return out if t["bias"] is None else out + _channel(t["bias"], xhat.ndim)


def _check_channels(shapes, attrs, names, channels, what):
    given = [n for n in names if attrs.get(n) is True]
    for name, s in zip(given, shapes[1:], strict=True):
        if math.prod(s) != channels or len(s) != 1:
            raise ShapeError(what(name, s))


def _group_norm_shape(shapes, attrs):
    x = shapes[0]
    g = attrs["num_groups"]
    if len(x) < 2:
        raise ShapeError(f"Expected at least 2 dimensions for input tensor but received {len(x)}")
    if g != int(g) or g <= 0 or x[1] % int(g):
        raise ShapeError(
            f"Expected number of channels in input to be divisible by num_groups, but got "
            f"input of shape {list(x)} and num_groups={g:g}"
        )
    _check_channels(
        shapes,
        attrs,
        _LN_TENSORS,
        x[1],
        lambda name, s: (
            f"Expected {name} to be a vector of size equal to the number of "
            f"channels in input, but got {name} of shape {list(s)} and input of shape {list(x)}"
        ),
    )
    return x


def _grouped(x, groups, eps):
    xg = np.reshape(x, (x.shape[0], int(groups), -1))
    xhat, rstd = _normalized(xg, (2,), eps)
    return xg, xhat, rstd


def _group_norm(x, *extra, num_groups, weight=None, bias=None, eps=1e-5):
    _, xhat, _ = _grouped(x, num_groups, eps)
    t = optional(extra, {"weight": weight, "bias": bias}, _LN_TENSORS)
    return _affine(np.reshape(xhat, x.shape), t)


def _group_norm_grads(g, o, x, *extra, num_groups, weight=None, bias=None, eps=1e-5):
    _, xhat, rstd = _grouped(x, num_groups, eps)
    t = optional(extra, {"weight": weight, "bias": bias}, _LN_TENSORS)
    gy = g if t["weight"] is None else g * _channel(t["weight"], x.ndim)
    gx = _centred_grad(np.reshape(gy, xhat.shape), xhat, rstd, (2,))
    axes = (0,) + tuple(range(2, x.ndim))
    return [np.reshape(gx, x.shape), *_affine_grads(g, np.reshape(xhat, x.shape), t, axes)]


_BN_TENSORS = ("running_mean", "running_var", "weight", "bias")


def _bn_stats(x, t, training, eps):
    axes = (0,) + tuple(range(2, x.ndim))
    if training:
        xhat, rstd = _normalized(x, axes, eps)
    else:
        rstd = 1 / np.sqrt(_channel(t["running_var"], x.ndim) + eps)
        xhat = (x - _channel(t["running_mean"], x.ndim)) * rstd
    return xhat, rstd, axes


def _batch_norm(x, *extra, training=False, momentum=0.1, eps=1e-5, **given):
    t = optional(extra, given, _BN_TENSORS)
    xhat, _, _ = _bn_stats(x, t, training, eps)
    return _affine(xhat, t)


def _batch_norm_grads(g, o, x, *extra, training=False, momentum=0.1, eps=1e-5, **given):
    """NativeBatchNormBackward0: through the batch statistics when training, through the
    fixed running statistics otherwise; the running statistics get none."""
    t = optional(extra, given, _BN_TENSORS)
    xhat, rstd, axes = _bn_stats(x, t, training, eps)
    gy = g if t["weight"] is None else g * _channel(t["weight"], x.ndim)
    gx = _centred_grad(gy, xhat, rstd, axes) if training else gy * rstd
    stats = [None] * sum(t[n] is not None for n in _BN_TENSORS[:2])
    return [gx, *stats, *_affine_grads(g, xhat, t, axes)]


def _batch_norm_shape(shapes, attrs):
    x = shapes[0]
    if len(x) < 2:
        raise ShapeError(
            f"batch_norm expects an input of 2 or more dimensions (N, C, ...), got {fmt_shape(x)}"
        )
    if attrs.get("training"):
        if math.prod(x) // x[1] == 1:
            raise ShapeError(
                f"Expected more than 1 value per channel when training, got input size "
                f"torch.Size({list(x)})"
            )
    elif attrs.get("running_mean") is not True or attrs.get("running_var") is not True:
        which = "running_mean" if attrs.get("running_mean") is not True else "running_var"
        raise ShapeError(f"{which} must be defined in evaluation mode")
    _check_channels(
        shapes,
        attrs,
        _BN_TENSORS,
        x[1],
        lambda name, s: f"{name} should contain {x[1]} elements not {math.prod(s)}",
    )
    return x


def _batch_norm_lower(emit, node, args, attrs):
    from .losses import no_grad_for

    given = [n for n in _BN_TENSORS if attrs.get(n) is True]
    for name, arg in zip(given, args[1:], strict=True):
        if name.startswith("running"):
            no_grad_for(node, arg, "native_batch_norm", name)
    return emit("nn_batch_norm", args, attrs)


def _rms_norm_lower(emit, node, args, attrs):
    """F.rms_norm as PyTorch records it: x · rsqrt(mean(x², dims) + eps) [· weight]."""
    x = args[0]
    ns, axes = _layer_norm_axes(node(x).shape, attrs["normalized_shape"])
    _layer_norm_shape([node(a).shape for a in args], attrs)
    eps = attrs.get("eps")
    if eps is None:  # torch.finfo(input.dtype).eps
        eps = 2.220446049250313e-16 if _re(node(x).value).dtype.itemsize == 8 else 1.1920929e-07
    sq = emit("nn_scalar", (x,), {"fn": "pow", "other": 2.0, "label": "PowBackward0"})
    mean = emit("mean", (sq,), {"dim": axes, "keepdim": True})
    r = emit("rsqrt", (scalar(emit, "add", mean, eps, "AddBackward1"),))
    out = emit("mul", (x, r))
    return emit("mul", (out, args[1])) if attrs.get("weight") is True else out


ROWS += [
    Op(
        "group_norm",
        _group_norm,
        _group_norm_grads,
        "NativeGroupNormBackward0",
        _group_norm_shape,
        params={"num_groups": REQUIRED, "weight": None, "bias": None, "eps": 1e-5},
        tensor_params=_LN_TENSORS,
        mirror="F.group_norm(a, num_groups, weight, bias, eps)",
        rule="normalised per sample over each group of channels, then weight and bias per channel",
        examples=(
            ("F.group_norm(A, 2)", {"A": ((2, 4, 3), REAL)}),
            (
                "F.group_norm(A, 2, w, b, eps=0.01)",
                {"A": ((2, 4, 3), REAL), "w": ((4,), REAL), "b": ((4,), REAL)},
            ),
            ("F.group_norm(A, 1, w)", {"A": ((3, 2), REAL), "w": ((2,), REAL)}),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
    ),
    Op(
        "batch_norm",
        None,
        (),
        "NativeBatchNormBackward0",
        None,
        params={
            "running_mean": None,
            "running_var": None,
            "weight": None,
            "bias": None,
            "training": False,
            "momentum": 0.1,
            "eps": 1e-5,
        },
        tensor_params=_BN_TENSORS,
        lower=_batch_norm_lower,
        mirror="F.batch_norm(a, running_mean, running_var, weight, bias, training, momentum, eps)",
        rule="per channel (dimension 1): batch statistics when training, else the running ones",
        examples=(
            (
                "F.batch_norm(A, None, None, w, b, training=True)",
                {"A": ((4, 3, 2), REAL), "w": ((3,), REAL), "b": ((3,), REAL)},
            ),
            ("F.batch_norm(A, None, None, training=True, eps=0.1)", {"A": ((3, 2), REAL)}),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
    ),
    Op(
        "rms_norm",
        None,
        (),
        "MulBackward0 over RsqrtBackward0 over AddBackward1 over MeanBackward1 over "
        "PowBackward0 (and MulBackward0 with a weight)",
        None,
        params={"normalized_shape": (), "weight": None, "eps": None},
        tensor_params=("weight",),
        lower=_rms_norm_lower,
        mirror="F.rms_norm(a, normalized_shape, weight, eps)",
        rule="a / √(mean(a²) + eps) · weight over the last dimensions",
        examples=(
            ("F.rms_norm(A, (3,))", M),
            ("F.rms_norm(A, [2, 3], w, eps=0.1)", {"A": ((2, 2, 3), REAL), "w": ((2, 3), REAL)}),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
    ),
    Op(
        "nn_batch_norm",
        _batch_norm,
        _batch_norm_grads,
        "NativeBatchNormBackward0",
        _batch_norm_shape,
        params={
            "running_mean": None,
            "running_var": None,
            "weight": None,
            "bias": None,
            "training": False,
            "momentum": 0.1,
            "eps": 1e-5,
        },
        tensor_params=_BN_TENSORS,
        public=False,
    ),
]


# ---- distances ---------------------------------------------------------------------------


def _vector_norm():
    from . import OPS  # the norm row's rules (torch.norm and linalg.vector_norm share them)

    return OPS["norm"]


def _pairwise_distance_lower(emit, node, args, attrs):
    """ATen: norm(x1 - x2 + eps, p, last dimension, keepdim)."""
    a, b = args
    ndim = max(len(node(a).shape), len(node(b).shape))
    shifted = scalar(emit, "add", emit("sub", (a, b)), attrs.get("eps", 1e-6), "AddBackward1")
    return emit(
        "nn_norm_dim",
        (shifted,),
        {"p": attrs.get("p", 2.0), "dim": max(ndim - 1, 0), "keepdim": attrs.get("keepdim", False)},
    )


def _cosine_similarity_lower(emit, node, args, attrs):
    """ATen: each operand over its norm (a clone clamped at eps outside autograd), the
    product summed over dim."""
    from .losses import _broadcast_tensors

    dim, eps = attrs.get("dim", 1), attrs.get("eps", 1e-8)
    parts = []
    for x in _broadcast_tensors(emit, node, args):
        n = emit("norm", (x,), {"p": 2.0, "dim": dim, "keepdim": True})
        parts.append(emit("div", (x, emit("nn_clamped_clone", (n,), {"min": eps}))))
    return emit("sum", (emit("mul", tuple(parts)),), {"dim": dim, "keepdim": False})


def _pdist_pairs(x):
    n = x.shape[0]
    i, j = np.triu_indices(n, 1)
    return i, j, x[i] - x[j]


def _pdist_check(shape, p):
    if len(shape) != 2:
        raise ShapeError(f"pdist only supports 2D tensors, got: {len(shape)}D")
    if p < 0:
        raise ShapeError("pdist only supports non-negative p values")


def _pdist(x, p=2.0):
    _pdist_check(x.shape, p)
    _, _, d = _pdist_pairs(x)
    return _vector_norm().forward(d, p=p, dim=1, keepdim=False)


def _pdist_grad(g, o, x, p=2.0):
    """PdistBackward0: per pair sign(d)·|d|^(p-1)/dist^(p-1) (0 where dist is 0; for p=inf
    every coordinate at the maximum, without sharing a tie)."""
    i, j, d = _pdist_pairs(x)
    dist = o[:, None]
    sign = np.sign(_re(d))
    if p == 0:
        local = 0 * d
    elif p == 1:
        local = sign + 0 * d
    elif p == math.inf:
        local = sign * (_re(_abs(d)) == _re(dist))
    elif p == 2:
        local = np.where(_re(dist) == 0, 0 * d, d / dist)
    else:
        local = np.where(_re(dist) == 0, 0 * d, sign * _abs(d) ** (p - 1) / dist ** (p - 1))
    contrib = g[:, None] * local
    out = np.zeros(x.shape, dtype=np.result_type(contrib, x))
    np.add.at(out, i, contrib)
    np.add.at(out, j, -contrib)
    return out


def _pdist_shape(shapes, attrs):
    _pdist_check(shapes[0], attrs.get("p", 2.0))
    n = shapes[0][0]
    return (n * (n - 1) // 2,)


ROWS += [
    Op(
        "pairwise_distance",
        None,
        (),
        "NormBackward1 over AddBackward1 over SubBackward0",
        None,
        arity=2,
        params={"p": 2.0, "eps": 1e-6, "keepdim": False},
        lower=_pairwise_distance_lower,
        mirror="F.pairwise_distance(a, b, p, eps, keepdim)",
        rule="‖a - b + eps‖ₚ over the last dimension",
        examples=(
            ("F.pairwise_distance(A, B)", {"A": ((2, 3), REAL), "B": ((2, 3), REAL)}),
            (
                "F.pairwise_distance(A, b, p=1.0, keepdim=True)",
                {"A": ((2, 3), "away"), "b": ((3,), REAL)},
            ),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
        inputs=("x1", "x2"),
    ),
    Op(
        "cosine_similarity",
        None,
        (),
        "SumBackward1 over MulBackward0 over DivBackward0 (each over CloneBackward0 over "
        "LinalgVectorNormBackward0)",
        None,
        arity=2,
        params={"dim": 1, "eps": 1e-8},
        lower=_cosine_similarity_lower,
        mirror="F.cosine_similarity(a, b, dim, eps)",
        rule="Σ (a/‖a‖)(b/‖b‖) along dim, norms clamped at eps",
        examples=(
            ("F.cosine_similarity(A, B)", {"A": ((2, 3), REAL), "B": ((2, 3), REAL)}),
            ("F.cosine_similarity(a, b, dim=0)", {"a": ((3,), REAL), "b": ((3,), REAL)}),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
        inputs=("x1", "x2"),
    ),
    Op(
        "pdist",
        _pdist,
        (_pdist_grad,),
        "PdistBackward0",
        _pdist_shape,
        params={"p": 2.0},
        mirror="F.pdist(a, p)",
        rule="‖aᵢ - aⱼ‖ₚ for every pair of rows i < j",
        examples=(),  # PyTorch has no second derivative of it to compare with: tests/test_nn.py
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
    ),
    Op(
        "nn_norm_dim",
        lambda a, p=2.0, dim=None, keepdim=False: _vector_norm().forward(
            a, p=p, dim=dim, keepdim=keepdim
        ),
        (
            lambda g, o, a, p=2.0, dim=None, keepdim=False: _vector_norm().grads[0](
                g, o, a, p=p, dim=dim, keepdim=keepdim
            ),
        ),
        "NormBackward1",
        _reduce_shape,
        params={"p": 2.0, "dim": None, "keepdim": False},
        public=False,
    ),
    Op(
        "nn_clamped_clone",
        lambda a, min=0.0: np.where(_re(a) < min, min + 0 * a, a),
        (lambda g, o, a, min=0.0: g,),
        "CloneBackward0",
        _same,
        params={"min": 0.0},
        public=False,
        saves="none",
    ),
]


def _instance_norm_lower(emit, node, args, attrs):
    """ATen's instance_norm: the input viewed as (1, N·C, *), each per-channel tensor
    repeated N times, batch_norm, and the result viewed back."""
    from .losses import no_grad_for

    x = args[0]
    sx = node(x).shape
    if len(sx) < 3:
        raise ShapeError(
            f"instance_norm expects an input of 3 or more dimensions (N, C, ...), got "
            f"{fmt_shape(sx)}"
        )
    stats = attrs.get("use_input_stats", True)
    if stats and math.prod(sx[2:]) <= 1:
        raise ShapeError(
            f"Expected more than 1 spatial element when training, got input size "
            f"torch.Size({list(sx)})"
        )
    given = [n for n in _BN_TENSORS if attrs.get(n) is True]
    n, c = sx[:2]
    tensors = []
    for name, arg in zip(given, args[1:], strict=True):
        if name.startswith("running"):
            no_grad_for(node, arg, "native_batch_norm", name)
        if node(arg).shape != (c,):
            raise ShapeError(f"{name} should contain {c} elements not {math.prod(node(arg).shape)}")
        tensors.append(emit("nn_repeat", (arg,), {"times": n}))
    flat = _reshape_ids(emit, node, x, (1, n * c, *sx[2:]))
    bn = {k: attrs.get(k) for k in _BN_TENSORS}
    bn.update(training=stats, momentum=attrs.get("momentum", 0.1), eps=attrs.get("eps", 1e-5))
    out = emit("nn_batch_norm", (flat, *tensors), bn)
    return _reshape_ids(emit, node, out, sx)


ROWS += [
    Op(
        "instance_norm",
        None,
        (),
        "ViewBackward0 over NativeBatchNormBackward0 over ViewBackward0 (and RepeatBackward0 "
        "on the weight and bias)",
        None,
        params={
            "running_mean": None,
            "running_var": None,
            "weight": None,
            "bias": None,
            "use_input_stats": True,
            "momentum": 0.1,
            "eps": 1e-5,
        },
        tensor_params=_BN_TENSORS,
        lower=_instance_norm_lower,
        mirror="F.instance_norm(a, running_mean, running_var, weight, bias, use_input_stats, "
        "momentum, eps)",
        rule="normalised per sample and channel over the spatial dimensions",
        examples=(
            ("F.instance_norm(A)", {"A": ((2, 3, 4), REAL)}),
            (
                "F.instance_norm(A, weight=w, bias=b, eps=0.01)",
                {"A": ((2, 3, 2, 2), REAL), "w": ((3,), REAL), "b": ((3,), REAL)},
            ),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
    ),
    Op(
        "nn_repeat",
        lambda a, times=1: np.tile(a, times),
        (lambda g, o, a, times=1: np.sum(np.reshape(g, (times, -1)), axis=0),),
        "RepeatBackward0",
        lambda shapes, attrs: (shapes[0][0] * attrs["times"],),
        params={"times": 1},
        public=False,
        saves="none",
    ),
]


# ---- attention ---------------------------------------------------------------------------


def _safe_softmax(a):
    """torch._safe_softmax over the last dimension: a row that is all -inf gives zeros."""
    m = np.amax(_re(a), axis=-1, keepdims=True)
    e = np.exp(a - np.where(np.isneginf(m), 0.0, m))
    s = np.sum(e, axis=-1, keepdims=True)
    return np.where(_re(s) == 0, 0 * e, e / np.where(_re(s) == 0, 1.0, s))


def _causal_mask(shape):
    rows, cols = shape[-2], shape[-1]
    return np.where(np.tril(np.ones((rows, cols), dtype=bool)), 0.0, -np.inf)


def _sdpa_lower(emit, node, args, attrs):
    """The CPU math kernel of F.scaled_dot_product_attention: q and kᵀ each scaled by
    √scale, q·kᵀ, + mask (or the causal mask), safe softmax, · v; each product as
    torch.matmul records it."""
    from . import OPS

    q, k, v = args[:3]
    mask = args[3] if attrs.get("attn_mask") is True else None
    dropout = attrs.get("dropout_p", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise ShapeError(
            f"scaled_dot_product_attention(): argument 'dropout_p' must be float, not "
            f"{type(dropout).__name__}"
        )
    if not 0.0 <= dropout <= 1.0:
        raise ShapeError(f"dropout probability has to be between 0 and 1, but got {dropout:g}")
    if mask is not None and attrs.get("is_causal"):
        raise EvaluationError(
            "_scaled_dot_product_attention: Explicit attn_mask should not be set when "
            "is_causal=True"
        )
    sq, sk, sv = node(q).shape, node(k).shape, node(v).shape
    if min(len(sq), len(sk), len(sv)) < 2:
        raise ShapeError(
            f"Expected query, key, and value to all be  at least 2 dimensional, but got "
            f"query.dim: {len(sq)} key.dim: {len(sk)} and value.dim: {len(sv)} instead."
        )
    if mask is not None:
        kind = node(mask).value.dtype.kind
        if kind == "b":  # ATen's convert_boolean_attn_mask: False is -inf, True is 0
            mask = emit("nn_bool_mask", (mask,))
        elif kind not in "fc":  # (complex: the dual numbers of forward mode)
            raise EvaluationError(
                f"Expected attn_mask dtype to be bool or float or to match query dtype, but got "
                f"attn_mask.dtype: {_TORCH_DTYPES.get(str(node(mask).value.dtype), 'long int')} "
                f"and  query.dtype: {_TORCH_DTYPES.get(str(node(q).value.dtype))} instead."
            )
    scale = attrs.get("scale")
    if _flash(node, (q, k, v), mask if mask is None else args[3], attrs):
        flash = {"scale": scale, "is_causal": bool(attrs.get("is_causal"))}
        extra = () if mask is None else (mask,)
        return emit("nn_sdpa_flash", (q, k, v, *extra), {**flash, "attn_mask": mask is not None})
    if attrs.get("enable_gqa"):
        k, v = (_repeat_heads(emit, node, t, sq) for t in (k, v))
    factor = math.sqrt(abs(scale) if scale is not None else 1 / math.sqrt(sq[-1]))
    qs = scalar(
        emit, "mul", q, -factor if scale is not None and scale < 0 else factor, "MulBackward1"
    )
    kt = scalar(emit, "mul", emit("nn_transpose_last", (k,)), factor, "MulBackward1")
    matmul = OPS["matmul"].lower
    attn = matmul(emit, node, (qs, kt), {})
    if mask is not None:
        attn = emit("add", (attn, mask))
    elif attrs.get("is_causal"):
        attn = emit("nn_causal_add", (attn,))
    attn = emit("nn_safe_softmax", (attn,))
    # a dropout_p > 0 takes the math kernel, which drops after the softmax: at::dropout(attn,
    # p, true), on CPU the same _dropout_impl (and draws) as F.dropout's
    attn = _dropout_core(
        emit, node, attn, float(dropout), True, False, False, "scaled_dot_product_attention"
    )
    return matmul(emit, node, (attn, v), {})


def _flash(node, qkv, mask, attrs):
    """Whether PyTorch's CPU dispatch picks its flash kernel (sdp_utils_cpp's
    use_flash_attention_cpp): 4-D q, k, v of the same batch, heads and head size, unit
    last-dim strides, non-empty sequences, and no mask or a constant one of shape (L, S) or
    (1|B, 1|H, L, S). Then it records one ScaledDotProductFlashAttentionForCpuBackward0."""
    shapes = [node(t).shape for t in qkv]
    if any(len(s) != 4 for s in shapes) or attrs.get("dropout_p", 0.0) != 0.0:
        return False
    sq, sk, sv = shapes
    if not (sq[0] == sk[0] == sv[0] and sq[1] == sk[1] == sv[1] and sq[3] == sk[3] == sv[3]):
        return False
    if sq[2] == 0 or sk[2] == 0:
        return False
    for t in qkv:
        value = node(t).value
        if value.strides[-1] != value.itemsize and value.shape[-1] != 1:  # (size 1: any)
            return False
    if mask is None:
        return True
    m = node(mask)
    if m.requires_grad:
        return False
    if len(m.shape) == 2:  # (each dimension may also be 1: it broadcasts)
        return m.shape[0] in (1, sq[2]) and m.shape[1] in (1, sk[2])
    return (
        len(m.shape) == 4
        and m.shape[0] in (1, sq[0])
        and m.shape[1] in (1, sq[1])
        and m.shape[2] in (1, sq[2])
        and m.shape[3] in (1, sk[2])
    )


def _flash_probs(q, k, extra, scale, is_causal, attn_mask):
    """softmax(scale · q kᵀ + mask), a row masked everywhere giving zeros."""
    factor = scale if scale is not None else 1 / math.sqrt(q.shape[-1])
    scores = np.matmul(q, np.swapaxes(k, -1, -2))
    # the causal mask goes on before the scaling, as the kernel does (so a scale <= 0 makes
    # the masked rows NaN, as there)
    scores = (scores + _causal_mask(scores.shape) if is_causal else scores) * factor
    if attn_mask:
        scores = scores + extra[0]
    return _safe_softmax(scores), factor


def _flash_forward(q, k, v, *extra, scale=None, is_causal=False, attn_mask=False):
    """The kernel's output is at::empty_like(query): laid out as the query is, so that a
    later view or reshape of it is a view (or a copy) exactly where PyTorch's is."""
    out = np.matmul(_flash_probs(q, k, extra, scale, is_causal, attn_mask)[0], v)
    outer = _layout_like(q.shape, q.strides)
    return np.ascontiguousarray(out.transpose(outer)).transpose(np.argsort(outer))


def _layout_like(shape, strides):
    """ATen's infer_dense_strides, as empty_like lays a tensor out: the dimensions from
    outermost to innermost, by an insertion sort on the strides (a zero stride is left
    where it is; equal strides put the larger size outside)."""
    perm = list(range(len(shape) - 1, -1, -1))  # innermost first

    def swap(d0, d1):
        s0, s1 = strides[d0], strides[d1]
        if s0 == 0 or s1 == 0:
            return 0
        if s0 != s1:
            return -1 if s0 < s1 else 1
        return 1 if shape[d0] > shape[d1] else 0

    for i in range(1, len(perm)):
        j = i
        for k in range(i - 1, -1, -1):
            c = swap(perm[k], perm[j])
            if c > 0:
                perm[k], perm[j] = perm[j], perm[k]
                j = k
            elif c < 0:
                break
    return perm[::-1]


def _flash_grads(g, o, q, k, v, *extra, scale=None, is_causal=False, attn_mask=False):
    p, factor = _flash_probs(q, k, extra, scale, is_causal, attn_mask)
    allowed = np.isfinite(_causal_mask(p.shape)) if is_causal else True
    p = np.where(allowed, p, 0)  # as the kernel's dV skips what the causal mask hides
    dv = np.matmul(np.swapaxes(p, -1, -2), g)
    dp = np.matmul(g, np.swapaxes(v, -1, -2))
    ds = p * (dp - np.sum(dp * p, axis=-1, keepdims=True)) * factor
    dq = np.matmul(ds, k)
    dk = np.matmul(np.swapaxes(ds, -1, -2), q)
    return [dq, dk, dv, None]


def _flash_shape(shapes, attrs):
    return shapes[0][:-1] + shapes[2][-1:]


_TORCH_DTYPES = {"float32": "float", "float64": "double", "int64": "long int", "int32": "int"}


def _repeat_heads(emit, node, t, sq):
    """enable_gqa: key or value repeat_interleave'd along dim -3 to the query's heads, as
    ATen records it (unsqueeze, expand, a contiguous clone and a view)."""
    st = node(t).shape
    for s in (sq, st):
        if len(s) < 3:
            raise ShapeError(
                f"Dimension out of range (expected to be in range of [{-len(s)}, "
                f"{len(s) - 1}], but got -3)"
            )
    if sq[-3] % st[-3]:
        raise ShapeError(
            "Number of heads in key and value must divide the number of heads in query"
        )
    r = sq[-3] // st[-3]
    if r == 1:
        return t
    t = emit("unsqueeze", (t,), {"dim": len(st) - 2})
    t = emit("expand", (t,), {"size": st[:-2] + (r,) + st[-2:]})
    shape = st[:-3] + (st[-3] * r,) + st[-2:]
    return emit("reshape_view", (emit("clone", (t,)),), {"shape": shape, "kind": "view"})


def _safe_softmax_grad(g, o, a):
    return (g - np.sum(g * o, axis=-1, keepdims=True)) * o


def _swap_last(shapes, attrs):
    s = shapes[0]
    if len(s) < 2:
        raise ShapeError(f"expected a tensor of 2 or more dimensions, got {fmt_shape(s)}")
    return s[:-2] + (s[-1], s[-2])


ROWS += [
    Op(
        "scaled_dot_product_attention",
        None,
        (),
        "MulBackward1 on q and on TransposeBackward0 of k, the products as torch.matmul "
        "records them (MmBackward0, or BmmBackward0 with views), AddBackward0 for a mask "
        "(a boolean one is -inf where False), SafeSoftmaxBackward0; enable_gqa: "
        "UnsqueezeBackward0, ExpandBackward0, CloneBackward0, ViewBackward0 on k and v; "
        "dropout_p > 0: MulBackward0 on the softmax",
        None,
        arity=3,
        params={
            "attn_mask": None,
            "dropout_p": 0.0,
            "is_causal": False,
            "scale": None,
            "enable_gqa": False,
        },
        tensor_params=("attn_mask",),
        lower=_sdpa_lower,
        mirror="F.scaled_dot_product_attention(q, k, v, attn_mask, dropout_p, is_causal, scale, "
        "enable_gqa)",
        rule="softmax(q kᵀ · scale + mask) v (dropped as F.dropout drops, for dropout_p > 0)",
        examples=(
            (
                "F.scaled_dot_product_attention(q, k, v)",
                {"q": ((3, 4), REAL), "k": ((5, 4), REAL), "v": ((5, 2), REAL)},
            ),
            (
                "F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=0.3)",
                {"q": ((3, 4), REAL), "k": ((3, 4), REAL), "v": ((3, 2), REAL)},
            ),
            (
                "F.scaled_dot_product_attention(q, k, v, attn_mask=m)",
                {
                    "q": ((3, 4), REAL),
                    "k": ((5, 4), REAL),
                    "v": ((5, 2), REAL),
                    "m": ((3, 5), REAL),
                },
            ),
            (
                "F.scaled_dot_product_attention(q, k, v, attn_mask=m > 0, enable_gqa=True)",
                {
                    "q": ((2, 4, 3, 2), REAL),
                    "k": ((2, 2, 5, 2), REAL),
                    "v": ((2, 2, 5, 3), REAL),
                    "m": ((3, 5), REAL),
                },
            ),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
        inputs=("query", "key", "value"),
    ),
    Op(
        "nn_transpose_last",
        lambda a: np.swapaxes(a, -1, -2),
        (lambda g, o, a: np.swapaxes(g, -1, -2),),
        "TransposeBackward0",
        _swap_last,
        public=False,
        saves="none",
    ),
    Op(
        "nn_safe_softmax",
        _safe_softmax,
        (_safe_softmax_grad,),
        "SafeSoftmaxBackward0",
        _same,
        public=False,
        saves="out",
    ),
    Op(
        "nn_sdpa_flash",
        _flash_forward,
        _flash_grads,
        "ScaledDotProductFlashAttentionForCpuBackward0",
        _flash_shape,
        arity=3,
        params={"scale": None, "is_causal": False, "attn_mask": None},
        tensor_params=("attn_mask",),
        public=False,
        saves="inputs",
    ),
    Op(
        "nn_bool_mask",
        lambda m: np.where(m, 0.0, -np.inf),
        None,
        None,
        _same,
        public=False,
        saves="none",
    ),
    Op(
        "nn_causal_add",
        lambda a: a + _causal_mask(a.shape),
        (lambda g, o, a: g,),
        "AddBackward0",
        _same,
        public=False,
        saves="none",
    ),
]


def _bilinear_lower(emit, node, args, attrs):
    """ATen's bilinear: both inputs flattened to matrices, one _trilinear node, the result
    viewed back, + bias."""
    a, b, w = args[:3]
    sa, sb, sw = (node(v).shape for v in args[:3])
    if len(sa) != len(sb):
        raise ShapeError(f"bilinear(): input dimensions do not match: got {len(sa)} and {len(sb)}")
    for d, (m, n) in enumerate(zip(sa[:-1], sb[:-1], strict=True)):
        if m != n:
            raise ShapeError(
                f"bilinear(): input batch dimensions do not match at dim {d}: got {m} and {n}"
            )
    if len(sw) != 3:
        raise ShapeError(f"bilinear(): weight must be 3-dimensional, got {len(sw)}-D")
    for k, (s, want) in enumerate(((sa, sw[1]), (sb, sw[2])), start=1):
        if not s or s[-1] != want:
            raise ShapeError(
                f"bilinear(): input{k} size does not match weight size: got "
                f"{s[-1] if s else 0} but expected {want}"
            )
    out = emit(
        "nn_trilinear",
        (_reshape_ids(emit, node, a, (-1, sa[-1])), w, _reshape_ids(emit, node, b, (-1, sb[-1]))),
    )
    out = _reshape_ids(emit, node, out, sa[:-1] + (sw[0],))
    if attrs.get("bias") is not True:
        return out
    sbias = node(args[3]).shape
    if sbias != (sw[0],):
        raise ShapeError(
            f"bilinear(): bias size does not match weight size: got "
            f"{sbias[-1] if sbias else 0} but expected {sw[0]}"
        )
    return emit("add", (out, args[3]))


ROWS += [
    Op(
        "bilinear",
        None,
        (),
        "ViewBackward0 over TrilinearBackward0 over ViewBackward0s, AddBackward0 for a bias",
        None,
        arity=3,
        params={"bias": None},
        tensor_params=("bias",),
        lower=_bilinear_lower,
        mirror="F.bilinear(a, b, weight, bias)",
        rule="yₖ = aᵀ Wₖ b + biasₖ",
        examples=(
            (
                "F.bilinear(a, b, W)",
                {"a": ((2, 3), REAL), "b": ((2, 4), REAL), "W": ((5, 3, 4), REAL)},
            ),
            (
                "F.bilinear(a, b, W, c)",
                {"a": ((3,), REAL), "b": ((2,), REAL), "W": ((2, 3, 2), REAL), "c": ((2,), REAL)},
            ),
        ),
        namespaces=("torch", "torch.nn.functional"),
        methods=(),
        inputs=("input1", "input2", "weight"),
    ),
    Op(
        "nn_trilinear",
        lambda a, w, b: np.einsum("ni,oij,nj->no", a, w, b),
        (
            lambda g, o, a, w, b: np.einsum("no,oij,nj->ni", g, w, b),
            lambda g, o, a, w, b: np.einsum("no,ni,nj->oij", g, a, b),
            lambda g, o, a, w, b: np.einsum("no,oij,ni->nj", g, w, a),
        ),
        "TrilinearBackward0",
        lambda shapes, attrs: (shapes[0][0], shapes[1][0]),
        arity=3,
        public=False,
    ),
]


def _channel_pad(a, before=0, after=0):
    width = [(0, 0)] * a.ndim
    width[2] = (before, after)
    return np.pad(a, width)


def _channel_pad_grad(g, o, a, before=0, after=0):
    return np.take(g, range(before, before + a.shape[2]), axis=2)


def _channel_pool(a, size=1, label=""):
    """The mean of each window of ``size`` along dimension 2, stride 1 (LRN's avg_pool)."""
    n = a.shape[2] - size + 1
    return sum(np.take(a, range(k, k + n), axis=2) for k in range(size)) / size


def _channel_pool_grad(g, o, a, size=1, label=""):
    out = np.zeros(a.shape, dtype=np.result_type(g, a))
    n = g.shape[2]
    for k in range(size):
        index = [slice(None)] * a.ndim
        index[2] = slice(k, k + n)
        out[tuple(index)] += g / size
    return out


def _lrn_lower(emit, node, args, attrs):
    """F.local_response_norm, as functional.py computes it: x² averaged over a window of
    `size` channels (zero-padded), then x / (k + α·avg)^β."""
    (x,) = args
    sx = node(x).shape
    if len(sx) < 3:
        raise ShapeError(f"Expected 3D or higher dimensionality input (got {len(sx)} dimensions)")
    if math.prod(sx) == 0:
        return x
    size = attrs["size"]
    size = size[0] if isinstance(size, tuple) and len(size) == 1 else size
    if not isinstance(size, (int, float)) or size != int(size) or size < 1:
        raise ShapeError(f"local_response_norm(): size must be a positive integer, got {size}")
    size = int(size)
    sq = emit("mul", (x, x))
    pad = {"before": size // 2, "after": (size - 1) // 2}
    if len(sx) == 3:
        div = emit("nn_channel_pad", (emit("unsqueeze", (sq,), {"dim": 1}),), pad)
        div = emit("nn_channel_pool", (div,), {"size": size, "label": "AvgPool2DBackward0"})
        div = emit("squeeze", (div,), {"dim": 1})
    else:
        div = _reshape_ids(emit, node, sq, (sx[0], 1, sx[1], sx[2], -1))
        div = emit("nn_channel_pad", (div,), pad)
        div = emit("nn_channel_pool", (div,), {"size": size, "label": "AvgPool3DBackward0"})
        div = _reshape_ids(emit, node, emit("squeeze", (div,), {"dim": 1}), sx)
    div = scalar(emit, "mul", div, attrs.get("alpha", 1e-4), "MulBackward0")
    div = scalar(emit, "add", div, attrs.get("k", 1.0), "AddBackward0")
    div = emit(
        "nn_scalar",
        (div,),
        {"fn": "pow", "other": attrs.get("beta", 0.75), "label": "PowBackward0"},
    )
    return emit("div", (x, div))


ROWS += [
    Op(
        "local_response_norm",
        None,
        (),
        "DivBackward0 over PowBackward0, AddBackward0, MulBackward0, SqueezeBackward1 over "
        "AvgPool2DBackward0 / AvgPool3DBackward0 over ConstantPadNdBackward0 over x·x",
        None,
        lower=_lrn_lower,
        params={"size": REQUIRED, "alpha": 1e-4, "beta": 0.75, "k": 1.0},
        mirror="F.local_response_norm(a, size, alpha, beta, k)",
        rule="a / (k + α·mean of a² over `size` neighbouring channels)^β",
        examples=(
            ("F.local_response_norm(A, 3)", {"A": ((2, 4, 3), REAL)}),
            (
                "F.local_response_norm(A, 2, alpha=0.5, beta=0.5, k=2.0)",
                {"A": ((2, 3, 2, 2), REAL)},
            ),
        ),
        namespaces=("torch.nn.functional",),
        methods=(),
    ),
    Op(
        "nn_channel_pad",
        _channel_pad,
        (_channel_pad_grad,),
        "ConstantPadNdBackward0",
        lambda shapes, attrs: tuple(
            d + attrs["before"] + attrs["after"] if i == 2 else d for i, d in enumerate(shapes[0])
        ),
        params={"before": 0, "after": 0},
        public=False,
        saves="none",
    ),
    Op(
        "nn_channel_pool",
        _channel_pool,
        (_channel_pool_grad,),
        lambda kinds, attrs: attrs["label"],
        lambda shapes, attrs: tuple(
            d - attrs["size"] + 1 if i == 2 else d for i, d in enumerate(shapes[0])
        ),
        params={"size": 1, "label": "AvgPool2DBackward0"},
        public=False,
        saves="none",
    ),
]


# ---- embedding ---------------------------------------------------------------------------


def _embedding_rows(i, w):
    """The weight rows the indices pick, checked as ATen's index_select checks them."""
    if i.size and (i.min() < 0 or i.max() >= w.shape[0]):
        raise EvaluationError(
            "index out of range in self",
            hint=f"embedding indices must lie in [0, {w.shape[0]}) for a weight of "
            f"{w.shape[0]} rows",
        )
    return i.astype(np.int64, copy=False)


def _embedding(i, w, padding_idx=-1, scale_grad_by_freq=False):
    return w[_embedding_rows(i, w)]


def _embedding_grad(g, o, i, w, padding_idx=-1, scale_grad_by_freq=False):
    """ATen's embedding_dense_backward: each picked row's adjoint added into its weight
    row, except at padding_idx; scale_grad_by_freq divides by how often each row is picked."""
    flat = _embedding_rows(i, w).reshape(-1)
    rows = g.reshape(-1, w.shape[1])
    if scale_grad_by_freq:
        rows = rows / np.bincount(flat, minlength=w.shape[0])[flat][:, None]
    keep = flat != padding_idx
    out = np.zeros(w.shape, dtype=g.dtype)
    np.add.at(out, flat[keep], rows[keep])
    return out


_INDEX_TYPES = {"float32": "torch.FloatTensor", "float64": "torch.DoubleTensor"}
_INDEX_TYPES |= {"bool": "CPUBoolType", "int8": "CPUCharType", "uint8": "CPUByteType"}


def _embedding_lower(emit, node, args, attrs):
    """F.embedding's checks and its padding_idx (negative: counted from the end), then the
    one EmbeddingBackward0 node."""
    i, w = args
    kind = _re(node(i).value).dtype
    if kind.name not in ("int64", "int32"):
        raise EvaluationError(
            "Expected tensor for argument #1 'indices' to have one of the following scalar "
            f"types: Long, Int; but got {_INDEX_TYPES.get(kind.name, kind.name)} instead (while "
            "checking arguments for embedding)",
            hint="give the indices as an int64 input (i=int64:0,2) or convert them with .long()",
        )
    sw = node(w).shape
    if len(sw) != 2:
        raise ShapeError("'weight' must be 2-D")
    if attrs.get("max_norm") is not None:
        raise EvaluationError(
            "F.embedding(max_norm=...) renormalises the weight's rows in place before the "
            "lookup (torch.embedding_renorm_), which gradcli does not do",
            hint="leave max_norm=None (renormalise the weight in the program if you need it)",
        )
    pad = attrs.get("padding_idx")
    for key in ("padding_idx", "scale_grad_by_freq", "sparse"):
        v = attrs.get(key)
        if key == "padding_idx":
            if v is not None and not (isinstance(v, float) and v.is_integer()):
                raise ShapeError(
                    f"embedding(): argument 'padding_idx' (position 3) must be int, not "
                    f"{type(v).__name__}"
                )
        elif not isinstance(v, bool):
            raise ShapeError(f"embedding(): argument '{key}' must be bool, not {type(v).__name__}")
    if pad is None:
        pad = -1
    else:
        pad = int(pad)
        if not -sw[0] <= pad < sw[0]:
            raise ShapeError(
                "Padding_idx must be within num_embeddings",
                hint=f"padding_idx must lie in [{-sw[0]}, {sw[0]}) for a weight of {sw[0]} rows",
            )
        pad %= sw[0]
    at = {"padding_idx": pad, "scale_grad_by_freq": attrs.get("scale_grad_by_freq")}
    return emit("nn_embedding", (i, w), at)


_EMBED = {"I": ((2, 3), REAL), "W": ((2, 4), REAL)}

ROWS += [
    Op(
        "embedding",
        None,
        (),
        "EmbeddingBackward0",
        None,
        arity=2,
        params={
            "padding_idx": None,
            "max_norm": None,
            "norm_type": 2.0,
            "scale_grad_by_freq": False,
            "sparse": False,
        },
        lower=_embedding_lower,
        mirror="F.embedding(a, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq)",
        rule="weight[input]; ∂/∂weightᵣ = Σ g where input picks r (none at padding_idx)",
        # (padding_idx and scale_grad_by_freq change the gradient, not the function, so finite
        # differences cannot check them: tests/test_nn.py checks them against PyTorch)
        examples=(("F.embedding((I > 0).long(), W)", _EMBED),),
        namespaces=("torch.nn.functional",),
        methods=(),
        inputs=("input", "weight"),
    ),
    Op(
        "nn_embedding",
        _embedding,
        (None, _embedding_grad),
        "EmbeddingBackward0",
        lambda shapes, attrs: shapes[0] + shapes[1][1:],
        arity=2,
        params={"padding_idx": -1, "scale_grad_by_freq": False},
        public=False,
        saves="inputs",
    ),
]


# ---- dropout: ATen's _dropout_impl, its noise drawn from the run's generator ---------------

_ALPHA = 1.7580993408473766  # SELU's -λα, the value alpha dropout drops to


def _alpha_scale(p):
    return 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1) * (1 - p))


# the calls that drop through _dropout_core without being a dropout row: how to say it
_DRAWERS = {
    "scaled_dot_product_attention": ("dropout_p > 0", "use dropout_p=0.0"),
    "multi_head_attention_forward": ("dropout_p > 0, training=True", "use training=False"),
}


def _dropout_noise(a, p, feature, alpha, name, dtype, generator=None):
    """noise.bernoulli_(1 - p), one draw per element or per (sample, channel) for the
    feature variants (noise of shape (N, C, 1, ...)); then noise.div_(1 - p), or for alpha
    dropout noise.mul_(a). Arithmetic in the input's dtype, as ATen's in-place ops."""
    if generator is None:
        default = ("training=True", f"use F.{name}(..., training=False) (the identity)")
        what, hint = _DRAWERS.get(name, default)
        raise EvaluationError(
            f"F.{name}({what}) in a program draws a random mask, so it needs one "
            "evaluation: grad, batch, graph and explain have it, but this command evaluates "
            "the program several times",
            hint=f"{hint} here, or run gradcli grad",
        )
    mask = generator.bernoulli(_noise_shape((a.shape,), {"feature": feature}), 1.0 - p)
    mask = mask.astype(dtype)
    return mask * _alpha_scale(p) if alpha else mask / (1.0 - p)


def _alpha_shift(noise, p):
    """Alpha dropout's b = (mask - 1)·αa + αap, from the noise (mask·a, a > 0)."""
    mask = (noise != 0).astype(noise.dtype)
    a = _alpha_scale(p)
    return (mask - 1.0) * (_ALPHA * a) + _ALPHA * a * p


def _noise_shape(shapes, attrs):
    s = shapes[0]
    return s[:2] + (1,) * (len(s) - 2) if attrs["feature"] else s


def _dropout_args(name, attrs):
    p, training, inplace = attrs["p"], attrs["training"], attrs["inplace"]
    if isinstance(p, bool) or not isinstance(p, float):
        raise ShapeError(f"{name}(): argument 'p' must be float, not {type(p).__name__}")
    if not 0.0 <= p <= 1.0:
        raise ShapeError(f"dropout probability has to be between 0 and 1, but got {p:g}")
    for key, v in (("training", training), ("inplace", inplace)):
        if not isinstance(v, bool):
            raise ShapeError(f"{name}(): argument '{key}' must be bool, not {type(v).__name__}")
    if inplace:
        raise EvaluationError(
            f"{name}(inplace=True) overwrites its input, which a later use of the same name "
            "would then see; gradcli's values never change in place",
            hint=f"use {name}(..., inplace=False) (the same numbers on a fresh tensor)",
        )
    return float(p), training


def _dropout_core(emit, node, x, p, training, feature, alpha, name):
    """ATen's _dropout_impl: the input itself when nothing is dropped; input * 0 at p = 1;
    else input * noise, where noise is the Bernoulli(1 - p) mask divided by 1 - p, or for
    alpha dropout input * (mask·a) + (mask - 1)·αa + αap, in the input's dtype."""
    value = node(x).value
    if p == 0.0 or not training or value.size == 0:
        return x
    if feature and value.ndim < 2:
        raise ShapeError("Feature dropout requires at least 2 dimensions in the input")
    if p == 1.0:
        return emit("mul", (x, emit("nn_dropout_zero", (x,))))
    if value.dtype.kind not in "fc":
        kind = {"b": "Bool", "i": "Long" if value.dtype.itemsize == 8 else "Int"}
        raise EvaluationError(
            f"result type Float can't be cast to the desired output type "
            f"{kind.get(value.dtype.kind, value.dtype.name)}",
            hint="dropout draws a floating-point noise: give a float input (x.float())",
        )
    at = {"p": p, "feature": feature, "alpha": alpha, "name": name}
    noise = emit("nn_dropout_noise", (x,), at)
    out = emit("mul", (x, noise))
    return emit("add", (out, emit("nn_alpha_shift", (noise,), {"p": p}))) if alpha else out


def _dropout_lower(name, feature, alpha, dims=None):
    """F.<name>: PyTorch's checks, then _dropout_impl; dropout1d and dropout3d add a batch
    dimension to an unbatched input (unsqueeze(0) ... squeeze(0)), as torch's Python does."""

    def lower(emit, node, args, attrs):
        p, training = _dropout_args(name, attrs)
        (x,) = args
        ndim = len(node(x).shape)
        batched = True
        if dims is not None and name == "dropout1d" and ndim not in dims:
            raise ShapeError(
                f"dropout1d: Expected 2D or 3D input, but received a {ndim}D input. Note that "
                "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
                "dimension, a channel dimension, and an optional batch dimension (i.e. 2D or "
                "3D inputs)."
            )
        if dims is not None and name != "dropout2d":
            batched = ndim == dims[1]
        if not batched:
            x = emit("unsqueeze", (x,), {"dim": 0})
        out = _dropout_core(emit, node, x, p, training, feature, alpha, name)
        return out if batched else emit("squeeze", (out,), {"dim": 0})

    return lower


def _dropout_row(name, feature, alpha, dims=None, training=True, torch_too=False):
    what = "per (sample, channel)" if feature else "per element"
    return Op(
        name,
        None,
        (),
        "MulBackward0" if not alpha else "AddBackward0 over MulBackward0",
        None,
        params={"p": 0.5, "training": training, "inplace": False},
        lower=_dropout_lower(name, feature, alpha, dims),
        mirror=f"F.{name}(a, p, training)",
        rule=("a·m·k + (m - 1)·αk + αkp, k = ((α²p + 1)(1 - p))^-½" if alpha else "a·m / (1 - p)")
        + f", m ~ Bernoulli(1 - p) drawn {what} (--random-seed: PyTorch's mask); a itself "
        "when training=False or p = 0",
        # torch.dropout(input, p, train) is the same function (its flag is named train)
        namespaces=("torch.nn.functional",) + (("torch",) if torch_too else ()),
        keywords={"train": "training"} if torch_too else None,
        methods=(),
    )


ROWS += [
    _dropout_row("dropout", False, False, torch_too=True),
    _dropout_row("alpha_dropout", False, True, training=False, torch_too=True),
    _dropout_row("feature_alpha_dropout", True, True, training=False, torch_too=True),
    _dropout_row("dropout1d", True, False, dims=(2, 3)),
    _dropout_row("dropout2d", True, False, dims=(3, 4)),
    _dropout_row("dropout3d", True, False, dims=(4, 5)),
    Op(
        "nn_dropout_noise",
        _dropout_noise,
        None,
        "",
        _noise_shape,
        params={"p": 0.5, "feature": False, "alpha": False, "name": "dropout"},
        dtype=lambda attrs, args, default_float: args[0].dtype.name,
        public=False,
        saves="none",
        random=True,
    ),
    Op("nn_alpha_shift", _alpha_shift, None, "", _same, params={"p": 0.5}, public=False),
    Op(
        "nn_dropout_zero",
        lambda a, dtype: np.zeros((), dtype=dtype),
        None,
        "",
        lambda shapes, attrs: (),
        dtype=lambda attrs, args, default_float: args[0].dtype.name,
        public=False,
        saves="none",
    ),
]


# ---- gumbel_softmax ----------------------------------------------------------------------


def _gumbel_noise(logits, dtype, generator=None):
    """-empty_like(logits).exponential_().log(): PyTorch's exponential draws; the log is
    rounded from double (PyTorch's vectorised float log, SLEEF's, can differ by an ulp)."""
    if generator is None:
        raise EvaluationError(
            "F.gumbel_softmax() in a program draws random noise, so it needs one evaluation: "
            "grad, batch, graph and explain have it, but this command evaluates the program "
            "several times",
            hint="run gradcli grad (or give the noise as an input: F.softmax((a + g) / tau))",
        )
    e = generator.exponential(logits.shape, dtype)
    return (-np.log(e.astype(np.float64))).astype(dtype)


def _straight_through(y, dim):
    """y_hard - y_soft.detach(): the one-hot of y_soft's first maximum along dim, minus
    y_soft, in its dtype (added back to y_soft, the gradient is softmax's)."""
    if y.ndim == 0:
        return np.ones_like(y) - y
    d = _one_dim(dim, y.ndim)
    hard = np.zeros_like(y)
    if y.size:
        np.put_along_axis(hard, np.expand_dims(np.argmax(y, axis=d), d), 1, axis=d)
    return hard - y


def _gumbel_lower(emit, node, args, attrs):
    """F.gumbel_softmax node for node: softmax((logits + gumbels) / tau, dim), plus, when
    hard, the straight-through constant y_hard - y_soft.detach()."""
    (x,) = args
    for key in ("tau", "eps"):
        if isinstance(attrs[key], bool) or not isinstance(attrs[key], (int, float)):
            raise ShapeError(f"gumbel_softmax(): '{key}' must be a number")
    if not isinstance(attrs["hard"], bool):
        raise ShapeError("gumbel_softmax(): 'hard' must be True or False")
    dim = attrs["dim"]
    if isinstance(dim, bool) or not isinstance(dim, (int, float)) or not float(dim).is_integer():
        raise ShapeError(f"gumbel_softmax(): argument 'dim' must be int, not {dim!r}")
    kind = node(x).value.dtype
    if kind.kind not in "fc":
        name = {"int64": "Long", "int32": "Int", "bool": "Bool"}.get(kind.name, kind.name)
        raise EvaluationError(
            "Exponential distribution is a continuous probability distribution. dtype must be "
            f"a floating point but you specified {name}",
            hint="give gumbel_softmax floating-point logits (x.float())",
        )
    noisy = emit("add", (x, emit("nn_gumbel_noise", (x,))))
    y = emit(
        "softmax", (scalar(emit, "div", noisy, attrs["tau"], "DivBackward0"),), {"dim": int(dim)}
    )
    if not attrs["hard"]:
        return y
    return emit("add", (emit("nn_straight_through", (y,), {"dim": int(dim)}), y))


ROWS += [
    Op(
        "gumbel_softmax",
        None,
        (),
        "SoftmaxBackward0 over DivBackward0 over AddBackward0 (hard: AddBackward0 over those)",
        None,
        params={"tau": Whole(1), "hard": False, "eps": 1e-10, "dim": Whole(-1)},
        lower=_gumbel_lower,
        mirror="F.gumbel_softmax(logits, tau, hard, eps, dim)",
        rule="softmax((a + g) / τ) with Gumbel noise g = -log(Exp(1)) drawn from the run's "
        "generator; hard: one-hot of its maximum, with softmax's gradient (straight through)",
        namespaces=("torch.nn.functional",),
        methods=(),
        inputs=("logits",),
    ),
    Op(
        "nn_gumbel_noise",
        _gumbel_noise,
        None,
        "",
        _same,
        dtype=lambda attrs, args, default_float: args[0].dtype.name,
        public=False,
        saves="none",
        random=True,
    ),
    Op(
        "nn_straight_through",
        _straight_through,
        None,
        "",
        _same,
        params={"dim": -1},
        public=False,
        saves="none",
    ),
]


# ---- embedding_bag -----------------------------------------------------------------------

_BAG_MODES = {"sum": 0, "mean": 1, "max": 2}


def _bags(i, off, bag_len, include_last):
    """The flat indices and, per bag, its [start, end) positions: a 2-D input's rows, or
    1-D offsets (with include_last_offset the last offset ends the last bag)."""
    flat = i.reshape(-1).astype(np.int64, copy=False)
    if off is None:
        starts = np.arange(0, flat.size, bag_len, dtype=np.int64)
        ends = starts + bag_len
    else:
        off = off.astype(np.int64, copy=False)
        if off.size and off[0] != 0:
            raise EvaluationError(
                "offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to "
                f"start from position 0. However, got {off[0]}"
            )
        if off.size and off[-1] > flat.size:
            raise EvaluationError(
                f"offsets[-1] can not be greater than input's length {flat.size} but got "
                f"offsets[-1] of {off[-1]}"
            )
        if off.size and (np.diff(off) < 0).any():
            raise EvaluationError(
                "embedding_bag's offsets must not decrease: each bag starts where the "
                "previous one does or later"
            )
        if include_last:
            if off.size > 1 and off[-1] != flat.size:
                # PyTorch's CPU kernels disagree past the last offset (float64 extends the
                # last bag to the end, float32 reads uninitialised memory in backward)
                raise EvaluationError(
                    f"with include_last_offset=True the last offset ends the last bag, so it "
                    f"must be the input's length {flat.size}, but got {off[-1]}",
                    hint=f"append {flat.size} to the offsets (or use include_last_offset=False)",
                )
            starts, ends = off[:-1], off[1:]
        else:
            starts, ends = off, np.append(off[1:], flat.size)
    return flat, starts, ends


def _bag_members(flat, starts, ends, padding_idx):
    """(bag of each member, its position in the input): the bags' positions in order,
    padding_idx left out."""
    sizes = ends - starts
    bag = np.repeat(np.arange(starts.size), sizes)
    pos = np.arange(bag.size) - np.repeat(np.cumsum(sizes) - sizes, sizes) + starts[bag]
    keep = flat[pos] != padding_idx
    return bag[keep], pos[keep]


def _embedding_bag_parts(i, w, extra, has_offsets, has_psw, bag_len, include_last, padding_idx):
    off = extra[0] if has_offsets else None
    psw = extra[has_offsets] if has_psw else None
    flat, starts, ends = _bags(i, off, bag_len, include_last)
    bad = np.flatnonzero((flat < 0) | (flat >= w.shape[0]))
    if bad.size:
        k = int(bad[0])
        raise EvaluationError(
            f"Index {k} of input takes value {flat[k]} which is not in the valid range "
            f"[0, {w.shape[0]})"
        )
    bag, pos = _bag_members(flat, starts, ends, padding_idx)
    return flat, bag, pos, np.bincount(bag, minlength=starts.size), psw


def _embedding_bag(
    i,
    w,
    *extra,
    mode,
    padding_idx,
    include_last_offset,
    has_offsets,
    has_psw,
    bag_len,
    scale_grad_by_freq,
):
    """ATen's embedding_bag forward: each bag's rows summed (times per_sample_weights),
    averaged over its members, or their maximum per feature; an empty bag is zeros."""
    flat, bag, pos, sizes, psw = _embedding_bag_parts(
        i, w, extra, has_offsets, has_psw, bag_len, include_last_offset, padding_idx
    )
    rows = w[flat[pos]]
    out = np.zeros((sizes.size, w.shape[1]), dtype=w.dtype)
    if mode == "max":
        for b in np.unique(bag):
            out[b] = rows[bag == b].max(axis=0)
        return out
    if psw is not None and w.dtype == np.float32 and padding_idx < 0:  # fbgemm's kernel
        return _weighted_bags(out, bag, rows, psw.reshape(-1)[pos])
    if psw is not None:
        rows = rows * psw.reshape(-1)[pos][:, None]
    np.add.at(out, bag, rows)
    if mode == "mean":
        out /= np.maximum(sizes, 1)[:, None]
    return out


def _freq_counts(flat, rows):
    """scale_grad_by_freq's divisor per weight row, as PyTorch 2.13's CPU backward gives it:
    the k-th distinct index (in sorted order) takes the count of the k-th *sorted index*,
    which is that index's own count only when no earlier index repeats."""
    counts = np.bincount(flat, minlength=rows)
    uniq = np.unique(flat)
    out = np.ones(rows, dtype=np.int64)
    out[uniq] = counts[np.sort(flat)[: uniq.size]]
    return out


def _weighted_bags(out, bag, rows, weights):
    """Σ weight·row per bag in float32 as fbgemm's kernel (which PyTorch takes without a
    padding_idx) sums it: member after member, each a fused multiply-add (one rounding);
    the bags' k-th members go together."""
    from ..rng import _fma

    starts = np.searchsorted(bag, bag, side="left")
    rank = np.arange(bag.size) - starts  # each member's place in its bag
    for k in range(int(rank.max()) + 1 if rank.size else 0):
        at = rank == k
        b = bag[at]
        out[b] = _fma(rows[at], np.broadcast_to(weights[at][:, None], rows[at].shape), out[b])
    return out


def _embedding_bag_grads(
    g,
    o,
    i,
    w,
    *extra,
    mode,
    padding_idx,
    include_last_offset,
    has_offsets,
    has_psw,
    bag_len,
    scale_grad_by_freq,
):
    """The weight's gradient (each member's bag adjoint into its row: divided by the bag's
    size for mean, by the row's frequency with scale_grad_by_freq; for max, into the row
    that held each feature's maximum) and per_sample_weights' (adjoint · row)."""
    flat, bag, pos, sizes, psw = _embedding_bag_parts(
        i, w, extra, has_offsets, has_psw, bag_len, include_last_offset, padding_idx
    )
    idx = flat[pos]
    gw = np.zeros(w.shape, dtype=g.dtype)
    if mode == "max":
        for b in np.unique(bag):
            members = idx[bag == b]
            first = np.argmax(w[members], axis=0)  # the first maximum, as ATen keeps it
            np.add.at(gw, (members[first], np.arange(w.shape[1])), g[b])
        return [None, gw] + [None] * len(extra)
    scale = np.ones(idx.size, dtype=g.dtype)
    if mode == "mean":
        scale = scale * (1.0 / np.maximum(sizes, 1)).astype(g.dtype)[bag]  # ATen's axpy scale
    if scale_grad_by_freq:
        scale = scale / _freq_counts(flat, w.shape[0])[idx]
    if psw is not None:
        scale = scale * psw.reshape(-1)[pos]
    np.add.at(gw, idx, g[bag] * scale[:, None])
    grads = [None, gw] + [None] * len(extra)
    if psw is not None:
        gp = np.zeros(psw.size, dtype=g.dtype)
        gp[pos] = np.einsum("ij,ij->i", g[bag], w[idx])
        grads[-1] = gp.reshape(psw.shape)
    return grads


def _embedding_bag_shape(shapes, attrs):
    if attrs["has_offsets"]:
        n = shapes[2][0] - (1 if attrs["include_last_offset"] and shapes[2][0] else 0)
    else:
        n = shapes[0][0]
    return (n, shapes[1][1])


def _embedding_bag_lower(emit, node, args, attrs):
    """F.embedding_bag's checks, in PyTorch's order and words, then one
    EmbeddingBagBackward0 node (a 2-D per_sample_weights is viewed flat first)."""
    i, w, *extra = args
    t = optional(extra, attrs, ("offsets", "per_sample_weights"))
    off, psw = t["offsets"], t["per_sample_weights"]
    si, sw = node(i).shape, node(w).shape
    if psw is not None and node(psw).shape != si:
        raise ShapeError(
            f"embedding_bag: If per_sample_weights (torch.Size({list(node(psw).shape)})) is "
            f"not None, then it must have the same shape as the input (torch.Size({list(si)}))"
        )
    if len(sw) != 2:
        raise ShapeError(f"weight has to be a 2D Tensor, but got Tensor of dimension {len(sw)}")
    if len(si) == 2:
        if off is not None:
            raise ShapeError(
                "if input is 2D, then offsets has to be None, as input is treated is a "
                "mini-batch of fixed length sequences. However, found offsets of type "
                "<class 'torch.Tensor'>"
            )
        if si[1] == 0:
            raise ShapeError("embedding_bag: a 2-D input needs rows of at least one index")
    elif len(si) == 1:
        if off is None:
            raise ShapeError("offsets has to be a 1D Tensor but got None")
        if len(node(off).shape) != 1:
            raise ShapeError("offsets has to be a 1D Tensor")
    else:
        raise ShapeError(f"input has to be 1D or 2D Tensor, but got Tensor of dimension {len(si)}")
    mode = attrs["mode"]
    if mode not in _BAG_MODES:
        raise ShapeError("mode has to be one of sum, mean or max")
    for key in ("scale_grad_by_freq", "sparse", "include_last_offset"):
        if not isinstance(attrs[key], bool):
            raise ShapeError(f"embedding_bag(): '{key}' must be True or False")
    if mode == "max" and attrs["scale_grad_by_freq"]:
        raise ShapeError("max mode does not support scaling the gradient by the frequency")
    if mode == "max" and attrs["sparse"]:
        raise ShapeError("max mode does not support sparse weights")
    if attrs["max_norm"] is not None:
        raise EvaluationError(
            "F.embedding_bag(max_norm=...) renormalises the weight's rows in place before "
            "the lookup (torch.embedding_renorm_), which gradcli does not do",
            hint="leave max_norm=None (renormalise the weight in the program if you need it)",
        )
    if psw is not None and mode != "sum":
        raise ShapeError(
            "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
            f"supported for mode='sum' (got mode='{mode}'). Please open a feature request on "
            "GitHub."
        )
    for name, a in (("indices", i), ("offsets", off)):
        kind = None if a is None else _re(node(a).value).dtype
        if kind is not None and kind.name not in ("int64", "int32"):
            raise EvaluationError(
                f"Expected tensor for argument #1 '{name}' to have one of the following scalar "
                f"types: Long, Int; but got {_INDEX_TYPES.get(kind.name, kind.name)} instead "
                "(while checking arguments for embedding_bag)",
                hint=f"give the {name} as an int64 input (i=int64:0,2) or convert them with "
                ".long()",
            )
    wd = node(w).value.dtype
    if psw is not None and node(psw).value.dtype != wd:
        theirs = _INDEX_TYPES.get(node(psw).value.dtype.name, node(psw).value.dtype.name)
        raise EvaluationError(
            "Expected tensor for argument #1 'weight' to have the same type as tensor for "
            f"argument #1 'per_sample_weights'; but type {_INDEX_TYPES.get(wd.name, wd.name)} "
            f"does not equal {theirs} (while checking arguments for embedding_bag)"
        )
    pad = attrs["padding_idx"]
    if pad is None:
        pad = -1
    else:
        if isinstance(pad, bool) or not float(pad).is_integer():
            raise ShapeError(f"embedding_bag(): padding_idx must be int, not {pad!r}")
        pad = int(pad)
        if not -sw[0] <= pad < sw[0]:
            raise ShapeError(
                f"padding_idx must be within the number of embeddings, -{sw[0]} through "
                f"{sw[0] - 1}, but got {pad}"
            )
        pad %= sw[0]
    if psw is not None and len(si) == 2:
        psw = _reshape_ids(emit, node, psw, (-1,))
    at = {
        "mode": mode,
        "padding_idx": pad,
        "include_last_offset": attrs["include_last_offset"] and off is not None,
        "has_offsets": off is not None,
        "has_psw": psw is not None,
        "bag_len": si[1] if len(si) == 2 else 0,
        "scale_grad_by_freq": attrs["scale_grad_by_freq"],
    }
    tensors = (i, w) + tuple(a for a in (off, psw) if a is not None)
    return emit("nn_embedding_bag", tensors, at)


ROWS += [
    Op(
        "embedding_bag",
        None,
        (),
        "EmbeddingBagBackward0",
        None,
        arity=2,
        params={
            "offsets": None,
            "max_norm": None,
            "norm_type": Whole(2),
            "scale_grad_by_freq": False,
            "mode": "mean",
            "sparse": False,
            "per_sample_weights": None,
            "include_last_offset": False,
            "padding_idx": None,
        },
        tensor_params=("offsets", "per_sample_weights"),
        lower=_embedding_bag_lower,
        mirror="F.embedding_bag(a, weight, offsets, mode=..., per_sample_weights=..., "
        "include_last_offset=..., padding_idx=...)",
        rule="per bag Σ weight[i] (× per_sample_weights), its mean or its maximum per feature; "
        "∂/∂weightᵣ = Σ the adjoints of r's bags (÷ bag size for mean; max: where r is it)",
        # (no table examples: PyTorch has no forward-mode or double backward of it to
        # compare with; tests/test_dropout.py checks it against PyTorch and finite differences)
        namespaces=("torch.nn.functional",),
        methods=(),
        inputs=("input", "weight"),
    ),
    Op(
        "nn_embedding_bag",
        _embedding_bag,
        _embedding_bag_grads,
        "EmbeddingBagBackward0",
        _embedding_bag_shape,
        arity=2,
        params={
            "mode": "mean",
            "padding_idx": -1,
            "include_last_offset": False,
            "has_offsets": False,
            "has_psw": False,
            "bag_len": 0,
            "scale_grad_by_freq": False,
        },
        public=False,
        saves="inputs",
    ),
]
