"""Elementwise functions: unary math and activations."""

import math
from fractions import Fraction

from ..errors import EvaluationError, ParseError
from .conv import select as _select
from .core import (
    ELIDE_BYTES,
    REAL,
    SMALL,
    M,
    Op,
    V,
    _abs,
    _bcast,
    _complex,
    _constant,
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
        stack="elementwise",
        examples=((f"{name}(a)", {"a": ((3,), domain)}), (f"{name}(A)", {"A": ((2, 2), domain)})),
        **spelling,
    )


BLOCK = 1 << 16  # elements a fused chain of ufuncs works on at once: its blocks stay in cache


def _real(a):
    return isinstance(a, np.ndarray) and a.dtype.kind == "f"


def _sigmoid_into(a, out):
    """σ(a) = 1 / (1 + e^-a) as _sigmoid computes it, a block at a time in ``out`` (a real
    C-ordered tensor of a's shape): four passes over one block in cache, not four
    temporaries the size of the tensor streamed through memory."""
    src, dst = a.reshape(-1), out.reshape(-1)
    for s in range(0, dst.size, BLOCK):
        r = dst[s : s + BLOCK]
        np.negative(src[s : s + BLOCK], out=r)
        np.exp(r, out=r)
        np.add(1, r, out=r)
        np.divide(1, r, out=r)
    return out


def _times_local(g, o, into, local, in_place=False):
    """g · d for an elementwise rule whose local derivative d is a function of the output
    o alone: ``local(t, o)`` writes d of a block of o into t, and each block of g · d goes
    to ``into`` (which may be g itself), so a rule makes no temporary the size of the
    tensor: d goes into the block of ``into`` itself where that overlaps neither g nor o,
    else into a scratch block of at most 1/64 of the tensor. ``into`` may also be o
    itself: the reverse pass gives o only when this step is the last to read o and g alike
    (engine._into), so both are the rule's to write over; g · d then goes into g, and d
    into o's own block where ``local`` may work in place (``in_place``: it reads each
    element of o before it writes that element of t), else into o's blocks already
    consumed (after a first block of FIRST elements): no scratch. Element by element the
    same operations as the whole-tensor expression; None where the tensors are not laid
    out for it (the caller then computes that expression)."""
    c = _constant(g)
    if not (
        into is not None
        and g.shape == o.shape == into.shape
        and o.flags.c_contiguous
        and into.flags.c_contiguous
        and (c is not None or g.flags.c_contiguous)
    ):
        return None
    gs = g.reshape(-1) if c is None else np.empty(0, g.dtype)  # (unused with a constant g)
    os, dst = o.reshape(-1), into.reshape(-1)
    n = os.size
    # numpy evaluates `g * temporary` as `temporary *= g` when the temporary is large enough
    # to elide; the operands' order picks which NaN a NaN · NaN keeps, so it is kept too
    elided = o.nbytes >= ELIDE_BYTES
    if into is o and c is None:  # o and g die with this step: g · d goes into g
        if in_place:  # d of each block in o's block
            for s in range(0, n, BLOCK):
                ob, gb = os[s : s + BLOCK], gs[s : s + BLOCK]
                local(ob, ob)
                np.multiply(*((ob, gb) if elided else (gb, ob)), out=gb)
            return g
        first = np.empty(min(FIRST, n), dtype=o.dtype)  # (the first block's d, before any)
        s = 0
        while s < n:  # d in o's blocks already consumed, as long as they are
            e = s + (min(BLOCK, s) if s else first.size)
            ob, gb = os[s:e], gs[s:e]
            tb = os[: ob.size] if s else first
            local(tb, ob)
            np.multiply(*((tb, gb) if elided else (gb, tb)), out=gb)
            s = e
        return g
    apart = not np.may_share_memory(into, o) and (c is not None or not np.may_share_memory(into, g))
    step = BLOCK if apart else min(BLOCK, max(SMALL, n >> 6))
    t = None if apart else np.empty(min(step, n), dtype=o.dtype)
    for s in range(0, n, step):
        db = dst[s : s + step]
        tb = db if t is None else t[: db.size]
        local(tb, os[s : s + step])
        gb = c if c is not None else gs[s : s + step]
        np.multiply(*((tb, gb) if elided else (gb, tb)), out=db)
    return into


FIRST = 256  # elements of _times_local's first block when into is o (then o's, consumed)


def _tanh_local(t, o):
    np.multiply(o, o, out=t)
    np.subtract(1, t, out=t)


def _tanh_grad(g, o, a, into=None):
    fused = _times_local(g, o, into, _tanh_local, in_place=True)
    return g * (1 - o * o) if fused is None else fused


def _sigmoid_local(t, o):
    np.subtract(1, o, out=t)
    np.multiply(t, o, out=t)


def _sigmoid_grad(g, o, a, into=None):
    fused = _times_local(g, o, into, _sigmoid_local)
    return g * ((1 - o) * o) if fused is None else fused


ERF_BLOCK = 1 << 16  # elements erf works on at once: its float64 temporaries stay small


def _erf(x):
    """erf a block at a time, so that its temporaries (a float64 copy, masks, the series'
    terms) cost a few megabytes whatever the size of the tensor."""
    x = np.asarray(x)
    if x.size <= ERF_BLOCK:
        return _erf_block(x)
    flat = x.reshape(-1)
    out = np.empty(flat.shape, dtype=x.dtype)
    for i in range(0, flat.size, ERF_BLOCK):
        out[i : i + ERF_BLOCK] = _erf_block(flat[i : i + ERF_BLOCK])
    return out.reshape(x.shape)


def _erf_block(x):
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
    out[~small] = np.where(np.isnan(_re(xl)), np.nan, sign[~small] * (1.0 - _erfc_cf(xl)))
    return out.astype(x.dtype, copy=False)


def _erfc_cf(x, terms=120):
    """erfc(x) by its continued fraction evaluated backwards: to float64 precision from
    x = 1.3 on with 120 terms, from 0.8 on with 300."""
    t = x.copy()
    for k in range(terms, 0, -1):
        t = x + (k / 2.0) / t
    return np.exp(-x * x) / math.sqrt(math.pi) / t


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
    return np.arctan2(ar, br) + 1j * ((br * ai - ar * bi) * _atan2_recip(ar, br))


def _atan2_recip(a, b):
    """1/(a² + b²) as PyTorch's atan2_backward takes it: 0 where it is infinite, so the
    gradient at (0, 0) is 0."""
    r = 1 / (a * a + b * b)
    return np.where(np.isinf(_re(r)), 0, r)


def _torch_sign(a):
    """torch.sign on real arrays: as numpy's, but 0 at nan."""
    return np.sign(np.where(np.isnan(a), 0, a))


def _zero_grad(g, o, a, **attrs):
    return np.zeros_like(g)


def _unary_attrs(name, forward, grad, rule, params, examples, label=None, mirror=None, **spelling):
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
        **{"namespaces": ("torch.nn.functional",), **spelling},
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


def _round(a, decimals=None):
    """torch.round: halves to even; with decimals, a·10^d rounded then divided (or a/10^-d
    rounded then multiplied), 10^d taken in the tensor's dtype as PyTorch does."""
    r = _re(a)
    if decimals is None or decimals == 0:
        return np.round(r)
    if not float(decimals).is_integer():
        raise ParseError(f"round(): decimals must be an integer, not {decimals:g}")
    p = r.dtype.type(np.float64(10.0) ** abs(int(decimals)))  # inf past 10^308, as in C
    return np.rint(r * p) / p if decimals > 0 else np.rint(r / p) * p


def _round_label(kinds, attrs):
    """RoundBackward0; RoundBackward1 with decimals="""
    return "RoundBackward0" if attrs.get("decimals") is None else "RoundBackward1"


def _sinc(a):
    pa = np.pi * a
    return np.where(_re(a) == 0, 1, np.sin(pa) / pa)


def _sinc_grad(g, o, a):
    """PyTorch's sinc_backward: 0 where π·a² is 0 (also where it underflows)."""
    pa, sq = np.pi * a, a * a * np.pi
    return np.where(_re(sq) == 0, 0, g * (pa * np.cos(pa) - np.sin(pa)) / sq)


def _nan_to_num(a, nan=0.0, posinf=None, neginf=None):
    r = _re(a)
    info = np.finfo(r.dtype)
    hi = info.max if posinf is None else posinf
    lo = info.min if neginf is None else neginf
    return np.where(np.isnan(r), nan, np.where(r == np.inf, hi, np.where(r == -np.inf, lo, a)))


def _logit(a, eps=None):
    """torch.logit: log(a/(1-a)), inf at 1; with eps, a clamped to [eps, 1 - eps] first.
    Dual numbers carry the backward formula's derivative (0 where eps clamps)."""
    r = _re(a)
    if _complex(a):
        d = np.imag(a)
        return _logit(r, eps) + 1j * np.where(d == 0, 0, d * _logit_grad(1.0, None, r, eps))
    if eps is None:
        return np.where(r == 1, np.inf, np.log(a / (1 - a)))
    x = np.where(r < eps, eps, np.where(r > 1 - eps, 1 - eps, a))
    return np.log(x / (1 - x))


def _logit_grad(g, o, a, eps=None):
    """PyTorch's logit_backward: nan outside [0, 1] without eps, 0 outside [eps, 1 - eps]
    with it, g·inf at 0 and 1."""
    r = _re(a)
    lo, hi = (0.0, 1.0) if eps is None else (eps, 1 - eps)
    inside = np.where((r == 0) | (r == 1), g * np.inf, g / (a * (1 - a)))
    return np.where((r < lo) | (r > hi), np.nan if eps is None else 0, inside)


def _predicate(name, fn, example):
    """A boolean function of a tensor (no gradient, like a comparison)."""
    return Op(
        name,
        lambda a: fn(_re(a)),
        None,
        "",
        _same,
        dtype="bool",
        mirror=f"torch.{name}(a)",
        rule="no gradient: a boolean",
        examples=((example, {"a": ((3,), REAL), "b": ((3,), REAL)}),),
    )


# Bernoulli numbers B2, B4, ..., B28 (exact), for Stirling's and Euler–Maclaurin's series
_BERNOULLI = [
    Fraction(1, 6),
    Fraction(-1, 30),
    Fraction(1, 42),
    Fraction(-1, 30),
    Fraction(5, 66),
    Fraction(-691, 2730),
    Fraction(7, 6),
    Fraction(-3617, 510),
    Fraction(43867, 798),
    Fraction(-174611, 330),
    Fraction(854513, 138),
    Fraction(-236364091, 2730),
    Fraction(8553103, 6),
    Fraction(-23749461029, 870),
]


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _split(f, df):
    """A real function f with derivative df, on dual numbers too: f of the real part plus
    df times the imaginary part (the tangent), which is all the complex step needs."""

    def fn(x):
        x = np.asarray(x)
        if not _complex(x):
            return f(_f64(x)).astype(x.dtype, copy=False)
        re, im = _f64(x.real), _f64(x.imag)
        d = np.where(im == 0, 0, im * df(re))
        return (f(re) + 1j * d).astype(x.dtype, copy=False)

    return fn


def _hurwitz_zeta(s, q):
    """ζ(s, q) = Σ_k (q + k)^-s for an integer s ≥ 2 and q > 0: the first terms until
    q + k ≥ s + 10, then Euler–Maclaurin with 12 Bernoulli terms (error < 1e-20)."""
    x = np.array(q, dtype=np.float64)
    total = np.zeros_like(x)
    start = s + 10.0
    while True:
        low = x < start
        if not low.any():
            break
        total += np.where(low, x**-s, 0.0)
        x = np.where(low, x + 1, x)
    xs = x**-s
    total += x ** (1 - s) / (s - 1) + xs / 2
    term = xs / x * s  # (s)_{2j-1} x^{-s-2j+1} for j = 1
    for j, b in enumerate(_BERNOULLI[:12], start=1):
        total += float(b / math.factorial(2 * j)) * term
        term = term * ((s + 2 * j - 1) * (s + 2 * j)) / (x * x)
    return total


def _cot_pi(x):
    """cot(πx), x first reduced exactly to r in [-1/2, 1/2]; near ±1/2 as tan(π(1/2 - |r|))
    so that its small values keep their relative accuracy."""
    r = x - np.round(x)
    ar = np.abs(r)
    near_half = np.copysign(np.tan(np.pi * (0.5 - ar)), r)
    return np.where(ar < 0.25, np.cos(np.pi * r) / np.sin(np.pi * r), near_half)


def _cot_derivative_polynomial(n):
    """Coefficients (lowest first) of P_n with dⁿ/dxⁿ cot(πx) = πⁿ P_n(cot πx):
    P_0 = c, P_{k+1} = -(1 + c²) P_k'."""
    p = [0, 1]
    for _ in range(n):
        d = [k * p[k] for k in range(1, len(p))] + [0, 0]
        p = [-(d[k] + (d[k - 2] if k >= 2 else 0)) for k in range(len(d))]
    return p


def _polyval(coeffs, c):
    out = np.zeros_like(c)
    for a in reversed(coeffs):
        out = out * c + float(a)
    return out


def _digamma_r(x):
    """ψ(x): ψ(x) = ψ(x + k) - Σ 1/(x + j) up to x + k ≥ 10, then the asymptotic series;
    ψ(x) = ψ(1 - x) - π cot(πx) below 0. PyTorch's values at its edges: ∓inf at ±0, nan at
    the negative integers and -inf."""
    x = _f64(x)
    neg = x < 0
    y = np.where(neg, 1 - x, x)
    acc = np.zeros_like(y)
    while True:
        low = y < 10
        if not low.any():
            break
        acc -= np.where(low, 1 / y, 0)
        y = np.where(low, y + 1, y)
    z = 1 / (y * y)
    series = np.zeros_like(y)
    for k in range(8, 0, -1):
        series = (series + float(_BERNOULLI[k - 1] / (2 * k))) * z
    out = acc + np.log(y) - 0.5 / y - series
    out = np.where(neg, out - np.pi * _cot_pi(x), out)
    out = np.where(neg & (x == np.trunc(x)), np.nan, out)
    return np.where(x == 0, np.copysign(np.inf, -x), out)


def _polygamma_r(n, x):
    """ψ⁽ⁿ⁾(x) for n ≥ 1: (-1)ⁿ⁺¹ n! ζ(n + 1, x) for x > 0; below, the reflection
    ψ⁽ⁿ⁾(x) = (-1)ⁿ ψ⁽ⁿ⁾(1 - x) - πⁿ⁺¹ P_n(cot πx). At the poles (0 and the negative
    integers) (-1)ⁿ⁺¹·inf, at -inf as PyTorch gives (nan for n = 1, (-1)ⁿ⁺¹·inf after), at
    +inf 0 for n = 1 and nan after (PyTorch's values)."""
    if n == 0:
        return _digamma_r(x)
    x = _f64(x)
    sign = -1.0 if n % 2 == 0 else 1.0  # (-1)^(n+1)
    pos = x > 0
    out = sign * math.factorial(n) * _hurwitz_zeta(n + 1, np.where(pos, x, 1 - x))
    refl = (-1.0) ** n * out - np.pi ** (n + 1) * _polyval(
        _cot_derivative_polynomial(n), _cot_pi(x)
    )
    out = np.where(pos, out, refl)
    out = np.where(~pos & (x == np.trunc(x)), sign * np.inf, out)
    if n == 1:
        return np.where(x == -np.inf, np.nan, out)
    return np.where(x == np.inf, np.nan, out)


_LGAMMA_SERIES: list[float] = []


def _lgamma_near_2(z):
    """lgamma(2 + z) = (1 - γ) z + Σ_k (-1)^k (ζ(k) - 1) z^k / k, for |z| ≤ 1/2."""
    if not _LGAMMA_SERIES:
        _LGAMMA_SERIES.extend(float(_hurwitz_zeta(k, 2.0)) / k * (-1) ** k for k in range(2, 30))
    out = np.zeros_like(z)
    for c in reversed(_LGAMMA_SERIES):
        out = (out + c) * z
    return (out + (1 - 0.5772156649015329)) * z


def _lgamma_pos(x):
    """lgamma for x > 0 by lgamma(2 + z)'s series on [1.5, 2.5]: below, through
    lgamma(x) = lgamma(x + 1) - log x with the offset z kept exact (x - 1, x - 2 or x
    itself); above, down the recurrence from below 15; Stirling's series from 15 on."""
    acc = np.where(x < 0.5, -np.log(x) - np.log1p(x), np.where(x < 1.5, -np.log1p(x - 1), 0.0))

    prod = np.ones_like(x)
    y = np.where(x < 1.5, 2.0, x)
    while True:
        mid = (y > 2.5) & (y < 15)
        if not mid.any():
            break
        y = np.where(mid, y - 1, y)  # exact: x ≥ 1 minus an integer
        prod = np.where(mid, prod * y, prod)
    acc = acc + np.log(prod)
    off = np.where(x < 0.5, x, np.where(x < 1.5, x - 1, y - 2))
    big = y >= 15
    zb = np.where(big, y, 15.0)
    w = 1 / (zb * zb)
    series = np.zeros_like(zb)
    for k in range(8, 0, -1):
        series = series * w + float(_BERNOULLI[k - 1] / (2 * k * (2 * k - 1)))
    stirling = zb * (np.log(zb) - 1) - 0.5 * np.log(zb) + 0.5 * math.log(2 * math.pi) + series / zb
    return acc + np.where(big, stirling, _lgamma_near_2(np.where(big, 0.0, off)))


def _lgamma_r(x):
    """log|Γ(x)|; below 0 by the reflection log(π/|sin πx|) - lgamma(1 - x). inf at the
    poles (0 and the negative integers) and at ±inf, as PyTorch."""
    x = _f64(x)
    neg = x <= 0
    out = _lgamma_pos(np.where(neg, 1 - x, np.where(np.isnan(x), 1, x)))
    d = np.abs(x - np.round(x))
    refl = np.log(np.pi / np.sin(np.pi * d)) - out
    out = np.where(neg, refl, out)
    out = np.where(neg & (x == np.trunc(x)), np.inf, out)
    return np.where(np.isnan(x), np.nan, np.where(np.isinf(x), np.inf, out))


def _erfinv_r(x):
    """erfinv: Winitzki's closed form to 0.2%, then Newton steps on erf(y) = |x| (on
    erfc(y) = 1 - |x| above 1/2, where 1 - |x| is exact), so also accurate near ±1."""
    x = _f64(x)
    ax = np.abs(x)
    a = 0.147
    ln = np.log((1 - ax) * (1 + ax))
    t = 2 / (math.pi * a) + ln / 2
    y = np.sqrt(np.sqrt(t * t - ln / a) - t)
    tail = ax > 0.5
    q = 1 - ax
    for _ in range(6):
        slope = 2 / math.sqrt(math.pi) * np.exp(-y * y)
        erfc = np.where(y < 0.8, 1 - _erf(y), _erfc_cf(np.maximum(y, 0.8), 300))
        step = np.where(tail, (q - erfc) / slope, (_erf(y) - ax) / slope)
        y = np.where(np.isfinite(y) & (slope > 0), y - step, y)
    y = np.where(ax == 1, np.inf, np.where(ax > 1, np.nan, y))
    return np.copysign(y, x)


def _bessel_i(nu, x):
    """I_ν(x) for ν = 0, 1: the power series below |x| = 30, the asymptotic series
    eˣ/√(2πx)·Σ above."""
    x = _f64(x)
    ax = np.abs(x)
    small = ax < 30
    xs = np.where(small, ax, 0.0)
    q = xs * xs / 4
    term = np.ones_like(xs) if nu == 0 else xs / 2
    total = term.copy()
    for k in range(1, 90):
        term = term * q / (k * (k + nu))
        total += term
    xl = np.where(small, 30.0, ax)
    term = np.ones_like(xl)
    series = term.copy()
    for k in range(1, 31):
        term = term * ((2 * k - 1) ** 2 - 4 * nu * nu) / (8 * k * xl)
        series += term
    big = np.exp(xl) / np.sqrt(2 * math.pi * xl) * series  # inf past e^709, as PyTorch
    out = np.where(small, total, big)
    if nu == 1:
        out = np.copysign(out, x)
    return np.where(np.isinf(x), np.nan, out)  # PyTorch: i0(±inf) and i1(±inf) are nan


def _i1_prime(x):
    """I1'(x) = I0(x) - I1(x)/x, ½ at 0."""
    x = _f64(x)
    return np.where(x == 0, 0.5, _bessel_i(0, x) - _bessel_i(1, x) / np.where(x == 0, 1, x))


_lgamma = _split(_lgamma_r, _digamma_r)
_digamma = _split(_digamma_r, lambda x: _polygamma_r(1, x))
_i0 = _split(lambda x: _bessel_i(0, x), lambda x: _bessel_i(1, x))
_i1 = _split(lambda x: _bessel_i(1, x), _i1_prime)
_erfinv = _split(_erfinv_r, lambda x: math.sqrt(math.pi) / 2 * np.exp(_erfinv_r(x) ** 2))


def _polygamma(n, x):
    """torch.polygamma(n, x): n is a Python integer (n = 0 is digamma)."""
    if not isinstance(n, float) or not n.is_integer() or n < 0:
        raise ParseError("polygamma(): n must be a non-negative integer, as in polygamma(1, x)")
    k = int(n)
    return _split(lambda v: _polygamma_r(k, v), lambda v: _polygamma_r(k + 1, v))(x)


def _float_power_lower(emit, node, args, attrs):
    """torch.float_power: each tensor operand copied to float64 (ToCopyBackward0, none for
    one in float64 already), then pow; Python numbers stay numbers (PowBackward0/2)."""
    if all(node(a).op == "number" for a in args):
        raise EvaluationError("float_power(): at least one argument must be a tensor")
    ops = []
    for a in args:
        n = node(a)
        if n.op != "number" and getattr(n.value, "dtype", None) != np.float64:
            a = emit("_to_copy", (a,), {"dtype": "float64"})
        ops.append(a)
    return emit("pow", tuple(ops))


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
        _tanh_grad,
        "∂tanh(a)/∂a = 1 - tanh²(a)",
        namespaces=("torch", "torch.nn.functional"),
        ufunc=lambda ops: np.tanh if _real(ops[0]) else None,
        grad_into=True,
    ),
    _unary(
        "sigmoid",
        lambda a: _sigmoid(a),
        _sigmoid_grad,
        "∂σ(a)/∂a = σ(a)(1 - σ(a))",
        namespaces=("torch", "torch.nn.functional"),
        spellings=("torch.special.expit",),
        ufunc=lambda ops: _sigmoid_into if _real(ops[0]) else None,
        grad_into=True,
    ),
    _unary(
        "relu",
        lambda a: _relu(a),
        lambda g, o, a: _select(~(_re(o) <= 0), g),  # np.where(o <= 0, 0, g), fast
        "∂relu(a)/∂a = 1 if a > 0 else 0",
        "away",
        namespaces=("torch", "torch.nn.functional"),
    ),
    _unary(
        "abs",
        lambda a: _abs(a),
        lambda g, o, a: g * _torch_sign(_re(a)),
        "∂|a|/∂a = sign(a) (0 at 0 and at nan)",
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
        lambda g, o, a, alpha=1.0: np.where(_re(a) <= 0, g * alpha * np.exp(a), g),
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
            (_re(a) <= min_val) | (_re(a) >= max_val), 0, g
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
        (
            lambda g, o, a, b: g * b * _atan2_recip(a, b),
            lambda g, o, a, b: g * -a * _atan2_recip(a, b),
        ),
        "Atan2Backward0",
        _bcast,
        arity=2,
        mirror="torch.atan2(a, b)",
        rule="∂atan2(a,b)/∂a = b/(a²+b²), ∂/∂b = -a/(a²+b²) (0 at (0, 0))",
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
    _unary("sign", lambda a: _torch_sign(_re(a)), _zero_grad, "zero (as PyTorch)", "away"),
    _unary("floor", lambda a: np.floor(_re(a)), _zero_grad, "zero (as PyTorch)"),
    _unary("ceil", lambda a: np.ceil(_re(a)), _zero_grad, "zero (as PyTorch)"),
    Op(
        "round",
        lambda a, decimals=None: _round(a, decimals),
        (_zero_grad,),
        _round_label,
        _same,
        params={"decimals": None},
        mirror="torch.round(a, decimals=d)",
        rule="zero (as PyTorch; halves to even)",
        namespaces=("torch", "torch.special"),
        examples=(
            ("round(a)", {"a": ((3,), REAL)}),
            ("round(A)", {"A": ((2, 2), REAL)}),
            ("round(a * 10, decimals=1)", V),
            ("round(a * 100, decimals=-1)", V),
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
        aliases=("clip",),
    ),
    _unary(
        "asinh",
        lambda a: np.arcsinh(a),
        lambda g, o, a: g / np.sqrt(a * a + 1),
        "∂asinh(a)/∂a = 1/√(a²+1)",
        aliases=("arcsinh",),
    ),
    _unary_attrs(
        "acosh",
        lambda a: np.arccosh(a),
        lambda g, o, a: g / np.sqrt(a * a - 1),
        "∂acosh(a)/∂a = 1/√(a²-1)",
        {},
        (
            ("acosh(a + 1)", {"a": ((3,), "positive")}),
            ("acosh(A + 1.5)", {"A": ((2, 2), "positive")}),
        ),
        mirror="torch.acosh(a)",
        namespaces=("torch",),
        methods=("acosh", "arccosh"),
        aliases=("arccosh",),
    ),
    _unary(
        "atanh",
        lambda a: np.arctanh(a),
        lambda g, o, a: g / (1 - a * a),
        "∂atanh(a)/∂a = 1/(1-a²)",
        "unit",
        aliases=("arctanh",),
    ),
    _unary(
        "rad2deg",
        lambda a: a * (180 / math.pi),
        lambda g, o, a: g * (180 / math.pi),
        "∂/∂a = 180/π",
        label="Rad2DegBackward0",
    ),
    _unary(
        "deg2rad",
        lambda a: a * (math.pi / 180),
        lambda g, o, a: g * (math.pi / 180),
        "∂/∂a = π/180",
        label="Deg2RadBackward0",
    ),
    _unary("trunc", lambda a: np.trunc(_re(a)), _zero_grad, "zero (as PyTorch)", aliases=("fix",)),
    _unary("frac", lambda a: a - np.trunc(_re(a)), lambda g, o, a: g, "∂(a - trunc(a))/∂a = 1"),
    _unary(
        "sinc",
        _sinc,
        _sinc_grad,
        "∂sinc(a)/∂a = (cos(πa) - sinc(a))/a, 0 at 0",
        namespaces=("torch", "torch.special"),
    ),
    Op(
        "nan_to_num",
        _nan_to_num,
        (lambda g, o, a, **attrs: g * np.isfinite(_re(a)),),
        "NanToNumBackward0",
        _same,
        params={"nan": 0.0, "posinf": None, "neginf": None},
        mirror="torch.nan_to_num(a, nan, posinf, neginf)",
        rule="∂/∂a = 1 where a is finite, else 0",
        examples=(
            ("nan_to_num(a)", V),
            ("nan_to_num(A, nan=1.5, posinf=2, neginf=-3)", M),
        ),
    ),
    Op(
        "logit",
        _logit,
        (_logit_grad,),
        "LogitBackward0",
        _same,
        params={"eps": None},
        mirror="torch.logit(a, eps)",
        rule="∂logit(a)/∂a = 1/(a(1-a)); 0 where eps clamps",
        examples=(
            ("logit(a)", {"a": ((3,), "prob")}),
            ("logit(A, eps=0.25)", {"A": ((2, 3), "prob")}),
        ),
        namespaces=("torch", "torch.special"),
        methods=("logit",),
    ),
    _predicate("isnan", lambda r: np.isnan(r), "sum(a * isnan(log(b)))"),
    _predicate("isinf", lambda r: np.isinf(r), "sum(a * isinf(exp(b * 800)))"),
    _predicate("isfinite", lambda r: np.isfinite(r), "sum(a * isfinite(log(b) * exp(b * 800)))"),
    _predicate("signbit", lambda r: np.signbit(r), "sum(a * signbit(b))"),
    _unary(
        "lgamma",
        lambda a: _lgamma(a),
        lambda g, o, a: g * _digamma(a),
        "∂log|Γ(a)|/∂a = ψ(a)",
        spellings=("torch.special.gammaln",),
    ),
    _unary_attrs(
        "digamma",
        lambda a: _digamma(a),
        lambda g, o, a: g * _polygamma(1.0, a),
        "∂ψ(a)/∂a = ψ⁽¹⁾(a)",
        {},
        (("digamma(a)", V), ("digamma(A * 3)", M)),
        mirror="torch.digamma(a)",
        namespaces=("torch", "torch.special"),
        methods=("digamma",),
        spellings=("torch.special.psi",),
    ),
    Op(
        "polygamma",
        _polygamma,
        (None, lambda g, o, n, a: g * _polygamma(n + 1, a)),
        "PolygammaBackward0",
        _bcast,
        arity=2,
        numbers=True,
        mirror="torch.polygamma(n, a)",
        inputs=("n", "input"),
        receiver=1,
        rule="∂ψ⁽ⁿ⁾(a)/∂a = ψ⁽ⁿ⁺¹⁾(a)",
        call="polygamma(n, a)",
        examples=(
            ("polygamma(1, a)", {"a": ((3,), "positive")}),  # torch's trigamma: 1e-10 accurate
            ("polygamma(2, A * 3)", M),
            ("polygamma(0, a) + polygamma(5, a + 3)", V),
        ),
        namespaces=("torch", "torch.special"),
        methods=("polygamma",),
    ),
    _unary(
        "erfinv",
        lambda a: _erfinv(a),
        lambda g, o, a: g * (math.sqrt(math.pi) / 2) * np.exp(o * o),
        "∂erfinv(a)/∂a = √π/2·exp(erfinv(a)²)",
        "unit",
        namespaces=("torch", "torch.special"),
        methods=("erfinv",),
    ),
    _unary_attrs(
        "i0",
        lambda a: _i0(a),
        lambda g, o, a: g * _i1(a),
        "∂I₀(a)/∂a = I₁(a)",
        {},
        (("i0(a)", V), ("i0(A * 10)", M)),
        mirror="torch.i0(a)",
        namespaces=("torch", "torch.special"),
        methods=("i0",),
    ),
    Op(
        "float_power",
        None,
        (),
        "PowBackward0 (tensor, number), PowBackward1 (two tensors), PowBackward2 (number, "
        "tensor), over ToCopyBackward0 for an operand not in float64",
        None,
        arity=2,
        numbers=True,
        lower=_float_power_lower,
        mirror="torch.float_power(a, b)",
        rule="pow in float64: ∂(a^b)/∂a = b·a^(b-1), ∂(a^b)/∂b = a^b·ln a",
        examples=(
            ("a.float_power(2)", V),
            ("torch.float_power(a, b)", {"a": ((2, 3), "positive"), "b": ((3,), REAL)}),
            ("torch.float_power(2, a)", V),
            ("a.double().float_power(0.5)", {"a": ((3,), "positive")}),
        ),
        inputs=("input", "exponent"),
    ),
]
