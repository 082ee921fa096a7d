"""Indexing and selection."""

import math

from ..errors import EvaluationError, ShapeError
from .core import (
    REAL,
    REQUIRED,
    M,
    Op,
    V,
    Whole,
    _bcast,
    _re,
    _same,
    broadcast_shapes,
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
    tensor a mask over as many dimensions as it has (none: x[True] is a new dimension that the
    mask keeps or, False, empties)."""
    if items == (("tensors",),):  # x[t] with t a call's several results: x[t[0], t[1], ...]
        items = (("tensor",),) * (len(args) - 1)
    tensors = iter(args[1:])
    out = []
    for item in items:
        if item[0] != "tensor":
            out.append(item)
            continue
        n = next(tensors)
        v = np.asarray(node(n).value)
        if v.dtype.kind == "b" or v.dtype == np.uint8:  # (x[True]: a 0-dim mask)
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
        if item[0] == "none" or (item[0] == "mask" and item[2].ndim == 0):
            cur = emit("unsqueeze", (cur,), {"dim": dim})
        if item[0] == "none":
            dim += 1
            continue
        if item[0] == "mask" and item[2].ndim == 0:  # x[True]: the new dimension, masked
            at.append((dim, item[1], item[2]))
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
        a = a.reshape(-1) if a.ndim == 0 else a  # x[True]: over the dimension added for it
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
        "then one IndexBackward0 for tensor, list and mask indices; AliasBackward0 when nothing "
        "else",
        None,
        lower=_index_lower,
        public=False,
        call="a[i], a[i:j:k], A[i, j], A[:, j], a[None], A[..., i], a[t], a[[0, 2]], a[mask]",
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


def _like_input(attrs, values, real):
    """The dtype of a selection: its input's (the index or mask is not promoted with it)."""
    return np.asarray(values[0]).dtype.name


def _index_vector(op, a, idx, dim):
    idx = np.asarray(idx)
    if idx.dtype not in (np.int64, np.int32):
        raise EvaluationError(f"{op}(): Expected dtype int32 or int64 for index")
    if idx.ndim > 1:
        raise ShapeError(f"{op}(): Index is supposed to be a vector")
    d = norm_dims(dim, max(a.ndim, 1))[0]
    size = a.shape[d] if a.ndim else 1
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.size:
        raise ShapeError(
            f"INDICES element is out of DATA bounds, id={int(bad.flat[0])} axis_dim={size}"
        )
    return d, idx.reshape(-1)


def _index_select(a, idx, dim, index, dtype=None):
    d, i = _index_vector("index_select", a, idx, dim)
    return a[_at(d, i)] if a.ndim else a.copy()


def _index_select_grad(g, o, a, idx, dim, index):
    d, i = _index_vector("index_select", a, idx, dim)
    out = np.zeros(a.shape, dtype=g.dtype)
    if not a.ndim:
        return out + g
    np.add.at(out, _at(d, i), g)
    return out


def _index_select_shape(shapes, attrs):
    if attrs["index"] is not True:
        raise ShapeError("index_select(): argument 'index' must be Tensor, not a number")
    a, i = shapes
    if not a:
        return ()
    d = norm_dims(attrs["dim"], len(a))[0]
    return a[:d] + (math.prod(i),) + a[d + 1 :]


def _gather_index(a, idx, dim):
    idx = np.asarray(idx)
    if idx.dtype not in (np.int64, np.int32):
        raise EvaluationError("gather(): Expected dtype int32/int64 for index")
    if idx.ndim != a.ndim and not (idx.ndim <= 1 and a.ndim <= 1):
        raise ShapeError("Index tensor must have the same number of dimensions as input tensor")
    a_shape, i_shape = a.shape or (1,), idx.shape or (1,)
    d = norm_dims(dim, len(a_shape))[0]
    for k, (n, m) in enumerate(zip(i_shape, a_shape, strict=True)):
        if k != d and n > m:
            raise ShapeError(
                f"Size does not match at dimension {k} expected index {fmt_shape(idx.shape)} to "
                f"be no larger than self {fmt_shape(a.shape)} apart from dimension {d}"
            )
    bad = idx[(idx < 0) | (idx >= a_shape[d])]
    if bad.size:
        raise ShapeError(
            f"index {int(bad.flat[0])} is out of bounds for dimension {d} with size {a_shape[d]}"
        )
    # the positions along the other dimensions: the index's own (it may be smaller)
    grid = list(np.ogrid[tuple(slice(n) for n in i_shape)])
    grid[d] = idx.reshape(i_shape)
    return tuple(grid), a_shape


def _gather(a, idx, dim, index, sparse_grad=False, dtype=None):
    key, shape = _gather_index(a, idx, dim)
    return a.reshape(shape)[key].reshape(np.shape(idx))


def _gather_grad(g, o, a, idx, dim, index, sparse_grad=False):
    key, shape = _gather_index(a, idx, dim)
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, key, g.reshape(key[0].shape if len(key) == 1 else np.shape(g) or (1,)))
    return out.reshape(a.shape)


def _gather_shape(shapes, attrs):
    if attrs["index"] is not True:
        raise ShapeError("gather(): argument 'index' must be Tensor, not a number")
    if attrs.get("sparse_grad"):
        raise EvaluationError(
            "gather(sparse_grad=True) is not supported: gradcli's gradients are dense tensors "
            "(leave sparse_grad=False, the default)"
        )
    return shapes[1]


def _take_index(a, idx):
    idx = np.asarray(idx)
    if idx.dtype != np.int64:
        name = {"f": "Float" if idx.dtype == np.float32 else "Double", "b": "Bool"}
        got = name.get(idx.dtype.kind, "Int" if idx.dtype == np.int32 else idx.dtype.name)
        raise EvaluationError(f"take(): Expected a long tensor for index, but got {got}")
    bad = idx[(idx < -a.size) | (idx >= a.size)]
    if bad.size:
        raise ShapeError(
            f"out of range: tried to access index {int(bad.flat[0])} on a tensor of {a.size} "
            "elements."
        )
    return idx % max(a.size, 1)


def _take_grad(g, o, a, idx):
    out = np.zeros(a.size, dtype=g.dtype)
    np.add.at(out, _take_index(a, idx), g)
    return out.reshape(a.shape)


def _mask(op, m):
    if np.asarray(m).dtype != np.bool_:
        raise EvaluationError(_MASK_ERRORS[op].format(name=dtypes_name(np.asarray(m).dtype)))
    return m


_MASK_ERRORS = {
    "masked_fill": "masked_fill_ only supports boolean masks, but got mask with dtype {name}",
    "masked_select": "masked_select: expected BoolTensor for mask",
}


def dtypes_name(dt):
    """PyTorch's C++ name of a dtype, as its masked_fill message spells it."""
    names = {"int64": "long int", "int32": "int", "float32": "float", "float64": "double"}
    return names.get(dt.name, dt.name)


def _masked_fill(a, m, value, dtype=None):
    return np.where(_mask("masked_fill", m), np.asarray(value).astype(a.dtype), a)


def _masked_fill_label(kinds, attrs):
    """MaskedFillBackward0 (a number value), MaskedFillBackward1 (a 0-dim tensor value)"""
    return "MaskedFillBackward0"


def _masked_fill_lower(emit, node, args, attrs):
    """masked_fill(mask, value): PyTorch's Scalar overload for a number (MaskedFillBackward0),
    its Tensor overload for a 0-dim tensor (MaskedFillBackward1)."""
    if len(args) == 2 or node(args[2]).op == "number":
        value = attrs["value"] if len(args) == 2 else node(args[2]).value
        return emit("masked_fill", tuple(args[:2]), {"value": value})
    a = node(args[0]).value
    if node(args[2]).requires_grad and a.dtype.kind in "biu":  # an integer result of a grad
        raise EvaluationError(f"Autograd not support dtype: {_type_name(a)}")
    return emit("masked_fill_tensor", tuple(args))


def _masked_fill_tensor(a, m, v, dtype=None):
    v = np.asarray(v)
    if v.ndim:
        raise ShapeError(
            "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
            f"{v.ndim} dimension(s)."
        )
    m = _mask("masked_fill", m)
    if a.dtype.kind != "c" and v.dtype.kind == "c":
        v = v.real
    return np.where(m, v.astype(a.dtype), a)


def _value_dependent(private, forward):
    """A lowering that works out a result's shape from the values (masked_select, nonzero)
    and emits ``private``, the op that computes it, with that shape."""

    def lower(emit, node, args, attrs):
        shape = np.shape(forward(*(node(a).value for a in args), **attrs))
        return emit(private, args, {**attrs, "out": shape})

    return lower


def _masked_select(a, m, dtype=None, out=None):
    """masked_select: the elements at the True places of the mask, both broadcast."""
    a, m = np.broadcast_arrays(a, _mask("masked_select", m))
    return a[m]


def _masked_select_grad_all(g, o, a, m, out=None):
    shape = np.broadcast_shapes(a.shape, m.shape)
    grad = np.zeros(shape, dtype=g.dtype)
    grad[np.broadcast_to(m, shape)] = g
    return [grad, None]


def _nonzero(a, out=None, as_tuple=False, dtype=None):
    return np.argwhere(np.asarray(a)).astype(np.int64)


def _nonzero_column(a, column, out=None, dtype=None):
    a = np.asarray(a)
    return np.nonzero(a.reshape(a.shape or (1,)))[column].astype(np.int64)


def _nonzero_tuple_lower(emit, node, args, attrs):
    """nonzero(as_tuple=True): one int64 vector of indices per dimension (one for a 0-dim
    tensor), as PyTorch's tuple."""
    from . import results  # noqa: PLC0415 (results imports the reductions; keep this light)

    value = np.asarray(node(args[0]).value)
    columns = np.nonzero(value.reshape(value.shape or (1,)))
    return results.Results(
        "tuple",
        [
            lambda k=k: emit("nonzero_column", args, {"column": k, "out": columns[k].shape})
            for k in range(len(columns))
        ],
    )


def _take_along_dim_lower(emit, node, args, attrs):
    """ATen's take_along_dim: without dim, input.view(-1).gather(0, indices.view(-1));
    with it, the input and indices expanded to one shape apart from dim (an
    ExpandBackward0, always), then gather."""
    from .shape import _view_lower  # noqa: PLC0415 (shape imports this module's helpers)

    a, idx = args
    kind = np.asarray(node(idx).value).dtype
    if kind != np.int64:
        name: dict[str, str] = {
            "float32": "Float",
            "float64": "Double",
            "int32": "Int",
            "bool": "Bool",
        }
        raise EvaluationError(
            "torch.take_along_dim(): dtype of indices should be Long but got "
            + name.get(kind.name, str(kind.name))
        )
    if attrs["dim"] is None:
        flat = [_view_lower(emit, node, (t,), {"shape": (-1,)}) for t in (a, idx)]
        return emit("gather", tuple(flat), {"dim": 0, "index": True})
    sa, si = node(a).shape, node(idx).shape
    if len(sa) != len(si):
        raise ShapeError(
            "torch.take_along_dim(): input and indices should have the same number of "
            f"dimensions, but got {len(sa)} dimensions for input, and {len(si)} dimensions "
            "for indices"
        )
    if not sa:
        raise ShapeError(f"Dimension specified as {attrs['dim']} but tensor has no dimensions")
    d = norm_dims(attrs["dim"], len(sa))[0]
    one = lambda s: s[:d] + (1,) + s[d + 1 :]  # noqa: E731
    both = broadcast_shapes(one(sa), one(si))
    a = emit("expand", (a,), {"size": both[:d] + (sa[d],) + both[d + 1 :]})
    if si != both[:d] + (si[d],) + both[d + 1 :]:
        idx = emit("expand", (idx,), {"size": both[:d] + (si[d],) + both[d + 1 :]})
    return emit("gather", (a, idx), {"dim": d, "index": True})


def _one_hot(t, num_classes=-1, out=None, dtype=None):
    t = np.asarray(t)
    if t.dtype != np.int64:
        raise EvaluationError("one_hot is only applicable to index tensor of type LongTensor.")
    if num_classes == -1 and not t.size:
        raise ShapeError("Can not infer total number of classes from empty tensor.")
    if t.size and t.min() < 0:
        raise EvaluationError("Class values must be non-negative.")
    n = int(t.max()) + 1 if num_classes == -1 else num_classes
    if t.size and t.max() >= n:
        raise EvaluationError("Class values must be smaller than num_classes.")
    return (t[..., None] == np.arange(n)).astype(np.int64)


def _fill_index(a, idx, dim):
    idx = np.asarray(idx)
    if idx.dtype != np.int64:
        raise EvaluationError("index_fill_(): Expected dtype int64 for index.")
    if idx.ndim > 1:
        raise ShapeError("Index has to be a vector/scalar")
    shape = a.shape or (1,)
    d = norm_dims(dim, len(shape))[0]
    bad = idx[(idx < -shape[d]) | (idx >= shape[d])]
    if bad.size:
        raise ShapeError(
            f"index {int(bad.flat[0])} is out of bounds for dimension {d} with size {shape[d]}"
        )
    return (slice(None),) * d + (idx.reshape(-1) % shape[d],), shape


def _index_fill(a, idx, dim, index, value, dtype=None):
    key, shape = _fill_index(a, idx, dim)
    out = np.array(a).reshape(shape)
    out[key] = np.asarray(value).astype(a.dtype)
    return out.reshape(a.shape)


def _index_fill_grad(g, o, a, idx, dim, index, value):
    key, shape = _fill_index(a, idx, dim)
    out = np.array(g).reshape(shape)
    out[key] = 0
    return out.reshape(a.shape)


_X = {"a": ((3, 4), REAL)}
SELECTION_ROWS = [
    Op(
        "index_select",
        _index_select,
        (_index_select_grad, None),
        "IndexSelectBackward0",
        _index_select_shape,
        params={"dim": REQUIRED, "index": REQUIRED},
        tensor_params=("index",),
        dtype=_like_input,
        saves="inputs",
        mirror="torch.index_select(a, dim, index)",
        call="index_select(a, dim, index)",
        rule="add the gradient back at each index (repeats add)",
    ),
    Op(
        "gather",
        _gather,
        (_gather_grad, None),
        "GatherBackward0",
        _gather_shape,
        params={"dim": REQUIRED, "index": REQUIRED, "sparse_grad": False},
        tensor_params=("index",),
        dtype=_like_input,
        saves="inputs",
        mirror="torch.gather(a, dim, index, sparse_grad=False)",
        call="gather(a, dim, index, sparse_grad=False)",
        rule="add the gradient back where each element came from (repeats add)",
    ),
    Op(
        "take",
        lambda a, idx, dtype=None: np.asarray(a).reshape(-1)[_take_index(a, idx)],
        (_take_grad, None),
        "TakeBackward0",
        lambda shapes, attrs: shapes[1],
        arity=2,
        dtype=_like_input,
        saves="inputs",
        inputs=("input", "index"),
        mirror="torch.take(a, index)",
        call="take(a, index)",
        rule="add the gradient back at each flat index (repeats add)",
    ),
    Op(
        "take_along_dim",
        None,
        (),
        "GatherBackward0, after an ExpandBackward0 (with dim) or a ViewBackward0 (without)",
        None,
        arity=2,
        params={"dim": None},
        lower=_take_along_dim_lower,
        inputs=("input", "indices"),
        mirror="torch.take_along_dim(a, indices, dim=None)",
        call="take_along_dim(a, indices, dim=None)",
        rule="add the gradient back where each element came from (repeats add)",
    ),
    Op(
        "masked_fill",
        _masked_fill,
        (lambda g, o, a, m, value: np.where(m, 0, g), None),
        _masked_fill_label,
        _bcast,
        arity=2,
        params={"value": REQUIRED},
        tensor_params=("value",),
        lower=_masked_fill_lower,
        dtype=_like_input,
        saves="inputs",
        inputs=("input", "mask"),
        mirror="torch.masked_fill(a, mask, value)",
        call="masked_fill(a, mask, value)",
        rule="the gradient where the mask is False, 0 where it is True",
        examples=(
            ("a.masked_fill(a > 0, 2.0)", _X),
            ("torch.masked_fill(a, b < 0, -1)", _X | {"b": ((4,), "away")}),
            ("a.masked_fill(a > 0, b.sum())", _X | {"b": ((4,), REAL)}),
        ),
    ),
    Op(
        "masked_fill_tensor",
        _masked_fill_tensor,
        (
            lambda g, o, a, m, v: np.where(m, 0, g),
            None,
            lambda g, o, a, m, v: np.where(m, g, 0).sum(),
        ),
        "MaskedFillBackward1",
        lambda shapes, attrs: broadcast_shapes(*shapes[:2]),
        arity=3,
        dtype=_like_input,
        saves="inputs",
        public=False,
    ),
    Op(
        "masked_select",
        None,
        (),
        "MaskedSelectBackward0",
        None,
        arity=2,
        lower=_value_dependent("masked_select_values", _masked_select),
        inputs=("input", "mask"),
        mirror="torch.masked_select(a, mask)",
        call="masked_select(a, mask)",
        rule="the gradient back at the True places of the (broadcast) mask",
    ),
    Op(
        "masked_select_values",
        _masked_select,
        _masked_select_grad_all,
        "MaskedSelectBackward0",
        lambda shapes, attrs: attrs["out"],
        arity=2,
        dtype=_like_input,
        saves="inputs",
        public=False,
    ),
    Op(
        "nonzero",
        None,
        (),
        "",
        None,
        params={"as_tuple": False},
        lower=_value_dependent("nonzero_values", _nonzero),
        mirror="torch.nonzero(a, as_tuple=False)",
        call="nonzero(a, as_tuple=False)",
        rule="not differentiable (int64): the indices of the nonzero elements, one row each "
        "(as_tuple=True: one vector per dimension)",
    ),
    Op(
        "nonzero_tuple",
        None,
        (),
        "",
        None,
        params={"as_tuple": False},
        lower=_nonzero_tuple_lower,
        public=False,
    ),
    Op(
        "nonzero_column",
        _nonzero_column,
        None,
        "",
        lambda shapes, attrs: attrs["out"],
        dtype=lambda attrs, values, real: "int64",
        saves="none",
        public=False,
    ),
    Op(
        "nonzero_values",
        _nonzero,
        None,
        "",
        lambda shapes, attrs: attrs["out"],
        dtype=lambda attrs, values, real: "int64",
        saves="none",
        public=False,
    ),
    Op(
        "index_fill",
        _index_fill,
        (_index_fill_grad, None),
        "IndexFillBackward0",
        lambda shapes, attrs: shapes[0],
        params={"dim": REQUIRED, "index": REQUIRED, "value": REQUIRED},
        tensor_params=("index",),
        dtype=_like_input,
        saves="inputs",
        mirror="torch.index_fill(a, dim, index, value)",
        call="index_fill(a, dim, index, value)",
        rule="the gradient, 0 where the value was filled in",
    ),
    Op(
        "one_hot",
        None,
        (),
        "",
        None,
        params={"num_classes": -1},
        lower=_value_dependent("one_hot_values", _one_hot),
        namespaces=("torch.nn.functional",),
        methods=(),
        inputs=("tensor",),
        mirror="F.one_hot(tensor, num_classes=-1)",
        call="one_hot(tensor, num_classes=-1)",
        rule="not differentiable (int64): 1 at each class index, 0 elsewhere",
    ),
    Op(
        "one_hot_values",
        _one_hot,
        None,
        "",
        lambda shapes, attrs: attrs["out"],
        params={"num_classes": -1},
        dtype=lambda attrs, values, real: "int64",
        saves="none",
        public=False,
    ),
]
ROWS += SELECTION_ROWS


def _register_tuples():
    from . import results  # noqa: PLC0415

    results.TUPLES["nonzero_tuple"] = ("tuple", ())
    results.AS_TUPLE_OVERLOADS["nonzero"] = "nonzero_tuple"


_register_tuples()


# The scatter family: PyTorch's scatter/scatter_add/scatter_reduce (and gather) treat a 0-dim
# tensor as one of one element; index gives, along ``dim``, where each of its elements goes.


def _real_dtype(v):
    """The dtype PyTorch would see (a complex dual number of forward mode is its real one)."""
    dt = np.asarray(v).dtype
    return np.dtype(np.float32 if dt.itemsize == 8 else np.float64) if dt.kind == "c" else dt


def _scatter_where(a, idx, dim, src=None):
    """PyTorch's checks of scatter(dim, index, src), in its order, and the numpy key that puts
    the elements of (index-shaped) src where index says; None for an empty index, which
    changes nothing. ``src`` is None for a number."""
    idx = np.asarray(idx)
    rank = max(a.ndim, 1)
    if not -rank <= dim < rank:
        raise ShapeError(
            f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got "
            f"{dim})"
        )
    d = dim % rank
    if idx.size and idx.dtype not in (np.int64, np.int32):
        raise EvaluationError("scatter(): Expected dtype int32/int64 for index")
    if src is not None and _real_dtype(a) != _real_dtype(src):
        raise EvaluationError("scatter(): Expected self.dtype to be equal to src.dtype")
    if not idx.size:
        return d, None
    i_shape, a_shape = idx.shape or (1,), a.shape or (1,)
    if len(i_shape) != len(a_shape):
        raise ShapeError("Index tensor must have the same number of dimensions as self tensor")
    s_shape = None if src is None else (np.shape(src) or (1,))
    if s_shape is not None and len(s_shape) != len(i_shape):
        raise ShapeError("Index tensor must have the same number of dimensions as src tensor")
    if any(n > m for k, (n, m) in enumerate(zip(i_shape, a_shape, strict=True)) if k != d) or (
        s_shape is not None and any(n > m for n, m in zip(i_shape, s_shape, strict=True))
    ):
        raise ShapeError(
            f"Expected index {fmt_shape(idx.shape)} to be no larger than self "
            f"{fmt_shape(a.shape)} apart from dimension {d}"
            + (
                ""
                if s_shape is None
                else f" and to be no larger size than src {fmt_shape(s_shape)}"
            )
        )
    bad = idx[(idx < 0) | (idx >= a_shape[d])]
    if bad.size:
        raise ShapeError(
            f"index {int(bad.flat[0])} is out of bounds for dimension {d} with size {a_shape[d]}"
        )
    grid = list(np.ogrid[tuple(slice(n) for n in i_shape)])
    grid[d] = idx.reshape(i_shape)
    return d, tuple(grid)


def _lead(src, key):
    """The part of src that scatter reads: its leading corner of index's shape."""
    src = np.asarray(src)
    src = src.reshape(src.shape or (1,))
    return src[tuple(slice(n) for n in np.broadcast_shapes(*(k.shape for k in key)))]


def _last_writes(shape, key):
    """The flat targets of key and, for each target written more than once, only the last
    write in index order (what PyTorch's CPU kernel leaves; PyTorch calls it undefined)."""
    flat = np.ravel_multi_index(np.broadcast_arrays(*key), shape).reshape(-1)
    _, last = np.unique(flat[::-1], return_index=True)
    keep = flat.size - 1 - last
    return flat[keep], keep


def _scatter(a, idx, src, dim, dtype=None):
    """scatter(dim, index, src): a copy of a with src's elements put where index says."""
    d, key = _scatter_where(a, idx, dim, src)
    out = np.array(a).reshape(a.shape or (1,))
    if key is not None:
        targets, keep = _last_writes(out.shape, key)
        out.reshape(-1)[targets] = _lead(src, key).reshape(-1)[keep]
    return out.reshape(a.shape)


def _scatter_value(a, idx, dim, value, dtype=None):
    """scatter(dim, index, value): a copy of a with value where index says (cast to a's
    dtype, as PyTorch's Scalar is)."""
    d, key = _scatter_where(a, idx, dim)
    out = np.array(a).reshape(a.shape or (1,))
    if key is not None:
        out[key] = np.asarray(value).astype(a.dtype)
    return out.reshape(a.shape)


def _zero_at(g, idx, dim):
    """g with 0 where index points (the gradient of what scatter overwrote)."""
    return _scatter_value(g, idx, dim, 0)


def _src_grad(op, g_src, src):
    """PyTorch's check of a gradient for src (validate_outputs): of src's shape, summed down
    to it where src broadcasts to it, else the error PyTorch's backward gives."""
    shape = np.shape(src)
    if g_src.shape == shape:
        return g_src
    try:
        if np.broadcast_shapes(shape, g_src.shape) == g_src.shape:
            lead = g_src.ndim - len(shape)
            axes = tuple(range(lead)) + tuple(
                lead + k for k, n in enumerate(shape) if n == 1 and g_src.shape[lead + k] != 1
            )
            return g_src.sum(axis=axes, keepdims=True).reshape(shape)
    except ValueError:
        pass
    raise EvaluationError(
        f"Function {op} returned an invalid gradient at index 1 - got {fmt_shape(g_src.shape)} "
        f"but expected shape compatible with {fmt_shape(shape)}"
    )


def _gathered(g, idx, dim):
    """g.gather(dim, index), for the scatter family's backward (index already checked)."""
    g = np.asarray(g)
    if not np.asarray(idx).size:
        return np.zeros(np.shape(idx), dtype=g.dtype)
    _, key = _scatter_where(g, idx, dim)
    return g.reshape(g.shape or (1,))[key].reshape(np.shape(idx))


def _scatter_src_grad(g, o, a, idx, src, dim):
    return _src_grad("ScatterBackward0", _gathered(g, idx, dim), src)


def _scatter_add(a, idx, src, dim, dtype=None):
    d, key = _scatter_where(a, idx, dim, src)
    out = np.array(a).reshape(a.shape or (1,))
    if key is not None:
        np.add.at(out, key, _lead(src, key))
    return out.reshape(a.shape)


_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")
_UFUNCS = {"sum": "add", "mean": "add", "prod": "multiply", "amax": "maximum", "amin": "minimum"}


def _reduce_name(reduce):
    # PyTorch 2.13's kernel also takes 'max' and 'min' (as amax and amin) but not their backward
    if reduce not in (*_REDUCTIONS, "max", "min"):
        raise EvaluationError(
            f"reduce argument must be either sum, prod, mean, amax or amin, got {reduce}"
        )
    return {"max": "amax", "min": "amin"}.get(reduce, reduce)


def _identity(reduce, dt):
    if reduce in ("sum", "mean"):
        return 0
    if reduce == "prod":
        return 1
    low = reduce == "amax"
    if dt.kind == "f":
        return -np.inf if low else np.inf
    if dt.kind == "b":
        return not low
    info = np.iinfo(dt)
    return info.min if low else info.max


def _scatter_reduce(a, idx, src, dim, reduce, include_self=True, dtype=None):
    """scatter_reduce(dim, index, src, reduce, include_self): each element of src combined
    into the place index says, with the element there (include_self) or without it."""
    reduce = _reduce_name(reduce)
    d, key = _scatter_where(a, idx, dim, src)
    out = np.array(a).reshape(a.shape or (1,))
    if key is None:
        return out.reshape(a.shape)
    part = _lead(src, key)
    if out.dtype.kind == "c" and reduce in ("amax", "amin"):
        # a dual number (forward mode): the value from the real parts; the tangent is the
        # mean of the tangents of the elements equal to the result (scatter_reduce_jvp)
        re = _scatter_reduce(out.real, idx, np.asarray(src).real, dim, reduce, include_self)
        re = re.reshape(out.shape)
        hit_self = out.real == re
        if not include_self:
            hit_self[key] = False
        hit_src = part.real == re[key]
        num = np.where(hit_self, out.imag, 0)
        np.add.at(num, key, np.where(hit_src, part.imag, 0))
        den = hit_self.astype(re.dtype)
        np.add.at(den, key, hit_src.astype(re.dtype))
        with np.errstate(invalid="ignore", divide="ignore"):
            return (re + 1j * (num / den)).reshape(a.shape)
    if not include_self:
        out[key] = _identity(reduce, out.dtype)
    getattr(np, _UFUNCS[reduce]).at(out, key, part)
    if reduce == "mean":
        count = np.full(out.shape, 1 if include_self else 0, dtype=np.int64)
        np.add.at(count, key, 1)
        count = np.maximum(count, 1)
        if out.dtype.kind in "iu":
            out //= count.astype(out.dtype)
        else:
            out /= count.astype(out.real.dtype)
    return out.reshape(a.shape)


def _broadcastable(a, b):
    """PyTorch's error for tensors of shapes a and b that do not broadcast."""
    for k in range(1, min(len(a), len(b)) + 1):
        if a[-k] != b[-k] and 1 not in (a[-k], b[-k]):
            raise ShapeError(
                f"The size of tensor a ({a[-k]}) must match the size of tensor b ({b[-k]}) at "
                f"non-singleton dimension {max(len(a), len(b)) - k}"
            )


def _scatter_reduce_grads(g, o, a, idx, src, dim, reduce, include_self=True):
    """ScatterReduceBackward0, as PyTorch's scatter_reduce_backward computes it: prod divides
    out the element (a zero's gradient is the product of the others), amax/amin split the
    gradient evenly among the elements equal to the result, mean divides by the count."""
    if reduce not in _REDUCTIONS:
        raise EvaluationError(
            "Expected 'reduce' to be one of 'sum', 'prod', 'mean', 'amax', 'amin' but got "
            f"{reduce}."
        )
    src = np.asarray(src)
    if reduce in ("prod", "amax", "amin"):  # src meets index-shaped tensors elementwise
        _broadcastable(src.shape, np.shape(idx))
    gather = lambda t: _gathered(t, idx, dim)  # noqa: E731
    redo = lambda s, t: _scatter_reduce(s, idx, t, dim, reduce, include_self)  # noqa: E731
    with np.errstate(invalid="ignore", divide="ignore"):
        if reduce == "sum":
            g_self, g_src = g, gather(g)
        elif reduce == "prod":
            masked_self = np.where(_re(a) == 0, 1, a)
            g_self = g * redo(masked_self, src) / masked_self
            zero = _re(src) == 0
            zeros = gather(_scatter_add(np.zeros(a.shape), idx, zero.astype(np.float64), dim))
            single = zero & (zeros == 1)
            masked_src = redo(a, np.where(single, 1, src))
            g_src = np.where(single, gather(g * masked_src), gather(g * o) / np.where(zero, 1, src))
        elif reduce == "mean":
            n = _scatter_add(
                np.full(np.shape(g), 1.0 if include_self else 0.0),
                idx,
                np.ones(src.shape),
                dim,
            )
            n[n == 0] = 1
            g_self, g_src = g / n, gather(g) / gather(n)
        else:
            value = gather(o)
            self_is = _re(a) == _re(o)
            src_is = _re(src) == _re(value)
            n = _scatter_add(self_is.astype(np.float64), idx, src_is.astype(np.float64), dim)
            spread = g / n
            g_self, g_src = self_is * spread, src_is * gather(spread)
    if not include_self:
        g_self = _zero_at(g_self, idx, dim)
    return np.asarray(g_self, dtype=g.dtype), np.asarray(g_src, dtype=g.dtype)


_SCATTER_REDUCE_GRADS = (
    lambda g, o, a, idx, src, **attrs: _scatter_reduce_grads(g, o, a, idx, src, **attrs)[0],
    None,
    lambda g, o, a, idx, src, **attrs: _src_grad(
        "ScatterReduceBackward0", _scatter_reduce_grads(g, o, a, idx, src, **attrs)[1], src
    ),
)


def _scatter_legacy(a, idx, src, dim, reduce, dtype=None):
    """The deprecated scatter(..., reduce='add'|'multiply'), whose derivative PyTorch does not
    implement. ``src`` is a tensor or a number."""
    if np.asarray(a).dtype.kind == "c":
        raise EvaluationError("derivative for aten::scatter is not implemented")
    tensor = isinstance(src, np.ndarray)
    d, key = _scatter_where(a, idx, dim, src if tensor else None)
    out = np.array(a).reshape(a.shape or (1,))
    if key is not None:
        part = _lead(src, key) if tensor else np.asarray(src).astype(out.dtype)
        (np.add if reduce == "add" else np.multiply).at(out, key, part)
    return out.reshape(a.shape)


def _not_implemented(*args, **kwargs):
    raise EvaluationError("derivative for aten::scatter is not implemented")


def _number_type(v):
    return "int" if isinstance(v, Whole) else "float"


def _scatter_lower(kind, position):
    """scatter, scatter_add, scatter_reduce: PyTorch's overload for the arguments given (a
    tensor src, or a number value; reduce=), as the private op that computes it."""

    def lower(emit, node, args, attrs):
        a, rest = args[0], list(args[1:])
        if attrs["index"] is not True or node(rest[0]).op == "number":
            raise ShapeError(
                f"{kind}(): argument 'index' (position 3) must be Tensor, not a number"
            )
        idx = rest.pop(0)
        src = rest[0] if rest and node(rest[0]).op != "number" else None
        value = node(rest[0]).value if rest and src is None else attrs.get("value")
        if len(args) < 3 and attrs.get("src") is not None:  # scatter(0, i, True)
            value = attrs["src"]
        if value is not None and not isinstance(value, (bool, float)):
            raise ShapeError(f"{kind}(): value must be a number, not {value!r}")
        dim = attrs["dim"]
        if kind != "scatter":
            if src is None:
                got = "None" if value is None else _number_type(value)
                raise ShapeError(
                    f"{kind}(): argument 'src' (position {position}) must be Tensor, not {got}"
                )
            if kind == "scatter_add":
                return emit("scatter_add_values", (a, idx, src), {"dim": dim})
            _reduce_name(attrs["reduce"])
            extra = {"reduce": attrs["reduce"], "include_self": attrs["include_self"]}
            return emit("scatter_reduce_values", (a, idx, src), {"dim": dim, **extra})
        if (src is None) == (value is None):
            raise ShapeError(
                "scatter() takes src (a tensor) or value (a number), one of them"
                if src is None
                else "scatter() takes src or value, not both"
            )
        number = None if value is None else float(value)  # (used where src is None)
        if attrs["reduce"] is not None:
            if attrs["reduce"] not in ("add", "multiply"):
                raise EvaluationError("reduce argument must be either add or multiply.")
            if src is None:
                return emit(
                    "scatter_legacy_value",
                    (a, idx),
                    {"dim": dim, "value": number, "reduce": attrs["reduce"]},
                )
            return emit("scatter_legacy", (a, idx, src), {"dim": dim, "reduce": attrs["reduce"]})
        if src is None:
            return emit("scatter_value", (a, idx), {"dim": dim, "value": number})
        return emit("scatter_src", (a, idx, src), {"dim": dim})

    return lower


_S = {"a": ((3, 4), REAL), "b": ((2, 4), REAL)}
_I = "torch.tensor([[0, 1, 2, 0], [2, 0, 0, 1]])"  # (repeats in the columns: ties add)
SCATTER_ROWS = [
    Op(
        "scatter",
        None,
        (),
        "ScatterBackward0 (src a tensor), ScatterBackward1 (value a number); NotImplemented "
        "with the deprecated reduce=",
        None,
        params={"dim": REQUIRED, "index": REQUIRED, "src": None, "value": None, "reduce": None},
        tensor_params=("index", "src"),
        free=("src", "value", "reduce"),
        lower=_scatter_lower("scatter", 4),
        mirror="torch.scatter(a, dim, index, src)",
        call="scatter(a, dim, index, src) or scatter(a, dim, index, value=number)",
        rule="the gradient, 0 where src was written; src gets it gathered from index (repeats: "
        "the last write stays, as on PyTorch's CPU; PyTorch calls it undefined)",
        examples=(
            (f"a.scatter(0, {_I}, b)", _S),
            (f"torch.scatter(a, 1, {_I}, 2.5)", _S),
            (f"a.scatter(-1, {_I}.T[:2], src=b[:, :2])", _S),
            (f"a.scatter(1, {_I}, value=-1)", _S),
        ),
    ),
    Op(
        "scatter_add",
        None,
        (),
        "ScatterAddBackward0",
        None,
        params={"dim": REQUIRED, "index": REQUIRED, "src": REQUIRED},
        tensor_params=("index", "src"),
        lower=_scatter_lower("scatter_add", 3),
        mirror="torch.scatter_add(a, dim, index, src)",
        call="scatter_add(a, dim, index, src)",
        rule="the gradient; src gets it gathered back from index",
        examples=((f"a.scatter_add(0, {_I}, b)", _S), (f"torch.scatter_add(a, 1, {_I}, b)", _S)),
    ),
    Op(
        "scatter_reduce",
        None,
        (),
        "ScatterReduceBackward0",
        None,
        params={
            "dim": REQUIRED,
            "index": REQUIRED,
            "src": REQUIRED,
            "reduce": REQUIRED,
            "include_self": True,
        },
        tensor_params=("index", "src"),
        free=("reduce",),
        lower=_scatter_lower("scatter_reduce", 3),
        mirror="torch.scatter_reduce(a, dim, index, src, reduce, include_self=True)",
        call="scatter_reduce(a, dim, index, src, reduce, include_self=True)",
        rule="sum: the gradient; prod: the product of the others; mean: over the count; "
        "amax/amin: split evenly among the elements equal to the result",
        examples=(
            (f"a.scatter_reduce(0, {_I}, b, 'sum')", _S),
            (f"a.scatter_reduce(0, {_I}, b, 'prod', include_self=False)", _S),
            (f"torch.scatter_reduce(a, 1, {_I}, b, reduce='mean')", _S),
            (f"a.scatter_reduce(0, {_I}, b, 'amax')", _S),
            (f"a.scatter_reduce(1, {_I}, b, 'amin', include_self=False)", _S),
        ),
    ),
    Op(
        "scatter_src",
        _scatter,
        (lambda g, o, a, idx, src, dim: _zero_at(g, idx, dim), None, _scatter_src_grad),
        "ScatterBackward0",
        lambda shapes, attrs: shapes[0],
        arity=3,
        params={"dim": REQUIRED},
        dtype=_like_input,
        saves="inputs",
        public=False,
    ),
    Op(
        "scatter_value",
        _scatter_value,
        (lambda g, o, a, idx, dim, value: _zero_at(g, idx, dim), None),
        "ScatterBackward1",
        lambda shapes, attrs: shapes[0],
        arity=2,
        params={"dim": REQUIRED, "value": REQUIRED},
        dtype=_like_input,
        saves="inputs",
        public=False,
    ),
    Op(
        "scatter_add_values",
        _scatter_add,
        (
            lambda g, o, a, idx, src, dim: g,
            None,
            lambda g, o, a, idx, src, dim: _src_grad(
                "ScatterAddBackward0", _gathered(g, idx, dim), src
            ),
        ),
        "ScatterAddBackward0",
        lambda shapes, attrs: shapes[0],
        arity=3,
        params={"dim": REQUIRED},
        dtype=_like_input,
        saves="inputs",
        public=False,
    ),
    Op(
        "scatter_reduce_values",
        _scatter_reduce,
        _SCATTER_REDUCE_GRADS,
        "ScatterReduceBackward0",
        lambda shapes, attrs: shapes[0],
        arity=3,
        params={"dim": REQUIRED, "reduce": REQUIRED, "include_self": True},
        dtype=_like_input,
        saves="all",
        public=False,
    ),
    Op(
        "scatter_legacy",
        _scatter_legacy,
        (_not_implemented, None, _not_implemented),
        "NotImplemented",
        lambda shapes, attrs: shapes[0],
        arity=3,
        params={"dim": REQUIRED, "reduce": REQUIRED},
        dtype=_like_input,
        saves="inputs",
        public=False,
    ),
    Op(
        "scatter_legacy_value",
        lambda a, idx, dim, value, reduce, dtype=None: _scatter_legacy(a, idx, value, dim, reduce),
        (_not_implemented, None),
        "NotImplemented",
        lambda shapes, attrs: shapes[0],
        arity=2,
        params={"dim": REQUIRED, "value": REQUIRED, "reduce": REQUIRED},
        dtype=_like_input,
        saves="inputs",
        public=False,
    ),
]
ROWS += SCATTER_ROWS


def _type_name(v):
    """c10's name of an array's dtype (Float, Long, ...), as PyTorch's messages spell it."""
    from ..dtypes import SCALAR_TYPE_NAMES  # noqa: PLC0415 (dtypes imports numpy eagerly)

    dt = _real_dtype(v)
    return SCALAR_TYPE_NAMES.get(dt.name, dt.name)


def _dim_of(a, dim):
    rank = max(np.ndim(a), 1)
    if not -rank <= dim < rank:
        raise ShapeError(
            f"Dimension out of range (expected to be in range of [{-rank}, {rank - 1}], but got "
            f"{dim})"
        )
    return dim % rank


def _unique_last(idx):
    """The positions of idx that are the last for their value (the writes that stay)."""
    _, last = np.unique(idx[::-1], return_index=True)
    return np.sort(idx.size - 1 - last)


def _index_add_where(a, idx, src, dim, kind="index_add"):
    """index_add's (or index_reduce's) checks, in PyTorch's order: (dim, the index as a
    vector)."""
    idx, src = np.asarray(idx), np.asarray(src)
    d = _dim_of(a, dim)
    if idx.ndim > 1:
        raise ShapeError(
            f"{kind}_(): Index is supposed to be a vector, but got dim: {idx.ndim} with type: "
            f"{_type_name(idx)} and size: {fmt_shape(idx.shape)}"
        )
    if idx.dtype not in (np.int64, np.int32):
        raise EvaluationError(
            f"{kind}_(): Expected dtype int32/int64 for index but got: {_type_name(idx)}"
        )
    if _real_dtype(a) != _real_dtype(src):
        raise EvaluationError(
            f"{kind}_(): self ({_type_name(a)}) and source ({_type_name(src)}) must have the "
            "same scalar type"
        )
    if not (d == 0 or d < src.ndim):
        raise ShapeError(
            f"{kind}_(): Indexing dim {d} is out of bounds of the source tensor with dim {src.ndim}"
        )
    n = src.shape[d] if src.ndim else 1
    if idx.size != n:
        raise ShapeError(
            f"{kind}_(): Number of indices ({idx.size}) should be equal to source.size(dim): "
            f"({n}), for dim: {d}"
        )
    sa, ss = list(a.shape), list(src.shape)
    if sa and ss:
        del sa[d], ss[d]
    if sa != ss:
        raise ShapeError(
            "source tensor shape must match self tensor shape, excluding the specified "
            f"dimension. Got self.shape = {fmt_shape(a.shape)} source.shape = "
            f"{fmt_shape(src.shape)}"
        )
    size = a.shape[d] if a.ndim else 1
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.size:
        raise ShapeError(
            f"index {int(bad.flat[0])} is out of bounds for dimension {d} with size {size}"
            if kind == "index_add"
            else "index out of range in self"
        )
    return d, idx.reshape(-1)


def _alpha(a, alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise ShapeError(f"index_add(): alpha must be a number, not {alpha!r}")
    if np.asarray(a).dtype.kind in "iub":
        if not isinstance(alpha, (int, Whole)):
            raise EvaluationError(
                "For integral input tensors, argument alpha must not be a floating point number."
            )
        return int(alpha)
    return alpha


def _index_add(a, idx, src, dim, alpha=1, dtype=None):
    """index_add(dim, index, source, alpha=1): a + alpha·source added at index along dim
    (repeats add)."""
    d, i = _index_add_where(a, idx, src, dim)
    k = _alpha(a, alpha)
    out = np.array(a).reshape(a.shape or (1,))
    part = np.asarray(src).reshape(np.shape(src) or (1,))
    np.add.at(out, _at(d, i), part * k if k != 1 else part)
    return out.reshape(a.shape)


def _index_add_source_grad(g, o, a, idx, src, dim, alpha=1):
    d, i = _index_add_where(a, idx, src, dim)
    part = np.asarray(g).reshape(a.shape or (1,))[_at(d, i)].reshape(np.shape(src))
    return part * _alpha(a, alpha) if alpha != 1 else part


def _index_copy_where(a, idx, src, dim):
    """index_copy's checks, in PyTorch's order: (dim, the index as a vector)."""
    idx, src = np.asarray(idx), np.asarray(src)
    d = _dim_of(a, dim)
    if idx.ndim > 1:
        raise ShapeError(f"index_copy_(): Index should have dimension 1 or 0 (got {idx.ndim})")
    if src.ndim == 0 and idx.size != 1:
        raise ShapeError(
            f"index_copy_(): When source is scalar, index should have one element (got {idx.size})"
        )
    if src.ndim != a.ndim and src.ndim and a.ndim:
        raise ShapeError(
            "index_copy_(): When source and destination are not scalars, their dimensionality "
            f"must match. Source dimensionality ({src.ndim}), destination dimensionality "
            f"({a.ndim})"
        )
    if idx.dtype != np.int64:
        raise EvaluationError(
            f"index_copy_(): Expected a long tensor for index, but got {_type_name(idx)}"
        )
    if _real_dtype(a) != _real_dtype(src):
        raise EvaluationError(
            "index_copy_(): self and source expected to have the same dtype, but got (self) "
            f"{_type_name(a)} and (source) {_type_name(src)}"
        )
    sa, ss = list(a.shape), list(src.shape)
    if sa:
        del sa[d]
    if ss:
        del ss[d]
    if sa != ss:
        raise ShapeError(
            "index_copy_(): Source/destination tensor must have same slice shapes. Destination "
            f"slice shape: {' '.join(map(str, sa))} at dimension {d} and source slice shape: "
            f"{' '.join(map(str, ss))} at dimension 0."
        )
    if src.ndim and idx.size != src.shape[d]:
        raise ShapeError(
            f"index_copy_(): Number of indices ({idx.size}) should be equal to source.size(dim) "
            f"({src.shape[d]})"
        )
    size = a.shape[d] if a.ndim else 1
    bad = idx[(idx < 0) | (idx >= size)]
    if bad.size:
        raise ShapeError(
            f"index_copy_(): index {int(bad.flat[0])} is out of bounds for dimension {d} with "
            f"size {size}"
        )
    return d, idx.reshape(-1)


def _index_copy(a, idx, src, dim, dtype=None):
    """index_copy(dim, index, source): a with source's slices at index along dim (of repeats,
    the last stays, as on PyTorch's CPU)."""
    d, i = _index_copy_where(a, idx, src, dim)
    out = np.array(a).reshape(a.shape or (1,))
    part = np.asarray(src).reshape(np.shape(src) or (1,))
    keep = _unique_last(i)
    out[_at(d, i[keep])] = part[_at(d, keep)]
    return out.reshape(a.shape)


def _index_copy_grads(g, o, a, idx, src, dim):
    d, i = _index_copy_where(a, idx, src, dim)
    g = np.asarray(g).reshape(a.shape or (1,))
    g_self = np.array(g)
    g_self[_at(d, i)] = 0
    return [g_self.reshape(a.shape), None, g[_at(d, i)].reshape(np.shape(src))]


def _masked_scatter_where(a, m, src):
    """masked_scatter's checks: (the broadcast mask, how many elements it takes)."""
    m, src = np.asarray(m), np.asarray(src)
    if m.dtype != np.bool_:
        raise EvaluationError(
            f"masked_scatter_ only supports boolean masks, but got mask with dtype {_type_name(m)}"
        )
    if _real_dtype(a) != _real_dtype(src):
        raise EvaluationError(
            "masked_scatter: expected self and source to have same dtypes but got"
            f"{_type_name(a)} and {_type_name(src)}"
        )
    _broadcastable(m.shape, np.shape(a))
    mask = np.broadcast_to(m, np.broadcast_shapes(np.shape(a), m.shape))
    n = int(mask.sum())
    if src.size < n:
        raise EvaluationError("Number of elements of source < number of ones in mask")
    return mask, n


def _masked_scatter(a, m, src, dtype=None):
    """masked_scatter(mask, source): a (broadcast with mask) with source's first elements, in
    order, at the True places."""
    mask, n = _masked_scatter_where(a, m, src)
    out = np.array(np.broadcast_to(a, mask.shape))
    out[mask] = np.asarray(src).reshape(-1)[:n]
    return out


def _masked_scatter_grads(g, o, a, m, src):
    """MaskedScatterBackward0: self gets the gradient where the mask is False; source's first
    elements get it from the True places, the rest 0."""
    mask, n = _masked_scatter_where(a, m, src)
    g_src = np.zeros(np.size(src), dtype=g.dtype)
    g_src[:n] = g[mask]
    return [np.where(mask, 0, g), None, g_src.reshape(np.shape(src))]


def _tensors_only(private, kind, positions):
    """A lowering to ``private`` that refuses a number where PyTorch takes a tensor (an
    index, a source), with PyTorch's message (positions as in the Tensor method)."""

    def lower(emit, node, args, attrs):
        nodes = iter(args[1:])
        for pname, pos in positions.items():
            # (a tensor parameter given a constant, True or None, has it in attrs instead)
            value = node(next(nodes)).value if attrs.get(pname, True) is True else attrs[pname]
            if not isinstance(value, np.ndarray):
                got = "bool" if isinstance(value, bool) else _number_type(value)
                got = "None" if value is None else got
                raise ShapeError(
                    f"{kind}(): argument '{pname}' (position {pos}) must be Tensor, not {got}"
                )
        return emit(private, args, {k: v for k, v in attrs.items() if k not in positions})

    return lower


_T = {"a": ((3, 4), REAL), "b": ((2, 4), REAL)}
INDEX_WRITE_ROWS = [
    Op(
        "index_add",
        None,
        (),
        "IndexAddBackward0",
        None,
        params={"dim": REQUIRED, "index": REQUIRED, "source": REQUIRED, "alpha": 1},
        tensor_params=("index", "source"),
        free=("alpha",),
        lower=_tensors_only("index_add_values", "index_add", {"index": 2, "source": 3}),
        mirror="torch.index_add(a, dim, index, source, alpha=1)",
        call="index_add(a, dim, index, source, alpha=1)",
        rule="the gradient; source gets alpha times it selected at index",
        examples=(
            ("a.index_add(0, torch.tensor([2, 0]), b)", _T),
            (
                "torch.index_add(a, 1, torch.tensor([3, 3, 0]), c, alpha=-2.5)",
                _T | {"c": ((3, 3), REAL)},
            ),
        ),
    ),
    Op(
        "index_add_values",
        _index_add,
        (lambda g, o, a, idx, src, dim, alpha=1: g, None, _index_add_source_grad),
        "IndexAddBackward0",
        lambda shapes, attrs: shapes[0],
        arity=3,
        params={"dim": REQUIRED, "alpha": 1},
        dtype=_like_input,
        saves="inputs",
        public=False,
    ),
    Op(
        "index_copy",
        None,
        (),
        "IndexCopyBackward0",
        None,
        params={"dim": REQUIRED, "index": REQUIRED, "source": REQUIRED},
        tensor_params=("index", "source"),
        lower=_tensors_only("index_copy_values", "index_copy", {"index": 2, "source": 3}),
        mirror="torch.index_copy(a, dim, index, source)",
        call="index_copy(a, dim, index, source)",
        rule="the gradient, 0 where source was copied in; source gets it selected at index "
        "(of repeated indices the last stays, as on PyTorch's CPU)",
        examples=(
            ("a.index_copy(0, torch.tensor([2, 0]), b)", _T),
            ("torch.index_copy(a, -1, torch.tensor([3, 1]), b.T[:3])", _T),
        ),
    ),
    Op(
        "index_copy_values",
        _index_copy,
        _index_copy_grads,
        "IndexCopyBackward0",
        lambda shapes, attrs: shapes[0],
        arity=3,
        params={"dim": REQUIRED},
        dtype=_like_input,
        saves="inputs",
        public=False,
    ),
    Op(
        "masked_scatter",
        None,
        (),
        "MaskedScatterBackward0",
        None,
        arity=3,
        lower=_tensors_only("masked_scatter_values", "masked_scatter", {"mask": 1, "source": 2}),
        inputs=("input", "mask", "source"),
        mirror="torch.masked_scatter(a, mask, source)",
        call="masked_scatter(a, mask, source)",
        rule="the gradient where the mask is False; source's first elements get it from the "
        "True places, in order",
        examples=(
            ("a.masked_scatter(a > 0, c)", _T | {"c": ((4, 3), REAL)}),
            ("torch.masked_scatter(a[0], b > 0, b)", _T),
        ),
    ),
    Op(
        "masked_scatter_values",
        _masked_scatter,
        _masked_scatter_grads,
        "MaskedScatterBackward0",
        lambda shapes, attrs: _broadcastable(shapes[1], shapes[0]) or broadcast_shapes(*shapes[:2]),
        arity=3,
        dtype=_like_input,
        saves="inputs",
        public=False,
    ),
]
ROWS += INDEX_WRITE_ROWS


# index_reduce is scatter_reduce with the index spread over source's shape along dim: the
# same forward and the same backward (PyTorch's index_reduce_backward is scatter_reduce's
# formulas with index_select for gather), after index_add's checks.
_INDEX_REDUCTIONS = ("prod", "mean", "amax", "amin")


def _index_reduce_key(a, idx, src, dim, reduce):
    """index_reduce's checks, in PyTorch's order, and (dim, scatter_reduce's index: the
    index along dim, of source's shape)."""
    if reduce not in _INDEX_REDUCTIONS:
        raise EvaluationError(
            f"index_reduce(): Expected reduce to be one of prod, mean, amax or amin but got "
            f"{reduce}."
        )
    d, i = _index_add_where(a, idx, src, dim, "index_reduce")
    if _real_dtype(a) == np.bool_:
        raise EvaluationError("\"index_func_\" not implemented for 'Bool'")
    shape = np.shape(src) or (1,)
    along = [1] * len(shape)
    along[d] = -1
    return d, np.broadcast_to(i.reshape(along), shape)


def _index_reduce(a, idx, src, dim, reduce, include_self=True, dtype=None):
    """index_reduce(dim, index, source, reduce, include_self): each slice of source combined
    (prod, mean, amax, amin) into the slice of a that index names along dim."""
    d, key = _index_reduce_key(a, idx, src, dim, reduce)
    src = np.asarray(src)
    return _scatter_reduce(a, key, src.reshape(src.shape or (1,)), d, reduce, include_self)


def _index_reduce_grads(g, o, a, idx, src, dim, reduce, include_self=True):
    """IndexReduceBackward0, as PyTorch's index_reduce_backward computes it."""
    d, key = _index_reduce_key(a, idx, src, dim, reduce)
    if not include_self and np.asarray(idx).dtype != np.int64:  # (its index_fill takes int64)
        raise EvaluationError("index_fill_(): Expected dtype int64 for index.")
    part = np.asarray(src).reshape(np.shape(src) or (1,))
    g_self, g_src = _scatter_reduce_grads(g, o, a, key, part, d, reduce, include_self)
    return [g_self, None, g_src.reshape(np.shape(src))]


_R = {"a": ((3, 4), REAL), "b": ((2, 4), REAL), "c": ((3, 3), REAL)}
_INDEX_REDUCE_RULE = (
    "prod: the product of the others; mean: over the count; amax/amin: split evenly among "
    "the elements equal to the result (as scatter_reduce, index spread along dim)"
)
INDEX_REDUCE_ROWS = [
    Op(
        "index_reduce",
        None,
        (),
        "IndexReduceBackward0",
        None,
        params={
            "dim": REQUIRED,
            "index": REQUIRED,
            "source": REQUIRED,
            "reduce": REQUIRED,
            "include_self": True,
        },
        tensor_params=("index", "source"),
        free=("reduce",),
        lower=_tensors_only("index_reduce_values", "index_reduce", {"index": 2, "source": 3}),
        mirror="torch.index_reduce(a, dim, index, source, reduce, include_self=True)",
        call="index_reduce(a, dim, index, source, reduce, include_self=True)",
        rule=_INDEX_REDUCE_RULE,
        examples=(
            ("a.index_reduce(0, torch.tensor([2, 0]), b, 'prod')", _R),
            ("a.index_reduce(0, torch.tensor([1, 1]), b, 'mean', include_self=False)", _R),
            ("torch.index_reduce(a, 1, torch.tensor([3, 0, 3]), c, 'amax')", _R),
            (
                "a.index_reduce(-1, torch.tensor([0, 2, 0]), c, reduce='amin', include_self=False)",
                _R,
            ),
        ),
    ),
    Op(
        "index_reduce_values",
        _index_reduce,
        _index_reduce_grads,
        "IndexReduceBackward0",
        lambda shapes, attrs: shapes[0],
        arity=3,
        params={"dim": REQUIRED, "reduce": REQUIRED, "include_self": True},
        dtype=_like_input,
        saves="all",
        public=False,
        rule=_INDEX_REDUCE_RULE,
    ),
]
ROWS += INDEX_REDUCE_ROWS


def _index_sequence(*values, dtype):
    """A call's several results, or a tuple or list of tensors (and numbers), standing among
    other items of an index (x[t, 0], with t from nonzero(as_tuple=True); x[(i, j), 0]):
    PyTorch reads them as a sequence, one index of their values (torch.tensor([t[0], t[1],
    ...])), which only one-element integer tensors can be. Computed from the values on
    every evaluation (a replayed plan has other ones)."""
    items = []
    for v in values:
        if isinstance(v, float) and v.is_integer():  # a number: x[(i, 1), 0]
            v = int(v)
        v = np.asarray(v)
        if v.size != 1 or v.dtype.kind not in "iub":
            raise ShapeError(
                "only integer tensors of a single element can be converted to an index",
                hint="index with the results themselves, x[t], or pick one, x[t[0], 0]",
            )
        items.append(v.item())
    return np.array(items, dtype=dtype)


def _index_sequence_dtype(attrs, values, real):
    """Bool (a mask) when every element is a bool (or uint8) tensor, else int64."""
    masks = [isinstance(v, np.ndarray) and v.dtype in (np.bool_, np.uint8) for v in values]
    return "bool" if masks and all(masks) else "int64"


INDEX_SEQUENCE_ROWS = [
    Op(
        "index_sequence",
        _index_sequence,
        None,
        "",
        lambda shapes, attrs: (len(shapes),),
        dtype=_index_sequence_dtype,
        saves="none",
        public=False,
        rule="none: an index (no gradient)",
    ),
]
ROWS += INDEX_SEQUENCE_ROWS
