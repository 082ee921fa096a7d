"""PyTorch's dtypes: names, type promotion (``torch.result_type``), casts and JSON values, as
torch 2.13 computes them on an x86-64 CPU.

An *operand* of type promotion is a Python scalar (``bool``, ``int``, ``float``: what PyTorch
calls a wrapped number), a tensor described as ``(dtype, "tensor" | "zerodim")``, or a numpy
array (its ``ndim`` says which kind of tensor). A dtype is a numpy dtype, or a name of one."""

import numpy as np

from .errors import EvaluationError, UnknownNameError

# Canonical names are numpy's names; PyTorch spells them torch.<name>.
DTYPES = {
    name: np.dtype(name)
    for name in ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
}
# torch.float, torch.double, ...: PyTorch's short names.
ALIASES = {
    "float": "float32",
    "double": "float64",
    "long": "int64",
    "int": "int32",
    "short": "int16",
}
# c10's ScalarType names, as PyTorch's "not implemented for 'Float'" messages spell them.
SCALAR_TYPE_NAMES = {
    "float32": "Float",
    "float64": "Double",
    "int64": "Long",
    "int32": "Int",
    "int16": "Short",
    "int8": "Char",
    "uint8": "Byte",
    "bool": "Bool",
    "uint64": "UInt64",
}
# PyTorch's binding reads a Python int from 2**63 to 2**64-1 as uint64, which promotes with
# nothing but floating point and itself.
_UINT64 = np.dtype("uint64")
FLOAT32, FLOAT64, INT64, BOOL = (DTYPES[n] for n in ("float32", "float64", "int64", "bool"))
KINDS: tuple[str, ...] = (
    "promote",
    "float",
    "floating_only",
    "bool",
    "same",
    "long",
    "integral_only",
    "integer_only",
)
KINDS += ("sum",)

# Messages PyTorch gives instead of its generic one (checked against torch 2.13).
_MESSAGES = {
    "mean": "mean(): could not infer output dtype. Input dtype must be either a floating point "
    "or complex dtype. Got: {name}",
    "nanmean": "nanmean(): expected input to have floating point or complex dtype but got {name}",
    "var": "std and var only support floating point and complex dtypes",
    "std": "std and var only support floating point and complex dtypes",
    "norm": "linalg.vector_norm: Expected a floating point or complex tensor as input. Got {name}",
}


def lookup(name):
    """The numpy dtype a name means: a canonical name (``int64``, as typed VALUEs spell it) or
    PyTorch's spelling (``torch.int64``, ``torch.long``)."""
    key = name
    if name.startswith("torch."):
        key = ALIASES.get(name[len("torch.") :], name[len("torch.") :])
    if key in DTYPES:
        return DTYPES[key]
    known = ", ".join(
        f"torch.{n}" + "".join(f"/torch.{a}" for a, c in ALIASES.items() if c == n) for n in DTYPES
    )
    raise UnknownNameError(f"unknown dtype {name!r}", hint=f"gradcli has {known}")


def as_dtype(dtype):
    """A numpy dtype from a dtype, a numpy type or a name; only PyTorch's dtypes pass."""
    if isinstance(dtype, str):
        return lookup(dtype)
    dt = np.dtype(dtype)
    if dt.name not in DTYPES:
        raise UnknownNameError(f"dtype {dt.name} is not one of PyTorch's dtypes gradcli has")
    return dt


def torch_name(dtype):
    """``torch.int64`` for int64: how PyTorch prints a dtype."""
    return "torch." + as_dtype(dtype).name


def is_floating(dtype):
    return as_dtype(dtype).kind == "f"


def promote_types(a, b):
    """``torch.promote_types``: the smallest dtype both fit in, floating point above integers
    (int64 with float32 is float32, not numpy's float64)."""
    a, b = (x if x is _UINT64 else as_dtype(x) for x in (a, b))
    if _UINT64 in (a, b) and a != b and "f" not in (a.kind, b.kind):
        raise EvaluationError(
            "Promotion for uint16, uint32, uint64 types is not supported, attempted to promote "
            f"{SCALAR_TYPE_NAMES[a.name]} and {SCALAR_TYPE_NAMES[b.name]}"
        )
    if a.kind == "f" or b.kind == "f":
        if a.kind == "f" and b.kind == "f":
            return a if a.itemsize >= b.itemsize else b
        return a if a.kind == "f" else b
    return np.promote_types(a, b)  # numpy's integer/bool lattice is PyTorch's (uint8+int8: int16)


def _operand(op, default_float):
    """(dtype, "tensor" | "zerodim" | "scalar") for one operand."""
    if type(op) is bool:
        return BOOL, "scalar"
    if type(op) is int:
        return (INT64 if op < 2**63 else _UINT64), "scalar"
    if type(op) is float:
        return as_dtype(default_float), "scalar"
    if isinstance(op, np.ndarray | np.generic):
        return as_dtype(op.dtype), "tensor" if np.ndim(op) else "zerodim"
    dtype, kind = op
    if kind not in ("tensor", "zerodim"):
        raise ValueError(f"operand kind {kind!r}: expected 'tensor' or 'zerodim'")
    return as_dtype(dtype), kind


def _combine(higher, lower):
    """A lower-priority group's dtype raises a higher group's only across categories
    (bool < integer < floating): ATen's combine_categories."""
    if higher is None:
        return lower
    if lower is None or higher.kind == "f":
        return higher
    if higher.kind == "b" or lower.kind == "f":
        return promote_types(higher, lower)
    return higher


def result_type(*operands, default_float="float32"):
    """``torch.result_type`` over any number of operands. Tensors with dimensions promote among
    themselves; zero-dim tensors, then Python scalars, count only when they raise the category.
    A Python float is ``default_float`` (float32, or float64 under ``--dtype float64``)."""
    groups: dict[str, np.dtype | None] = {"tensor": None, "zerodim": None, "scalar": None}
    for op in operands:
        dtype, kind = _operand(op, default_float)
        prev = groups[kind]
        groups[kind] = dtype if prev is None else promote_types(prev, dtype)
    out = _combine(groups["tensor"], _combine(groups["zerodim"], groups["scalar"]))
    if out is None:
        raise ValueError("result_type of no operands")
    return out


def not_implemented(kernel, dtype):
    """PyTorch's error for a kernel that has no loop for ``dtype``."""
    name = SCALAR_TYPE_NAMES[as_dtype(dtype).name]
    if kernel in _MESSAGES:
        return EvaluationError(_MESSAGES[kernel].format(name=name))
    return EvaluationError(f"\"{kernel}\" not implemented for '{name}'")


def promote_for(kind, *operands, default_float="float32", kernel=None):
    """The dtype of an operator's result, by the kind its table row declares:

    - ``promote``: add, mul, maximum, where, ...: ``result_type``.
    - ``float``: sin, exp, true division: integers and bool become ``default_float``.
    - ``floating_only``: mean, var, std, norm, softmax: integers and bool are refused with
      PyTorch's message for ``kernel`` (``mean``, ``nanmean``, ``var``, ``std``, ``norm``, or
      a CPU kernel's name such as ``softmax_lastdim_kernel_impl``).
    - ``bool``: comparisons, isnan, logical_*: bool (operands compare in ``result_type``).
    - ``same``: shape ops, neg, abs: the operand's dtype.
    - ``long``: argmax, argsort indices: int64.
    - ``integral_only``: bitwise and/or/xor/not: bool and integers; floats raise PyTorch's
      ``"bitwise_and_cpu" not implemented for 'Float'`` (``kernel`` = ``bitwise_and_cpu``).
    - ``integer_only``: shifts: integers only (bool raises too; ``kernel`` = ``lshift_cpu``).
    - ``sum``: sum, prod, cumsum, cumprod: bool and integers accumulate in int64.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown promotion kind {kind!r}")
    r = result_type(*operands, default_float=default_float)
    if kind in ("promote", "same"):
        return r
    if kind == "float":
        return r if r.kind == "f" else as_dtype(default_float)
    if kind == "bool":
        return BOOL
    if kind == "long":
        return INT64
    if kind == "sum":
        return r if r.kind == "f" else INT64
    refused = {"floating_only": "biu", "integral_only": "f", "integer_only": "bf"}[kind]
    if r.kind in refused:
        raise not_implemented(kernel or "?", r)
    return r


def _truncated(a, wide):
    """Float → int32/int64 as x86's cvttss2si/cvttsd2si: toward zero; nan, ±inf and values out
    of range give the "integer indefinite" value, the type's minimum."""
    info = np.iinfo(wide)
    lo = a.dtype.type(info.min)  # -2**31 and -2**63 are exact in float32 and float64
    t = np.trunc(a)
    with np.errstate(invalid="ignore"):
        ok = (t >= lo) & (t < -lo)
    return np.where(ok, np.where(ok, t, 0).astype(wide), wide.type(info.min))


def cast(a, dtype):
    """``tensor.to(dtype)`` as torch 2.13 computes it on x86-64.

    Float → integer truncates toward zero. Where C++ leaves the conversion undefined (nan,
    ±inf, out of range), PyTorch's compiled loops convert through a 32- or 64-bit integer with
    x86's truncating instruction, which gives the type's minimum, and then keep the low bits:
    int32 and int64 get their minimum; int8 and int16 go through int32, uint8 through int64
    (so float64 300.7 → uint8 44, nan → 0, 2**32+5 → uint8 5 but int8 0). Integer → narrower
    integer wraps (two's complement); → bool is ``!= 0`` (nan is True); int64 → float32 rounds
    to nearest; float64 → float32 overflows to ±inf."""
    a = np.asarray(a)
    dt = as_dtype(dtype)
    if a.dtype == dt:
        return a
    if dt.kind == "b":
        return a != 0
    if a.dtype.kind == "f" and dt.kind in "iu":
        wide = np.dtype(np.int64 if dt.itemsize == 8 or dt.kind == "u" else np.int32)
        return _truncated(a, wide).astype(dt)
    with np.errstate(over="ignore"):
        return a.astype(dt)


def scalar_array(value, dtype):
    """A Python scalar as a 0-dim array of ``dtype``, as PyTorch converts a wrapped number to
    an operation's dtype: integers wrap (``int8 + 1000`` adds -24); ints from -2**63 to 2**64-1
    are accepted, as PyTorch's binding accepts them."""
    dt = as_dtype(dtype)
    if type(value) is int:
        if value < -(2**63):
            raise EvaluationError("can't convert negative int to unsigned", hint=f"{value}")
        if value >= 2**64:
            raise EvaluationError("int too big to convert", hint=f"{value}")
        if dt.kind == "f":
            return np.asarray(float(value)).astype(dt)
        bits = value - 2**64 if value >= 2**63 else value  # 2**63..2**64-1 wrap as uint64 bits
        return cast(np.asarray(bits, np.int64), dt)
    return cast(np.asarray(value), dt)


def convert(op, dtype):
    """An operand, an array or a Python scalar, in ``dtype``: what an operation computes on
    once ``result_type`` has chosen the dtype."""
    if type(op) in (bool, int, float):
        return scalar_array(op, dtype)
    return cast(op, dtype)


def json_ready(a):
    """An integer or boolean array as JSON-ready nested lists of Python ints and bools (a
    0-dim array gives a plain int or bool). Floating arrays go through ``api.json_value``,
    which also spells nan and ±inf."""
    a = np.asarray(a)
    if a.dtype.kind not in "biu":
        raise TypeError(f"json_ready takes integer or bool arrays, not {a.dtype}")
    return a.tolist()


# ---- each operator's kind of promotion (promote_for), by name --------------------------------
# Checked against torch 2.13 on int64 and bool tensors. An operator not listed is floating
# point only (PyTorch's nn, loss and convolution kernels refuse integers); its kernel name, in
# the message, is its own name unless KERNELS says PyTorch's.
_KIND_NAMES = {
    "same": "neg abs relu sign floor ceil round trunc square nan_to_num hardtanh relu6 clone "
    "detach contiguous reshape flatten view unflatten movedim expand_as tile fliplr flipud "
    "narrow index select slice alias unsqueeze squeeze squeeze_dims transpose permute_T expand "
    "reshape_view permute repeat flip roll tril triu diagonal transpose_last permute_axes diag "
    "diag_embed diagonal_view max min amax amin pixel_shuffle pixel_unshuffle nn_embedding "
    "max_unpool",
    "promote": "add sub mul pow maximum minimum floor_divide remainder fmod heaviside clamp cat "
    "stack where dot mv mm matmul outer kron bmm tensordot cross baddbmm addmm addmv addr",
    "sum": "sum prod cumsum trace",
    "float": "div div_scalar reciprocal exp log sqrt sin cos tan tanh sigmoid log1p expm1 erf "
    "asin acos atan sinh cosh atan2 log2 log10 exp2 rsqrt asinh acosh atanh rad2deg deg2rad "
    "sinc logit lgamma digamma polygamma erfinv i0 copysign xlogy logsumexp softsign "
    "nn_bool_mask",  # (attention's boolean mask as the 0 / -inf it adds)
    "bool": "lt le gt ge eq ne logical_and logical_or logical_xor logical_not isnan isinf "
    "isfinite signbit isclose",
    "integral_only": "bitwise_and bitwise_or bitwise_xor bitwise_not",
    "integer_only": "bitwise_left_shift bitwise_right_shift",
}
OP_KINDS = {name: kind for kind, names in _KIND_NAMES.items() for name in names.split()}
KERNELS = {
    "softmax": "softmax_lastdim_kernel_impl",
    "log_softmax": "log_softmax_lastdim_kernel_impl",
    "gelu": "GeluKernelImpl",
    "mse_loss": "mse_cpu",
    "bitwise_left_shift": "lshift_cpu",
    "bitwise_right_shift": "rshift_cpu",
}
_CPU = "leaky_relu hypot logaddexp logaddexp2 elu softplus silu frac bitwise_and bitwise_or"
KERNELS.update({n: f"{n}_cpu" for n in (_CPU + " bitwise_xor bitwise_not").split()})
CONDITIONS = {"where": 0}  # operand that is a condition, not promoted with the others
CONDITIONS["nn_embedding"] = 0  # (the int64 indices: the result has the weight's dtype)
CONDITIONS["max_unpool"] = 1  # (likewise max_unpool's indices)


def kind_of(name):
    """(promotion kind, kernel name for PyTorch's message) of an operator."""
    return OP_KINDS.get(name, "floating_only"), KERNELS.get(name, name)


# dtype= on these converts the input first: inside the op (sum, mean, prod, cumsum: one
# node, as PyTorch records it), or as a copy before it (softmax: ToCopyBackward0 first)
CAST_INPUT = {"sum", "mean", "prod", "cumsum", "softmax", "log_softmax", "_to_copy"}
COPY_FIRST = {"softmax", "log_softmax"}
# Operators that keep their operand's dtype but have no loop for bool (torch 2.13's messages)
BOOL_REFUSED = {
    n: f"\"{n}_vml_cpu\" not implemented for 'Bool'" for n in ("floor", "ceil", "round")
}
BOOL_REFUSED |= {"trunc": "\"trunc_vml_cpu\" not implemented for 'Bool'"}
BOOL_REFUSED |= {"abs": "\"abs_cpu\" not implemented for 'Bool'"}
BOOL_REFUSED |= {"relu": "Boolean inputs not supported for relu"}
# Python scalars an operator promotes with besides its tensors: clamp's bounds (an int64
# tensor clamped at 0.5 is float), square's exponent 2 (a bool tensor squared is int64)
SCALAR_ATTRS = {"clamp": ("min", "max")}
IMPLICIT = {"square": 2}
