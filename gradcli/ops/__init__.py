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

from . import arithmetic, conv, elementwise, indexing, linalg, losses, nn, reductions, shape
from .core import REQUIRED, Op, broadcast_shapes, fmt_shape, norm_dims

TABLE = [
    *arithmetic.ROWS,
    *elementwise.ROWS,
    *reductions.ROWS,
    *linalg.ROWS,
    *shape.ROWS,
    *indexing.ROWS,
    *nn.ROWS,
    *losses.ROWS,
    *conv.ROWS,
]

OPS = {op.name: op for op in TABLE}


def operator_rows():
    """The public operators, as `gradcli ops` and the README list them."""
    return [op.describe() for op in TABLE if op.public or op.call]


ALIASES = {"t": "transpose"}  # method spellings PyTorch users type: A.t()

__all__ = [
    "ALIASES",
    "OPS",
    "REQUIRED",
    "TABLE",
    "Op",
    "broadcast_shapes",
    "fmt_shape",
    "norm_dims",
    "operator_rows",
]
