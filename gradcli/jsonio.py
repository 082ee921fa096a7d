"""JSON for batch: records read and answer lines written, with orjson where it is installed
(``pip install 'gradcli[fast]'``) and the json module otherwise. Either way the values read
and the bytes written are the same: orjson is used only where its result is known to be
json's (tests/test_batch.py compares the two paths).

- Reading: orjson.loads where the line has no integer of 19 or more digits (orjson makes an
  integer past 64 bits a float, json keeps it an int); anything orjson refuses is read again
  by json, whose error message is the one the answer gives.
- Writing: a float tensor without nan or inf is formatted by orjson: its shortest
  round-trip digits are Python's repr's, and so is its notation from 1e-4 up and for 0; the
  numbers below 1e-4 are spelled by repr, and ", " is put back between elements.
  Everything else goes through the json module."""

from __future__ import annotations

import importlib
import json
from typing import Any

import numpy as np

from .api import json_value
from .errors import InputError
from .inputs import load_object


def _optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_orjson = _optional("orjson")  # the gradcli[fast] extra; None without it

_NINES = bytes.maketrans(b"012345678", b"999999999")  # every digit a 9 ...
_LONG_RUN = b"9" * 19  # ... to find a run of 19 digits with bytes.find
# orjson pays on ordinary records; a line past this goes straight to json, so that a huge
# line costs one decoded copy of itself, not a translated copy and orjson's attempt as well
# (with --jobs 2, 16 junk lines of 6 MiB raised the peak by 30 MB through those copies)
_ORJSON_MAX = 1 << 20


def load_record(raw: bytes, what: str = "record") -> dict[str, Any]:
    """A JSON object from one UTF-8 line, strictly (inputs.load_object's rules and errors)."""
    if _orjson is not None and len(raw) <= _ORJSON_MAX and not _long_integer(raw):
        try:
            obj = _orjson.loads(raw)
        except _orjson.JSONDecodeError:
            pass  # json reads it again, and says what is wrong in its words
        else:
            if isinstance(obj, dict):
                return obj
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"line is not valid UTF-8 (byte {e.start})") from None
    return load_object(text, what)


def _long_integer(raw: bytes) -> bool:
    """Whether the line may hold an integer of 19 digits or more (orjson reads one past 64
    bits as a float, json as an int): a run of 19 digits that is not a fraction (after a
    '.') nor the whole part of a float (before '.', 'e' or 'E'). Such runs in floats are
    common (0.0012345678901234567) and orjson reads them as json does."""
    nines = raw.translate(_NINES)
    at = nines.find(_LONG_RUN)
    while at >= 0:
        end = at + len(_LONG_RUN)
        while end < len(nines) and nines[end] == 57:  # (57: the byte b"9")
            end += 1
        if not (at and raw[at - 1] == 46) and raw[end : end + 1] not in (b".", b"e", b"E"):
            return True  # (46: the byte b".")
        at = nines.find(_LONG_RUN, end)
    return False


def _array_value(obj):
    if isinstance(obj, (np.ndarray, np.generic)):
        return json_value(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON")


# ASCII-only (json's default): safe on any terminal encoding
_ENCODER = json.JSONEncoder(allow_nan=False, default=_array_value)
_plain = _ENCODER.encode
_quote = json.encoder.encode_basestring_ascii  # (what json.dumps does with a str)
_FLOAT = float.__repr__  # (what json.dumps does with a finite float)


def _array(value: np.ndarray) -> str:
    if _orjson is not None and value.dtype.kind == "f" and value.dtype.itemsize in (4, 8):
        text = _spelled(value)
        if text is not None:
            return text.replace(b",", b", ").decode("ascii")
    return _plain(json_value(value))


def _spelled(value: np.ndarray) -> bytes | None:
    """A float tensor as json writes its tolist() (without the spaces), by orjson: None
    where it holds nan or inf (json_value's strings). orjson's digits are always repr()'s
    (both the shortest that round-trip) and so is its notation, except below 1e-4 (orjson's
    1.5e-7 and 0.000015 are repr's 1.5e-07 and 1.5e-05): those numbers are written as nan
    (null), and the nulls replaced by repr() of the numbers, in order."""
    wide = np.ascontiguousarray(value, dtype=np.float64)  # float32 printed as Python does
    if not np.isfinite(wide).all():
        return None
    small = np.abs(wide) < 1e-4
    small &= wide != 0
    if not small.any():
        return _orjson.dumps(wide, option=_orjson.OPT_SERIALIZE_NUMPY)
    numbers = wide[small].tolist()
    wide = wide.copy()  # (ascontiguousarray may have given value itself)
    wide[small] = np.nan
    pieces = _orjson.dumps(wide, option=_orjson.OPT_SERIALIZE_NUMPY).split(b"null")
    out = [pieces[0]]
    for number, piece in zip(numbers, pieces[1:], strict=True):
        out += [_FLOAT(number).encode(), piece]
    return b"".join(out)


def dumps(obj: Any) -> str:
    """One answer line: exactly render.dumps(obj) (strict JSON, ASCII, json's separators;
    numpy arrays as api.json_value makes them), faster for tensors. Looks two levels deep
    (an answer and its "grad"); deeper values are json's."""
    if _orjson is None or not _named(obj):
        return _plain(obj)  # (one call of json's C encoder: the whole answer at once)
    return "{" + ", ".join(f"{_quote(k)}: {_member(v)}" for k, v in obj.items()) + "}"


def _named(obj):
    return type(obj) is dict and all(type(k) is str for k in obj)


def _member(value: Any) -> str:
    if _named(value):
        return "{" + ", ".join(f"{_quote(k)}: {_leaf(v)}" for k, v in value.items()) + "}"
    return _leaf(value)


def _leaf(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return _quote(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    if kind is np.ndarray:
        if value.ndim:
            return _array(value)
        if value.dtype.kind == "f" and np.isfinite(value):
            return _FLOAT(float(value))
    elif kind is list and all(type(v) is int for v in value):  # a shape
        return "[" + ", ".join(map(int.__repr__, value)) + "]"
    return _plain(value)


def grad_lines(
    ids: list[Any],
    expr: str,
    shape: list[int],
    grad_fn: str | None,
    value: np.ndarray,
    grads: dict[str, np.ndarray | None],
) -> list[str]:
    """The answers of a stacked group, record r's exactly dumps({"id": ids[r], "expr": expr,
    "dtype": value.dtype.name, "value": value[r], "shape": shape, "grad_fn": grad_fn,
    "grad": {name: g[r] or None}}): the parts the records share spelled once, and each
    stacked gradient by one orjson call where it can be (_rows)."""
    dtype = value.dtype.name
    if _orjson is None:
        return [
            _plain(
                {"id": record_id, "expr": expr, "dtype": dtype, "value": value[r, ...]}
                | {"shape": shape, "grad_fn": grad_fn}
                | {"grad": {n: None if g is None else g[r, ...] for n, g in grads.items()}}
            )
            for r, record_id in enumerate(ids)
        ]
    middle = f', "expr": {_quote(expr)}, "dtype": {_quote(dtype)}, "value": '
    tail = f', "shape": {_leaf(shape)}, "grad_fn": {_leaf(grad_fn)}, "grad": {{'
    columns = []
    for name, g in grads.items():
        texts = ["null"] * len(ids) if g is None else _rows(g)
        if texts is None:
            assert g is not None  # None came from _rows(g), so g is an array
            texts = [_leaf(g[r, ...]) for r in range(len(ids))]
        columns.append([f"{_quote(name)}: {t}" for t in texts])
    return [
        f'{{"id": {_leaf(record_id)}{middle}{_leaf(value[r, ...])}{tail}'
        + ", ".join([c[r] for c in columns])
        + "}}"
        for r, record_id in enumerate(ids)
    ]


def _rows(stacked: np.ndarray) -> list[str] | None:
    """_leaf(stacked[r]) for every r, from one orjson call for the whole stack: its text
    cut between records (where ']' * d + ',' + '[' * d meets, d the records' dims: inside
    a record brackets nest less deep). None where _array would not use orjson's text."""
    d = stacked.ndim - 1
    if (
        d < 1
        or 0 in stacked.shape
        or stacked.dtype.kind != "f"
        or stacked.dtype.itemsize not in (4, 8)
    ):
        return None
    text = _spelled(stacked)
    if text is None:
        return None  # (nan or inf somewhere: each record on its own)
    opening, closing = b"[" * d, b"]" * d
    parts = text[1:-1].split(closing + b"," + opening)
    if len(parts) != stacked.shape[0]:
        return None
    if len(parts) == 1:
        return [text[1:-1].replace(b",", b", ").decode("ascii")]
    parts[0] += closing
    parts[-1] = opening + parts[-1]
    for k in range(1, len(parts) - 1):
        parts[k] = opening + parts[k] + closing
    return [p.replace(b",", b", ").decode("ascii") for p in parts]
