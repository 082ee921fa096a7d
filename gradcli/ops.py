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

from .errors import EvaluationError, ShapeError


class _LazyNumpy:
    """Stands for numpy until first use, so parsing and ``--help`` never import it."""

    def __getattr__(self, name):
        import numpy

        globals()["np"] = numpy
        return getattr(numpy, name)


np = _LazyNumpy()
REQUIRED = object()  # a parameter default meaning "must be given"
SMALL = 4096  # below this many elements, broadcasting views cost more than they save


class Op:
    __slots__ = (
        "name",
        "arity",
        "params",
        "forward",
        "grads",
        "label",
        "shape",
        "mirror",
        "rule",
        "examples",
        "numbers",
        "lower",
        "public",
        "call",
        "dtype",
        "variadic",
        "listarg",
        "saves",
        "ufunc",
    )

    def __init__(
        self,
        name,
        forward,
        grads,
        label,
        shape,
        *,
        arity=1,
        params=None,
        mirror=None,
        rule="",
        examples=(),
        numbers=False,
        lower=None,
        public=True,
        call=None,
        dtype=None,
        variadic=False,
        listarg=False,
        saves="all",
        ufunc=None,
    ):
        self.name = name
        self.arity = arity  # number of tensor inputs, which come first
        self.params = dict(params or {})  # attribute name -> default, after the tensors
        self.forward = forward  # (*inputs, **attrs) -> array
        # one rule per tensor input, (g, out, *inputs, **attrs) -> array; or one function
        # giving the list of all inputs' gradients (list arguments); None: no gradient
        self.grads = grads
        self.label = label
        self.shape = shape  # (shapes, attrs) -> shape; raises ShapeError
        self.mirror = mirror or f"torch.{name}(a)"
        self.rule = rule  # the local derivative, for people
        self.examples = examples  # ((program, {input: (shape, domain)}), ...) for the tests
        self.numbers = numbers  # takes Python numbers as operands (arithmetic operators)
        self.lower = lower  # shape-dependent decomposition into other ops (matmul)
        self.public = public  # callable by name from programs
        self.call = call  # how a program spells it, when not as a call by name (a.T)
        self.dtype = dtype  # the output dtype when not the evaluation dtype ("bool")
        self.variadic = variadic  # reshape(x, 3, 2): trailing positionals form one argument
        self.listarg = listarg  # cat([a, b]): the tensors come as one list
        # What the VJP rules read, as PyTorch's saved tensors: "all" (inputs and output),
        # "inputs", "out", "others" (an input's value only when another input is
        # differentiated, as for a·b), "pow" (the inputs, and the output only when the
        # exponent is differentiated), or "none" (shapes only). Lean evaluation frees the rest.
        self.saves = saves
        # operands -> the numpy ufunc that computes this op (so a result can be written
        # into a dying operand's buffer), or None where the op is not one ufunc call
        self.ufunc = ufunc

    def label_for(self, kinds, attrs):
        return self.label if isinstance(self.label, str) else self.label(kinds, attrs)

    def describe(self):
        """One row of `gradcli ops` and of the README's operator list."""
        tensors = ["[a, b, ...]"] if self.listarg else ["a", "b", "c"][: self.arity]
        params = [k if v is REQUIRED else f"{k}={v!r}" for k, v in self.params.items()]
        labels = self.label if isinstance(self.label, str) else self.label.__doc__
        return {
            "name": self.name,
            "call": self.call or f"{self.name}({', '.join(tensors + params)})",
            "mirror": self.mirror,
            "labels": labels,
            "rule": self.rule,
        }


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
                        f"at non-singleton dimension {i}"
                    )
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
            raise ShapeError(
                f"dimension out of range (expected to be in range of "
                f"[{-rank}, {rank - 1}], but got {d})"
            )
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
    if x.size <= SMALL:
        return np.broadcast_to(g, x.shape).copy() if g.shape != x.shape else g
    return np.broadcast_to(g, x.shape)


def _count(x, dim):
    n = 1
    for d in norm_dims(dim, x.ndim):
        n *= x.shape[d]
    return n


def _evenly(g, out, x):
    """PyTorch's evenly_distribute_backward: ties (and NaNs) share the gradient."""
    x, out_ = _re(x), _re(out)
    mask = np.isnan(x) if np.isnan(out_) else (x == out_)
    return np.where(mask, g / mask.sum(), 0).astype(np.result_type(g, x))


def _re(a):
    """The real part. Every branch (comparison, |x|, sign) is taken on it, so each rule also
    runs on complex dual numbers x + i·h·t, which is how forward mode and Hessians work."""
    return a.real if getattr(a, "dtype", None) is not None and a.dtype.kind == "c" else a


def _complex(a):
    return getattr(a, "dtype", None) is not None and a.dtype.kind == "c"


def _abs(a):
    return a * np.sign(a.real) if _complex(a) else np.abs(a)


def _relu(a):
    return np.where(a.real > 0, a, 0) if _complex(a) else np.maximum(a, 0)


# ---- labels that depend on operand kinds ------------------------------------------------


def _sub_label(kinds, attrs):
    """SubBackward0; RsubBackward1 for number - tensor"""
    return "RsubBackward1" if kinds[0] and not kinds[1] else "SubBackward0"


def _pow_label(kinds, attrs):
    """PowBackward0 (tensor ^ number), PowBackward1 (tensor ^ tensor), PowBackward2 (number ^ tensor)"""  # noqa: E501
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
    return (
        "SqueezeBackward0"
        if dim is None
        else ("SqueezeBackward4" if isinstance(dim, (list, tuple)) else "SqueezeBackward1")
    )


# ---- forward rules needing more than one numpy call -------------------------------------


def _pow(a, b):
    if isinstance(b, float) and b == 2.0 and not isinstance(a, float):
        return np.square(a)  # the common case, at the cost of one multiply
    return np.power(a, b)


def _constant(g):
    """The value of a gradient that is one number broadcast (the backward of a mean or a
    sum), or None: scaling it then costs nothing until it meets a full tensor."""
    if isinstance(g, np.ndarray) and g.size > SMALL and not any(g.strides):
        return g.reshape(-1)[0]
    return None


def _scale(g, k):
    """g * k for a Python number k, keeping a broadcast constant a broadcast constant."""
    c = _constant(g)
    if c is not None:
        return np.broadcast_to(c * k, g.shape)
    return g * k


def _pow_grad_base(g, out, a, b):
    if not isinstance(b, float):  # PowBackward1: where(exponent == 0, 0, ...)
        return g * np.where(_re(b) == 0, 0, b * np.power(a, b - 1))
    if b == 0:
        return np.zeros_like(g * a)
    c = _constant(g)
    if b == 2.0:  # g · 2a, in one pass over a when g is a broadcast constant
        return a * (2.0 * c) if c is not None else g * (2.0 * a)
    if b == 1.0:
        return g * np.ones_like(a)
    return g * (b * np.power(a, b - 1))


def _pow_grad_exponent(g, out, a, b):
    if isinstance(a, float):  # PowBackward2: the base is a Python number
        if a == 0:
            return g * np.where(_re(b) >= 0, 0, out * -np.inf)
        return g * (out * math.log(a) if a > 0 else out * np.nan)
    return g * np.where((_re(a) == 0) & (_re(b) >= 0), 0, out * np.log(a))


def _maximum_grad(first):
    def rule(g, out, a, b):
        a, b = _re(a), _re(b)
        lose = (a < b) if first else (a > b)
        return np.where(lose, 0, np.where(a == b, g / 2, g))

    return rule


def _minimum_grad(first):
    def rule(g, out, a, b):
        a, b = _re(a), _re(b)
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
        raise ShapeError(
            f"dimension out of range (expected to be in range of "
            f"[{-len(shape) - 1}, {len(shape)}], but got {d})"
        )
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
        return emit("squeeze", (emit("mm", (row, b)),), {"dim": (0,)})
    if not sa or not sb:
        raise ShapeError(
            f"both arguments to matmul need to be at least 1D, but they are {_dims((sa, sb))}"
        )
    raise ShapeError(
        f"matmul of {_dims((sa, sb))} tensors is not supported: "
        f"gradcli's @ takes vectors and matrices"
    )


def _transpose_shape(shapes, attrs):
    if len(shapes[0]) > 2:
        raise ShapeError(
            f"t() expects a tensor with <= 2 dimensions, but self is {len(shapes[0])}D"
        )
    return shapes[0][::-1]


# ---- the table ----------------------------------------------------------------------------

REAL = "real"
V = {"a": ((3,), REAL)}  # the usual example input: a vector
VB = {"a": ((2, 3), REAL), "b": ((3,), REAL)}  # broadcasting pair


def _unary(name, forward, grad, rule, domain=REAL, label=None):
    return Op(
        name,
        forward,
        (grad,),
        label or f"{name.capitalize()}Backward0",
        _same,
        mirror=f"torch.{name}(a)",
        rule=rule,
        examples=((f"{name}(a)", {"a": ((3,), domain)}), (f"{name}(A)", {"A": ((2, 2), domain)})),
    )


TABLE = [
    # arithmetic: what Python operators do to tensors and numbers
    Op(
        "add",
        lambda a, b: a + b,
        (lambda g, o, a, b: g, lambda g, o, a, b: g),
        "AddBackward0",
        _bcast,
        arity=2,
        numbers=True,
        mirror="a + b",
        saves="none",
        ufunc=lambda ops: np.add,
        rule="∂(a+b)/∂a = 1, ∂(a+b)/∂b = 1",
        examples=(("a + b", VB), ("a + 2", V), ("2 + a", V)),
    ),
    Op(
        "sub",
        lambda a, b: a - b,
        (lambda g, o, a, b: g, lambda g, o, a, b: _scale(g, -1.0)),
        _sub_label,
        _bcast,
        arity=2,
        numbers=True,
        mirror="a - b",
        saves="none",
        ufunc=lambda ops: np.subtract,
        rule="∂(a-b)/∂a = 1, ∂(a-b)/∂b = -1",
        examples=(("a - b", VB), ("a - 2", V), ("2 - a", V)),
    ),
    Op(
        "mul",
        lambda a, b: a * b,
        (
            lambda g, o, a, b: _scale(g, b) if isinstance(b, float) else g * b,
            lambda g, o, a, b: _scale(g, a) if isinstance(a, float) else g * a,
        ),
        "MulBackward0",
        _bcast,
        arity=2,
        numbers=True,
        mirror="a * b",
        saves="others",
        ufunc=lambda ops: np.multiply,
        rule="∂(a·b)/∂a = b, ∂(a·b)/∂b = a",
        examples=(("a * b", VB), ("a * 2.5", V), ("a * a", V)),
    ),
    Op(
        "div",
        lambda a, b: a / b,
        (
            lambda g, o, a, b: _scale(g, 1.0 / b) if isinstance(b, float) and b else g / b,
            lambda g, o, a, b: -g * ((a / b) / b),
        ),
        "DivBackward0",
        _bcast,
        arity=2,
        numbers=True,
        mirror="a / b (number / b is b.reciprocal() * number)",
        rule="∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = -a/b²",
        examples=(
            ("a / b", {"a": ((2, 3), REAL), "b": ((3,), "nonzero")}),
            ("a / 4", V),
            ("2 / a", {"a": ((3,), "nonzero")}),
        ),
    ),
    Op(
        "pow",
        _pow,
        (_pow_grad_base, _pow_grad_exponent),
        _pow_label,
        _bcast,
        arity=2,
        numbers=True,
        mirror="a ** b",
        saves="pow",
        ufunc=lambda ops: (
            (lambda a, b, out: np.square(a, out=out))
            if isinstance(ops[1], float) and ops[1] == 2.0 and not isinstance(ops[0], float)
            else None
        ),
        rule="∂(a^b)/∂a = b·a^(b-1), ∂(a^b)/∂b = a^b·ln a",
        examples=(
            ("a ^ 2", V),
            ("a ^ 3", V),
            ("a ^ 0.5", {"a": ((3,), "positive")}),
            ("a ^ b", {"a": ((2, 3), "positive"), "b": ((3,), REAL)}),
            ("2 ^ a", V),
            ("a ^ 0", V),
        ),
    ),
    Op(
        "neg",
        lambda a: -a,
        (lambda g, o, a: _scale(g, -1.0),),
        "NegBackward0",
        _same,
        mirror="-a",
        numbers=True,
        saves="none",
        rule="∂(-a)/∂a = -1",
        examples=(("-a", V),),
    ),
    Op(
        "reciprocal",
        lambda a: 1 / a,
        (lambda g, o, a: -g * (o * o),),
        "ReciprocalBackward0",
        _same,
        mirror="torch.reciprocal(a)",
        rule="∂(1/a)/∂a = -1/a²",
        examples=(("reciprocal(a)", {"a": ((3,), "nonzero")}),),
    ),
    # elementwise functions
    _unary("exp", lambda a: np.exp(a), lambda g, o, a: g * o, "∂exp(a)/∂a = exp(a)"),
    _unary("log", lambda a: np.log(a), lambda g, o, a: g / a, "∂ln(a)/∂a = 1/a", "positive"),
    _unary(
        "sqrt", lambda a: np.sqrt(a), lambda g, o, a: g / (2 * o), "∂√a/∂a = 1/(2√a)", "positive"
    ),
    _unary("sin", lambda a: np.sin(a), lambda g, o, a: g * np.cos(a), "∂sin(a)/∂a = cos(a)"),
    _unary("cos", lambda a: np.cos(a), lambda g, o, a: g * -np.sin(a), "∂cos(a)/∂a = -sin(a)"),
    _unary("tan", lambda a: np.tan(a), lambda g, o, a: g * (1 + o * o), "∂tan(a)/∂a = 1 + tan²(a)"),
    _unary(
        "tanh", lambda a: np.tanh(a), lambda g, o, a: g * (1 - o * o), "∂tanh(a)/∂a = 1 - tanh²(a)"
    ),
    _unary(
        "sigmoid",
        lambda a: _sigmoid(a),
        lambda g, o, a: g * ((1 - o) * o),
        "∂σ(a)/∂a = σ(a)(1 - σ(a))",
    ),
    _unary(
        "relu",
        lambda a: _relu(a),
        lambda g, o, a: np.where(_re(o) <= 0, 0, g),
        "∂relu(a)/∂a = 1 if a > 0 else 0",
        "away",
    ),
    _unary(
        "abs",
        lambda a: _abs(a),
        lambda g, o, a: g * np.sign(_re(a)),
        "∂|a|/∂a = sign(a) (0 at 0)",
        "away",
    ),
    _unary(
        "log1p",
        lambda a: np.log1p(a),
        lambda g, o, a: g / (a + 1),
        "∂ln(1+a)/∂a = 1/(1+a)",
        "positive",
        label="Log1PBackward0",
    ),
    _unary("expm1", lambda a: np.expm1(a), lambda g, o, a: g * (o + 1), "∂(eᵃ-1)/∂a = eᵃ"),
    # reductions
    Op(
        "sum",
        lambda a, dim=None, keepdim=False: np.sum(a, axis=_axes(a, dim), keepdims=keepdim),
        (lambda g, o, a, dim=None, keepdim=False: _expand_reduced(g, a, dim, keepdim),),
        _reduce_label("SumBackward"),
        _reduce_shape,
        params={"dim": None, "keepdim": False},
        saves="none",
        mirror="a.sum() / a.sum(dim, keepdim)",
        rule="∂Σa/∂aᵢ = 1",
        examples=(
            ("sum(A)", {"A": ((2, 3), REAL)}),
            ("sum(A, dim=0)", {"A": ((2, 3), REAL)}),
            ("sum(A, dim=1, keepdim=True)", {"A": ((2, 3), REAL)}),
            ("sum(A, dim=[0, 1])", {"A": ((2, 3), REAL)}),
        ),
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
        params={"dim": None, "keepdim": False},
        saves="none",
        mirror="a.mean() / a.mean(dim, keepdim)",
        rule="∂mean(a)/∂aᵢ = 1/n",
        examples=(
            ("mean(A)", {"A": ((2, 3), REAL)}),
            ("mean(A, dim=-1)", {"A": ((2, 3), REAL)}),
            ("mean(A, dim=0, keepdim=True)", {"A": ((2, 3), REAL)}),
        ),
    ),
    Op(
        "maximum",
        lambda a, b: np.maximum(a, b),
        (_maximum_grad(True), _maximum_grad(False)),
        "MaximumBackward0",
        _bcast,
        arity=2,
        mirror="torch.maximum(a, b)",
        rule="∂max(a,b)/∂a = 1 where a > b, ½ where a = b",
        examples=(("maximum(a, b)", {"a": ((3,), "distinct"), "b": ((3,), "distinct")}),),
    ),
    Op(
        "minimum",
        lambda a, b: np.minimum(a, b),
        (_minimum_grad(True), _minimum_grad(False)),
        "MinimumBackward0",
        _bcast,
        arity=2,
        mirror="torch.minimum(a, b)",
        rule="∂min(a,b)/∂a = 1 where a < b, ½ where a = b",
        examples=(("minimum(a, b)", {"a": ((3,), "distinct"), "b": ((3,), "distinct")}),),
    ),
    # matrix products and the shape ops they decompose into
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
    ),
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
]


# ---- issue 3: activations, elementwise math, reductions, losses, selection, shapes -------

M = {"A": ((2, 3), REAL)}  # the usual matrix example input
P3 = {"a": ((3,), "prob"), "b": ((3,), "prob")}


def _erf(x):
    """erf to float64 precision (max relative error ~1e-15 against math.erf), vectorised:
    |x| < 2: 2/sqrt(pi) * exp(-x^2) * sum 2^n x^(2n+1) / (2n+1)!!  (positive terms only);
    |x| >= 2: 1 - erfc(|x|), erfc by its continued fraction evaluated backwards."""
    x = np.asarray(x)
    x64 = x.astype(np.complex128 if _complex(x) else np.float64)
    sign = np.where(_re(x64) < 0, -1.0, 1.0)
    ax = x64 * sign  # |x| on the real line, continued analytically for dual numbers
    out = np.empty_like(x64)
    small = np.abs(_re(ax)) < 2.0
    xs = x64[small]
    term, total, two_x2 = xs.copy(), xs.copy(), 2.0 * xs * xs
    for n in range(1, 200):
        if not term.size or np.all(np.abs(term) <= 1e-17 * np.abs(total)):
            break
        term = term * two_x2 / (2 * n + 1)
        total += term
    out[small] = 2.0 / math.sqrt(math.pi) * np.exp(-xs * xs) * total
    xl = ax[~small]
    t = xl.copy()
    for k in range(120, 0, -1):
        t = xl + (k / 2.0) / t
    out[~small] = np.where(
        np.isnan(_re(xl)), np.nan, sign[~small] * (1.0 - np.exp(-xl * xl) / math.sqrt(math.pi) / t)
    )
    return out.astype(x.dtype, copy=False)


def _gelu(a, approximate="none"):
    if approximate == "tanh":
        return 0.5 * a * (1 + np.tanh(_GELU_BETA * (a + 0.044715 * a * a * a)))
    return 0.5 * a * (1 + _erf(a / math.sqrt(2)))


_GELU_BETA = math.sqrt(2 / math.pi)


def _gelu_grad(g, o, a, approximate="none"):
    if approximate == "tanh":  # PyTorch's GeluBackward formula for the tanh form
        inner = np.tanh(_GELU_BETA * (a + 0.044715 * a * a * a))
        right = 1 + inner
        return g * (
            0.5 * right + 0.5 * a * (1 - inner * inner) * _GELU_BETA * (1 + 3 * 0.044715 * a * a)
        )
    cdf = 0.5 * (1 + _erf(a / math.sqrt(2)))
    return g * (cdf + a * np.exp(-0.5 * a * a) / math.sqrt(2 * math.pi))


def _softplus(a, beta=1.0, threshold=20.0):
    return np.where(_re(a) * beta > threshold, a, np.log1p(np.exp(a * beta)) / beta)


def _atan2(a, b):
    if not (_complex(a) or _complex(b)):
        return np.arctan2(a, b)
    # numpy has no complex arctan2: the dual-number value is the real one plus the
    # derivative (b·da - a·db)/(a² + b²) along the imaginary parts
    ar, br, ai, bi = _re(a), _re(b), np.imag(a), np.imag(b)
    return np.arctan2(ar, br) + 1j * ((br * ai - ar * bi) / (ar * ar + br * br))


def _zero_grad(g, o, a, **attrs):
    return np.zeros_like(g)


def _unary_attrs(name, forward, grad, rule, params, examples, label=None, mirror=None):
    return Op(
        name,
        forward,
        (grad,),
        label or f"{name.capitalize()}Backward0",
        _same,
        params=params,
        mirror=mirror or f"F.{name}(a, ...)",
        rule=rule,
        examples=examples,
    )


def _one_dim(dim, ndim):
    if isinstance(dim, tuple):
        if len(dim) != 1:
            raise ShapeError(f"dim must be a single integer here, got {list(dim)}")
        dim = dim[0]
    return norm_dims(dim, ndim)[0] if ndim else 0


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
    if dim is None:
        return g * _prod_others(a.reshape(-1), 0).reshape(a.shape)
    d = _one_dim(dim, a.ndim)
    return _expand_reduced(g, a, d, keepdim) * _prod_others(a, d)


def _prod_shape(shapes, attrs):
    dim = attrs.get("dim")
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


def _norm(a, p=2.0, dim=None, keepdim=False):
    axes = None if dim is None else norm_dims(dim, a.ndim)
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


def _var(a, dim=None, correction=1.0, keepdim=False):
    axes = None if dim is None else norm_dims(dim, a.ndim)
    d = a - np.mean(a, axis=axes, keepdims=True)  # as np.var does, but without |d|² for duals
    return np.sum(d * d, axis=axes, keepdims=keepdim) / (_count(a, dim) - correction)


def _var_grad(g, o, a, dim=None, correction=1.0, keepdim=False):
    axes = None if dim is None else norm_dims(dim, a.ndim)
    mean = np.mean(a, axis=axes, keepdims=True)
    return _expand_reduced(g, a, dim, keepdim) * 2 * (a - mean) / (_count(a, dim) - correction)


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


def _dim_shape(shapes, attrs):
    if shapes[0]:
        _one_dim(attrs["dim"], len(shapes[0]))
    elif attrs["dim"] not in (0, -1):
        raise ShapeError(
            f"dimension out of range (expected to be in range of [-1, 0], but got {attrs['dim']})"
        )
    return shapes[0]


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
    e = np.exp(a - np.amax(a, axis=d, keepdims=True))
    return e / np.sum(e, axis=d, keepdims=True)


def _log_softmax(a, dim=None):
    d = _softmax_dim(a, dim)
    if d is None:
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
    return [a if node(a).shape == shape else emit("expand", (a,), {"shape": shape}) for a in args]


def _mse_lower(emit, node, args, attrs):
    return emit("mse", _broadcast_tensors(emit, node, args), attrs)


def _l1_lower(emit, node, args, attrs):
    """F.l1_loss is recorded as (a - b).abs() then mean or sum."""
    diff = emit("abs", (emit("sub", _broadcast_tensors(emit, node, args)),))
    reduction = attrs.get("reduction", "mean")
    if reduction == "none":
        return diff
    return emit(reduction, (diff,), {"dim": None, "keepdim": False})


def _where(c, a, b):
    if not (isinstance(c, np.ndarray) and c.dtype == np.bool_):
        raise EvaluationError(
            "where expected condition to be a boolean tensor (a comparison such as x > 0)"
        )
    return np.where(c, a, b)


def _clamp(a, min=None, max=None):
    if min is None and max is None:
        raise EvaluationError("clamp: at least one of 'min' or 'max' must not be None")
    out = a if min is None else np.maximum(a, min)
    return out if max is None else np.minimum(out, max)


def _clamp_grad(g, o, a, min=None, max=None):
    keep = np.ones(a.shape, bool)
    if min is not None:
        keep &= _re(a) >= min
    if max is not None:
        keep &= _re(a) <= max
    return np.where(keep, g, 0)


def _compare(name, fn, symbol):
    return Op(
        name,
        lambda a, b: fn(_re(a), _re(b)),
        None,
        "",
        _bcast,
        arity=2,
        numbers=True,
        dtype="bool",
        mirror=f"a {symbol} b",
        rule="no gradient: a boolean constant",
        call=f"a {symbol} b",
        examples=((f"sum(a * (b {symbol} 0.1))", {"a": ((3,), REAL), "b": ((3,), "away")}),),
    )


# shapes: reshape records a view when it can (PyTorch and numpy agree on when: strides)


def _resolve_shape(shape, size):
    shape = tuple(shape) if isinstance(shape, tuple) else (shape,)
    if shape.count(-1) > 1:
        raise ShapeError("only one dimension can be inferred (-1)")
    if any(d < -1 for d in shape):
        raise ShapeError(f"invalid shape dimension {min(shape)}")
    known = math.prod(d for d in shape if d != -1)
    if -1 in shape:
        if known == 0 or size % known:
            raise ShapeError(f"shape '{list(shape)}' is invalid for input of size {size}")
        shape = tuple(size // known if d == -1 else d for d in shape)
    if math.prod(shape) != size:
        raise ShapeError(f"shape '{list(shape)}' is invalid for input of size {size}")
    return shape


def _reshape_ids(emit, node, a, shape):
    """torch.reshape: a view of a contiguous tensor, an aliasing reshape of a strided one
    that allows it, else a contiguous clone then a view."""
    value = node(a).value
    shape = _resolve_shape(shape, value.size)
    if value.flags.c_contiguous:
        return emit("view", (a,), {"shape": shape, "kind": "view"})
    try:
        np.reshape(value, shape, copy=False)
        return emit("view", (a,), {"shape": shape, "kind": "alias"})
    except ValueError:
        return emit("view", (emit("clone", (a,)),), {"shape": shape, "kind": "unsafe"})


def _reshape_lower(emit, node, args, attrs):
    return _reshape_ids(emit, node, args[0], attrs["shape"])


def _flatten_lower(emit, node, args, attrs):
    a = args[0]
    shape = node(a).shape
    if not shape:
        return _reshape_ids(emit, node, a, (1,))
    start = norm_dims(int(attrs.get("start_dim", 0)), len(shape))[0]
    end = norm_dims(int(attrs.get("end_dim", -1)), len(shape))[0]
    if start > end:
        raise ShapeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if start == end:
        return a  # PyTorch returns the tensor itself: no node
    flat = shape[:start] + (math.prod(shape[start : end + 1]),) + shape[end + 1 :]
    return _reshape_ids(emit, node, a, flat)


def _outer_lower(emit, node, args, attrs):
    a, b = args
    if len(node(a).shape) != 1 or len(node(b).shape) != 1:
        raise ShapeError(
            f"outer: 1D tensors expected, but got {_dims((node(a).shape, node(b).shape))} tensors"
        )
    return emit("mul", (_reshape_ids(emit, node, a, (-1, 1)), b))


def _view_label(kinds, attrs):
    """ViewBackward0 (contiguous), ReshapeAliasBackward0 (strided), UnsafeViewBackward0 (after a clone)"""  # noqa: E501
    return {
        "view": "ViewBackward0",
        "alias": "ReshapeAliasBackward0",
        "unsafe": "UnsafeViewBackward0",
    }[attrs["kind"]]


def _index_lower(emit, node, args, attrs):
    """x[i], x[a:b:c], A[i, j], A[:, j]: one SelectBackward0 per integer, one
    SliceBackward0 per slice; in a multi-index a slice of everything records nothing (and
    if nothing is left, PyTorch records an AliasBackward0)."""
    cur = args[0]
    items = attrs["items"]
    shape = node(cur).shape
    if len(items) > len(shape):
        raise ShapeError(f"too many indices for tensor of dimension {len(shape)}")
    dim = 0
    for item in items:
        size = node(cur).shape[dim]
        if item[0] == "int":
            i = item[1]
            if not -size <= i < size:
                raise ShapeError(f"index {i} is out of bounds for dimension {dim} with size {size}")
            cur = emit("select", (cur,), {"dim": dim, "index": i % size})
            continue
        start, stop, step = item[1:]
        if step is not None and step <= 0:
            raise ShapeError("step must be greater than zero")
        start, stop, step = slice(start, stop, step).indices(size)
        stop = max(stop, start)
        if not (attrs["multi"] and start == 0 and stop == size and step == 1):
            cur = emit("slice", (cur,), {"dim": dim, "start": start, "stop": stop, "step": step})
        dim += 1
    if cur == args[0]:
        cur = emit("alias", (cur,))
    return cur


def _at(dim, key):
    return (slice(None),) * dim + (key,)


def _scatter_into(shape, key, g):
    out = np.zeros(shape, dtype=g.dtype)
    out[key] = g
    return out


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
    return first[:d] + (len(shapes),) + first[d:]


def _stack_grads(g, o, *args, dim=0):
    d = dim % g.ndim
    return [np.take(g, k, axis=d) for k in range(len(args))]


TABLE += [
    # activations
    _unary_attrs(
        "softplus",
        _softplus,
        lambda g, o, a, beta=1.0, threshold=20.0: np.where(
            _re(a) * beta > threshold, g, g * _sigmoid(a * beta)
        ),
        "∂softplus(a)/∂a = σ(βa)",
        {"beta": 1.0, "threshold": 20.0},
        (("softplus(a)", V), ("softplus(A, beta=2)", M)),
        mirror="F.softplus(a, beta, threshold)",
    ),
    _unary_attrs(
        "leaky_relu",
        lambda a, negative_slope=0.01: np.where(_re(a) > 0, a, a * negative_slope),
        lambda g, o, a, negative_slope=0.01: np.where(_re(a) > 0, g, g * negative_slope),
        "∂/∂a = 1 if a > 0 else slope",
        {"negative_slope": 0.01},
        (("leaky_relu(a)", {"a": ((3,), "away")}), ("leaky_relu(a, 0.2)", {"a": ((3,), "away")})),
        label="LeakyReluBackward0",
        mirror="F.leaky_relu(a, negative_slope)",
    ),
    _unary_attrs(
        "elu",
        lambda a, alpha=1.0: np.where(_re(a) > 0, a, alpha * np.expm1(a)),
        lambda g, o, a, alpha=1.0: np.where(_re(a) > 0, g, g * alpha * np.exp(a)),
        "∂/∂a = 1 if a > 0 else α·eᵃ",
        {"alpha": 1.0},
        (("elu(a)", {"a": ((3,), "away")}), ("elu(a, alpha=0.5)", {"a": ((3,), "away")})),
        mirror="F.elu(a, alpha)",
    ),
    _unary(
        "silu",
        lambda a: a * _sigmoid(a),
        lambda g, o, a: g * _sigmoid(a) * (1 + a * (1 - _sigmoid(a))),
        "∂(a·σ(a))/∂a = σ(a)(1 + a(1 - σ(a)))",
    ),
    _unary_attrs(
        "gelu",
        _gelu,
        _gelu_grad,
        "∂/∂a = Φ(a) + a·φ(a)",
        {"approximate": "none"},
        (("gelu(a)", V), ("gelu(A)", M), ("gelu(a, approximate='tanh')", V)),
        mirror="F.gelu(a, approximate)",
    ),
    _unary(
        "erf",
        lambda a: _erf(a),
        lambda g, o, a: g * (2 / math.sqrt(math.pi)) * np.exp(-a * a),
        "∂erf(a)/∂a = 2/√π·exp(-a²)",
    ),
    _unary_attrs(
        "hardtanh",
        lambda a, min_val=-1.0, max_val=1.0: np.minimum(np.maximum(a, min_val), max_val),
        lambda g, o, a, min_val=-1.0, max_val=1.0: np.where(
            (_re(a) > min_val) & (_re(a) < max_val), g, 0
        ),
        "∂/∂a = 1 strictly inside (min_val, max_val), else 0",
        {"min_val": -1.0, "max_val": 1.0},
        (("hardtanh(a * 2)", {"a": ((4,), "away")}),),
        mirror="F.hardtanh(a, min_val, max_val)",
    ),
    # elementwise math
    _unary(
        "asin",
        lambda a: np.arcsin(a),
        lambda g, o, a: g / np.sqrt(1 - a * a),
        "∂asin(a)/∂a = 1/√(1-a²)",
        "unit",
    ),
    _unary(
        "acos",
        lambda a: np.arccos(a),
        lambda g, o, a: -g / np.sqrt(1 - a * a),
        "∂acos(a)/∂a = -1/√(1-a²)",
        "unit",
    ),
    _unary(
        "atan", lambda a: np.arctan(a), lambda g, o, a: g / (1 + a * a), "∂atan(a)/∂a = 1/(1+a²)"
    ),
    _unary("sinh", lambda a: np.sinh(a), lambda g, o, a: g * np.cosh(a), "∂sinh(a)/∂a = cosh(a)"),
    _unary("cosh", lambda a: np.cosh(a), lambda g, o, a: g * np.sinh(a), "∂cosh(a)/∂a = sinh(a)"),
    Op(
        "atan2",
        lambda a, b: _atan2(a, b),
        (lambda g, o, a, b: g * b / (a * a + b * b), lambda g, o, a, b: g * -a / (a * a + b * b)),
        "Atan2Backward0",
        _bcast,
        arity=2,
        mirror="torch.atan2(a, b)",
        rule="∂atan2(a,b)/∂a = b/(a²+b²), ∂/∂b = -a/(a²+b²)",
        examples=(("atan2(a, b)", {"a": ((3,), REAL), "b": ((2, 3), "nonzero")}),),
    ),
    _unary(
        "log2",
        lambda a: np.log2(a),
        lambda g, o, a: g / (a * math.log(2)),
        "∂log₂(a)/∂a = 1/(a ln 2)",
        "positive",
    ),
    _unary(
        "log10",
        lambda a: np.log10(a),
        lambda g, o, a: g / (a * math.log(10)),
        "∂log₁₀(a)/∂a = 1/(a ln 10)",
        "positive",
    ),
    _unary("exp2", lambda a: np.exp2(a), lambda g, o, a: g * o * math.log(2), "∂2ᵃ/∂a = 2ᵃ ln 2"),
    _unary(
        "rsqrt",
        lambda a: 1 / np.sqrt(a),
        lambda g, o, a: -0.5 * g * o * o * o,
        "∂a^(-½)/∂a = -½·a^(-3/2)",
        "positive",
    ),
    _unary(
        "square",
        lambda a: a * a,
        lambda g, o, a: g * (2.0 * a),
        "∂a²/∂a = 2a",
        label="PowBackward0",
    ),
    _unary("sign", lambda a: np.sign(_re(a)), _zero_grad, "zero (as PyTorch)", "away"),
    _unary("floor", lambda a: np.floor(_re(a)), _zero_grad, "zero (as PyTorch)"),
    _unary("ceil", lambda a: np.ceil(_re(a)), _zero_grad, "zero (as PyTorch)"),
    _unary("round", lambda a: np.round(_re(a)), _zero_grad, "zero (as PyTorch; halves to even)"),
    # reductions
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
        ),
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
        ),
    ),
    Op(
        "prod",
        _prod,
        (_prod_grad,),
        _reduce_label("ProdBackward"),
        _prod_shape,
        params={"dim": None, "keepdim": False},
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
    ),
    Op(
        "var",
        _var,
        (_var_grad,),
        "VarBackward0",
        _reduce_shape,
        params={"dim": None, "correction": 1.0, "keepdim": False},
        mirror="a.var(dim, correction=1, keepdim)",
        rule="∂var/∂aᵢ = 2(aᵢ - mean)/(N - correction)",
        examples=(("var(a)", V), ("var(A, dim=0)", M), ("var(A, 1, correction=0)", M)),
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
    ),
    Op(
        "cumsum",
        _cumsum,
        (_cumsum_grad,),
        "CumsumBackward0",
        _dim_shape,
        params={"dim": REQUIRED},
        mirror="torch.cumsum(a, dim)",
        rule="reverse cumulative sum",
        examples=(("cumsum(a, 0)", V), ("cumsum(A, dim=1)", M)),
    ),
    # normalisation and losses
    Op(
        "softmax",
        _softmax,
        (_softmax_grad,),
        "SoftmaxBackward0",
        _softmax_shape,
        params={"dim": None},
        mirror="F.softmax(a, dim)",
        rule="∂s/∂a = s ⊙ (g - Σ g s)",
        examples=(("softmax(A, dim=1)", M), ("softmax(a, 0)", V), ("softmax(A)", M)),
    ),
    Op(
        "log_softmax",
        _log_softmax,
        (_log_softmax_grad,),
        "LogSoftmaxBackward0",
        _softmax_shape,
        params={"dim": None},
        mirror="F.log_softmax(a, dim)",
        rule="∂/∂a = g - softmax(a)·Σg",
        examples=(("log_softmax(A, dim=1)", M), ("log_softmax(a, 0)", V)),
    ),
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
        "div_scalar",
        lambda a, divisor: a / divisor,
        (lambda g, o, a, divisor: g / divisor,),
        "DivBackward1",
        _same,
        params={"divisor": 1.0},
        public=False,
        mirror="a / n (in PyTorch's C++)",
        rule="∂(a/n)/∂a = 1/n",
    ),
    # comparisons and selection
    _compare("lt", lambda a, b: np.less(a, b), "<"),
    _compare("le", lambda a, b: np.less_equal(a, b), "<="),
    _compare("gt", lambda a, b: np.greater(a, b), ">"),
    _compare("ge", lambda a, b: np.greater_equal(a, b), ">="),
    _compare("eq", lambda a, b: np.equal(a, b), "=="),
    _compare("ne", lambda a, b: np.not_equal(a, b), "!="),
    Op(
        "where",
        _where,
        (None, lambda g, o, c, a, b: np.where(c, g, 0), lambda g, o, c, a, b: np.where(c, 0, g)),
        "WhereBackward0",
        _bcast,
        arity=3,
        numbers=True,
        mirror="torch.where(cond, a, b)",
        rule="the gradient goes to the side chosen",
        examples=(
            ("where(a > 0, a, b)", {"a": ((3,), "away"), "b": ((3,), REAL)}),
            ("where(b < 0, a * 2, 0)", {"a": ((2, 3), REAL), "b": ((3,), "away")}),
        ),
    ),
    Op(
        "clamp",
        _clamp,
        (_clamp_grad,),
        "ClampBackward1",
        _same,
        params={"min": None, "max": None},
        mirror="torch.clamp(a, min, max)",
        rule="∂/∂a = 1 where min ≤ a ≤ max, else 0",
        examples=(
            ("clamp(a, -0.5, 0.5)", {"a": ((4,), "away")}),
            ("clamp(a, min=0.3)", {"a": ((4,), "away")}),
            ("clamp(a, max=0.3)", {"a": ((4,), "away")}),
        ),
    ),
    # shapes and indexing
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
        params={"start_dim": 0.0, "end_dim": -1.0},
        lower=_flatten_lower,
        mirror="torch.flatten(a, start_dim, end_dim)",
        rule="reshape back",
        examples=(("flatten(A)", M), ("flatten(A.T)", M)),
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
    ),
    Op(
        "index",
        None,
        (),
        "SelectBackward0 per integer, SliceBackward0 per slice",
        None,
        lower=_index_lower,
        public=False,
        call="a[i], a[i:j:k], A[i, j], A[:, j]",
        mirror="a[...]",
        rule="scatter the gradient back",
        examples=(
            ("a[0]", V),
            ("a[-1]", V),
            ("a[1:3]", {"a": ((4,), REAL)}),
            ("a[::2]", {"a": ((5,), REAL)}),
            ("A[:, 1]", M),
            ("A[1, 2]", M),
            ("a[1:]", V),
            ("a[:-1]", V),
            ("A[0:1, 1:]", M),
            ("A[:, :]", M),
            ("a[:]", V),
        ),
    ),
    Op(
        "select",
        lambda a, dim, index: a[_at(dim, index)],
        (lambda g, o, a, dim, index: _scatter_into(a.shape, _at(dim, index), g),),
        "SelectBackward0",
        lambda s, at: s[0][: at["dim"]] + s[0][at["dim"] + 1 :],
        params={"dim": 0, "index": 0},
        public=False,
    ),
    Op(
        "slice",
        lambda a, dim, start, stop, step: a[_at(dim, slice(start, stop, step))],
        (
            lambda g, o, a, dim, start, stop, step: _scatter_into(
                a.shape, _at(dim, slice(start, stop, step)), g
            ),
        ),
        "SliceBackward0",
        lambda s, at: (
            s[0][: at["dim"]]
            + (len(range(at["start"], at["stop"], at["step"])),)
            + s[0][at["dim"] + 1 :]
        ),
        public=False,
    ),
    Op("alias", lambda a: a.view(), (lambda g, o, a: g,), "AliasBackward0", _same, public=False),
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


def _sigmoid(a):
    # 1/(1+e^-a) overflows harmlessly to 0 for large negative a; no warnings leak (errstate).
    # Dual numbers take the form that does not overflow on their side of 0.
    if _complex(a):
        e = np.exp(-np.where(a.real >= 0, a, -a))
        return np.where(a.real >= 0, 1 / (1 + e), e / (1 + e))
    return 1 / (1 + np.exp(-a))


def _mean(a, dim=None, keepdim=False):
    # np.mean's own steps (a pairwise sum in the input's dtype, then a division by the
    # count) without its Python wrapper, which costs more than a small mean itself
    return np.add.reduce(a, axis=_axes(a, dim), keepdims=keepdim) / _count(a, dim)


def _axes(a, dim):
    return None if dim is None else norm_dims(dim, a.ndim)


OPS = {op.name: op for op in TABLE}


def operator_rows():
    """The public operators, as `gradcli ops` and the README list them."""
    return [op.describe() for op in TABLE if op.public or op.call]


ALIASES = {"t": "transpose"}  # method spellings PyTorch users type: A.t()
