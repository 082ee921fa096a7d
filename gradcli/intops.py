"""Integer and boolean arithmetic as PyTorch 2.13 computes it on CPU, for the operator table.

Each function takes numpy arrays already cast to the operation's common dtype (by
``dtypes.result_type`` and ``dtypes.cast`` / ``dtypes.scalar_array``), broadcastable, and
returns an array of that dtype; floating arrays are accepted too where PyTorch's float rule
differs from numpy's. Integer results wrap on overflow (two's complement), as PyTorch's do.
A dtype PyTorch has no loop for raises PyTorch's error."""

import numpy as np

from .dtypes import as_dtype, not_implemented
from .errors import EvaluationError

NEG_BOOL = (
    "Negation, the `-` operator, on a bool tensor is not supported. If you are trying to "
    "invert a mask, use the `~` or `logical_not()` operator instead."
)
SUB_BOOL = (
    "Subtraction, the `-` operator, with two bool tensors is not supported. Use the `^` or "
    "`logical_xor()` operator instead."
)
NEGATIVE_POWER = "Integers to negative integer powers are not allowed."
_C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int"}


def _refuse(kernel, a, kinds):
    if a.dtype.kind in kinds:
        raise not_implemented(kernel, a.dtype)


def _integer_divisor(b):
    """PyTorch's integer division and remainder refuse a zero divisor anywhere."""
    if np.any(b == 0):
        raise EvaluationError("ZeroDivisionError", hint="integer division or remainder by zero")


def negative(a):
    if a.dtype.kind == "b":
        raise EvaluationError(NEG_BOOL)
    return np.negative(a)  # int8 -(-128) is -128, uint8 -7 is 249


def absolute(a):
    _refuse("abs_cpu", a, "b")
    return np.absolute(a)  # int8 abs(-128) is -128


def subtract(a, b):
    if a.dtype.kind == "b":
        raise EvaluationError(SUB_BOOL)
    return np.subtract(a, b)


def floor_divide(a, b):
    """``a // b``: rounds toward -inf (Python's ``//``); int min // -1 wraps to int min."""
    _refuse("div_floor_cpu", a, "b")
    if a.dtype.kind in "iu":
        _integer_divisor(b)
    with np.errstate(all="ignore"):
        return np.floor_divide(a, b)  # numpy's float rule is PyTorch's div_floor_floating


def remainder(a, b):
    """``a % b``: the sign of the divisor (Python's ``%``). For floats PyTorch keeps fmod's
    zero (``-4.0 % 2.0`` is -0.0, numpy gives 0.0)."""
    _refuse("remainder_cpu", a, "b")
    if a.dtype.kind in "iu":
        _integer_divisor(b)
        with np.errstate(all="ignore"):
            return np.remainder(a, b)
    with np.errstate(all="ignore"):
        mod = np.fmod(a, b)
        return np.where((mod != 0) & ((b < 0) != (mod < 0)), mod + b, mod)


def fmod(a, b):
    """``torch.fmod``: the sign of the dividend (C's ``%``)."""
    _refuse("fmod_cpu", a, "b")
    if a.dtype.kind in "iu":
        _integer_divisor(b)
    with np.errstate(all="ignore"):
        return np.fmod(a, b)  # numpy's int min fmod -1 is 0, as PyTorch's


def trunc_divide(a, b):
    """``torch.div(a, b, rounding_mode='trunc')``: rounds toward zero. PyTorch 2.13 dies of
    SIGFPE on int32/int64 min / -1 (the CPU's divide fault); here it wraps to int min, as
    PyTorch's int8 and int16 loops give."""
    _refuse("div_trunc_cpu", a, "b")
    with np.errstate(all="ignore"):
        if a.dtype.kind == "f":
            return np.trunc(a / b)
        _integer_divisor(b)
        q = np.floor_divide(a, b)
        inexact = (np.remainder(a, b) != 0) & ((a < 0) != (b < 0))
        return np.where(inexact, q + 1, q).astype(q.dtype, copy=False)


def true_divide(a, b, dtype):
    """``a / b`` in the floating ``dtype`` (``promote_for("float", ...)``): integer operands are
    converted first, as PyTorch's loop computes in the result dtype."""
    dt = as_dtype(dtype)
    with np.errstate(all="ignore"):
        return np.true_divide(a.astype(dt, copy=False), b.astype(dt, copy=False))


def check_exponent(value, dtype):
    """PyTorch's checks of a Python-int exponent of an integer tensor (``x ** -1``, ``x ** 300``
    on int8); an exponent tensor has neither check."""
    dt = as_dtype(dtype)
    if type(value) is not int or dt.kind not in "iu":
        return
    if value < 0:
        raise EvaluationError(NEGATIVE_POWER)
    info = np.iinfo(dt)
    if value > info.max and dt.name in _C_TYPES:
        raise EvaluationError(
            f"value cannot be converted to type {_C_TYPES[dt.name]} without overflow"
        )


def power(a, b):
    """``a ** b``. Integers: repeated squaring with wraparound; a negative exponent gives 0,
    except 1 ** n = 1 and (-1) ** n = ±1 (PyTorch's powi)."""
    _refuse("pow", a, "b")
    if a.dtype.kind == "f":
        with np.errstate(all="ignore"):
            return np.power(a, b)
    a, b = np.broadcast_arrays(a, b)
    e = np.where(b > 0, b, 0)
    out = np.ones(a.shape, a.dtype)
    base = a.copy()
    with np.errstate(all="ignore"):
        while np.any(e):
            out = np.where(e & 1, out * base, out)
            base = base * base
            e = e >> 1
    if a.dtype.kind == "i":
        odd = (b & 1).astype(bool)
        small = np.where(a == 1, 1, np.where(a == -1, np.where(odd, -1, 1), 0))
        out = np.where(b < 0, small, out)
    return out.astype(a.dtype, copy=False)


def _bitwise(kernel, f):
    def op(a, b):
        _refuse(kernel, a, "f")
        return f(a, b)

    op.__doc__ = f"PyTorch's {kernel[:-4]}: bool and integers (floats raise)."
    return op


bitwise_and = _bitwise("bitwise_and_cpu", np.bitwise_and)
bitwise_or = _bitwise("bitwise_or_cpu", np.bitwise_or)
bitwise_xor = _bitwise("bitwise_xor_cpu", np.bitwise_xor)


def bitwise_not(a):
    """``~a``: logical not on bool, bitwise not on integers."""
    _refuse("bitwise_not_cpu", a, "f")
    return np.invert(a)


def left_shift(a, b):
    """``a << b``: bits shifted out are lost (wraps); a count < 0 or ≥ the bit width gives 0."""
    _refuse("lshift_cpu", a, "bf")
    bits = a.dtype.itemsize * 8
    ok = (b >= 0) & (b < bits)
    unsigned = np.dtype(f"u{a.dtype.itemsize}")
    shifted = np.left_shift(a.astype(unsigned), np.where(ok, b, 0).astype(unsigned))
    return np.where(ok, shifted.astype(a.dtype), 0).astype(a.dtype, copy=False)


def right_shift(a, b):
    """``a >> b``: arithmetic (sign-filling); a count < 0 or ≥ the bit width gives -1 for
    negative values and 0 otherwise."""
    _refuse("rshift_cpu", a, "bf")
    bits = a.dtype.itemsize * 8
    ok = (b >= 0) & (b < bits)
    shifted = np.right_shift(a, np.where(ok, b, 0).astype(a.dtype))
    return np.where(ok, shifted, np.where(a < 0, -1, 0)).astype(a.dtype, copy=False)
