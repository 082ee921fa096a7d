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
"""

import difflib
import math

from . import (
    arithmetic,
    attention,
    conv,
    creation,
    elementwise,
    indexing,
    linalg,
    losses,
    nn,
    reductions,
    results,
    shape,
)
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

TABLE = [
    *arithmetic.ROWS,
    *elementwise.ROWS,
    *reductions.ROWS,
    *results.ROWS,
    *linalg.ROWS,
    *shape.ROWS,
    *indexing.ROWS,
    *nn.ROWS,
    *losses.ROWS,
    *conv.ROWS,
    *attention.ROWS,
    *creation.ROWS,
]

OPS = {op.name: op for op in TABLE}


def operator_rows():
    """The public operators, as `gradcli ops` and the README list them."""
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

SPELLINGS: dict[str, Op] = {}  # "sum", "torch.sum", "Tensor.sum", "torch.nn.functional.relu" -> Op
for _op in TABLE:
    for _name in _op.names():
        SPELLINGS.setdefault(_name, _op)


def canonical(path):
    """A dotted name as typed (F.relu, nn.functional.relu) with its root expanded."""
    root, _, rest = path.partition(".")
    root = ROOTS.get(root, root)
    return f"{root}.{rest}" if rest else root


def lookup(name, namespace=None):
    """The op a program means by ``name`` in ``namespace``: None for a bare call, "Tensor"
    for a method, or a module ("torch.nn.functional"). A method that PyTorch's Tensor does
    not have falls back to the bare function (x.softplus() is softplus(x))."""
    if namespace is None:
        return SPELLINGS.get(name)
    op = SPELLINGS.get(f"{namespace}.{name}")
    if op is None and namespace == "Tensor" and name in SPELLINGS:
        from . import pytorch

        if name not in pytorch.names()["Tensor"]:
            return SPELLINGS[name]
    return op


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
