"""Tensors made inside a program: torch.tensor, zeros, ones, full, arange, linspace, ... They
are constants, as in PyTorch (nothing made here requires grad), and each row's ``dtype`` is a
function giving PyTorch's default dtype for the call: floating values are the default float
(``--dtype``), whole numbers int64 and booleans bool, unless ``dtype=`` says otherwise."""

import math

from .. import dtypes
from ..errors import EvaluationError, ShapeError
from .core import REQUIRED, DType, Op, V, Whole, check_rank, lazy_numpy

np = lazy_numpy(globals())


def _kind_of_number(v):
    """The dtype PyTorch gives a Python scalar: bool, int64 or the default float."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, Whole) and math.isfinite(v):
        return "int64"
    return None  # the default float


def _chosen(attrs, default, default_float):
    given = attrs.get("dtype")
    if isinstance(given, DType):
        return _checked_dtype(given)
    return default or default_float


def _checked_dtype(name):
    if name not in dtypes.DTYPES:
        raise EvaluationError(
            f"torch.{name} is not supported",
            hint="gradcli has " + ", ".join(f"torch.{n}" for n in dtypes.DTYPES),
        )
    return name


def _leaves(data):
    """The numbers of a nested list, without recursion."""
    out, stack = [], [data]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        else:
            out.append(item)
    return out


def _tensor_dtype(attrs, args, default_float):
    kinds = {_kind_of_number(v) for v in _leaves(attrs["data"])}
    # any float, or an empty list: the default float
    default = None if None in kinds or not kinds else "int64" if "int64" in kinds else "bool"
    return _chosen(attrs, default, default_float)


def _tensor(data, dtype):
    dt = dtypes.DTYPES[dtype]
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if any(isinstance(v, Whole) and not info.min <= v <= info.max for v in _leaves(data)):
            raise EvaluationError(f"value cannot be converted to type {dtype} without overflow")
    try:
        values = np.array(data, dtype=np.float64)
    except ValueError:
        raise ShapeError(
            "torch.tensor(): the nested lists have rows of different lengths"
        ) from None
    if dtypes.DTYPES[dtype].kind in "iub" and isinstance(data, (bool, Whole)):
        return dtypes.scalar_array(int(data) if not isinstance(data, bool) else data, dtype)
    return dtypes.cast(values, dtype)


def _depth(data):
    """How deeply lists nest (without recursion)."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        item, d = stack.pop()
        if isinstance(item, (list, tuple)):
            deepest = max(deepest, d + 1)
            stack.extend((x, d + 1) for x in item)
    return deepest


def _tensor_shape(shapes, attrs):
    data = attrs["data"]
    if not isinstance(data, (list, tuple, bool, float)):
        raise ShapeError("torch.tensor() takes a number, True/False or a nested list of numbers")
    check_rank((0,) * _depth(data))  # too deep for numpy: say so
    try:
        return check_rank(np.array(data, dtype=np.float64).shape)
    except ValueError:
        raise ShapeError(
            "torch.tensor(): the nested lists have rows of different lengths"
        ) from None


def _size(attrs):
    size = attrs["size"]
    size = size if isinstance(size, tuple) else (size,)
    if any(d < 0 for d in size):
        raise ShapeError(
            f"Trying to create tensor with negative dimension {min(size)}: {list(size)}"
        )
    return check_rank(size)


def _sized(shapes, attrs):
    return _size(attrs)


def _like(shapes, attrs):
    return shapes[0]


def _like_dtype(attrs, args, default_float):
    v = args[0]
    own = v.dtype.name if hasattr(v, "dtype") and v.dtype.kind != "c" else None
    return _chosen(attrs, own, default_float)  # (a dual number's is its real dtype)


def _float_dtype(attrs, args, default_float):
    return _chosen(attrs, None, default_float)


def _full_dtype(attrs, args, default_float):
    return _chosen(attrs, _kind_of_number(attrs["fill_value"]), default_float)


def _fill(value, dtype):
    if isinstance(value, bool) or (isinstance(value, Whole) and math.isfinite(value)):
        return dtypes.scalar_array(value if isinstance(value, bool) else int(value), dtype)
    return dtypes.cast(np.asarray(float(value)), dtype)


def _whole(v, what):
    if isinstance(v, bool) or not float(v).is_integer():
        raise EvaluationError(f"{what} must be a whole number, not {v!r}")
    return int(v)


def _number(v, what):
    if isinstance(v, bool) or not isinstance(v, float):
        raise EvaluationError(f"{what} must be a number, not {v!r}")
    return v


# ---- arange -----------------------------------------------------------------------------


def _arange_bounds(attrs):
    start, end, step = attrs["start"], attrs["end"], attrs["step"]
    if end is None:
        start, end = 0.0 if not isinstance(start, Whole) else Whole(0), start
    for name, v in (("start", start), ("end", end), ("step", step)):
        _number(v, f"arange(): {name}")
        if not math.isfinite(v):
            raise EvaluationError("unsupported range: start -> end")
    if step == 0:
        raise EvaluationError("step must be nonzero")
    if (end - start) * step < 0:
        raise EvaluationError("upper bound and larger bound inconsistent with step sign")
    return start, end, step


def _arange_dtype(attrs, args, default_float):
    whole = all(
        isinstance(v, Whole) for v in (attrs["start"], attrs["end"], attrs["step"]) if v is not None
    )
    return _chosen(attrs, "int64" if whole else None, default_float)


def _arange_length(start, end, step, dtype):
    if dtypes.DTYPES[dtype].kind in "iu":  # integer bounds: exact
        return max(0, -((int(start) - int(end)) // int(step)))
    return max(0, math.ceil((end - start) / step))


def _arange_shape(shapes, attrs):
    start, end, step = _arange_bounds(attrs)
    return (_arange_length(start, end, step, "float64"),)


def _arange(start=0.0, end=None, step=1.0, dtype="float32"):
    start, end, step = _arange_bounds({"start": start, "end": end, "step": step})
    n = _arange_length(start, end, step, "float64")
    if dtypes.DTYPES[dtype].kind in "iub":
        return (int(start) + int(step) * np.arange(n, dtype=np.int64)).astype(dtype)
    # PyTorch computes start + i·step in double for a float result, then rounds
    return (start + step * np.arange(n, dtype=np.float64)).astype(dtype)


# ---- linspace, logspace -----------------------------------------------------------------


def _steps_shape(shapes, attrs):
    steps = _whole(attrs["steps"], "steps")
    if steps < 0:
        raise ShapeError("number of steps must be non-negative")
    return (steps,)


def _linspace_values(start, end, steps, dtype):
    """ATen's linspace kernel: from start for the first half, from end for the second, in
    the result's dtype (integers: computed in double, then truncated)."""
    dt = dtypes.DTYPES[dtype]
    work = dt if dt.kind == "f" else np.dtype(np.float64)
    if steps == 0:
        return np.zeros(0, work)
    if steps == 1:
        return np.full(1, start, work)
    s, e = work.type(start), work.type(end)
    step = (e - s) / work.type(steps - 1)
    i = np.arange(steps)
    half = steps // 2
    low = _fma(np.full(steps, step, work), i.astype(work), s)
    high = _fma(np.full(steps, -step, work), (steps - i - 1).astype(work), e)
    return np.where(i < half, low, high).astype(work)


def _fma(a, b, c):
    """a·b + c rounded once, as the fused multiply-add ATen's vectorised loop uses (Dekker's
    exact product and Knuth's exact sum, in a's dtype)."""
    split = a.dtype.type(134217729.0 if a.dtype == np.float64 else 4097.0)
    p = a * b
    ah = a * split - (a * split - a)
    al = a - ah
    bh = b * split - (b * split - b)
    bl = b - bh
    perr = ((ah * bh - p) + ah * bl + al * bh) + al * bl
    total = p + c
    bb = total - p
    serr = (p - (total - bb)) + (c - bb)
    out = total + (perr + serr)
    return np.where(np.isfinite(out), out, p + c)


def _linspace(start, end, steps, dtype="float32"):
    steps = _whole(steps, "steps")
    start, end = _number(start, "linspace(): start"), _number(end, "linspace(): end")
    return dtypes.cast(_linspace_values(start, end, steps, dtype), dtype)


def _logspace(start, end, steps, base=10.0, dtype="float32"):
    """ATen's logspace: start and end in the result's dtype, the exponents and the power
    in double (from each end, as linspace), then rounded to the result's dtype."""
    steps = _whole(steps, "steps")
    start, end = _number(start, "logspace(): start"), _number(end, "logspace(): end")
    dt = dtypes.DTYPES[dtype]
    s, e = (dtypes.convert(float(v), dt) for v in (start, end))
    if steps == 1:
        exps = np.full(1, float(s))
    else:
        step = float(e - s) / max(steps - 1, 1)
        i = np.arange(steps, dtype=np.float64)
        low = float(s) + step * i
        high = float(e) - step * (steps - i - 1)
        exps = np.where(i < steps // 2, low, high)
    # C's pow, as ATen calls it (numpy's vectorised power can differ in the last bit)
    powers = [_pow(float(base), x) for x in exps.tolist()]
    return dtypes.cast(np.array(powers, dtype=np.float64).reshape(exps.shape), dt)


def _pow(base, x):
    try:
        return math.pow(base, x)
    except (OverflowError, ValueError):  # C gives inf or nan where Python raises
        return float(np.power(base, x))


# ---- eye --------------------------------------------------------------------------------


def _eye_shape(shapes, attrs):
    n = _whole(attrs["n"], "n")
    m = n if attrs["m"] is None else _whole(attrs["m"], "m")
    if n < 0 or m < 0:
        raise ShapeError(f"n must be greater or equal to 0, got {min(n, m)}")
    return (n, m)


def _eye(n, m=None, dtype="float32"):
    n = _whole(n, "n")
    return np.eye(n, n if m is None else _whole(m, "m"), dtype=dtype)


# ---- random tensors: the run's generator, PyTorch's draws -----------------------------------


def _generator(generator, name):
    if generator is None:
        raise EvaluationError(
            f"torch.{name}() in a program needs one evaluation: grad, batch, graph and explain "
            "have it, but this command evaluates the program several times",
            hint=f"give the random tensor as an input instead (x={name}(3))",
        )
    return generator


def _drawn(draw, name, *args):
    try:
        return draw(*args)
    except ValueError as e:  # rand of an integer dtype, randint's bounds, ...
        raise EvaluationError(f"{name}(): {e}") from None


def _rand(kind):
    def forward(size, dtype, generator=None):
        g = _generator(generator, kind)
        return _drawn(g.rand if kind == "rand" else g.randn, kind, size, dtype)

    return forward


def _rand_like(kind):
    def forward(a, dtype, generator=None):
        g = _generator(generator, f"{kind}_like")
        return _drawn(g.rand if kind == "rand" else g.randn, f"{kind}_like", a.shape, dtype)

    return forward


def _randint_args(attrs):
    """torch.randint(high, size) or torch.randint(low, high, size): (low, high, size)."""
    low, high, size = attrs["low"], attrs["high"], attrs["size"]
    if size is None:
        low, high, size = Whole(0), low, high
    if not isinstance(size, list):
        raise EvaluationError(
            "randint() takes a size tuple last: torch.randint(high, (3,)) or "
            "torch.randint(low, high, (3,))"
        )
    low, high = _whole(low, "randint(): low"), _whole(high, "randint(): high")
    size = tuple(_whole(d, "randint(): size") for d in size)
    if low >= high:
        raise EvaluationError(
            f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )
    return low, high, _size({"size": size})


def _randint(low, high=None, size=None, dtype="int64", generator=None):
    low, high, size = _randint_args({"low": low, "high": high, "size": size})
    g = _generator(generator, "randint")
    return _drawn(g.randint, "randint", low, high, size, dtype)


def _randperm_shape(shapes, attrs):
    n = _whole(attrs["n"], "randperm(): n")
    if n < 0:
        raise ShapeError(f"n must be non-negative, got{n}")
    return (n,)


def _randperm(n, dtype="int64", generator=None):
    g = _generator(generator, "randperm")
    return _drawn(g.randperm, "randperm", _whole(n, "n"), dtype)


def _constant(name, forward, shape, make_dtype, params, call, arity=0, **kw):
    return Op(
        name,
        forward,
        None,
        "",
        shape,
        arity=arity,
        params=params,
        dtype=make_dtype,
        mirror=f"torch.{call}",
        call=call,
        rule="none: a constant made in the program (no gradient)"
        + (", drawn from the run's generator (--random-seed)" if kw.get("random") else ""),
        saves="none",
        **kw,
    )


ROWS = [
    _constant(
        "tensor",
        _tensor,
        _tensor_shape,
        _tensor_dtype,
        {"data": REQUIRED, "dtype": None},
        "tensor(data, dtype=None)",
        examples=(("sum(a * torch.tensor([1, 2, 3]))", V),),
        free=("data",),
        methods=(),
    ),
    *(
        _constant(
            name,
            lambda size, dtype, fill=fill: np.full(size, fill, dtype=dtype),
            _sized,
            _float_dtype,
            {"size": REQUIRED, "dtype": None},
            f"{name}(*size, dtype=None)",
            variadic=True,
            methods=(),
            examples=((f"sum(a * torch.{name}(3))", V),) if name != "empty" else (),
        )
        for name, fill in (("zeros", 0), ("ones", 1), ("empty", 0))
    ),
    _constant(
        "full",
        lambda size, fill_value, dtype: np.full(size, _fill(fill_value, dtype), dtype=dtype),
        _sized,
        _full_dtype,
        {"size": REQUIRED, "fill_value": REQUIRED, "dtype": None},
        "full(size, fill_value, dtype=None)",
        examples=(("sum(a * torch.full((3,), 2.5))", V),),
        free=("fill_value",),
        methods=(),
    ),
    _constant(
        "arange",
        _arange,
        _arange_shape,
        _arange_dtype,
        {"start": REQUIRED, "end": None, "step": Whole(1), "dtype": None},
        "arange(start=0, end, step=1, dtype=None)",
        examples=(("sum(a * torch.arange(3))", V),),
        free=("start", "end", "step"),
        methods=(),
    ),
    _constant(
        "linspace",
        _linspace,
        _steps_shape,
        _float_dtype,
        {"start": REQUIRED, "end": REQUIRED, "steps": REQUIRED, "dtype": None},
        "linspace(start, end, steps, dtype=None)",
        examples=(("sum(a * torch.linspace(-1, 2, 3))", V),),
        free=("start", "end"),
        methods=(),
    ),
    _constant(
        "logspace",
        _logspace,
        _steps_shape,
        _float_dtype,
        {"start": REQUIRED, "end": REQUIRED, "steps": REQUIRED, "base": 10.0, "dtype": None},
        "logspace(start, end, steps, base=10.0, dtype=None)",
        free=("start", "end"),
        methods=(),
    ),
    _constant(
        "eye",
        _eye,
        _eye_shape,
        _float_dtype,
        {"n": REQUIRED, "m": None, "dtype": None},
        "eye(n, m=None, dtype=None)",
        methods=(),
    ),
    *(
        _constant(
            f"{name}_like",
            lambda a, dtype, fill=fill: np.full(a.shape, fill, dtype=dtype),
            _like,
            _like_dtype,
            {"dtype": None},
            f"{name}_like(a, dtype=None)",
            arity=1,
            methods=(),
            examples=((f"sum(a * a + torch.{name}_like(a))", V),),
        )
        for name, fill in (("zeros", 0), ("ones", 1))
    ),
    _constant(
        "full_like",
        lambda a, fill_value, dtype: np.full(a.shape, _fill(fill_value, dtype), dtype=dtype),
        _like,
        _like_dtype,
        {"fill_value": REQUIRED, "dtype": None},
        "full_like(a, fill_value, dtype=None)",
        examples=(("sum(a * torch.full_like(a, 3))", V),),
        arity=1,
        free=("fill_value",),
        methods=(),
    ),
    *(
        _constant(
            name,
            _rand(name),
            _sized,
            _float_dtype,
            {"size": REQUIRED, "dtype": None},
            f"{name}(*size, dtype=None)",
            variadic=True,
            methods=(),
            random=True,
        )
        for name in ("rand", "randn")
    ),
    *(
        _constant(
            f"{name}_like",
            _rand_like(name),
            _like,
            _like_dtype,
            {"dtype": None},
            f"{name}_like(a, dtype=None)",
            arity=1,
            methods=(),
            random=True,
        )
        for name in ("rand", "randn")
    ),
    _constant(
        "randint",
        _randint,
        lambda shapes, attrs: _randint_args(attrs)[2],
        lambda attrs, args, default_float: _chosen(attrs, "int64", default_float),
        {"low": REQUIRED, "high": None, "size": None, "dtype": None},
        "randint(low=0, high, size, dtype=None)",
        free=("low", "high", "size"),
        methods=(),
        random=True,
    ),
    _constant(
        "randperm",
        _randperm,
        _randperm_shape,
        lambda attrs, args, default_float: _chosen(attrs, "int64", default_float),
        {"n": REQUIRED, "dtype": None},
        "randperm(n, dtype=None)",
        methods=(),
        random=True,
    ),
]
