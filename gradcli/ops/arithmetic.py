"""Arithmetic: what Python operators do to tensors and numbers, and comparisons."""

import math

from .. import dtypes, intops
from ..errors import EvaluationError
from .core import (
    ELIDE_BYTES,
    REAL,
    REQUIRED,
    VB,
    Op,
    V,
    Whole,
    _bcast,
    _complex,
    _constant,
    _re,
    _same,
    _scale,
    lazy_numpy,
)

np = lazy_numpy(globals())


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


def _num(v):
    """A number literal written as an integer (a Whole) as the plain float numpy takes for a
    weak scalar, cast to the tensor's dtype as PyTorch casts a wrapped number: numpy takes a
    float subclass for a float64, so ``x + 2`` on float32 would compute in double, through a
    float64 temporary of the tensor's size. Up to 2**24 the literal is exact in float32 and
    a sum, difference, product or quotient rounded once from double is the one float32
    gives (double rounding is innocuous at 53 >= 2*24 + 2 bits): the same numbers. Larger
    ones keep the double computation they had."""
    return float(v) if v.__class__ is Whole and -16777216.0 <= v <= 16777216.0 else v


def _add(a, b, out=None):
    return np.add(_num(a), _num(b), out=out)


def _subtract(a, b, out=None):
    return np.subtract(_num(a), _num(b), out=out)


def _multiply(a, b, out=None):
    return np.multiply(_num(a), _num(b), out=out)


def _over(g, k):
    """g / k for a Python number k, as DivBackward0 computes grad / other (not g * (1/k),
    which is a last bit off for most k), keeping a broadcast constant a broadcast constant."""
    c = _constant(g)
    return g / k if c is None else np.broadcast_to(c / k, g.shape)


def _mul(g, b, into):
    """g · b, into ``into`` when given (of g's shape and dtype)."""
    return g * b if into is None else np.multiply(g, b, out=into)


def _pow(a, b):
    if isinstance(b, float) and b == 2.0 and not isinstance(a, float):
        return np.square(a)  # the common case, at the cost of one multiply
    return _power(a, b)


def _power(a, b):
    """a ** b as PyTorch's kernel for a number exponent computes it: ** 0.5 is sqrt and
    ** -0.5 is 1 / sqrt (so -0 gives -inf and -inf gives nan, where C's pow gives inf, 0);
    ** 3 is a * a * a and ** -2 is 1 / (a * a), in the tensor's own dtype (pow rounds once,
    and from double for a float32 tensor: a last bit off PyTorch's in a quarter of the
    elements)."""
    if isinstance(b, float) and b in (0.5, -0.5) and not isinstance(a, float):
        return np.sqrt(a) if b == 0.5 else 1 / np.sqrt(a)
    if isinstance(b, float) and b in (3.0, -2.0) and getattr(a, "dtype", None) in _FLOATS:
        square = a * a
        return square * a if b == 3.0 else np.reciprocal(square)
    return np.power(a, b)


_FLOATS = ("float32", "float64")  # (numpy dtypes compare equal to their names)
BLOCK = 1 << 16  # elements at once in a fused pass (elementwise.BLOCK's size): in cache


def _twice_times(a, c, into=None):
    """g · 2a for a broadcast constant g (its value c), into ``into`` when given: 2a first,
    as PyTorch computes it (2a is inf for |a| over half the largest float, and so is the
    gradient there, where a · 2c is not), then · c in the order numpy's elision takes for
    ``g * (2a)``; a block at a time where the layout allows, so a goes through memory once."""
    out = np.empty(a.shape, np.result_type(a, c)) if into is None else into
    elided = out.nbytes >= ELIDE_BYTES
    if not (a.flags.c_contiguous and out.flags.c_contiguous and out.dtype == a.dtype):
        np.multiply(2.0, a, out=out)
        return np.multiply(*((out, c) if elided else (c, out)), out=out)
    src, dst = a.reshape(-1), out.reshape(-1)
    for s in range(0, dst.size, BLOCK):
        d = dst[s : s + BLOCK]
        np.multiply(2.0, src[s : s + BLOCK], out=d)
        np.multiply(*((d, c) if elided else (c, d)), out=d)
    return out


def _pow_grad_base(g, out, a, b, into=None):
    if not isinstance(b, float):  # PowBackward1: where(exponent == 0, 0, ...)
        return g * np.where(_re(b) == 0, 0, b * np.power(a, b - 1))
    if b == 0:
        return np.zeros_like(g * a)
    c = _constant(g)
    if b == 2.0:  # g · 2a, in one pass over a when g is a broadcast constant
        if into is None or into.shape != a.shape:
            return g * (2.0 * a) if c is None else _twice_times(a, c)
        if c is not None:
            return _twice_times(a, c, into)
        np.multiply(2.0, a, out=into)  # then g · 2a in the order numpy's elision takes
        return np.multiply(*((into, g) if into.nbytes >= ELIDE_BYTES else (g, into)), out=into)
    if b == 1.0:
        return g * np.ones_like(a)
    return g * (b * _power(a, b - 1))


def _pow_grad_exponent(g, out, a, b, into=None):
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


def _compare(name, fn, symbol, aliases=()):
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
        aliases=aliases,
    )


# ---- floor division and remainder: Python's (and PyTorch's) rounding towards -inf --------


def _no_derivative(name):
    """PyTorch records a NotImplemented node: its backward (and forward-mode) fails."""

    def rule(g, o, *args):
        raise EvaluationError(
            f"derivative for aten::{name} is not implemented",
            hint="PyTorch has no gradient through this operation; the program's output "
            "must not depend on it through an input that requires grad",
        )

    return rule


def _tangent_free(name, *operands):
    """Forward mode on dual numbers: a tangent reaching an op PyTorch cannot differentiate."""
    if any(_complex(a) and np.any(np.imag(a)) for a in operands):
        raise EvaluationError(
            f"Trying to use forward AD with aten::{name} that does not support it",
            hint=f"{name} has no derivative in PyTorch; leave its inputs out of --wrt",
        )


def _floor_divide(a, b):
    _tangent_free("floor_divide", a, b)
    return np.floor_divide(_re(a), _re(b))


def _dual_part(a, b, k):
    """The tangent of a - b·k for a locally constant k, on dual numbers."""
    return 1j * (np.imag(a) - np.imag(b) * k)


def _remainder(a, b):
    """PyTorch's remainder: fmod, moved by b where the signs differ (a zero keeps a's sign,
    unlike numpy's remainder)."""
    if isinstance(a, float):
        _tangent_free("remainder", b)
    ra, rb = _re(a), _re(b)
    m = np.fmod(ra, rb)
    out = np.where((m != 0) & ((rb < 0) != (m < 0)), m + rb, m)
    if _complex(a) or _complex(b):
        out = out + _dual_part(a, b, np.floor_divide(ra, rb))
    return out


def _remainder_label(kinds, attrs):
    """RemainderBackward0 (tensor % number), RemainderBackward1 (tensor % tensor); number % tensor: NotImplemented"""  # noqa: E501
    if kinds[0]:
        return "NotImplemented"
    return "RemainderBackward0" if kinds[1] else "RemainderBackward1"


def _fmod_label(kinds, attrs):
    """FmodBackward0 (tensor, number), FmodBackward1 (tensor, tensor)"""
    return "FmodBackward0" if kinds[1] else "FmodBackward1"


def _remainder_grad_divisor(g, o, a, b):
    if isinstance(a, float):
        _no_derivative("remainder")(g, o)
    return -g * np.floor_divide(_re(a), _re(b))


def _fmod(a, b):
    if isinstance(a, float):
        raise EvaluationError("fmod(): argument 'input' must be a tensor, not a number")
    ra, rb = _re(a), _re(b)
    out = np.fmod(ra, rb)
    if _complex(a) or _complex(b):
        out = out + _dual_part(a, b, np.trunc(ra / rb))
    return out


# ---- boolean tensors: &, |, ~ and the logical functions -----------------------------------


def _logical(name, fn, arity, example, symbol=None, bool_only=False):
    """No gradient. bool_only: PyTorch's bitwise ops (intops), on bool and integer tensors,
    which refuse floating point ones; else the logical ones, a bool result, nonzero True."""
    return Op(
        name,
        fn if bool_only else (lambda *xs: fn(*[_re(x) for x in xs])),
        None,
        "",
        _same if arity == 1 else _bcast,
        arity=arity,
        numbers=bool_only,
        dtype=None if bool_only else "bool",
        mirror=f"torch.{name}(a{', b' if arity == 2 else ''})" + (f", {symbol}" if symbol else ""),
        rule="no gradient: "
        + (
            "bitwise on integer tensors, logical on boolean ones; floats refused, as in PyTorch"
            if bool_only
            else "a boolean result (nonzero is True)"
        ),
        examples=((example, {"a": ((3,), "away"), "b": ((3,), REAL)}),),
    )


def _imag(a):
    return np.imag(a) if _complex(a) else 0.0


def _logaddexp(base):
    def forward(a, b):
        """PyTorch's kernel: max + log1p(exp(min - max)); a itself where a = b = ±inf."""
        ra, rb = _re(a), _re(b)
        hi, lo = np.where(ra < rb, b, a), np.where(ra < rb, a, b)
        out = hi + (
            np.log1p(np.exp(lo - hi)) if base == "e" else np.log1p(np.exp2(lo - hi)) / math.log(2)
        )
        return np.where(np.isinf(ra) & (ra == rb), a, out)

    return forward


def _logaddexp_grad(base, first):
    def rule(g, o, a, b):
        d = b - a if first else a - b
        return g / (1 + (np.exp(d) if base == "e" else np.exp2(d)))

    return rule


def _hypot(a, b):
    if not (_complex(a) or _complex(b)):
        return np.hypot(a, b)
    ar, br = _re(a), _re(b)
    h = np.hypot(ar, br)
    return h + 1j * ((ar * _imag(a) + br * _imag(b)) / h)


def _same_sign(a, b):
    return np.signbit(_re(a)) == np.signbit(_re(b))


def _copysign(a, b):
    if not _complex(a):
        return np.copysign(a, _re(b))
    # the derivative ±1, but 0 at a = 0 as PyTorch's backward has it
    flipped = a * np.where(_same_sign(a, b), 1, -1)
    return np.where(_re(a) == 0, np.copysign(_re(a), _re(b)), flipped)


def _copysign_grad(g, o, a, b):
    """PyTorch's copysign_tensor_self_backward: g·result/a, 0 where a is 0."""
    return g * np.where(_re(a) == 0, 0, o / a)


def _copysign_label(kinds, attrs):
    """CopysignBackward0 (tensors); CopysignBackward1 with a number as b"""
    return "CopysignBackward1" if kinds[1] else "CopysignBackward0"


def _log_real(b):
    """log on the real line: nan below 0 also for dual numbers (complex log would not be)."""
    return np.where(_re(b) < 0, np.nan, np.log(b)) if _complex(b) else np.log(b)


def _xlogy(a, b):
    """PyTorch's xlogy: nan where b is nan, else 0 where a is 0, else a·log(b). On dual
    numbers the derivative along a stays log(b) at a = 0 (0 where b ≤ 0), as the backward."""
    ra, rb = _re(a), _re(b)
    out = np.where(np.isnan(rb), np.nan, np.where(ra == 0, 0, a * _log_real(b)))
    if _complex(a):
        at0 = (ra == 0) & ~(rb <= 0) & (np.imag(a) != 0)
        out = out + 1j * np.where(at0, np.imag(a) * np.log(rb), 0)
    return out


def _xlogy_label(kinds, attrs):
    """XlogyBackward0 (tensors); XlogyBackward1 with a number as a; XlogyBackward2 as b"""
    return "XlogyBackward1" if kinds[0] else "XlogyBackward2" if kinds[1] else "XlogyBackward0"


def _xlogy_grad_a(g, o, a, b):
    """xlogy(g, b), 0 where a = 0 and b ≤ 0 (PyTorch's formula)."""
    return np.where((_re(a) == 0) & (_re(b) <= 0), 0, _xlogy(g, b))


def _lerp(a, b, w):
    """PyTorch's two-sided formula: exact at both ends."""
    small = abs(w) < 0.5 if isinstance(w, float) else np.abs(_re(w)) < 0.5
    return np.where(small, a + w * (b - a), b - (b - a) * (1 - w))


def _lerp_label(kinds, attrs):
    """LerpBackward0 (a number as weight); LerpBackward1 (a tensor weight)"""
    return "LerpBackward0" if kinds[2] else "LerpBackward1"


def _heaviside(a, values):
    _tangent_free("heaviside", a)
    r = _re(a)
    return np.where(r == 0, values, r > 0)


def _isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """torch.isclose: a == b, or finite |a - b| <= atol + |rtol·b|."""
    if rtol < 0 or atol < 0:
        which, value = ("rtol", rtol) if rtol < 0 else ("atol", atol)
        raise EvaluationError(f"{which} must be greater than or equal to zero, but got {value:g}")
    a, b = _re(a), _re(b)
    close = a == b
    if equal_nan:
        close = close | (np.isnan(a) & np.isnan(b))
    if rtol == 0 and atol == 0:
        return close
    actual = np.abs(a - b)
    return close | (np.isfinite(actual) & (actual <= atol + np.abs(rtol * b)))


# ---- casts: x.long(), x.to(torch.float64), x.type(torch.int32) ------------------------------

# x.type('torch.DoubleTensor'): the legacy tensor type names
_TYPE_NAMES = {
    f"torch.{kind}Tensor": name
    for kind, name in (
        ("Float", "float32"),
        ("Double", "float64"),
        ("Long", "int64"),
        ("Int", "int32"),
        ("Short", "int16"),
        ("Char", "int8"),
        ("Byte", "uint8"),
        ("Bool", "bool"),
        ("Half", "float16"),
    )
}


def _target(spelled, what):
    """The numpy dtype a cast's argument names, refusing what gradcli has no dtype for."""
    name = _TYPE_NAMES.get(spelled, spelled) if isinstance(spelled, str) else None
    if name in ("float16", "bfloat16"):
        raise EvaluationError(
            f"{what}: torch.{name} (half precision) is not supported",
            hint="gradcli computes in numpy's float32 and float64: use .float() or .double()",
        )
    if name is None or name not in dtypes.DTYPES:
        raise EvaluationError(
            f"{what} takes a dtype such as torch.float64 or torch.int64",
            hint="gradcli has " + ", ".join(f"torch.{n}" for n in dtypes.DTYPES),
        )
    return dtypes.DTYPES[name]


def _cast_lower(method, target=None):
    """x.<method>(): no node when x has the dtype already (PyTorch returns x itself), else
    one copy in the new dtype (ToCopyBackward0; an integer or bool result cuts the graph)."""

    def lower(emit, node, args, attrs):
        dt = _target(target or attrs.get("dtype"), f"{method}()")
        value = node(args[0]).value
        if getattr(value, "dtype", None) == dt:
            return args[0]
        return emit("_to_copy", (args[0],), {"dtype": dt.name})

    return lower


def _cast(method, target=None):
    params = {} if target else {"dtype": REQUIRED}
    call = f"a.{method}()" if target else f"a.{method}(dtype)"
    return Op(
        method,
        None,
        None,
        "ToCopyBackward0",
        _same,
        params=params,
        free=tuple(params),
        lower=_cast_lower(method, target),
        mirror=call,
        call=call,
        rule="∂/∂a = 1, back in a's dtype (a copy); to an integer or bool dtype: no gradient",
        namespaces=(),
        methods=(method,),
        bare=False,
    )


ROWS = [
    Op(
        "add",
        lambda a, b: _num(a) + _num(b),
        (lambda g, o, a, b: g, lambda g, o, a, b: g),
        "AddBackward0",
        _bcast,
        arity=2,
        numbers=True,
        mirror="a + b",
        saves="none",
        stack="elementwise",
        ufunc=lambda ops: _add,
        rule="∂(a+b)/∂a = 1, ∂(a+b)/∂b = 1",
        examples=(("a + b", VB), ("a + 2", V), ("2 + a", V)),
    ),
    Op(
        "sub",
        lambda a, b: _num(a) - _num(b),
        (lambda g, o, a, b: g, lambda g, o, a, b: _scale(g, -1.0)),
        _sub_label,
        _bcast,
        arity=2,
        numbers=True,
        mirror="a - b",
        saves="none",
        stack="elementwise",
        ufunc=lambda ops: _subtract,
        rule="∂(a-b)/∂a = 1, ∂(a-b)/∂b = -1",
        examples=(("a - b", VB), ("a - 2", V), ("2 - a", V)),
        aliases=("subtract",),
        integer=intops.subtract,
    ),
    Op(
        "mul",
        lambda a, b: _num(a) * _num(b),
        (
            lambda g, o, a, b, into=None: (
                _scale(g, _num(b)) if isinstance(b, float) else _mul(g, b, into)
            ),
            lambda g, o, a, b, into=None: (
                _scale(g, _num(a)) if isinstance(a, float) else _mul(g, a, into)
            ),
        ),
        "MulBackward0",
        _bcast,
        arity=2,
        numbers=True,
        mirror="a * b",
        saves="others",
        stack="elementwise",
        ufunc=lambda ops: _multiply,
        grad_into=True,
        rule="∂(a·b)/∂a = b, ∂(a·b)/∂b = a",
        examples=(("a * b", VB), ("a * 2.5", V), ("a * a", V)),
        aliases=("multiply",),
    ),
    Op(
        "div",
        lambda a, b: _num(a) / _num(b),
        (
            lambda g, o, a, b: _over(g, _num(b)) if isinstance(b, float) else g / b,
            lambda g, o, a, b: -g * ((a / b) / b),
        ),
        "DivBackward0",
        _bcast,
        arity=2,
        numbers=True,
        stack="elementwise",
        mirror="a / b (number / b is b.reciprocal() * number)",
        rule="∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = -a/b²",
        examples=(
            ("a / b", {"a": ((2, 3), REAL), "b": ((3,), "nonzero")}),
            ("a / 4", V),
            ("2 / a", {"a": ((3,), "nonzero")}),
        ),
        aliases=("divide", "true_divide"),
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
        stack="elementwise",
        grad_into=True,
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
        inputs=("input", "exponent"),
        integer=intops.power,
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
        stack="elementwise",
        rule="∂(-a)/∂a = -1",
        examples=(("-a", V),),
        aliases=("negative",),
        integer=intops.negative,
    ),
    Op(
        "reciprocal",
        lambda a: 1 / a,
        (lambda g, o, a: -g * (o * o),),
        "ReciprocalBackward0",
        _same,
        stack="elementwise",
        mirror="torch.reciprocal(a)",
        rule="∂(1/a)/∂a = -1/a²",
        examples=(("reciprocal(a)", {"a": ((3,), "nonzero")}),),
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
    _compare("lt", lambda a, b: np.less(a, b), "<", ("less",)),
    _compare("le", lambda a, b: np.less_equal(a, b), "<=", ("less_equal",)),
    _compare("gt", lambda a, b: np.greater(a, b), ">", ("greater",)),
    _compare("ge", lambda a, b: np.greater_equal(a, b), ">=", ("greater_equal",)),
    _compare("eq", lambda a, b: np.equal(a, b), "=="),
    _compare("ne", lambda a, b: np.not_equal(a, b), "!=", ("not_equal",)),
    Op(
        "floor_divide",
        _floor_divide,
        (_no_derivative("floor_divide"), _no_derivative("floor_divide")),
        "NotImplemented",
        _bcast,
        arity=2,
        numbers=True,
        saves="none",
        mirror="a // b",
        rule="none: PyTorch records NotImplemented, and backward through it fails",
        # no examples for the gradient tests: PyTorch's backward fails (tested on its own)
        integer=intops.floor_divide,
    ),
    Op(
        "remainder",
        _remainder,
        (lambda g, o, a, b: g, _remainder_grad_divisor),
        _remainder_label,
        _bcast,
        arity=2,
        numbers=True,
        mirror="a % b",
        rule="∂(a mod b)/∂a = 1, ∂/∂b = -floor(a/b)",
        examples=(
            ("a % b", {"a": ((2, 3), REAL), "b": ((3,), "nonzero")}),
            ("a % 1.5", V),
            ("torch.remainder(a, -0.7)", V),
            ("a.remainder(b)", {"a": ((3,), REAL), "b": ((3,), "nonzero")}),
        ),
        integer=intops.remainder,
    ),
    Op(
        "fmod",
        _fmod,
        (lambda g, o, a, b: g, lambda g, o, a, b: -g * np.trunc(_re(a) / _re(b))),
        _fmod_label,
        _bcast,
        arity=2,
        numbers=True,
        mirror="torch.fmod(a, b)",
        rule="∂fmod(a,b)/∂a = 1, ∂/∂b = -trunc(a/b)",
        examples=(
            ("torch.fmod(a, b)", {"a": ((2, 3), REAL), "b": ((3,), "nonzero")}),
            ("a.fmod(1.5)", V),
        ),
        integer=intops.fmod,
    ),
    _logical("bitwise_and", intops.bitwise_and, 2, "sum(b * ((a > 0) & (b < 0.5)))", "&", True),
    _logical("bitwise_or", intops.bitwise_or, 2, "sum(b * ((a > 0) | (b < 0.5)))", "|", True),
    _logical("bitwise_not", intops.bitwise_not, 1, "sum(b * ~(a > 0))", "~", True),
    _logical(
        "bitwise_xor",
        intops.bitwise_xor,
        2,
        "sum(b * (a > 0).bitwise_xor(b < 0.5))",
        None,
        True,
    ),
    _logical(
        "bitwise_left_shift", intops.left_shift, 2, "sum(b * ((a > 0).long() << 2))", "<<", True
    ),
    _logical(
        "bitwise_right_shift", intops.right_shift, 2, "sum(b * ((a > 0).int() >> 1))", ">>", True
    ),
    _logical("logical_and", np.logical_and, 2, "sum(b * torch.logical_and(a, b))"),
    _logical("logical_or", np.logical_or, 2, "sum(b * (a > 0).logical_or(b))"),
    _logical("logical_xor", np.logical_xor, 2, "sum(b * torch.logical_xor(a > 0, b < 0.5))"),
    _logical("logical_not", np.logical_not, 1, "sum(b * torch.logical_not(a > 0))"),
    Op(
        "logaddexp",
        _logaddexp("e"),
        (_logaddexp_grad("e", True), _logaddexp_grad("e", False)),
        "LogaddexpBackward0",
        _bcast,
        arity=2,
        mirror="torch.logaddexp(a, b)",
        rule="∂log(eᵃ+eᵇ)/∂a = 1/(1 + e^(b-a))",
        examples=(("logaddexp(a, b)", VB), ("logaddexp(a, a)", V)),
    ),
    Op(
        "logaddexp2",
        _logaddexp("2"),
        (_logaddexp_grad("2", True), _logaddexp_grad("2", False)),
        "Logaddexp2Backward0",
        _bcast,
        arity=2,
        mirror="torch.logaddexp2(a, b)",
        rule="∂log₂(2ᵃ+2ᵇ)/∂a = 1/(1 + 2^(b-a))",
        examples=(("logaddexp2(a, b)", VB),),
    ),
    Op(
        "hypot",
        _hypot,
        (lambda g, o, a, b: g * a / o, lambda g, o, a, b: g * b / o),
        "HypotBackward0",
        _bcast,
        arity=2,
        mirror="torch.hypot(a, b)",
        rule="∂√(a²+b²)/∂a = a/hypot(a, b)",
        examples=(("hypot(a, b)", VB),),
    ),
    Op(
        "copysign",
        _copysign,
        (_copysign_grad, lambda g, o, a, b: np.zeros_like(g * _re(b))),
        _copysign_label,
        _bcast,
        arity=2,
        numbers=True,
        mirror="torch.copysign(a, b)",
        rule="∂/∂a = ±1 (the sign change), 0 at 0; ∂/∂b = 0",
        examples=(
            ("copysign(a, b)", {"a": ((2, 3), "away"), "b": ((3,), "away")}),
            ("copysign(a, -1)", {"a": ((3,), "away")}),
        ),
    ),
    Op(
        "xlogy",
        _xlogy,
        (_xlogy_grad_a, lambda g, o, a, b: g * a / b),
        _xlogy_label,
        _bcast,
        arity=2,
        numbers=True,
        mirror="torch.xlogy(a, b)",
        rule="∂(a·log b)/∂a = log b, ∂/∂b = a/b",
        examples=(
            ("xlogy(a, b)", {"a": ((2, 3), REAL), "b": ((3,), "positive")}),
            ("xlogy(2, b)", {"b": ((3,), "positive")}),
            ("xlogy(a, 3)", V),
        ),
        namespaces=("torch", "torch.special"),
        methods=("xlogy",),
    ),
    Op(
        "lerp",
        _lerp,
        (
            lambda g, o, a, b, w: g * (1 - w),
            lambda g, o, a, b, w: g * w,
            lambda g, o, a, b, w: g * (b - a),
        ),
        _lerp_label,
        _bcast,
        arity=3,
        numbers=True,
        mirror="torch.lerp(a, b, weight)",
        inputs=("input", "end", "weight"),
        rule="∂/∂a = 1 - w, ∂/∂b = w, ∂/∂w = b - a",
        call="lerp(a, b, weight)",
        examples=(
            ("lerp(a, b, 0.3)", VB),
            ("lerp(a, b, 0.8)", VB),
            ("lerp(a, b, c)", {"a": ((3,), REAL), "b": ((2, 3), REAL), "c": ((3,), "unit")}),
        ),
    ),
    Op(
        "heaviside",
        _heaviside,
        (_no_derivative("heaviside"), _no_derivative("heaviside")),
        "NotImplemented",
        _bcast,
        arity=2,
        mirror="torch.heaviside(a, values)",
        inputs=("input", "values"),
        rule="no derivative (PyTorch's backward raises)",
        call="heaviside(a, values)",
        examples=(("sum(a * heaviside([-1, 0, 2], [0.5, 0.5, 0.5]))", V),),
    ),
    Op(
        "isclose",
        _isclose,
        None,
        "",
        _bcast,
        arity=2,
        params={"rtol": 1e-05, "atol": 1e-08, "equal_nan": False},
        dtype="bool",
        mirror="torch.isclose(a, b, rtol, atol, equal_nan)",
        rule="no gradient: a boolean",
        examples=(("sum(a * isclose(a, a + b * 1e-6))", {"a": ((4,), REAL), "b": ((4,), REAL)}),),
    ),
]
# (after add: `gradcli ops` opens with add)
ROWS += [
    _cast("long", "int64"),
    _cast("int", "int32"),
    _cast("short", "int16"),
    _cast("char", "int8"),
    _cast("byte", "uint8"),
    _cast("bool", "bool"),
    _cast("float", "float32"),
    _cast("double", "float64"),
    _cast("half", "float16"),
    _cast("bfloat16", "bfloat16"),
    _cast("to"),
    _cast("type"),
    Op(
        "_to_copy",
        lambda a, dtype: a,  # the engine converts the operand to ``dtype``
        (lambda g, o, a, dtype: g,),
        "ToCopyBackward0",
        _same,
        params={"dtype": REQUIRED},
        public=False,
        saves="none",
        mirror="a.to(dtype)",
        rule="∂/∂a = 1, in a's dtype",
    ),
]
