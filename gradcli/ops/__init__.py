"""The operator table: one row per operator, declared once, in one module per family.

Each row says how to compute the operator (numpy), how to differentiate it (one VJP rule
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

This module is the registry: the families' rows in one list, and the lookups built from it.
A family's module is imported when a lookup first needs one of its names (see _Registry).
"""

import math
import os
import threading

from .core import (
    INTEGER_OR_TUPLE_PARAMS,
    INTEGER_PARAMS,
    REQUIRED,
    SEQUENCE_PARAMS,
    Op,
    broadcast_shapes,
    fmt_shape,
    norm_dims,
)

# The families, in the table's order (which `gradcli ops` and the README list keep).
FAMILIES = (
    "arithmetic",
    "elementwise",
    "reductions",
    "results",
    "linalg",
    "shape",
    "indexing",
    "nn",
    "losses",
    "conv",
    "attention",
    "creation",
)


class _Registry(dict):
    """OPS (name -> Op) or SPELLINGS (spelling -> Op), filled family by family on first use.

    Importing every family costs a start about 10 ms (a tenth of the one-liner's process),
    and a one-liner needs two or three of them. An index of which family defines each name
    (kept in the per-user cache, see _index) lets a lookup import only that family; iterating,
    counting or a name no family has loads the whole table first, so what can be seen is
    always the whole table's."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind  # "ops" or "spellings": the index's part for this registry

    def _has(self, key):
        return dict.__contains__(self, key) or (not _complete and _resolve(self.kind, key, self))

    def __missing__(self, key):
        if self._has(key):
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def __contains__(self, key):
        return self._has(key)

    def get(self, key, default=None):
        try:
            return self[key]  # a name already loaded: dict's own lookup, nothing more
        except KeyError:
            return default

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        _load_all()
        return dict.__len__(self)

    def keys(self):
        _load_all()
        return dict.keys(self)

    def values(self):
        _load_all()
        return dict.values(self)

    def items(self):
        _load_all()
        return dict.items(self)

    def copy(self):
        _load_all()
        return dict(dict.items(self))

    def __repr__(self):
        _load_all()
        return dict.__repr__(self)


TABLE: list[Op]  # every row, in the families' order: made by _load_all (see __getattr__)
OPS: dict[str, Op] = _Registry("ops")
SPELLINGS: dict[str, Op] = _Registry("spellings")  # "sum", "torch.sum", "Tensor.sum", ...
_loaded: set[str] = set()  # the families whose rows are in OPS and SPELLINGS
_complete = False  # every family is loaded (and OPS, SPELLINGS, TABLE are final)
_lock = threading.RLock()
_INDEX_FORMAT = "gradcli ops index 1"
_index_cache: list = []  # [the index, or None when there is none to trust]


def _rows(family):
    # (__import__ rather than importlib.import_module: `python -X importtime` then shows it)
    return __import__(f"{__name__}.{family}", fromlist=["ROWS"]).ROWS


def _index_key():
    """Everything the index depends on: the sources of the table, and Python."""
    import sys

    from .. import __version__

    here = os.path.dirname(os.path.abspath(__file__))
    files = []
    with os.scandir(here) as entries:
        for entry in entries:
            if entry.name.endswith(".py"):
                st = entry.stat()
                files.append((entry.name, st.st_mtime_ns, st.st_size))
    return repr((_INDEX_FORMAT, __version__, here, sorted(files), sys.version_info[:2]))


def _index():
    """{"ops": {name: family}, "spellings": {spelling: family}} from the per-user cache, or
    None (no cache, another version of the sources, damaged): then the whole table loads."""
    if not _index_cache:
        from .. import grammar_cache

        data = grammar_cache.load(_index_key())  # None for anything it does not trust
        ok = isinstance(data, dict) and all(
            isinstance(data.get(kind), dict)
            and all(isinstance(f, str) and f in FAMILIES for f in data[kind].values())
            for kind in ("ops", "spellings")
        )
        _index_cache.append(data if ok else None)
    return _index_cache[0]


def _resolve(kind, key, registry):
    """Load what defines ``key``: its family, by the index; the whole table when the index
    does not know it. Whether ``registry`` then has it."""
    with _lock:
        if not dict.__contains__(registry, key) and not _complete:
            index = _index()
            family = index[kind].get(key) if index is not None and isinstance(key, str) else None
            if family is not None:
                _load(family, index)
            if not dict.__contains__(registry, key):
                _load_all()
    return dict.__contains__(registry, key)


def _load(family, index):
    """One family's rows: those of its names the index gives to it (as the whole table
    would: a spelling goes to the first row that has it)."""
    if family in _loaded:
        return
    for op in _rows(family):
        if index["ops"].get(op.name) == family:
            dict.__setitem__(OPS, op.name, op)
        for name in op.names():
            if index["spellings"].get(name) == family:
                dict.__setitem__(SPELLINGS, name, op)
    _loaded.add(family)


def _load_all():
    """Every family: TABLE, OPS and SPELLINGS as one list in the families' order builds
    them; the index is written for the next start when there was none."""
    global _complete, TABLE
    if _complete:
        return
    with _lock:
        if _complete:
            return
        table = [op for family in FAMILIES for op in _rows(family)]
        ops = {op.name: op for op in table}
        spellings: dict[str, Op] = {}
        owner = {}
        for family in FAMILIES:
            for op in _rows(family):
                for name in op.names():
                    if name not in spellings:
                        spellings[name] = op
                        owner[name] = family
        dict.clear(OPS)
        dict.update(OPS, ops)
        dict.clear(SPELLINGS)
        dict.update(SPELLINGS, spellings)
        TABLE = table
        _loaded.update(FAMILIES)
        _complete = True
        if _index() is None:
            by_op = {op.name: family for family in FAMILIES for op in _rows(family)}
            _store_index({"ops": by_op, "spellings": owner})


def _store_index(index):
    from .. import grammar_cache

    grammar_cache.store(_index_key(), index)  # (without a private cache dir: nothing)


def __getattr__(name):
    if name == "TABLE":  # the whole table, in order
        _load_all()
        return TABLE
    if name in FAMILIES:  # gradcli.ops.nn, as when the package imported every family
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def operator_rows():
    """The public operators, as `gradcli ops` and the README list them."""
    _load_all()
    return [op.describe() for op in TABLE if op.public or op.call]


# ---- spelling: every name a program may use, resolved here and nowhere else --------------

# the first name of a dotted name, and the module it stands for (import torch.nn.functional
# as F; from torch import nn)
ROOTS = {"torch": "torch", "F": "torch.nn.functional", "nn": "torch.nn", "math": "math"}
NAMESPACES = ("torch", "torch.nn", "torch.nn.functional", "torch.special", "torch.linalg", "math")
CONSTANTS = {
    f"{module}.{name}": value
    for module in ("torch", "math")
    for name, value in (("pi", math.pi), ("e", math.e), ("inf", math.inf), ("nan", math.nan))
}
CONSTANTS["math.tau"] = math.tau
# numpy-style keyword names PyTorch's argument parser accepts for its own
KEYWORDS = {"axis": "dim", "keepdims": "keepdim"}


def canonical(path):
    """A dotted name as typed (F.relu, nn.functional.relu) with its root expanded."""
    root, _, rest = path.partition(".")
    root = ROOTS.get(root, root)
    return f"{root}.{rest}" if rest else root


def lookup(name, namespace=None):
    """The op a program means by ``name`` in ``namespace``: None for a bare call, "Tensor"
    for a method, or a module ("torch.nn.functional"). A method that PyTorch's Tensor does
    not have falls back to the bare function (x.softplus() is softplus(x))."""
    try:  # (a subscript: dict's own lookup for a loaded name, the hot path of a long program)
        return SPELLINGS[name if namespace is None else f"{namespace}.{name}"]
    except KeyError:
        pass
    if namespace == "Tensor" and name in SPELLINGS:
        from . import pytorch

        if name not in pytorch.names()["Tensor"]:
            return SPELLINGS[name]
    return None


def known(path):
    """Whether a dotted name (canonical) is something: ours, PyTorch's or a namespace."""
    from . import pytorch

    return path in NAMESPACES or path in CONSTANTS or path in SPELLINGS or pytorch.has(path)


def unknown(spelled, name, namespace=None):
    """(message, hint) for a name that does not resolve. A name PyTorch has is reported as
    not supported; any other gets the closest of our own names in the same namespace."""
    from . import pytorch

    typed = "" if namespace is None else spelled.rpartition(".")[0] + "."  # F., torch.
    if len(spelled) > 60:  # a user's name, elided for the message
        spelled = f"{spelled[:40]}…{spelled[-8:]} ({len(spelled)} characters)"
    qualified = name if namespace is None else f"{namespace}.{name}"
    if namespace is None:
        theirs = pytorch.bare(name)
        if theirs is not None:
            return f"{name}() is not supported (PyTorch's {theirs})", _LIST_HINT
    elif pytorch.has(qualified):
        return f"{spelled} is not supported", _LIST_HINT
    import difflib

    prefix = "" if namespace is None else namespace + "."
    ours = [
        s[len(prefix) :] for s in SPELLINGS if s.startswith(prefix) and "." not in s[len(prefix) :]
    ]
    close = difflib.get_close_matches(name, ours, n=1) if len(name) < 64 else []
    what = "method" if namespace == "Tensor" else "function"
    return (
        f"unknown {what} '{spelled}'",
        f"did you mean '{typed}{close[0]}'?" if close else _LIST_HINT,
    )


_LIST_HINT = "'gradcli ops' lists the supported functions"

__all__ = [
    "CONSTANTS",
    "INTEGER_OR_TUPLE_PARAMS",
    "INTEGER_PARAMS",
    "SEQUENCE_PARAMS",
    "KEYWORDS",
    "NAMESPACES",
    "OPS",
    "ROOTS",
    "SPELLINGS",
    "REQUIRED",
    "TABLE",
    "Op",
    "broadcast_shapes",
    "canonical",
    "fmt_shape",
    "known",
    "lookup",
    "norm_dims",
    "operator_rows",
    "unknown",
]
