"""Input values: NAME=VALUE strings, JSON values and generators, checked and made arrays.

VALUE is JSON (``3``, ``[1, 2]``, ``[[1, 2], [3, 4]]``, with the strings "nan", "inf",
"-inf"), a comma list (``1,2,3``), or a generator: randn(2,3), rand(n), randint(low, high,
(size...)), randperm(n), zeros(n), ones(n), arange(n), linspace(a,b,n).
"""

import itertools
import json
import math
import re

from .errors import InputError

MAX_ELEMENTS = 50_000_000  # per tensor, unless --max-elements says otherwise
MAX_DIMS = 32  # dimensions of an input tensor (numpy stops at 64)
MAX_DIGITS = 400  # a longer JSON integer is past float64 (Python's int() stops at 4,300)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_SPECIAL = {
    "nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "-inf": -math.inf,
    "infinity": math.inf,
    "-infinity": -math.inf,
}
_GENERATOR = re.compile(
    r"\s*(randint|randperm|randn|rand|zeros|ones|arange|linspace)\s*\((.*)\)\s*$", re.S
)
_RANDINT = re.compile(r"([^()\[\]]*?),\s*[(\[]([^()\[\]]*)[)\]]\s*$")
DTYPES = ("float32", "float64")
# A typed VALUE names its dtype: int64:0,2,1, bool:[true,false], float64:randn(3); in JSON,
# {"dtype": "int64", "data": [0, 2, 1]}
TYPED = ("float32", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")
_TYPED = re.compile(r"\s*(" + "|".join(TYPED) + r")\s*:(.*)\Z", re.S)
_WHOLE = re.compile(r"[+-]?\d+\Z")


def _reject_constant(name):
    raise ValueError(f'{name} is not JSON (write the string "nan", "inf" or "-inf")')


class _TooLong(ArithmeticError):
    """A JSON integer too long to be a number (not a ValueError: the JSON is well formed)."""


def _parse_int(digits):
    if len(digits) > MAX_DIGITS:
        raise _TooLong(
            f"a JSON integer of {len(digits.lstrip('-')):,} digits is too large for a number "
            f"(float64 ends near 1.8e308)"
        )
    return int(digits)


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_parse_int)


def loads(text):
    """Strict JSON (RFC 8259): Python's NaN/Infinity extensions are refused. (json.loads with
    these arguments, without making a decoder per call.)"""
    if text.startswith("\ufeff"):  # as json.loads says it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    return _DECODER.decode(text)


def load_object(text, what):
    """A JSON object from text, strictly, with errors that say what was being read."""
    try:
        obj = loads(text)
    except RecursionError:
        raise InputError(f"{what}: JSON nested too deeply") from None
    except _TooLong as e:
        raise InputError(f"{what}: {e}") from None
    except ValueError as e:
        raise InputError(f"{what}: not JSON: {e}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{what}: expected a JSON object, got {type(obj).__name__}")
    return obj


def shown(name, limit=40):
    """A user's name for a message: as it is when it is a name, else quoted with every
    control and non-ASCII character escaped (``ascii()``), so nothing from the user can
    drive a terminal; long ones are elided, with their length."""
    text = name if isinstance(name, str) and _IDENTIFIER.match(name) else ascii(name)
    if len(text) <= limit:
        return text
    length = len(name) if isinstance(name, str) else len(text)
    return f"{text[:24]}…{text[-8:]} ({length} characters)"


def check_names(names):
    """Input names are names, as the program's are: [A-Za-z_][A-Za-z0-9_]*."""
    for name in names:
        if not isinstance(name, str) or not _IDENTIFIER.match(name):
            raise InputError(
                f"input name {shown(name)} is not a name",
                hint="a name is ASCII letters, digits and _, not starting with a digit, "
                "as in the program",
            )


def check_dtype(dtype):
    if dtype not in DTYPES:
        raise InputError(f"unknown dtype {ascii(dtype)}: use float32 or float64")
    return dtype


def parse_value(text, name="value"):
    """A VALUE string -> a Python number, nested lists, or a generator call (kept as text)."""
    text = text.strip()
    if not text:
        raise InputError(f"{name}: empty value; give a number, a list like 1,2,3 or JSON")
    if _GENERATOR.match(text) or _TYPED.match(text):
        return text  # kept as text: to_array reads it
    if _NUMBER.match(text):
        return float(text)
    if text[0] in '[{"' or text in ("null", "true", "false"):
        try:
            return loads(text)
        except RecursionError:
            raise InputError(f"{name}: JSON nested too deeply") from None
        except _TooLong as e:
            raise InputError(f"{name}: {e}") from None
        except ValueError as e:
            raise InputError(f"{name}: malformed JSON value: {e}") from None
    items = [t.strip() for t in text.split(",")]
    out = []
    for t in items:
        if _NUMBER.match(t):
            out.append(float(t))
        elif t.lower() in _SPECIAL:
            out.append(_SPECIAL[t.lower()])
        else:
            raise InputError(
                f"{name}: {ascii(t)} is not a number",
                hint="VALUE is a number, a comma list 1,2,3, JSON like [[1,2],[3,4]], "
                "or randn(3), rand(3), randint(0,10,(3,)), randperm(3), zeros(3), ones(3), "
                "arange(3), linspace(0,1,5)",
            )
    return out[0] if len(items) == 1 else out


def to_array(value, dtype, name="value", rng=None, max_elements=MAX_ELEMENTS):
    """A value from JSON, the API or parse_value -> ndarray of ``dtype``."""
    import numpy as np

    arr = _numbers(value, dtype) if dtype in DTYPES else None
    if arr is None:
        with np.errstate(all="ignore"):  # 1e40 in float32 is inf, as in PyTorch, silently
            arr = _to_array(value, dtype, name, rng, max_elements)
    # The same cap, and the same exit status, whether the elements came from a generator
    # (checked before allocation) or were spelled out.
    _check_count(name, "the value has", arr.size, max_elements)
    return arr


_PLAIN = frozenset((float, int))  # (not bool: numpy would take True for 1 silently)
_F32_MAX = 3.4028234663852886e38


def _numbers(value, dtype):
    """The common case fast: a number, a list of numbers or a list of rows of numbers (JSON
    ints and floats, no bools) straight to ``dtype``: one scan of the element types, no
    float64 array on the way, no errstate unless a number is past float32's range. None for
    anything else, which _to_array reads (and says what is wrong with)."""
    import numpy as np

    kind = type(value)
    if kind is float or kind is int:
        try:
            number = float(value)
        except OverflowError:
            return None
        if dtype == "float64" or -_F32_MAX <= number <= _F32_MAX:
            return np.asarray(number, dtype=dtype)
        return None
    if kind is not list:
        return None
    rows = bool(value) and type(value[0]) is list
    try:
        leaves = set(map(type, itertools.chain.from_iterable(value) if rows else value))
        if not leaves <= _PLAIN:
            return None
        wide = dtype == "float32" and (
            max(map(max, value)) > _F32_MAX or min(map(min, value)) < -_F32_MAX
            if rows
            else bool(value) and (max(value) > _F32_MAX or min(value) < -_F32_MAX)
        )
        if wide:
            with np.errstate(over="ignore"):  # 1e40 in float32 is inf, as in PyTorch
                return np.array(value, dtype=dtype)
        return np.array(value, dtype=dtype)
    except (TypeError, ValueError, OverflowError):  # a row that is not a list, ragged rows
        return None


def _check_count(name, phrase, size, max_elements):
    if size > max_elements:
        raise InputError(
            f"{name}: {phrase} {_amount(size)} elements, over the limit of {max_elements:,}",
            hint="raise the limit with --max-elements",
        )


def _amount(n):
    """An element count for a message, however large."""
    if n <= 10**18:
        return f"{n:,}"
    if n == math.inf:
        return "more than 1e308"
    try:
        return f"about {float(n):.3g}"
    except OverflowError:
        return f"about 1e{len(str(n)) - 1}"


def _to_array(value, dtype, name, rng, max_elements):
    import numpy as np

    typed = _typed(value, name)
    if typed is not None:
        typed_dtype, data = typed
        return _typed_array(typed_dtype, data, name, rng, max_elements)
    if isinstance(value, str):
        m = _GENERATOR.match(value)
        if m:
            return _generate(m.group(1), m.group(2), dtype, name, rng, max_elements)
        value = parse_value(value, name)
        if isinstance(value, str):
            return _to_array(value, dtype, name, rng, max_elements)
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "iuf":
            raise InputError(f"{name}: expected numbers, got an array of {value.dtype}")
        return value.astype(dtype, copy=False)
    if isinstance(value, bool) or value is None:
        raise InputError(f"{name}: expected a number or a list of numbers, got {json.dumps(value)}")
    if isinstance(value, (int, float)):
        try:
            return np.asarray(float(value), dtype=dtype)
        except OverflowError:
            raise InputError(f"{name}: the number is too large") from None
    if isinstance(value, (list, tuple)):
        try:
            arr = np.array(value)
        except (ValueError, RecursionError):
            arr = None
        # numpy turns booleans into 1/0 silently; scan the leaves of the common 1-D and 2-D
        # shapes for them (a C-speed loop), and leave anything else to the careful walk.
        if arr is not None and arr.dtype.kind in "iuf" and arr.ndim <= 2:
            leaves = value if arr.ndim == 1 else itertools.chain.from_iterable(value)
            if not any(type(v) is bool for v in leaves):
                return arr.astype(dtype, copy=False)
        return _checked(value, dtype, name)
    raise InputError(f"{name}: expected a number or a list of numbers, got {type(value).__name__}")


def _checked(value, dtype, name):
    """Slow path: walk nested lists without recursion, allowing "nan"/"inf" strings, and
    say exactly what is wrong (ragged rows, booleans, other strings, objects)."""
    import numpy as np

    flat = []
    shape = None
    stack: list[tuple[object, int, tuple[int, ...]]] = [(value, 0, ())]  # (item, depth, path)
    level_len: dict[int, int] = {}
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, (list, tuple)):
            if depth >= MAX_DIMS:  # before any other check: deep is not "ragged"
                raise InputError(
                    f"{name}: lists nested more than {MAX_DIMS} deep; a tensor has at most "
                    f"{MAX_DIMS} dimensions"
                )
            if (
                depth in level_len
                and level_len[depth] != len(item)
                or (shape is not None and depth >= len(shape))
            ):
                raise InputError(
                    f"{name}: ragged nested list (rows of different lengths or depths)"
                )
            level_len[depth] = len(item)
            for k in range(len(item) - 1, -1, -1):
                stack.append((item[k], depth + 1, path + (k,)))
            continue
        if shape is None:
            shape = tuple(level_len[d] for d in range(depth))
        elif depth != len(shape):
            raise InputError(f"{name}: ragged nested list (rows of different lengths or depths)")
        if isinstance(item, bool) or item is None:
            raise InputError(f"{name}: expected numbers, got {json.dumps(item)} at {_where(path)}")
        if isinstance(item, (int, float)):
            try:
                flat.append(float(item))
            except OverflowError:
                raise InputError(f"{name}: the number at {_where(path)} is too large") from None
        elif isinstance(item, str) and item.strip().lower() in _SPECIAL:
            flat.append(_SPECIAL[item.strip().lower()])
        elif isinstance(item, str):
            raise InputError(
                f"{name}: the string {json.dumps(item[:40])} at {_where(path)} is "
                f'not a number (only "nan", "inf" and "-inf" are)'
            )
        else:
            raise InputError(
                f"{name}: expected numbers, got {type(item).__name__} at {_where(path)}"
            )
    if shape is None:  # only empty lists
        shape = tuple(level_len[d] for d in sorted(level_len))
    elif len(flat) != math.prod(shape) or any(d >= len(shape) for d in level_len):
        raise InputError(f"{name}: ragged nested list (rows of different lengths or depths)")
    if len(shape) > MAX_DIMS:
        raise InputError(
            f"{name}: nested {len(shape)} lists deep; a tensor has at most {MAX_DIMS} dimensions"
        )
    return np.array(flat, dtype=dtype).reshape(shape)


def _typed(value, name):
    """(dtype, data) of a typed VALUE -- "int64:0,2,1" or {"dtype": "int64", "data": ...} --
    or None for an untyped one."""
    if isinstance(value, str):
        m = _TYPED.match(value)
        return (m.group(1), m.group(2).strip()) if m else None
    if not isinstance(value, dict):
        return None
    extra = sorted(set(value) - {"dtype", "data"})
    if extra or "dtype" not in value or "data" not in value:
        raise InputError(
            f'{name}: a typed value is an object with exactly the keys "dtype" and "data"'
            + (f", not {shown(extra[0])}" if extra else ""),
            hint='e.g. {"dtype": "int64", "data": [0, 2, 1]}',
        )
    if value["dtype"] not in TYPED:
        raise InputError(
            f"{name}: unknown dtype {shown(str(value['dtype']))}",
            hint=f"a typed value is one of {', '.join(TYPED)}",
        )
    return value["dtype"], value["data"]


def _typed_array(dtype, data, name, rng, max_elements):
    """A typed VALUE as an array of its dtype. Floating data takes the untyped path in that
    dtype; integer and bool data must be whole numbers (bool: true/false, or numbers, nonzero
    being true) that fit the dtype, as torch.tensor(data, dtype=...) requires."""
    import numpy as np

    from .dtypes import cast

    if isinstance(data, str):
        if not data:
            raise InputError(f"{name}: empty value after '{dtype}:'")
        m = _GENERATOR.match(data)
        if m and dtype in DTYPES:
            return _to_array(data, dtype, name, rng, max_elements)
        if m:
            kind = m.group(1)
            if kind in ("rand", "randn", "linspace"):
                raise InputError(
                    f"{name}: {kind}() makes floating point values, not {dtype}",
                    hint=f"use float32:{kind}(...) or float64:{kind}(...)",
                )
            draw = "int64" if kind in ("randint", "randperm") else "float64"
            arr = _generate(kind, m.group(2), draw, name, rng, max_elements)
            return cast(arr, dtype)
        if dtype in DTYPES:
            return _to_array(data, dtype, name, rng, max_elements)
        if data[0] in "[{" or data in ("true", "false"):
            data = parse_value(data, name)
        else:
            items = [t.strip() for t in data.split(",")]
            data = [_typed_token(t, dtype, name) for t in items]
            data = data[0] if len(items) == 1 else data
    elif dtype in DTYPES:
        return _to_array(data, dtype, name, rng, max_elements)
    try:
        obj = np.array(data, dtype=object)
    except (ValueError, RecursionError):
        raise InputError(
            f"{name}: ragged nested list (rows of different lengths or depths)"
        ) from None
    if obj.ndim > MAX_DIMS:
        raise InputError(f"{name}: a tensor has at most {MAX_DIMS} dimensions")
    dt = np.dtype(dtype)
    flat = obj.reshape(-1)
    if any(isinstance(v, (list, tuple)) for v in flat.tolist()):
        raise InputError(f"{name}: ragged nested list (rows of different lengths or depths)")
    for v in flat.tolist():
        _check_element(v, dt, name)
    if dt.kind == "b":
        return np.array([bool(v) for v in flat.tolist()], dtype=bool).reshape(obj.shape)
    return np.array([int(v) for v in flat.tolist()], dtype=dt).reshape(obj.shape)


def _typed_token(text, dtype, name):
    """One item of a typed comma list: a whole number, or true/false for bool."""
    low = text.lower()
    if dtype == "bool" and low in ("true", "false"):
        return low == "true"
    if _WHOLE.match(text):
        return int(text)
    what = "true, false or a whole number" if dtype == "bool" else "a whole number"
    raise InputError(f"{name}: {ascii(text[:40])} is not {what} ({dtype})")


def _check_element(v, dt, name):
    import numpy as np

    if dt.kind == "b" and type(v) is bool:
        return
    if type(v) is float and v.is_integer():
        v = int(v)
    if type(v) is not int:
        what = "true/false or whole numbers" if dt.kind == "b" else "whole numbers"
        got = json.dumps(v) if isinstance(v, (bool, float, str)) or v is None else type(v).__name__
        raise InputError(f"{name}: {dt.name} values are {what}, got {got[:40]}")
    if dt.kind != "b":
        info = np.iinfo(dt)
        if not info.min <= v <= info.max:
            raise InputError(
                f"{name}: {_amount(v) if abs(v) > 10**18 else v} does not fit in {dt.name} "
                f"({info.min} to {info.max})"
            )


def _where(path):
    return "[" + "][".join(str(i) for i in path) + "]" if path else "the top level"


def _generate(kind, args_text, dtype, name, rng, max_elements):
    """A generator VALUE, its arguments checked and its size capped before anything is
    allocated."""
    import numpy as np

    bounds = None
    if kind == "randint":  # randint([low,] high, (size...)) as torch.randint spells it
        m = _RANDINT.match(args_text)
        if not m:
            raise InputError(
                f"{name}: randint(high, (size...)) or randint(low, high, (size...)), "
                "the size a tuple as in torch.randint"
            )
        bounds, args_text = _randint_bounds(m.group(1), name), m.group(2).rstrip().rstrip(",")
    texts = [x.strip() for x in args_text.split(",")] if args_text.strip() else []
    args = []
    for a in texts:
        if not _NUMBER.match(a):
            raise InputError(f"{name}: {kind}() takes numbers, got {ascii(a[:40])}")
        if not math.isfinite(float(a)):
            raise InputError(f"{name}: {kind}() takes finite numbers, got {ascii(a[:40])}")
        args.append(float(a))
    what = _call_text(kind, texts)
    if kind == "linspace":
        if len(args) != 3 or not args[2].is_integer() or args[2] < 0:
            raise InputError(
                f"{name}: linspace(start, end, steps) takes three numbers, steps a whole number"
            )
        shape: tuple[float, ...] = (int(args[2]),)  # arange's may be (inf,)
    elif kind == "arange":
        if not 1 <= len(args) <= 3:
            raise InputError(f"{name}: arange(end), arange(start, end) or arange(start, end, step)")
        args = [0.0, args[0], 1.0] if len(args) == 1 else args + [1.0] * (3 - len(args))
        start, end, step = args
        if step == 0:
            raise InputError(f"{name}: arange step must not be zero")
        span = (end - start) / step  # inf when a tiny step overflows it
        shape = (max(0, math.ceil(span)) if math.isfinite(span) else math.inf,)
    else:
        if len(args) > MAX_DIMS:
            raise InputError(
                f"{name}: {kind}() with {len(args)} sizes; a tensor has at most {MAX_DIMS} "
                "dimensions"
            )
        if not all(a.is_integer() and a >= 0 for a in args):
            raise InputError(f"{name}: {kind}() takes sizes, whole numbers >= 0")
        shape = tuple(int(a) for a in args)
        if kind == "randperm" and len(shape) != 1:
            raise InputError(f"{name}: randperm(n) takes one whole number")
        if kind == "randperm" and dtype == "float32" and shape[0] > 2**24 + 1:
            raise InputError(f"{name}: randperm n cannot be greater than 2^24+1 for float32")
    _check_count(name, f"{what} would make", math.prod(shape), max_elements)
    big = max(shape, default=0)
    if big > max_elements:  # even with no elements: zeros(0, 10**20) is not an array numpy has
        raise InputError(
            f"{name}: {what} has a dimension of {_amount(big)}, over the limit of "
            f"{max_elements:,} elements",
            hint="raise the limit with --max-elements",
        )
    try:
        return _allocate(kind, args, shape, dtype, rng, bounds)
    except ValueError:  # numpy's own limits: a dimension or the byte size past 2**63
        raise InputError(f"{name}: {what} is larger than an array can be") from None
    except MemoryError:
        size = math.prod(shape) * np.dtype(dtype).itemsize
        raise InputError(
            f"{name}: {what} needs {_amount(size)} bytes, more memory than there is",
            hint="use a smaller size",
        ) from None


def _call_text(kind, texts, limit=60):
    inside = ", ".join(texts)
    return f"{kind}({inside if len(inside) <= limit else inside[: limit - 1] + '…'})"


def _allocate(kind, args, shape, dtype, rng, bounds=None):
    import numpy as np

    if kind == "linspace":
        return np.linspace(args[0], args[1], shape[0]).astype(dtype)
    if kind == "arange":
        return np.arange(*args).astype(dtype)
    if kind in ("zeros", "ones"):
        return (np.zeros if kind == "zeros" else np.ones)(shape, dtype=dtype)
    if rng is None:
        from .rng import Generator

        rng = Generator()
    if kind == "randint":
        assert bounds is not None  # _generate parsed randint's (low, high)
        low, high = bounds
        return rng.randint(low, high, shape, dtype)  # torch.randint(..., dtype=float)
    if kind == "randperm":
        return rng.randperm(shape[0], dtype)
    return (rng.randn if kind == "randn" else rng.rand)(shape, dtype)


def _randint_bounds(text, name):
    """randint's (low, high) from "high" or "low, high": whole numbers that fit int64."""
    parts = [t.strip() for t in text.split(",")]
    if not 1 <= len(parts) <= 2 or not all(re.fullmatch(r"[+-]?\d+", t) for t in parts):
        raise InputError(f"{name}: randint's low and high are whole numbers, got '{text}'")
    low, high = (0, int(parts[0])) if len(parts) == 1 else map(int, parts)
    if not -(2**63) <= low < high <= 2**63 - 1:
        raise InputError(
            f"{name}: randint needs low < high within int64, got low={low}, high={high}"
        )
    return low, high
