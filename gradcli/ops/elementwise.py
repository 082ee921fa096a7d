"""Elementwise functions: unary math and activations."""

import math

from ..errors import EvaluationError
from .core import (
    REAL,
    M,
    Op,
    V,
    _abs,
    _bcast,
    _complex,
    _re,
    _same,
    _sigmoid,
    lazy_numpy,
)

np = lazy_numpy(globals())


def _relu(a):
    return np.where(a.real > 0, a, 0) if _complex(a) else np.maximum(a, 0)


def _unary(name, forward, grad, rule, domain=REAL, label=None, **spelling):
    return Op(
        name,
        forward,
        (grad,),
        label or f"{name.capitalize()}Backward0",
        _same,
        mirror=f"torch.{name}(a)",
        rule=rule,
        examples=((f"{name}(a)", {"a": ((3,), domain)}), (f"{name}(A)", {"A": ((2, 2), domain)})),
        **spelling,
    )


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
    """An activation of torch.nn.functional with parameters."""
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
        namespaces=("torch.nn.functional",),
    )


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


ROWS = [
    _unary("exp", lambda a: np.exp(a), lambda g, o, a: g * o, "∂exp(a)/∂a = exp(a)"),
    _unary("log", lambda a: np.log(a), lambda g, o, a: g / a, "∂ln(a)/∂a = 1/a", "positive"),
    _unary(
        "sqrt", lambda a: np.sqrt(a), lambda g, o, a: g / (2 * o), "∂√a/∂a = 1/(2√a)", "positive"
    ),
    _unary("sin", lambda a: np.sin(a), lambda g, o, a: g * np.cos(a), "∂sin(a)/∂a = cos(a)"),
    _unary("cos", lambda a: np.cos(a), lambda g, o, a: g * -np.sin(a), "∂cos(a)/∂a = -sin(a)"),
    _unary("tan", lambda a: np.tan(a), lambda g, o, a: g * (1 + o * o), "∂tan(a)/∂a = 1 + tan²(a)"),
    _unary(
        "tanh",
        lambda a: np.tanh(a),
        lambda g, o, a: g * (1 - o * o),
        "∂tanh(a)/∂a = 1 - tanh²(a)",
        namespaces=("torch", "torch.nn.functional"),
    ),
    _unary(
        "sigmoid",
        lambda a: _sigmoid(a),
        lambda g, o, a: g * ((1 - o) * o),
        "∂σ(a)/∂a = σ(a)(1 - σ(a))",
        namespaces=("torch", "torch.nn.functional"),
        spellings=("torch.special.expit",),
    ),
    _unary(
        "relu",
        lambda a: _relu(a),
        lambda g, o, a: np.where(_re(o) <= 0, 0, g),
        "∂relu(a)/∂a = 1 if a > 0 else 0",
        "away",
        namespaces=("torch", "torch.nn.functional"),
    ),
    _unary(
        "abs",
        lambda a: _abs(a),
        lambda g, o, a: g * np.sign(_re(a)),
        "∂|a|/∂a = sign(a) (0 at 0)",
        "away",
        aliases=("absolute",),
    ),
    _unary(
        "log1p",
        lambda a: np.log1p(a),
        lambda g, o, a: g / (a + 1),
        "∂ln(1+a)/∂a = 1/(1+a)",
        "positive",
        label="Log1PBackward0",
        namespaces=("torch", "torch.special"),
    ),
    _unary(
        "expm1",
        lambda a: np.expm1(a),
        lambda g, o, a: g * (o + 1),
        "∂(eᵃ-1)/∂a = eᵃ",
        namespaces=("torch", "torch.special"),
    ),
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
        namespaces=("torch.nn.functional",),
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
        namespaces=("torch", "torch.special"),
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
    _unary(
        "asin",
        lambda a: np.arcsin(a),
        lambda g, o, a: g / np.sqrt(1 - a * a),
        "∂asin(a)/∂a = 1/√(1-a²)",
        "unit",
        aliases=("arcsin",),
    ),
    _unary(
        "acos",
        lambda a: np.arccos(a),
        lambda g, o, a: -g / np.sqrt(1 - a * a),
        "∂acos(a)/∂a = -1/√(1-a²)",
        "unit",
        aliases=("arccos",),
    ),
    _unary(
        "atan",
        lambda a: np.arctan(a),
        lambda g, o, a: g / (1 + a * a),
        "∂atan(a)/∂a = 1/(1+a²)",
        aliases=("arctan",),
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
        aliases=("arctan2",),
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
    _unary(
        "exp2",
        lambda a: np.exp2(a),
        lambda g, o, a: g * o * math.log(2),
        "∂2ᵃ/∂a = 2ᵃ ln 2",
        namespaces=("torch", "torch.special"),
    ),
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
    _unary(
        "round",
        lambda a: np.round(_re(a)),
        _zero_grad,
        "zero (as PyTorch; halves to even)",
        namespaces=("torch", "torch.special"),
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
        aliases=("clip",),
    ),
]
