"""Calls that return several tensors, as PyTorch's do: plain tuples (torch.split,
torch.std_mean, torch.gradient) and named tuples (torch.return_types.max, whose fields are
values and indices; aminmax's are min and max).

Such a call is one program node. While the program is evaluated its value is a Results,
whose elements are ordinary nodes, each with the grad_fn label PyTorch gives that element
(all pieces of a split are SplitBackward0; max's values are MaxBackward0 and its indices,
int64, have none). An element is emitted when the program first uses it -- by an index
(``[0]``, ``[-1]``), a field (``.values``), unpacking (``a, b = ...``) or as a sequence
argument (``torch.cat(x.split(2))``, which uses them all) -- so the graph shows one row per
element used. The number of elements may depend on the input's shape (split), so unpacking
counts are checked when the program is evaluated."""

import math

from ..errors import EvaluationError, ShapeError
from . import reductions
from .core import (
    REAL,
    REQUIRED,
    M,
    Op,
    V,
    _one_dim,
    _re,
    fmt_shape,
    lazy_numpy,
    norm_dims,
)
from .reductions import _amax_grad, _amax_shape

np = lazy_numpy(globals())


class Results:
    """The value of a call returning several tensors, while a program is evaluated: each
    element is made (as engine nodes) on first use by ``makers[k]()``, which returns the
    element's node id; later uses share it."""

    __slots__ = ("kind", "makers", "ids")

    def __init__(self, kind, makers):
        self.kind = kind  # the Python type, for messages: 'tuple', 'torch.return_types.max'
        self.makers = makers
        self.ids = {}

    def __len__(self):
        return len(self.makers)

    def item(self, k):
        if k not in self.ids:
            self.ids[k] = self.makers[k]()
        return self.ids[k]

    def all(self):
        return [self.item(k) for k in range(len(self.makers))]


def spread(op_name, args):
    """An operator's arguments with each Results replaced by its elements (torch.cat takes a
    tuple where it takes a list); an element selection keeps its Results."""
    if op_name == "result_item" or not any(isinstance(a, Results) for a in args):
        return args
    out: list[int] = []
    for a in args:
        out.extend(a.all() if isinstance(a, Results) else [a])
    return out


# row name -> (the Python type PyTorch returns, its field names); and for rows that return
# one tensor unless a dim is given (max, median), the row their dim overload is
TUPLES: dict[str, tuple[str, tuple[str, ...]]] = {}
DIM_OVERLOADS = {"max": "max_dim", "min": "min_dim", "median": "median_dim"}
DIM_OVERLOADS["nanmedian"] = "nanmedian_dim"
# rows that return (values, indices) when return_indices=True, and the row that does
INDICES_OVERLOADS: dict[str, str] = {}  # (filled by conv.py: max_pool2d)
AS_TUPLE_OVERLOADS: dict[str, str] = {}  # ... when as_tuple=True (filled by indexing.py: nonzero)
TENSOR_VARARGS = {"meshgrid"}  # torch.meshgrid(a, b) as well as torch.meshgrid([a, b])


def tuple_row(name, attrs):
    """The row that computes a call of ``name`` with ``attrs`` when it returns several
    tensors, else None."""
    if name in TUPLES:
        return name
    if name in DIM_OVERLOADS and attrs.get("dim") is not None:
        return DIM_OVERLOADS[name]
    if name in INDICES_OVERLOADS and attrs.get("return_indices") is True:
        return INDICES_OVERLOADS[name]
    if name in AS_TUPLE_OVERLOADS and attrs.get("as_tuple") is True:
        return AS_TUPLE_OVERLOADS[name]
    return None


def type_name(row):
    return TUPLES[row][0]


def field(row, name):
    """The index of a named tuple's field (max(...).values is element 0), or None."""
    fields = TUPLES[row][1]
    return fields.index(name) if name in fields else None


# element rows whose elements PyTorch computes in one backward node (one SplitBackward0
# for all of a split's pieces, one StdMeanBackward0 for std_mean's two results)
SHARED = {"split_part", "unbind_part", "aminmax_min", "aminmax_max"}
SHARED |= {"std_mean_std", "std_mean_mean", "var_mean_var", "var_mean_mean"}


def grad_fns(program, nodes):
    """The grad_fn labels of the nodes PyTorch records: one per node, except that the
    elements of one call that share a backward node in PyTorch count once."""
    seen, out = set(), []
    for n in nodes:
        if not n.label:
            continue
        if n.op in SHARED:
            p = program.nodes[n.src]
            # (two splits in one call, of a weight and of a bias, are two nodes)
            key = (p.args[0] if p.op == "result_item" else n.src, n.label, n.args)
            if key in seen:
                continue
            seen.add(key)
        out.append(n.label)
    return out


def _item_lower(emit, node, args, attrs):
    results, k, count = args[0], attrs["index"], attrs["unpack"]
    n = len(results)
    if count is not None and count != n:
        raise EvaluationError(
            f"too many values to unpack (expected {count}, got {n})"
            if n > count
            else f"not enough values to unpack (expected {count}, got {n})",
            hint=f"the call returns {n} tensor{'s' if n != 1 else ''} for this input's shape",
        )
    if not -n <= k < n:
        raise EvaluationError(
            f"{results.kind} index out of range (index {k}, {n} element{'s' if n != 1 else ''})"
        )
    return results.item(k % n)


def _ints(value, what):
    """A whole number, or a list of them, given to a row that checks its own arguments."""
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, float) and math.isfinite(v) and v.is_integer() for v in items):
        raise ShapeError(f"{what} must be an integer or a list of integers")
    return [int(v) for v in value] if isinstance(value, list) else int(value)


def _pieces(emit, a, d, bounds, op, label=None):
    """Makers of the slices [start, stop) of ``a`` along ``d``."""
    attrs = [{"dim": d, "start": s, "stop": e, "step": 1} for s, e in bounds]
    if label is not None:
        for at in attrs:
            at["label"] = label
    return [lambda at=at: emit(op, (a,), at) for at in attrs]


def _split_lower(emit, node, args, attrs):
    shape = node(args[0]).shape
    if not shape:
        raise ShapeError("split expects at least a 1-dimensional tensor")
    d = _one_dim(attrs["dim"], len(shape))
    n = shape[d]
    size = _ints(attrs["split_size_or_sections"], "split(): split_size_or_sections")
    if isinstance(size, list):
        if any(s < 0 for s in size) or sum(size) != n:
            raise ShapeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's "
                f"size at dimension {d}), but got split_sizes={size}"
            )
        ends = np.cumsum([0] + size).tolist()
        bounds = list(zip(ends[:-1], ends[1:], strict=True))
        return Results("tuple", _pieces(emit, args[0], d, bounds, "split_part", _SIZES))
    return Results("tuple", _pieces(emit, args[0], d, _even(n, size), "split_part", _SPLIT))


def _even(n, size):
    if size < 0:
        raise ShapeError(f"split expects split_size be non-negative, but got split_size={size}")
    if size == 0 and n != 0:
        raise ShapeError(
            f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}"
        )
    return [(s, min(s + size, n)) for s in range(0, n, size)] if n else [(0, 0)]


_SPLIT, _SIZES = "SplitBackward0", "SplitWithSizesBackward0"


def _chunk_lower(emit, node, args, attrs):
    shape = node(args[0]).shape
    if not shape:
        raise ShapeError("chunk expects at least a 1-dimensional tensor")
    chunks = _ints(attrs["chunks"], "chunk(): chunks")
    if not isinstance(chunks, int) or chunks <= 0:
        raise ShapeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = _one_dim(attrs["dim"], len(shape))
    n = shape[d]
    bounds = _even(n, -(-n // chunks)) if n else [(0, 0)] * chunks
    return Results("tuple", _pieces(emit, args[0], d, bounds, "split_part", _SPLIT))


def _section_bounds(n, sections):
    """tensor_split's pieces: a number of sections (the first n % sections one longer), or
    the indices to split before (Python slices, so out-of-range ones clamp)."""
    if isinstance(sections, list):
        edges = [0, *sections, n]
        out = []
        for s, e in zip(edges[:-1], edges[1:], strict=True):
            start, stop, _ = slice(s, e).indices(n)
            out.append((start, max(start, stop)))
        return out
    if sections <= 0:
        raise ShapeError(f"number of sections must be larger than 0, got {sections}")
    small, extra = divmod(n, sections)
    sizes = [small + 1] * extra + [small] * (sections - extra)
    ends = np.cumsum([0] + sizes).tolist()
    return list(zip(ends[:-1], ends[1:], strict=True))


def _tensor_split_lower(emit, node, args, attrs):
    shape = node(args[0]).shape
    if not shape:
        raise ShapeError(
            "tensor_split expected at least a 1-dimensional tensor, but got a tensor with 0 dims"
        )
    d = _one_dim(attrs["dim"], len(shape))
    sections = _ints(attrs["indices_or_sections"], "tensor_split(): indices_or_sections")
    return Results("tuple", _pieces(emit, args[0], d, _section_bounds(shape[d], sections), "slice"))


def _xsplit_lower(name, least, dim):
    def lower(emit, node, args, attrs):
        shape = node(args[0]).shape
        if len(shape) < least:
            raise ShapeError(
                f"torch.{name} requires a tensor with at least {least} dimension"
                f"{'s' if least > 1 else ''}, but got a tensor with {len(shape)} dimensions!"
            )
        d = dim if len(shape) > 1 or name != "hsplit" else 0
        sections = _ints(attrs["indices_or_sections"], f"{name}(): indices_or_sections")
        if isinstance(sections, int) and (sections == 0 or shape[d] % sections):
            raise ShapeError(
                f"torch.{name} attempted to split along dimension {d}, but the size of the "
                f"dimension {shape[d]} is not divisible by the split_size {sections}!"
            )
        bounds = _section_bounds(shape[d], sections)
        return Results("tuple", _pieces(emit, args[0], d, bounds, "slice"))

    return lower


def _unbind_lower(emit, node, args, attrs):
    shape = node(args[0]).shape
    if not shape:
        raise ShapeError(f"Dimension specified as {attrs['dim']} but tensor has no dimensions")
    d = _one_dim(attrs["dim"], len(shape))
    return Results(
        "tuple",
        [
            lambda k=k: emit("unbind_part", (args[0],), {"dim": d, "index": k})
            for k in range(shape[d])
        ],
    )


def _meshgrid_lower(emit, node, args, attrs):
    indexing = attrs["indexing"]
    if indexing not in ("ij", "xy"):
        raise ShapeError(
            f'torch.meshgrid: indexing must be one of "xy" or "ij", but received: {indexing}'
        )
    shapes = [node(a).shape for a in args]
    for s in shapes:
        if len(s) > 1:
            raise ShapeError(
                f"torch.meshgrid: Expected 0D or 1D tensor in the tensor list but got: "
                f"tensor of shape {fmt_shape(s)}"
            )
    sizes = [math.prod(s) for s in shapes]
    order = list(range(len(args)))
    if indexing == "xy" and len(args) >= 2:  # as PyTorch: swap the first two, then ij
        order[0], order[1] = 1, 0
    full = tuple(sizes[i] for i in order)

    def make(k):  # as PyTorch: a.view(1, .., -1, .., 1).expand(full)
        at = order.index(k)
        shape = tuple(sizes[k] if i == at else 1 for i in range(len(args)))
        v = emit("reshape_view", (args[k],), {"shape": shape, "kind": "view"})
        return emit("expand", (v,), {"size": full})

    return Results("tuple", [lambda k=k: make(k) for k in range(len(args))])


def _correction(name, attrs):
    if attrs["correction"] is not None and not attrs["unbiased"]:
        raise ShapeError(f"{name}(): give either correction= or unbiased=, not both")
    return 1.0 if attrs["correction"] is None and attrs["unbiased"] else attrs["correction"] or 0.0


def _moments_lower(name, first):
    def lower(emit, node, args, attrs):
        dim, keepdim = attrs["dim"], attrs["keepdim"]
        moment = {"dim": dim, "correction": _correction(name, attrs), "keepdim": keepdim}
        return Results(
            "tuple",
            [
                lambda: emit(f"{name}_{first}", args, moment),
                lambda: emit(f"{name}_mean", args, {"dim": dim, "keepdim": keepdim}),
            ],
        )

    return lower


def _aminmax_lower(emit, node, args, attrs):
    shape = node(args[0]).shape
    at = {"dim": attrs["dim"], "keepdim": attrs["keepdim"]}
    if 0 in (
        shape if at["dim"] is None or not shape else (shape[_one_dim(at["dim"], len(shape))],)
    ):
        raise ShapeError(
            "aminmax(): cannot compute aminmax over an empty dimension as the operation has no "
            "identity."
        )
    return Results(
        "torch.return_types.aminmax",
        [lambda: emit("aminmax_min", args, at), lambda: emit("aminmax_max", args, at)],
    )


def _gradient_lower(emit, node, args, attrs):
    """torch.gradient: for each dim, PyTorch's central differences in the interior and
    one-sided ones (first or second order) at the two edges, concatenated -- the nodes
    PyTorch records (SliceBackward0, SubBackward0, DivBackward1, MulBackward1, AddBackward0,
    CatBackward0)."""
    a = args[0]
    shape = node(a).shape
    given = attrs["dim"]
    if given is None or given == ():
        dims = tuple(range(len(shape)))
    else:  # in the order given: one result per dim
        dims = tuple(
            _one_dim(d, len(shape)) for d in (given if isinstance(given, tuple) else (given,))
        )
        if len(set(dims)) < len(dims):
            twice = next(d for d in dims if dims.count(d) > 1)
            raise ShapeError(f"dim {twice} appears multiple times in the list of dims")
    order = attrs["edge_order"]
    if order not in (1, 2):
        raise ShapeError("torch.gradient only supports edge_order=1 and edge_order=2.")
    spacing = attrs["spacing"]
    if isinstance(spacing, list):
        if not all(isinstance(h, float) for h in spacing):
            raise ShapeError("torch.gradient: spacing must be a number or a list of numbers")
        if len(spacing) != len(dims):
            raise ShapeError(
                "torch.gradient expected spacing to be unspecified, a scalar or it's spacing "
                "and dim arguments to have the same length, but got a spacing argument of "
                f"length {len(spacing)} and a dim argument of length {len(dims)}."
            )
    elif not isinstance(spacing, float):
        raise ShapeError(
            "torch.gradient: spacing must be a number or a list of numbers (coordinate "
            "tensors are not supported)"
        )
    steps = spacing if isinstance(spacing, list) else [spacing] * len(dims)
    if any(shape[d] < order + 1 for d in dims):
        raise ShapeError("torch.gradient expected each dimension size to be at least edge_order+1")

    def make(d, h):
        n = shape[d]

        def part(start, stop, factor=None):
            piece = emit("slice", (a,), {"dim": d, "start": start, "stop": stop, "step": 1})
            return piece if factor is None else emit("mul_scalar", (piece,), {"factor": factor})

        def over(x, divisor):
            return emit("div_scalar", (x,), {"divisor": divisor})

        center = over(over(emit("sub", (part(2, n), part(0, n - 2))), h), 2.0)
        if order == 1:
            first = over(emit("sub", (part(1, 2), part(0, 1))), h)
            last = over(emit("sub", (part(n - 1, n), part(n - 2, n - 1))), h)
        else:
            first = emit("add", (part(0, 1, -1.5), part(1, 2, 2.0)))
            first = over(emit("sub", (first, part(2, 3, 0.5))), h)
            last = emit("sub", (part(n - 3, n - 2, 0.5), part(n - 2, n - 1, 2.0)))
            last = over(emit("add", (last, part(n - 1, n, 1.5))), h)
        return emit("cat", (first, center, last), {"dim": d})

    return Results("tuple", [lambda d=d, h=h: make(d, h) for d, h in zip(dims, steps, strict=True)])


# ---- selections along a dimension: values (differentiable) and int64 indices ------------


def _stable_order(r, d, descending=False):
    """Indices that sort ``r`` along ``d`` as PyTorch's sort does: stably, NaN as the
    largest value (last ascending, first descending)."""
    if not descending:
        return np.argsort(r, axis=d, kind="stable")
    nan = np.isnan(r)
    return np.lexsort((np.where(nan, 0, -r), ~nan), axis=d)


def _median_index(r, d, at):
    """The lower of the two middle values; a NaN anywhere along ``d`` is the median (the
    first one)."""
    order = _stable_order(r, d)
    n = r.shape[d]
    mid = np.take(order, [(n - 1) // 2], axis=d)
    first_nan = np.argmax(np.isnan(r), axis=d, keepdims=True)
    return np.where(np.isnan(r).any(axis=d, keepdims=True), first_nan, mid)


def _nanmedian_index(r, d, at):
    order = _stable_order(r, d)
    m = np.sum(~np.isnan(r), axis=d, keepdims=True)  # the NaNs sort last
    return np.take_along_axis(order, np.maximum(m - 1, 0) // 2, axis=d)


def _mode_index(r, d, at):
    """The most frequent value (the smallest of equally frequent ones), at the last index
    where it occurs."""
    moved = np.moveaxis(r, d, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    out = np.zeros(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        order = np.argsort(row, kind="stable")
        s = row[order]
        starts = np.flatnonzero(np.concatenate([[True], s[1:] != s[:-1]]))
        lengths = np.diff(np.append(starts, len(s)))
        best = int(np.argmax(lengths))
        out[i] = order[starts[best] : starts[best] + lengths[best]].max()
    return np.expand_dims(out.reshape(moved.shape[:-1]), d)


def _cumulative_index(better):
    """cummax/cummin: the index of the running extremum, the latest one on ties, and the
    latest NaN once there is one."""

    def index(r, d, at):
        moved = np.moveaxis(r, d, 0)
        idx = np.zeros(moved.shape, dtype=np.int64)
        best = moved[0] if len(moved) else None
        for i in range(1, len(moved)):
            take = better(moved[i], best) | (moved[i] == best) | np.isnan(moved[i])
            take &= ~np.isnan(best) | np.isnan(moved[i])
            best = np.where(take, moved[i], best)
            idx[i] = np.where(take, i, idx[i - 1])
        return np.moveaxis(idx, 0, d)

    return index


def _topk_index(r, d, at):
    order = _stable_order(r, d, descending=at["largest"])
    return np.take(order, np.arange(at["k"]), axis=d)


def _scatter_add(shape, idx, g, d):
    """zeros(shape) with g added at ``idx`` along ``d`` (indices may repeat: cummax)."""
    out = np.zeros(shape, dtype=g.dtype)
    grid = list(np.indices(idx.shape, sparse=True))
    grid[d] = idx
    np.add.at(out, tuple(grid), g)
    return out


def _selection(index, reduce):
    """(values forward, values VJP, indices forward) of a selection along ``dim``; ``reduce``:
    one element per slice (max, median), dropped unless keepdim, else the whole dim (sort)."""

    def indices(a, **at):
        if a.ndim == 0:
            return np.zeros((), np.int64)
        idx = index(_re(a), at["dim"], at)
        return idx.squeeze(at["dim"]) if reduce and not at["keepdim"] else idx

    def values(a, **at):
        if a.ndim == 0:
            return a.copy()
        idx = index(_re(a), at["dim"], at)
        out = np.take_along_axis(a, idx, axis=at["dim"])
        return out.squeeze(at["dim"]) if reduce and not at["keepdim"] else out

    def grad(g, o, a, **at):
        if a.ndim == 0:
            return g
        d = at["dim"]
        idx = index(_re(a), d, at)
        g = np.expand_dims(g, d) if reduce and not at["keepdim"] else g
        return _scatter_add(a.shape, idx, np.broadcast_to(g, idx.shape).astype(g.dtype), d)

    return values, grad, indices


def _selection_shape(reduce, name):
    def shape(shapes, at):
        s = shapes[0]
        if not s:
            return s
        d = at["dim"]
        if "k" in at and not reduce:  # topk
            return s[:d] + (at["k"],) + s[d + 1 :]
        if reduce and s[d] == 0:
            raise ShapeError(f"{name}(): Expected reduction dim {d} to have non-zero size.")
        if reduce and not at["keepdim"]:
            return s[:d] + s[d + 1 :]
        return s[:d] + (1,) + s[d + 1 :] if reduce else s

    return shape


def _selection_rows(name, index, label, reduce):
    """The values row (``name``_values, labelled ``label``) and indices row of a selection."""
    values, grad, indices = _selection(index, reduce)
    shape = _selection_shape(reduce, name)
    return [
        Op(f"{name}_values", values, (grad,), label, shape, public=False, saves="inputs"),
        Op(f"{name}_indices", indices, None, "", shape, public=False, dtype="int64"),
    ]


def _named_lower(name, check=None, row=None):
    """The lower of a named-tuple row: (values, indices), with ``dim`` made non-negative."""
    row = row or name

    def lower(emit, node, args, attrs):
        shape = node(args[0]).shape
        at = dict(attrs)
        at["dim"] = _one_dim(at["dim"], len(shape)) if shape else None
        if "k" in at:
            at["k"] = _ints(at["k"], f"{name}(): k")
            if not isinstance(at["k"], int):
                raise ShapeError(f"{name}(): k must be an integer")
        if check is not None:
            check(shape, at)
        return Results(
            f"torch.return_types.{name}",
            [lambda: emit(f"{row}_values", args, at), lambda: emit(f"{row}_indices", args, at)],
        )

    return lower


def _kth_check(shape, at):
    n = shape[at["dim"]] if shape else 1
    if not 1 <= at["k"] <= n:
        raise ShapeError(f"kthvalue(): selected number k out of range for dimension {at['dim']}")


def _topk_check(shape, at):
    n = shape[at["dim"]] if shape else 1
    if not 0 <= at["k"] <= n:
        raise ShapeError("selected index k out of range")


def _extremum_lower(name):
    """max(dim=)/min(dim=): the reduction's own row for the values (MaxBackward0), argmax
    (argmin) for the indices: both take the first of equal values, and a NaN."""

    def lower(emit, node, args, attrs):
        at = {"dim": attrs["dim"], "keepdim": attrs["keepdim"]}
        return Results(
            f"torch.return_types.{name}",
            [lambda: emit(name, args, at), lambda: emit(f"arg{name}", args, at)],
        )

    return lower


def _relabelled(row, name, label):
    """A hidden copy of ``row`` under ``name`` with another grad_fn label (std_mean's std
    is std, recorded as StdMeanBackward0)."""
    new = Op.__new__(Op)
    for slot in Op.__slots__:
        setattr(new, slot, getattr(row, slot))
    new.name, new.label, new.public, new.examples = name, label, False, ()
    new.namespaces, new.methods, new.spellings, new.aliases = (), (), (), ()
    return new


def _part_shape(shapes, at):
    s = shapes[0]
    return s[: at["dim"]] + (at["stop"] - at["start"],) + s[at["dim"] + 1 :]


def _at(dim, key):
    return (slice(None),) * dim + (key,)


def _scatter(shape, key, g):
    out = np.zeros(shape, dtype=g.dtype)
    out[key] = g
    return out


def _tuple(name, lower, label, *, fields=(), kind="tuple", **kw):
    """A public row whose call returns several tensors (computed by ``lower``)."""
    TUPLES[name] = (kind if not fields else f"torch.return_types.{name}", tuple(fields))
    return Op(name, None, (), label, None, lower=lower, **kw)


def _dim_tuple(name, public_name, lower, label):
    """The hidden row of a reduction's dim overload (max(x, dim) is values and indices)."""
    TUPLES[name] = (f"torch.return_types.{public_name}", ("values", "indices"))
    return Op(name, None, (), label, None, lower=lower, public=False)


_ORDER = {"dim": -1, "keepdim": False}
_REDUCTIONS = {op.name: op for op in reductions.ROWS}
_STD, _VAR, _MEAN = _REDUCTIONS["std"], _REDUCTIONS["var"], _REDUCTIONS["mean"]
_MOMENTS = {"dim": None, "unbiased": True, "keepdim": False, "correction": None}
D = {"a": ((5,), "distinct")}
DM = {"A": ((2, 3), "distinct")}

ROWS = [
    Op(
        "result_item",
        None,
        (),
        "",
        None,
        params={"index": REQUIRED, "unpack": None},
        lower=_item_lower,
        public=False,
        mirror="results[i]; a, b = results",
    ),
    Op(
        "split_part",
        lambda a, dim, start, stop, step, label: a[_at(dim, slice(start, stop))],
        (
            lambda g, o, a, dim, start, stop, step, label: _scatter(
                a.shape, _at(dim, slice(start, stop)), g
            ),
        ),
        lambda kinds, at: at["label"],
        _part_shape,
        public=False,
        saves="none",
    ),
    Op(
        "unbind_part",
        lambda a, dim, index: a[_at(dim, index)],
        (lambda g, o, a, dim, index: _scatter(a.shape, _at(dim, index), g),),
        "UnbindBackward0",
        lambda s, at: s[0][: at["dim"]] + s[0][at["dim"] + 1 :],
        public=False,
        saves="none",
    ),
    _tuple(
        "split",
        _split_lower,
        "SplitBackward0; SplitWithSizesBackward0 for a list of sizes (one per piece)",
        params={"split_size_or_sections": REQUIRED, "dim": 0},
        free=("split_size_or_sections",),
        keywords={"split_size": "split_size_or_sections"},
        inputs=("tensor",),
        mirror="torch.split(a, split_size_or_sections, dim)",
        rule="each piece's gradient goes back to its slice",
        examples=(
            ("torch.split(a, 2)[0]", {"a": ((5,), REAL)}),
            ("a.split(2)[-1]", {"a": ((5,), REAL)}),
            ("torch.split(A, [1, 2], dim=1)[1]", M),
            ("torch.cat(a.split(2)) * a", {"a": ((5,), REAL)}),
        ),
    ),
    _tuple(
        "chunk",
        _chunk_lower,
        "SplitBackward0 (one per piece)",
        params={"chunks": REQUIRED, "dim": 0},
        mirror="torch.chunk(a, chunks, dim)",
        rule="each piece's gradient goes back to its slice",
        examples=(("a.chunk(3)[1]", {"a": ((5,), REAL)}), ("torch.chunk(A, 2, dim=1)[0]", M)),
    ),
    _tuple(
        "tensor_split",
        _tensor_split_lower,
        "SliceBackward0 (one per piece)",
        params={"indices_or_sections": REQUIRED, "dim": 0},
        free=("indices_or_sections",),
        keywords={"sections": "indices_or_sections", "indices": "indices_or_sections"},
        mirror="torch.tensor_split(a, indices_or_sections, dim)",
        rule="each piece's gradient goes back to its slice",
        examples=(
            ("torch.tensor_split(a, 3)[0]", {"a": ((5,), REAL)}),
            ("a.tensor_split([1, 4])[1]", {"a": ((5,), REAL)}),
        ),
    ),
    *(
        _tuple(
            name,
            _xsplit_lower(name, least, dim),
            "SliceBackward0 (one per piece)",
            params={"indices_or_sections": REQUIRED},
            free=("indices_or_sections",),
            mirror=f"torch.{name}(a, indices_or_sections)",
            rule="each piece's gradient goes back to its slice",
            examples=example,
        )
        for name, least, dim, example in (
            ("hsplit", 1, 1, (("torch.hsplit(A, 3)[2]", M), ("torch.hsplit(a, [2])[0]", V))),
            ("vsplit", 2, 0, (("A.vsplit(2)[1]", M),)),
            ("dsplit", 3, 2, (("torch.dsplit(B, [1])[1]", {"B": ((2, 2, 3), REAL)}),)),
        )
    ),
    _tuple(
        "unbind",
        _unbind_lower,
        "UnbindBackward0 (one per piece)",
        params={"dim": 0},
        mirror="torch.unbind(a, dim)",
        rule="each piece's gradient goes back to its index",
        examples=(("A.unbind()[1]", M), ("torch.unbind(A, dim=1)[2]", M)),
    ),
    _tuple(
        "meshgrid",
        _meshgrid_lower,
        "ExpandBackward0 over ViewBackward0 (per tensor)",
        params={"indexing": "ij"},
        listarg=True,
        methods=(),
        inputs=("tensors",),
        mirror="torch.meshgrid(a, b, ..., indexing='ij')",
        rule="each grid's gradient summed back along the expanded dimensions",
        examples=(
            ("torch.meshgrid(a, b, indexing='ij')[1]", {"a": ((3,), REAL), "b": ((2,), REAL)}),
            ("torch.meshgrid([a, b], indexing='xy')[0]", {"a": ((3,), REAL), "b": ((2,), REAL)}),
        ),
    ),
    _tuple(
        "gradient",
        _gradient_lower,
        "CatBackward0 over DivBackward1 / SubBackward0 / SliceBackward0 (MulBackward1 and "
        "AddBackward0 with edge_order=2), per dim",
        params={"spacing": 1.0, "dim": None, "edge_order": 1},
        free=("spacing",),
        dim_list=True,
        methods=(),
        mirror="torch.gradient(a, spacing=1, dim=None, edge_order=1)",
        rule="central differences inside, one-sided ones at the edges",
        examples=(
            ("torch.gradient(a)[0]", {"a": ((5,), REAL)}),
            ("torch.gradient(A, spacing=2.0, dim=1)[0]", {"A": ((2, 4), REAL)}),
            ("torch.gradient(A, spacing=[1.0, 0.5], edge_order=2)[1]", {"A": ((3, 4), REAL)}),
        ),
    ),
    Op(
        "mul_scalar",
        lambda a, factor: a * factor,
        (lambda g, o, a, factor: g * factor,),
        "MulBackward1",
        lambda s, at: s[0],
        public=False,
        saves="none",
        mirror="a * n (in PyTorch's C++)",
    ),
    _tuple(
        "std_mean",
        _moments_lower("std_mean", "std"),
        "StdMeanBackward0 (both)",
        params=_MOMENTS,
        mirror="torch.std_mean(a, dim, correction=1, keepdim=False)",
        rule="std's and mean's gradients",
        examples=(
            ("torch.std_mean(a)[0] * torch.std_mean(a)[1]", V),
            ("torch.std_mean(A, 1, correction=0)[0]", M),
            ("torch.stack(torch.std_mean(A, dim=0))", M),
        ),
        reduction=True,
        methods=(),
    ),
    _tuple(
        "var_mean",
        _moments_lower("var_mean", "var"),
        "VarMeanBackward0 (both)",
        params=_MOMENTS,
        mirror="torch.var_mean(a, dim, correction=1, keepdim=False)",
        rule="var's and mean's gradients",
        examples=(
            ("torch.var_mean(A, dim=1, keepdim=True)[1]", M),
            ("torch.var_mean(a, unbiased=False)[0]", V),
        ),
        reduction=True,
        methods=(),
    ),
    _relabelled(_STD, "std_mean_std", "StdMeanBackward0"),
    _relabelled(_MEAN, "std_mean_mean", "StdMeanBackward0"),
    _relabelled(_VAR, "var_mean_var", "VarMeanBackward0"),
    _relabelled(_MEAN, "var_mean_mean", "VarMeanBackward0"),
    _tuple(
        "aminmax",
        _aminmax_lower,
        "AminmaxBackward0 (both; ties share the gradient evenly)",
        fields=("min", "max"),
        params={"dim": None, "keepdim": False},
        mirror="torch.aminmax(a, dim=None, keepdim=False) -> (min, max)",
        rule="ties share the gradient evenly",
        examples=(
            ("torch.aminmax(a).max - torch.aminmax(a).min", D),
            ("A.aminmax(dim=0).min", DM),
        ),
    ),
    Op(
        "aminmax_min",
        lambda a, dim=None, keepdim=False: np.amin(a, axis=_axes(a, dim), keepdims=keepdim),
        (_amax_grad,),
        "AminmaxBackward0",
        _amax_shape,
        public=False,
    ),
    Op(
        "aminmax_max",
        lambda a, dim=None, keepdim=False: np.amax(a, axis=_axes(a, dim), keepdims=keepdim),
        (_amax_grad,),
        "AminmaxBackward0",
        _amax_shape,
        public=False,
    ),
    _dim_tuple("max_dim", "max", _extremum_lower("max"), "MaxBackward0 (values)"),
    _dim_tuple("min_dim", "min", _extremum_lower("min"), "MinBackward0 (values)"),
    _tuple(
        "sort",
        _named_lower("sort"),
        "SortBackward0 (values); SortBackward1 with stable=True",
        fields=("values", "indices"),
        params={"dim": -1, "descending": False, "stable": False},
        mirror="torch.sort(a, dim=-1, descending=False, stable=False)",
        rule="the gradient goes back to where each value came from",
        examples=(
            ("a.sort()[0] * a", D),
            ("torch.sort(A, dim=0, descending=True).values", DM),
            ("A.sort(1, True)[0][:, 0]", DM),
        ),
    ),
    *_selection_rows(
        "sort",
        lambda r, d, at: _stable_order(r, d, at["descending"]),
        lambda kinds, at: "SortBackward1" if at.get("stable") else "SortBackward0",
        False,
    ),
    _tuple(
        "topk",
        _named_lower("topk", _topk_check),
        "TopkBackward0 (values)",
        fields=("values", "indices"),
        params={"k": REQUIRED, "dim": -1, "largest": True, "sorted": True},
        mirror="torch.topk(a, k, dim=-1, largest=True, sorted=True)",
        rule="the gradient goes back to where each value came from",
        examples=(
            ("a.topk(2).values", D),
            ("torch.topk(A, 2, dim=1, largest=False)[0]", DM),
        ),
    ),
    *_selection_rows("topk", _topk_index, "TopkBackward0", False),
    _tuple(
        "kthvalue",
        _named_lower("kthvalue", _kth_check),
        "KthvalueBackward0 (values)",
        fields=("values", "indices"),
        params={"k": REQUIRED, "dim": -1, "keepdim": False},
        mirror="torch.kthvalue(a, k, dim=-1, keepdim=False)",
        rule="the gradient goes to the index of the k-th smallest value",
        examples=(("a.kthvalue(2).values", D), ("torch.kthvalue(A, 3, 1, True)[0]", DM)),
    ),
    *_selection_rows(
        "kthvalue",
        lambda r, d, at: np.take(_stable_order(r, d), [at["k"] - 1], axis=d),
        "KthvalueBackward0",
        True,
    ),
    _dim_tuple("median_dim", "median", _named_lower("median"), "MedianBackward1 (values)"),
    *_selection_rows("median", _median_index, "MedianBackward1", True),
    _dim_tuple(
        "nanmedian_dim", "nanmedian", _named_lower("nanmedian"), "NanmedianBackward1 (values)"
    ),
    *_selection_rows("nanmedian", _nanmedian_index, "NanmedianBackward1", True),
    _tuple(
        "mode",
        _named_lower("mode"),
        "ModeBackward0 (values)",
        fields=("values", "indices"),
        params=_ORDER,
        mirror="torch.mode(a, dim=-1, keepdim=False)",
        rule="the gradient goes to the index the mode is reported at",
        examples=(("A.mode(0).values", DM),),
    ),
    *_selection_rows("mode", _mode_index, "ModeBackward0", True),
    _tuple(
        "cummax",
        _named_lower("cummax"),
        "CummaxBackward0 (values)",
        fields=("values", "indices"),
        params={"dim": REQUIRED},
        mirror="torch.cummax(a, dim)",
        rule="each running maximum's gradient goes to the index it came from",
        examples=(("a.cummax(0).values", V), ("torch.cummax(A, dim=1)[0]", M)),
    ),
    *_selection_rows("cummax", _cumulative_index(lambda x, y: x > y), "CummaxBackward0", False),
    _tuple(
        "cummin",
        _named_lower("cummin"),
        "CumminBackward0 (values)",
        fields=("values", "indices"),
        params={"dim": REQUIRED},
        mirror="torch.cummin(a, dim)",
        rule="each running minimum's gradient goes to the index it came from",
        examples=(("a.cummin(0).values", V), ("torch.cummin(A, 0)[0]", M)),
    ),
    *_selection_rows("cummin", _cumulative_index(lambda x, y: x < y), "CumminBackward0", False),
]


def _axes(a, dim):
    return None if dim is None else norm_dims(dim, a.ndim)


__all__ = ["ROWS", "Results", "TUPLES", "field", "grad_fns", "spread", "tuple_row", "type_name"]
