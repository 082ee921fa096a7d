"""The operator table: one entry per operator, declared once.

Each entry says how to compute the operator (numpy), how to differentiate it (one VJP rule
per tensor input, as in PyTorch's derivatives.yaml), which ``grad_fn`` label PyTorch 2.13
records for it, its shape rule, the PyTorch call it mirrors, and example calls with input
domains from which the finite-difference and PyTorch-oracle tests are generated.

Conventions every rule follows:
- arguments are numpy arrays, or Python floats where a PyTorch call would take a Python
  number (``x * 2``); a rule never sees a number for an input it differentiates;
- a VJP rule returns the gradient for its input before broadcasting is undone: the engine
  sums it back to the input's shape, once, centrally;
- ``label`` is a string, or a function of (which arguments are Python numbers, attrs), because
  PyTorch picks the overload, and so the label, by operand kinds (``2 - x`` is RsubBackward1).
"""

import math

from .errors import ShapeError


class _LazyNumpy:
    """Stands for numpy until first use, so parsing and ``--help`` never import it."""

    def __getattr__(self, name):
        import numpy

        globals()["np"] = numpy
        return getattr(numpy, name)


np = _LazyNumpy()
REQUIRED = object()  # a parameter default meaning "must be given"


class Op:
    __slots__ = ("name", "arity", "params", "forward", "grads", "label", "shape", "mirror",
                 "rule", "examples", "numbers", "lower", "public", "call")

    def __init__(self, name, forward, grads, label, shape, *, arity=1, params=None,
                 mirror=None, rule="", examples=(), numbers=False, lower=None, public=True, call=None):
        self.name = name
        self.arity = arity  # number of tensor inputs, which come first
        self.params = dict(params or {})  # attribute name -> default, after the tensors
        self.forward = forward  # (*inputs, **attrs) -> array
        self.grads = grads  # one rule per tensor input: (g, out, *inputs, **attrs) -> array
        self.label = label
        self.shape = shape  # (shapes, attrs) -> shape; raises ShapeError
        self.mirror = mirror or f"torch.{name}(a)"
        self.rule = rule  # the local derivative, for people
        self.examples = examples  # ((program, {input: (shape, domain)}), ...) for the tests
        self.numbers = numbers  # takes Python numbers as operands (arithmetic operators)
        self.lower = lower  # shape-dependent decomposition into other ops (matmul)
        self.public = public  # callable by name from programs
        self.call = call  # how a program spells it, when not as a call by name (a.T)

    def label_for(self, kinds, attrs):
        return self.label if isinstance(self.label, str) else self.label(kinds, attrs)

    def describe(self):
        """One row of `gradcli ops` and of the README's operator list."""
        tensors = ["a", "b"][:self.arity]
        params = [k if v is REQUIRED else f"{k}={v!r}" for k, v in self.params.items()]
        labels = self.label if isinstance(self.label, str) else self.label.__doc__
        return {"name": self.name,
                "call": self.call or f"{self.name}({', '.join(tensors + params)})",
                "mirror": self.mirror, "labels": labels, "rule": self.rule}




# ---- shape rules -------------------------------------------------------------------------

def fmt_shape(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def broadcast_shapes(*shapes):
    """numpy/PyTorch broadcasting, with PyTorch's message on a mismatch."""
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(ndim):
        size = 1
        for s in shapes:
            d = s[i - ndim + len(s)] if i - ndim + len(s) >= 0 else 1
            if d != 1:
                if size != 1 and d != size:
                    a, b = shapes[0], shapes[1] if len(shapes) > 1 else shapes[0]
                    raise ShapeError(
                        f"shapes {fmt_shape(a)} and {fmt_shape(b)} cannot be broadcast: the "
                        f"size of tensor a ({size}) must match the size of tensor b ({d}) "
                        f"at non-singleton dimension {i}")
                size = d
        out.append(size)
    return tuple(out)


def _same(shapes, attrs):
    return shapes[0]


def _bcast(shapes, attrs):
    return broadcast_shapes(*shapes)


def norm_dims(dim, ndim):
    """``dim`` (int, list of ints, or None for all) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = dim if isinstance(dim, (list, tuple)) else (dim,)
    out = []
    rank = max(ndim, 1)
    for d in dims:
        if not -rank <= d < rank:
            raise ShapeError(f"dimension out of range (expected to be in range of "
                             f"[{-rank}, {rank - 1}], but got {d})")
        d = d % rank
        if d in out:
            raise ShapeError(f"dim {d} appears multiple times in the list of dims")
        out.append(d)
    return tuple(sorted(d for d in out if d < ndim))


def _reduce_shape(shapes, attrs):
    shape = shapes[0]
    dims = norm_dims(attrs.get("dim"), len(shape))
    keep = attrs.get("keepdim", False)
    return tuple(1 if i in dims else n for i, n in enumerate(shape) if keep or i not in dims)


def _full_reduce_shape(shapes, attrs):
    if 0 in shapes[0]:
        raise ShapeError("max()/min() of an empty tensor: the reduction has no identity")
    return ()


# ---- gradient helpers --------------------------------------------------------------------

def _expand_reduced(g, x, dim, keepdim):
    """Broadcast the gradient of a reduction back over the reduced dimensions."""
    if dim is not None and not keepdim:
        g = np.expand_dims(g, norm_dims(dim, x.ndim))
    return np.broadcast_to(g, x.shape)


def _count(x, dim):
    n = 1
    for d in norm_dims(dim, x.ndim):
        n *= x.shape[d]
    return n


def _evenly(g, out, x):
    """PyTorch's evenly_distribute_backward: ties (and NaNs) share the gradient."""
    mask = np.isnan(x) if np.isnan(out) else (x == out)
    return np.where(mask, g / mask.sum(), 0).astype(x.dtype)


def _kind(number):
    return "number" if number else "tensor"


# ---- labels that depend on operand kinds ------------------------------------------------

def _sub_label(kinds, attrs):
    """SubBackward0; RsubBackward1 for number - tensor"""
    return "RsubBackward1" if kinds[0] and not kinds[1] else "SubBackward0"


def _pow_label(kinds, attrs):
    """PowBackward0 (tensor ^ number), PowBackward1 (tensor ^ tensor), PowBackward2 (number ^ tensor)"""
    if kinds[1]:
        return "PowBackward0"  # tensor ** number
    if kinds[0]:
        return "PowBackward2"  # number ** tensor
    return "PowBackward1"  # tensor ** tensor


def _reduce_label(stem):
    def label(kinds, attrs):
        return stem + ("1" if attrs.get("dim") is not None else "0")
    label.__doc__ = f"{stem}0; {stem}1 with dim="
    return label


def _squeeze_label(kinds, attrs):
    """SqueezeBackward0; SqueezeBackward1 with dim=int; SqueezeBackward4 with a list of dims"""
    dim = attrs.get("dim")
    return "SqueezeBackward0" if dim is None else (
        "SqueezeBackward4" if isinstance(dim, (list, tuple)) else "SqueezeBackward1")


# ---- forward rules needing more than one numpy call -------------------------------------

def _pow(a, b):
    return np.power(a, b)


def _pow_grad_base(g, out, a, b):
    if not isinstance(b, float):  # PowBackward1: where(exponent == 0, 0, ...)
        return g * np.where(b == 0, 0, b * np.power(a, b - 1))
    if b == 0:
        return np.zeros_like(g * a)
    return g * (b * np.power(a, b - 1))


def _pow_grad_exponent(g, out, a, b):
    if isinstance(a, float):  # PowBackward2: the base is a Python number
        if a == 0:
            return g * np.where(b >= 0, 0, out * -np.inf)
        return g * (out * math.log(a) if a > 0 else out * np.nan)
    return g * np.where((a == 0) & (b >= 0), 0, out * np.log(a))


def _maximum_grad(first):
    def rule(g, out, a, b):
        lose = (a < b) if first else (a > b)
        return np.where(lose, 0, np.where(a == b, g / 2, g))
    return rule


def _minimum_grad(first):
    def rule(g, out, a, b):
        lose = (a > b) if first else (a < b)
        return np.where(lose, 0, np.where(a == b, g / 2, g))
    return rule


def _squeeze(x, dim=None):
    if dim is None:
        return np.squeeze(x)
    dims = tuple(d for d in norm_dims(dim, x.ndim) if x.shape[d] == 1)
    return np.squeeze(x, axis=dims)


def _squeeze_shape(shapes, attrs):
    shape = shapes[0]
    dim = attrs.get("dim")
    dims = norm_dims(dim, len(shape))
    return tuple(n for i, n in enumerate(shape) if not (i in dims and n == 1))


def _unsqueeze_shape(shapes, attrs):
    shape, d = shapes[0], attrs["dim"]
    if not -len(shape) - 1 <= d <= len(shape):
        raise ShapeError(f"dimension out of range (expected to be in range of "
                         f"[{-len(shape) - 1}, {len(shape)}], but got {d})")
    d = d % (len(shape) + 1)
    return shape[:d] + (1,) + shape[d:]


# ---- matrix products ---------------------------------------------------------------------

def _dims(shapes):
    return "".join(f"{len(s)}D" if i == 0 else f" and {len(s)}D" for i, s in enumerate(shapes))


def _dot_shape(shapes, attrs):
    a, b = shapes
    if len(a) != 1 or len(b) != 1:
        raise ShapeError(f"dot: 1D tensors expected, but got {_dims(shapes)} tensors")
    if a != b:
        raise ShapeError(f"dot: inconsistent tensor size, expected tensor {fmt_shape(a)} and "
                         f"{fmt_shape(b)} to have the same number of elements")
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
        raise ShapeError(f"mat1 and mat2 shapes cannot be multiplied "
                         f"({a[0]}x{a[1]} and {b[0]}x{b[1]})")
    return (a[0], b[1])


def _matmul_lower(emit, a, b, sa, sb):
    """What torch.matmul records, by the operands' ranks."""
    if len(sa) == 1 and len(sb) == 1:
        return emit("dot", (a, b))
    if len(sa) == 2 and len(sb) == 1:
        return emit("mv", (a, b))
    if len(sa) == 2 and len(sb) == 2:
        return emit("mm", (a, b))
    if len(sa) == 1 and len(sb) == 2:
        row = emit("unsqueeze", (a,), {"dim": 0})
        return emit("squeeze", (emit("mm", (row, b)),), {"dim": (0,)})
    if not sa or not sb:
        raise ShapeError(f"both arguments to matmul need to be at least 1D, but they are "
                         f"{_dims((sa, sb))}")
    raise ShapeError(f"matmul of {_dims((sa, sb))} tensors is not supported: "
                     f"gradcli's @ takes vectors and matrices")


def _transpose_shape(shapes, attrs):
    if len(shapes[0]) > 2:
        raise ShapeError(f"t() expects a tensor with <= 2 dimensions, but self is "
                         f"{len(shapes[0])}D")
    return shapes[0][::-1]


# ---- the table ----------------------------------------------------------------------------

REAL = "real"
V = {"a": ((3,), REAL)}  # the usual example input: a vector
VB = {"a": ((2, 3), REAL), "b": ((3,), REAL)}  # broadcasting pair


def _unary(name, forward, grad, rule, domain=REAL, label=None):
    return Op(name, forward, (grad,), label or f"{name.capitalize()}Backward0", _same,
              mirror=f"torch.{name}(a)", rule=rule,
              examples=((f"{name}(a)", {"a": ((3,), domain)}),
                        (f"{name}(A)", {"A": ((2, 2), domain)})))


TABLE = [
    # arithmetic: what Python operators do to tensors and numbers
    Op("add", lambda a, b: a + b, (lambda g, o, a, b: g, lambda g, o, a, b: g),
       "AddBackward0", _bcast, arity=2, numbers=True, mirror="a + b",
       rule="∂(a+b)/∂a = 1, ∂(a+b)/∂b = 1",
       examples=(("a + b", VB), ("a + 2", V), ("2 + a", V))),
    Op("sub", lambda a, b: a - b, (lambda g, o, a, b: g, lambda g, o, a, b: -g),
       _sub_label, _bcast, arity=2, numbers=True, mirror="a - b",
       rule="∂(a-b)/∂a = 1, ∂(a-b)/∂b = -1",
       examples=(("a - b", VB), ("a - 2", V), ("2 - a", V))),
    Op("mul", lambda a, b: a * b, (lambda g, o, a, b: g * b, lambda g, o, a, b: g * a),
       "MulBackward0", _bcast, arity=2, numbers=True, mirror="a * b",
       rule="∂(a·b)/∂a = b, ∂(a·b)/∂b = a",
       examples=(("a * b", VB), ("a * 2.5", V), ("a * a", V))),
    Op("div", lambda a, b: a / b,
       (lambda g, o, a, b: g / b, lambda g, o, a, b: -g * ((a / b) / b)),
       "DivBackward0", _bcast, arity=2, numbers=True, mirror="a / b (number / b is b.reciprocal() * number)",
       rule="∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = -a/b²",
       examples=(("a / b", {"a": ((2, 3), REAL), "b": ((3,), "nonzero")}),
                 ("a / 4", V), ("2 / a", {"a": ((3,), "nonzero")}))),
    Op("pow", _pow, (_pow_grad_base, _pow_grad_exponent), _pow_label, _bcast, arity=2,
       numbers=True, mirror="a ** b",
       rule="∂(a^b)/∂a = b·a^(b-1), ∂(a^b)/∂b = a^b·ln a",
       examples=(("a ^ 2", V), ("a ^ 3", V), ("a ^ 0.5", {"a": ((3,), "positive")}),
                 ("a ^ b", {"a": ((2, 3), "positive"), "b": ((3,), REAL)}),
                 ("2 ^ a", V), ("a ^ 0", V))),
    Op("neg", lambda a: -a, (lambda g, o, a: -g,), "NegBackward0", _same, mirror="-a", numbers=True,
       rule="∂(-a)/∂a = -1", examples=(("-a", V),)),
    Op("reciprocal", lambda a: 1 / a, (lambda g, o, a: -g * (o * o),),
       "ReciprocalBackward0", _same, mirror="torch.reciprocal(a)", rule="∂(1/a)/∂a = -1/a²",
       examples=(("reciprocal(a)", {"a": ((3,), "nonzero")}),)),
    # elementwise functions
    _unary("exp", lambda a: np.exp(a), lambda g, o, a: g * o, "∂exp(a)/∂a = exp(a)"),
    _unary("log", lambda a: np.log(a), lambda g, o, a: g / a, "∂ln(a)/∂a = 1/a", "positive"),
    _unary("sqrt", lambda a: np.sqrt(a), lambda g, o, a: g / (2 * o), "∂√a/∂a = 1/(2√a)",
           "positive"),
    _unary("sin", lambda a: np.sin(a), lambda g, o, a: g * np.cos(a), "∂sin(a)/∂a = cos(a)"),
    _unary("cos", lambda a: np.cos(a), lambda g, o, a: g * -np.sin(a), "∂cos(a)/∂a = -sin(a)"),
    _unary("tan", lambda a: np.tan(a), lambda g, o, a: g * (1 + o * o), "∂tan(a)/∂a = 1 + tan²(a)"),
    _unary("tanh", lambda a: np.tanh(a), lambda g, o, a: g * (1 - o * o),
           "∂tanh(a)/∂a = 1 - tanh²(a)"),
    _unary("sigmoid", lambda a: _sigmoid(a), lambda g, o, a: g * ((1 - o) * o),
           "∂σ(a)/∂a = σ(a)(1 - σ(a))"),
    _unary("relu", lambda a: np.maximum(a, 0), lambda g, o, a: np.where(o <= 0, 0, g),
           "∂relu(a)/∂a = 1 if a > 0 else 0", "away"),
    _unary("abs", lambda a: np.abs(a), lambda g, o, a: g * np.sign(a),
           "∂|a|/∂a = sign(a) (0 at 0)", "away"),
    _unary("log1p", lambda a: np.log1p(a), lambda g, o, a: g / (a + 1), "∂ln(1+a)/∂a = 1/(1+a)",
           "positive", label="Log1PBackward0"),
    _unary("expm1", lambda a: np.expm1(a), lambda g, o, a: g * (o + 1), "∂(eᵃ-1)/∂a = eᵃ"),
    # reductions
    Op("sum", lambda a, dim=None, keepdim=False: np.sum(a, axis=_axes(a, dim), keepdims=keepdim),
       (lambda g, o, a, dim=None, keepdim=False: _expand_reduced(g, a, dim, keepdim),),
       _reduce_label("SumBackward"), _reduce_shape, params={"dim": None, "keepdim": False},
       mirror="a.sum() / a.sum(dim, keepdim)", rule="∂Σa/∂aᵢ = 1",
       examples=(("sum(A)", {"A": ((2, 3), REAL)}), ("sum(A, dim=0)", {"A": ((2, 3), REAL)}),
                 ("sum(A, dim=1, keepdim=True)", {"A": ((2, 3), REAL)}),
                 ("sum(A, dim=[0, 1])", {"A": ((2, 3), REAL)}))),
    Op("mean", lambda a, dim=None, keepdim=False: np.mean(a, axis=_axes(a, dim), keepdims=keepdim),
       (lambda g, o, a, dim=None, keepdim=False:
        _expand_reduced(g / _count(a, dim), a, dim, keepdim),),
       _reduce_label("MeanBackward"), _reduce_shape, params={"dim": None, "keepdim": False},
       mirror="a.mean() / a.mean(dim, keepdim)", rule="∂mean(a)/∂aᵢ = 1/n",
       examples=(("mean(A)", {"A": ((2, 3), REAL)}), ("mean(A, dim=-1)", {"A": ((2, 3), REAL)}),
                 ("mean(A, dim=0, keepdim=True)", {"A": ((2, 3), REAL)}))),
    Op("max", lambda a: np.max(a), (lambda g, o, a: _evenly(g, o, a),), "MaxBackward1",
       _full_reduce_shape, mirror="a.max()", rule="∂max(a)/∂aᵢ = 1/k at the k maxima, else 0",
       examples=(("max(a)", {"a": ((4,), "distinct")}), ("max(A)", {"A": ((2, 3), "distinct")}))),
    Op("min", lambda a: np.min(a), (lambda g, o, a: _evenly(g, o, a),), "MinBackward1",
       _full_reduce_shape, mirror="a.min()", rule="∂min(a)/∂aᵢ = 1/k at the k minima, else 0",
       examples=(("min(a)", {"a": ((4,), "distinct")}),)),
    Op("maximum", lambda a, b: np.maximum(a, b), (_maximum_grad(True), _maximum_grad(False)),
       "MaximumBackward0", _bcast, arity=2, mirror="torch.maximum(a, b)",
       rule="∂max(a,b)/∂a = 1 where a > b, ½ where a = b",
       examples=(("maximum(a, b)", {"a": ((3,), "distinct"), "b": ((3,), "distinct")}),)),
    Op("minimum", lambda a, b: np.minimum(a, b), (_minimum_grad(True), _minimum_grad(False)),
       "MinimumBackward0", _bcast, arity=2, mirror="torch.minimum(a, b)",
       rule="∂min(a,b)/∂a = 1 where a < b, ½ where a = b",
       examples=(("minimum(a, b)", {"a": ((3,), "distinct"), "b": ((3,), "distinct")}),)),
    # matrix products and the shape ops they decompose into
    Op("matmul", None, (), "by rank: DotBackward0, MvBackward0, MmBackward0, or SqueezeBackward4 over MmBackward0 over UnsqueezeBackward0", None, arity=2, lower=_matmul_lower, mirror="a @ b",
       rule="by rank: dot, mv, mm, or unsqueeze · mm · squeeze",
       examples=(("a @ b", {"a": ((3,), REAL), "b": ((3,), REAL)}),
                 ("A @ b", {"A": ((2, 3), REAL), "b": ((3,), REAL)}),
                 ("A @ B", {"A": ((2, 3), REAL), "B": ((3, 2), REAL)}),
                 ("b @ A", {"b": ((2,), REAL), "A": ((2, 3), REAL)}))),
    Op("dot", lambda a, b: np.dot(a, b), (lambda g, o, a, b: g * b, lambda g, o, a, b: g * a),
       "DotBackward0", _dot_shape, arity=2, mirror="torch.dot(a, b)",
       rule="∂(a·b)/∂a = b", examples=(("dot(a, b)", {"a": ((3,), REAL), "b": ((3,), REAL)}),)),
    Op("mv", lambda a, b: a @ b, (lambda g, o, a, b: np.outer(g, b), lambda g, o, a, b: a.T @ g),
       "MvBackward0", _mv_shape, arity=2, mirror="torch.mv(a, b)", rule="∂(Av)/∂A = g vᵀ, ∂(Av)/∂v = Aᵀg",
       examples=(("mv(A, b)", {"A": ((2, 3), REAL), "b": ((3,), REAL)}),)),
    Op("mm", lambda a, b: a @ b, (lambda g, o, a, b: g @ b.T, lambda g, o, a, b: a.T @ g),
       "MmBackward0", _mm_shape, arity=2, mirror="torch.mm(a, b)",
       rule="∂(AB)/∂A = G Bᵀ, ∂(AB)/∂B = Aᵀ G",
       examples=(("mm(A, B)", {"A": ((2, 3), REAL), "B": ((3, 2), REAL)}),)),
    Op("unsqueeze", lambda a, dim: np.expand_dims(a, dim), (lambda g, o, a, dim: g.reshape(a.shape),),
       "UnsqueezeBackward0", _unsqueeze_shape, params={"dim": REQUIRED}, mirror="a.unsqueeze(dim)",
       rule="reshape back", examples=(("unsqueeze(a, 0)", V), ("unsqueeze(a, dim=-1)", V))),
    Op("squeeze", _squeeze, (lambda g, o, a, dim=None: g.reshape(a.shape),), _squeeze_label,
       _squeeze_shape, params={"dim": None}, mirror="a.squeeze() / a.squeeze(dim)",
       rule="reshape back", examples=(("squeeze(A)", {"A": ((1, 3), REAL)}),
                                      ("squeeze(A, 0)", {"A": ((1, 3), REAL)}))),
    Op("transpose", lambda a: a.T, (lambda g, o, a: g.T,), "TBackward0", _transpose_shape,
       mirror="a.t()", rule="transpose back",
       examples=(("transpose(A)", {"A": ((2, 3), REAL)}), ("A.t()", {"A": ((2, 3), REAL)}))),
    Op("permute_T", lambda a: np.transpose(a), (lambda g, o, a: np.transpose(g),),
       "PermuteBackward0", lambda s, a: s[0][::-1], mirror="a.T", rule="transpose back",
       public=False, call="a.T", examples=(("A.T", {"A": ((2, 3), REAL)}),)),
]


def _sigmoid(a):
    # 1/(1+e^-a) overflows harmlessly to 0 for large negative a; no warnings leak (errstate).
    return 1 / (1 + np.exp(-a))


def _axes(a, dim):
    return None if dim is None else norm_dims(dim, a.ndim)


OPS = {op.name: op for op in TABLE}


def operator_rows():
    """The public operators, as `gradcli ops` and the README list them."""
    return [op.describe() for op in TABLE if op.public or op.call]
ALIASES = {"t": "transpose"}  # method spellings PyTorch users type: A.t()
