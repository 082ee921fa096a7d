"""Indexing and selection."""

import math

from ..errors import EvaluationError, ShapeError
from .core import (
    REAL,
    REQUIRED,
    M,
    Op,
    V,
    _bcast,
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


def _gather(a, idx, dim, index, dtype=None):
    key, shape = _gather_index(a, idx, dim)
    return a.reshape(shape)[key].reshape(np.shape(idx))


def _gather_grad(g, o, a, idx, dim, index):
    key, shape = _gather_index(a, idx, dim)
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, key, g.reshape(key[0].shape if len(key) == 1 else np.shape(g) or (1,)))
    return out.reshape(a.shape)


def _gather_shape(shapes, attrs):
    if attrs["index"] is not True:
        raise ShapeError("gather(): argument 'index' must be Tensor, not a number")
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


def _nonzero(a, out=None, dtype=None):
    return np.argwhere(np.asarray(a)).astype(np.int64)


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
        params={"dim": REQUIRED, "index": REQUIRED},
        tensor_params=("index",),
        dtype=_like_input,
        saves="inputs",
        mirror="torch.gather(a, dim, index)",
        call="gather(a, dim, index)",
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
        "MaskedFillBackward0",
        _bcast,
        arity=2,
        params={"value": REQUIRED},
        dtype=_like_input,
        saves="inputs",
        inputs=("input", "mask"),
        mirror="torch.masked_fill(a, mask, value)",
        call="masked_fill(a, mask, value)",
        rule="the gradient where the mask is False, 0 where it is True",
        examples=(
            ("a.masked_fill(a > 0, 2.0)", _X),
            ("torch.masked_fill(a, b < 0, -1)", _X | {"b": ((4,), "away")}),
        ),
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
        lower=_value_dependent("nonzero_values", _nonzero),
        mirror="torch.nonzero(a)",
        rule="not differentiable (int64): the indices of the nonzero elements, one row each",
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
