"""Indexing and selection."""

from ..errors import EvaluationError, ShapeError
from .core import (
    REAL,
    REQUIRED,
    M,
    Op,
    V,
    _bcast,
    _same,
    fmt_shape,
    lazy_numpy,
    norm_dims,
)

np = lazy_numpy(globals())


def _where(c, a, b):
    if not (isinstance(c, np.ndarray) and c.dtype == np.bool_):
        raise EvaluationError(
            "where expected condition to be a boolean tensor (a comparison such as x > 0)"
        )
    return np.where(c, a, b)


def _index_items(node, args, items):
    """The items of x[...] with each tensor item resolved by its dtype: a 0-dim integer tensor
    is an integer (PyTorch selects with it), an integer tensor an index, a bool (or uint8)
    tensor a mask over as many dimensions as it has."""
    tensors = iter(args[1:])
    out = []
    for item in items:
        if item[0] != "tensor":
            out.append(item)
            continue
        n = next(tensors)
        v = np.asarray(node(n).value)
        if (v.dtype.kind == "b" or v.dtype == np.uint8) and v.ndim == 0:
            raise ShapeError("a 0-dim boolean index (x[True]) is not supported")
        if v.dtype.kind == "b" or v.dtype == np.uint8:
            out.append(("mask", n, v.astype(bool)))
        elif v.dtype in (np.int64, np.int32):
            out.append(("int", int(v)) if v.ndim == 0 else ("tensor", n, v))
        else:
            raise ShapeError("tensors used as indices must be long, int, byte or bool tensors")
    return out


def _index_lower(emit, node, args, attrs):
    """x[i], x[a:b:c], A[i, j], A[:, j], x[None], A[..., 0], as PyTorch's applySlicing
    records them, item by item from the left: one SelectBackward0 per integer, one
    SliceBackward0 per slice, one UnsqueezeBackward0 per None; ... skips the dimensions no
    other item names. In a multi-index a slice of everything records nothing (and if
    nothing is left, PyTorch records an AliasBackward0). Integer-tensor indices and masks
    then index the dimensions they stand at, all at once, in one IndexBackward0."""
    cur = args[0]
    items = _index_items(node, args, attrs["items"])
    ndim = len(node(cur).shape)
    width = {"int": 1, "slice": 1, "tensor": 1}
    named = sum(item[2].ndim if item[0] == "mask" else width.get(item[0], 0) for item in items)
    if named > ndim:
        raise ShapeError(f"too many indices for tensor of dimension {ndim}")
    dim = 0
    at = []  # (dimension, node, array) of each tensor index
    for item in items:
        if item[0] == "ellipsis":
            dim += ndim - named
            continue
        if item[0] == "none":
            cur = emit("unsqueeze", (cur,), {"dim": dim})
            dim += 1
            continue
        if item[0] in ("tensor", "mask"):
            at.append((dim, item[1], item[2]))
            dim += item[2].ndim if item[0] == "mask" else 1
            continue
        size = node(cur).shape[dim]
        if item[0] == "int":
            i = item[1]
            if not -size <= i < size:
                raise ShapeError(f"index {i} is out of bounds for dimension {dim} with size {size}")
            cur = emit("select", (cur,), {"dim": dim, "index": i % size})
            continue
        start, stop, step = item[1:]
        if step is not None and step <= 0:
            raise ShapeError("step must be greater than zero")
        start, stop, step = slice(start, stop, step).indices(size)
        stop = max(stop, start)
        if not (attrs["multi"] and start == 0 and stop == size and step == 1):
            cur = emit("slice", (cur,), {"dim": dim, "start": start, "stop": stop, "step": step})
        dim += 1
    if at:
        shape = node(cur).shape
        dims = tuple((d, a.dtype == np.bool_) for d, _, a in at)
        key = _index_key(shape, dims, [a for _, _, a in at])
        out = np.empty(shape, dtype=np.int8)[key].shape  # (numpy's rules are PyTorch's)
        return emit("index_tensor", (cur, *(n for _, n, _ in at)), {"dims": dims, "out": out})
    if cur == args[0]:
        cur = emit("alias", (cur,))
    return cur


def _index_key(shape, dims, arrays):
    """The numpy key of x[...] with tensor indices at ``dims`` ((dimension, is a mask) each),
    with PyTorch's checks: masks become their nonzero() indices, and every index is in range
    and broadcasts with the others."""
    key: list = []
    for (d, mask), a in zip(dims, arrays, strict=True):
        key += [slice(None)] * (d - len(key))
        if not mask:
            key.append(a)
            continue
        for j, (m, s) in enumerate(zip(a.shape, shape[d:], strict=False)):
            if m != s:
                raise ShapeError(
                    f"The shape of the mask {fmt_shape(a.shape)} at index {j} does not match "
                    f"the shape of the indexed tensor {fmt_shape(shape)} at index {d + j}"
                )
        key += list(np.nonzero(a))
    k = 0
    for d, part in enumerate(key):
        if isinstance(part, np.ndarray) and part.dtype != np.bool_:
            bad = part[(part < -shape[d]) | (part >= shape[d])]
            if bad.size:
                raise ShapeError(
                    f"index {int(bad.flat[0])} is out of bounds for dimension {k} with size "
                    f"{shape[d]}"
                )
            k += 1
    shapes = [p.shape for p in key if isinstance(p, np.ndarray) and p.dtype != np.bool_]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ShapeError(
            "shape mismatch: indexing tensors could not be broadcast together with shapes "
            + ", ".join(fmt_shape(s) for s in shapes)
        ) from None
    return tuple(key)


def _index_tensor(a, *idx, dims, out, dtype=None):
    return a[_index_key(a.shape, dims, [np.asarray(i) for i in idx])]


def _index_tensor_grads(g, o, a, *idx, dims, out):
    """IndexBackward0: the gradient added back where each element came from (repeats add)."""
    grad = np.zeros(a.shape, dtype=g.dtype)
    np.add.at(grad, _index_key(a.shape, dims, [np.asarray(i) for i in idx]), g)
    return [grad] + [None] * len(idx)


def _selected(shape, dim, index):
    """(dim, index) made non-negative, with PyTorch's checks."""
    if not shape:
        raise ShapeError("select() cannot be applied to a 0-dim tensor.")
    d = norm_dims(dim, len(shape))[0]
    if not -shape[d] <= index < shape[d]:
        raise ShapeError(
            f"select(): index {index} out of range for tensor of size {list(shape)} at "
            f"dimension {d}"
        )
    return d, index % shape[d]


def _select_grad(g, o, a, dim, index):
    return _scatter_into(a.shape, _at(*_selected(a.shape, dim, index)), g)


def _select_shape(shapes, attrs):
    d, _ = _selected(shapes[0], attrs["dim"], attrs["index"])
    return shapes[0][:d] + shapes[0][d + 1 :]


def _at(dim, key):
    return (slice(None),) * dim + (key,)


def _scatter_into(shape, key, g):
    out = np.zeros(shape, dtype=g.dtype)
    out[key] = g
    return out


ROWS = [
    Op(
        "where",
        _where,
        (None, lambda g, o, c, a, b: np.where(c, g, 0), lambda g, o, c, a, b: np.where(c, 0, g)),
        "WhereBackward0",
        _bcast,
        arity=3,
        numbers=True,
        mirror="torch.where(cond, a, b)",
        rule="the gradient goes to the side chosen",
        examples=(
            ("where(a > 0, a, b)", {"a": ((3,), "away"), "b": ((3,), REAL)}),
            ("where(b < 0, a * 2, 0)", {"a": ((2, 3), REAL), "b": ((3,), "away")}),
            ("a.where(b > 0, b)", {"a": ((3,), REAL), "b": ((3,), "away")}),
        ),
        receiver=1,  # x.where(condition, y) is torch.where(condition, x, y)
        inputs=("condition", "input", "other"),
    ),
    Op(
        "index",
        None,
        (),
        "SelectBackward0 per integer, SliceBackward0 per slice, UnsqueezeBackward0 per None; "
        "AliasBackward0 when nothing else",
        None,
        lower=_index_lower,
        public=False,
        call="a[i], a[i:j:k], A[i, j], A[:, j], a[None], A[..., i]",
        mirror="a[...]",
        rule="scatter the gradient back",
        examples=(
            ("a[0]", V),
            ("a[-1]", V),
            ("a[1:3]", {"a": ((4,), REAL)}),
            ("a[::2]", {"a": ((5,), REAL)}),
            ("A[:, 1]", M),
            ("A[1, 2]", M),
            ("a[1:]", V),
            ("a[:-1]", V),
            ("A[0:1, 1:]", M),
            ("A[:, :]", M),
            ("a[:]", V),
            ("a[None]", V),
            ("a[...]", V),
            ("A[..., 1]", M),
            ("A[None, 1:, None]", M),
            ("A[0, ..., None]", M),
            ("B[..., 1, :]", {"B": ((2, 3, 4), REAL)}),
            ("B[:, None, 1]", {"B": ((2, 3, 4), REAL)}),
            ("a[None:2]", V),
            ("A[(0, 1)]", M),
            ("A[(None, 1)]", M),
            ("A[()]", M),
        ),
    ),
    Op(
        "index_tensor",
        _index_tensor,
        _index_tensor_grads,
        "IndexBackward0",
        lambda shapes, attrs: attrs["out"],
        arity=2,
        dtype=lambda attrs, values, real: np.asarray(values[0]).dtype.name,
        public=False,
        saves="inputs",
        rule="add the gradient back where each element came from",
    ),
    Op(
        "select",
        lambda a, dim, index: a[_at(*_selected(a.shape, dim, index))],
        (
            lambda g, o, a, dim, index: _scatter_into(
                a.shape, _at(*_selected(a.shape, dim, index)), g
            ),
        ),
        "SelectBackward0",
        _select_shape,
        params={"dim": REQUIRED, "index": REQUIRED},
        saves="none",
        mirror="torch.select(a, dim, index)",
        rule="scatter the gradient back",
        examples=(("A.select(0, 1)", M), ("a.select(0, -1)", V), ("torch.select(A, -1, 2)", M)),
    ),
    Op(
        "slice",
        lambda a, dim, start, stop, step: a[_at(dim, slice(start, stop, step))],
        (
            lambda g, o, a, dim, start, stop, step: _scatter_into(
                a.shape, _at(dim, slice(start, stop, step)), g
            ),
        ),
        "SliceBackward0",
        lambda s, at: (
            s[0][: at["dim"]]
            + (len(range(at["start"], at["stop"], at["step"])),)
            + s[0][at["dim"] + 1 :]
        ),
        public=False,
        rule="scatter the gradient back",
    ),
    Op(
        "alias",
        lambda a: a.view(),
        (lambda g, o, a: g,),
        "AliasBackward0",
        _same,
        public=False,
        rule="the identity",
    ),
]
