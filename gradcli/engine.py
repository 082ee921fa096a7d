"""The passes: a forward loop that instantiates the program for given inputs, and a reverse
loop that accumulates adjoints. Both are plain loops over a list in topological order."""

import contextvars
import math
from typing import Any

import numpy as np

from . import dtypes, intops
from . import wave as _wave
from .errors import EvaluationError, GradcliError
from .inputs import MAX_ELEMENTS
from .ops import OPS, fmt_shape
from .ops.core import Whole
from .ops.results import Results, spread
from .parser import caret, short


class Node:
    """One evaluated node. ``args`` are ids of earlier nodes; ``src`` the program node."""

    __slots__ = (
        "id",
        "op",
        "args",
        "attrs",
        "src",
        "name",
        "label",
        "requires_grad",
        "value",
        "shape",
        "grad",
        "bufs",
    )

    def __init__(self, id, op, args, attrs, src, value, requires_grad=False, label=None, name=None):
        self.id, self.op, self.args, self.attrs, self.src = id, op, args, attrs, src
        self.value, self.requires_grad, self.label, self.name = value, requires_grad, label, name
        self.shape = () if isinstance(value, float) else value.shape
        self.grad = None
        self.bufs: tuple[_Buffer, ...] = ()  # the engine's buffers this value lives in


def _operands(op, args, dtype, attrs=None):
    """Argument values for an op: Python numbers stay numbers only where PyTorch takes them."""
    return _typed(op, args, dtype, attrs)[0]


def _kw(op, attrs):
    """The attributes an op's rules take: a dtype= that converts the input is the engine's
    (_typed), not the rule's."""
    if not attrs:
        return {}
    if op.name in dtypes.CAST_INPUT and op.name != "_to_copy":
        return {k: v for k, v in attrs.items() if k != "dtype"}
    return attrs


_EVAL_DTYPES: dict = {}  # "float32" -> np.dtype("float32"), looked up once


def _plain(args, dtype):
    """Whether every tensor operand has the evaluation dtype (no promotion to decide)."""
    ev = _EVAL_DTYPES.get(dtype)
    if ev is None:
        ev = _EVAL_DTYPES.setdefault(dtype, np.dtype(dtype))
    for a in args:
        v = a.value
        if v.__class__ is not float and not isinstance(v, float):
            t = v.dtype
            if t is not ev and t != ev:
                return False
    return True


def _as_is(op, args, dtype):
    """_typed's answer when every tensor operand has the evaluation dtype: the operands as
    they are (number literals as arrays of that dtype, unless the op takes numbers)."""
    if op.numbers:
        return [a.value for a in args], op.dtype or dtype, op.forward
    operands = [np.asarray(a.value, dtype=dtype) if a.op == "number" else a.value for a in args]
    return operands, op.dtype or dtype, op.forward


def _typed(op, args, dtype, attrs=None):
    """(operands, the result's dtype, the forward to call) for an op on these arguments, by
    PyTorch's type promotion (dtypes.promote_for, the kind dtypes.kind_of gives the op).
    Operands of the evaluation dtype compute as they always have. Otherwise each operand is
    converted to the dtype the op computes in; a number literal is a Python scalar (a
    "wrapped number": ``i + 2`` stays int64), passed as a float where the op computes in
    floating point. Complex dual numbers (forward mode) promote as their real dtype."""
    if attrs is None and not callable(op.dtype) and _plain(args, dtype):  # the common case
        return _as_is(op, args, dtype)
    if callable(op.dtype):  # a tensor made in the program: the row says its dtype
        ev = np.dtype(dtype)
        real = ev.name if ev.kind != "c" else "float32" if ev.itemsize == 8 else "float64"
        made: Any = op.dtype(attrs or {}, [a.value for a in args], real)
        values = [a.value for a in args]
        extra = {"dtype": made}
        if op.random:  # torch.randn(3) in the program: the run's generator draws it
            extra["generator"] = _GENERATOR.get()
        return values, np.dtype(made), lambda *a, **kw: op.forward(*a, **{**kw, **extra})
    cast = attrs.get("dtype") if attrs and op.name in dtypes.CAST_INPUT else None
    if cast is None and _plain(args, dtype):
        return _as_is(op, args, dtype)
    kind, kernel = dtypes.kind_of(op.name)
    ev = np.dtype(dtype)
    real = ev if ev.kind != "c" else np.dtype(np.float32 if ev.itemsize == 8 else np.float64)
    skip = dtypes.CONDITIONS.get(op.name)
    described = [_scalar(a.value) if a.op == "number" else _real(a.value) for a in args]
    promoted = [d for k, d in enumerate(described) if k != skip]
    for key in dtypes.SCALAR_ATTRS.get(op.name, ()):
        if attrs and isinstance(attrs.get(key), float):
            promoted.append(_scalar(attrs[key]))
    if op.name in dtypes.IMPLICIT:
        promoted.append(dtypes.IMPLICIT[op.name])
    if cast is not None:  # x.to(dtype), x.sum(dtype=...): the op computes in that dtype
        out = dtypes.as_dtype(cast)
        if kind == "floating_only" and op.name != "_to_copy":
            dtypes.promote_for(kind, (out, "tensor"), kernel=kernel)  # mean(dtype=int64): refused
        kind = "promote"
    else:
        out = dtypes.promote_for(kind, *promoted, default_float=real.name, kernel=kernel)
    if kind == "bool":
        compute = dtypes.result_type(*promoted, default_float=real.name)
    else:
        compute = None if kind == "long" else out
    if out.kind == "b" and op.name in dtypes.BOOL_REFUSED:
        raise EvaluationError(dtypes.BOOL_REFUSED[op.name])
    if ev.kind == "c" and out.kind == "f":
        out = np.promote_types(out, np.complex64)
    if ev.kind == "c" and compute is not None and compute.kind == "f":
        compute = np.promote_types(compute, np.complex64)
    operands = []
    for k, a in enumerate(args):
        v = a.value
        if k == skip or compute is None:
            operands.append(v if a.op != "number" else np.asarray(v, dtype=ev))
        elif a.op == "number":
            if compute.kind in "fc":
                operands.append(float(v) if op.numbers else np.asarray(v, dtype=compute))
            else:
                if op.name == "pow" and k == 1:  # i ** -1, int8 ** 300: PyTorch refuses
                    intops.check_exponent(described[k], compute)
                operands.append(dtypes.convert(described[k], compute))
        elif v.dtype == compute:
            operands.append(v)
        else:
            real_v = v.real if v.dtype.kind == "c" else v  # (a dual number's value)
            operands.append(
                v.astype(compute) if compute.kind == "c" else dtypes.cast(real_v, compute)
            )
    integer = compute is not None and compute.kind in "biu" and op.integer is not None
    return operands, out, op.integer if integer else op.forward


def _scalar(v):
    """A number literal as type promotion sees it: int for one written as an integer."""
    return int(v) if isinstance(v, Whole) and math.isfinite(v) else float(v)


def _real(v):
    """An array as type promotion sees it (a complex dual number as its real dtype)."""
    if v.dtype.kind == "c":
        return (
            np.float32 if v.dtype.itemsize == 8 else np.float64,
            "tensor" if v.ndim else "zerodim",
        )
    return v


def check_size(shape, max_elements, what):
    """Refuse a tensor over the element cap before anything is allocated for it; ``what()``
    names it (only built when the check fails)."""
    size = math.prod(shape)
    if size > max_elements:
        raise EvaluationError(
            f"{what()} would have shape {fmt_shape(shape)} ({size:,} elements), over the "
            f"limit of {max_elements:,}",
            hint="raise the limit with --max-elements",
        )


PLANS = 16  # evaluation plans kept per program


# The run's random generator (gradcli.rng, PyTorch's), for torch.rand()/randn()/... made in
# the program; None where a command evaluates the program more than once (jvp, check, ...)
_GENERATOR: contextvars.ContextVar = contextvars.ContextVar("generator", default=None)


def forward(program, arrays, wrt, dtype, max_elements=MAX_ELEMENTS, lean=False, rng=None):
    """With ``rng``, random tensors made in the program draw from it (after the inputs)."""
    token = _GENERATOR.set(rng)
    _POOL.evaluation()
    try:
        return _evaluate(program, arrays, wrt, dtype, max_elements, lean)
    finally:
        _GENERATOR.reset(token)


def _evaluate(program, arrays, wrt, dtype, max_elements=MAX_ELEMENTS, lean=False):
    """(Like every pass here, it expects the caller to hold api.quietly(): inf and nan
    without warnings.) Evaluate ``program`` on ``arrays`` (name -> ndarray of ``dtype``);
    returns the nodes and the id of the output node. Inputs named in ``wrt`` require grad.
    Every node's shape is known, and checked against ``max_elements``, before it is computed.

    The first evaluation for given input shapes and layouts records a plan: every node's
    op, arguments, shape, label and the decompositions chosen. Those depend on nothing else,
    so later evaluations with the same shapes (batch records) only compute values. A
    program marked ``once`` (grad's) records none."""
    key = (dtype, frozenset(wrt), max_elements) + tuple(
        (a.shape, a.flags.c_contiguous, a.dtype.str) for a in (arrays[n] for n in program.inputs)
    )
    if program.once:  # evaluated this once (api.evaluate on text): a plan would be waste
        nodes, out = _forward(program, arrays, wrt, dtype, max_elements, lean)
        if lean and any(
            isinstance(n.value, np.ndarray) and n.value.nbytes >= LEAN_BYTES for n in nodes
        ):
            _adopt(nodes, _last_uses(nodes, out), _records_leanly(program, arrays))
        return nodes, out
    plan = program.plans.get(key)
    if plan is None:
        nodes, out = _forward(program, arrays, wrt, dtype, max_elements, lean)
        if len(program.plans) >= PLANS:
            program.plans.clear()
        program.plans[key] = (
            [
                (
                    n.op,
                    n.args,
                    n.attrs,
                    n.src,
                    n.requires_grad,
                    n.label,
                    n.name,
                    n.shape,
                    # big: the dtype of a result worth a buffer of its own, else None
                    n.value.dtype
                    if isinstance(n.value, np.ndarray) and n.value.nbytes >= LEAN_BYTES
                    else None,
                )
                for n in nodes
            ],
            out,
            _last_uses(nodes, out),
        )
        entries, _, drop = program.plans[key]
        if lean and any(e[-1] is not None for e in entries):  # (with a tensor worth it)
            _adopt(nodes, drop, _records_leanly(program, arrays))
        return nodes, out
    return _replay(plan, program, arrays, dtype, lean)


def _adopt(nodes, drop, owned=False):
    """After the recording evaluation: the values it computed become the engine's buffers
    (each a fresh result of its node, or a view of an earlier one's), and those the reverse
    pass will not read are dropped, as a replay drops them on the way. ``owned``: a lean
    recording (_Recording) did the first part and most drops already."""
    if not owned:
        for node in nodes:
            _own(nodes, node)
    for dropped in drop:
        for a in dropped:
            _release(a, nodes[a].bufs)
            nodes[a].bufs = ()
            nodes[a].value = _stand_in(nodes[a].value)


def _own(nodes, node):
    """A value just computed becomes the engine's: a view of its operands' buffers reads
    them, and a fresh array that nothing else holds is a buffer of its own."""
    if node.op in ("input", "number", "const"):
        return  # the caller's arrays and the program's constants are never the engine's
    v = node.value
    near = [b for a in node.args for b in nodes[a].bufs]
    if near:
        node.bufs = _sharing(v, near)
    if (
        not node.bufs
        and isinstance(v, np.ndarray)
        and v.nbytes >= LEAN_BYTES
        and v.flags.owndata
        and v.flags.writeable
    ):
        given = [nodes[a].value for a in node.args] + list((node.attrs or {}).values())
        if not any(isinstance(g, np.ndarray) and np.may_share_memory(v, g) for g in given):
            node.bufs = (_Buffer(v),)
    for b in node.bufs:
        b.readers.add(node.id)


def _records_leanly(program, arrays):
    """Whether the recording evaluation is lean (_Recording): with an input worth it (the
    bookkeeping costs more than it saves on small tensors, and big programs have those)."""
    return any(arrays[n].nbytes >= LEAN_BYTES for n in program.inputs)


class _Recording:
    """The evaluation that records the plan, kept lean as it goes: a value goes as soon as
    no later program node can name it (the program's own uses are counted up front; those
    of the nodes a call is lowered to all happen within the call) and the reverse pass will
    not read it; and an elementwise result is written, as in a replay, into the buffer of an
    operand dying with it or a pooled one. From a call that returns several results (whose
    elements are made later, from any node) on, it keeps everything, as before."""

    def __init__(self, program, nodes, where, dtype):
        self.program, self.nodes, self.where, self.dtype = program, nodes, where, dtype
        self.remaining = [0] * len(program.nodes)  # uses of each program node by later ones
        for p in program.nodes:
            for a in p.args:
                self.remaining[a] += 1
        self.remaining[program.output] += 1  # (the output is read to the end)
        self.live: dict[int, int] = {}  # node id -> uses left through the program nodes
        self.need: dict[int, bool] = {}  # node id -> the reverse pass reads its value
        self.mark = 0  # nodes before this one are settled
        self.off = False
        self.mine = None  # the buffer the node being computed is written into

    def compute(self, i, op, args, argn, operands, fn, out_dtype, shape, attrs):
        """The value of ``op`` on these operands, emitted for program node ``i``."""
        nodes, out_dtype = self.nodes, np.dtype(out_dtype)
        rg = op.grads is not None and out_dtype.kind in "fc" and any(a.requires_grad for a in argn)
        if rg and args:
            _mark_saved(self.need, nodes, op.name, len(nodes), args)
        ufunc = (
            op.ufunc(operands)
            if op.ufunc is not None
            and fn is op.forward
            and math.prod(shape) * out_dtype.itemsize >= LEAN_BYTES
            and _plain(argn, self.dtype)
            and _c_order(operands)
            else None
        )
        if ufunc is None:
            return np.asarray(fn(*operands, **_kw(op, attrs)), dtype=out_dtype)
        mine = _dying(self._dying(i, op.name, args), nodes, shape, out_dtype)
        if mine is None:
            spare = _POOL.take(shape, out_dtype)
            mine = _Buffer(np.empty(shape, out_dtype) if spare is None else spare)
        self.mine = mine
        return ufunc(*operands, out=mine.array)

    def _dying(self, i, op_name, args):
        """The operands that go right after this node (its rule is already counted in
        ``need``): it is the last (or only) node of its program node, whose uses of them are
        the last, and the reverse pass does not read them."""
        p = self.program.nodes[i]
        if self.off or op_name != p.op or OPS[p.op].lower is not None:
            return ()
        uses: dict[int, int] = {}
        for a in p.args:
            e = self.where[a]
            if e.__class__ is not int:
                return ()
            uses[e] = uses.get(e, 0) + 1
        return [
            e
            for e in dict.fromkeys(args)
            if self.live.get(e, 0) == uses.get(e, 0) and not self.need.get(e)
        ]

    def adopt(self, node):
        """After ``node`` is appended: its value becomes the engine's (_own)."""
        mine, self.mine = self.mine, None
        if mine is not None and node.value is mine.array:
            node.bufs = (mine,)
            mine.readers.add(node.id)
        else:
            _own(self.nodes, node)

    def step(self, i):
        """Program node ``i`` is done: drop what nobody will read any more."""
        if self.off:
            return
        nodes, where, live = self.nodes, self.where, self.live
        gone = []
        for a in self.program.nodes[i].args:
            e = where[a]
            if e.__class__ is int:
                live[e] -= 1
                if not live[e]:
                    gone.append(e)
        e = where[i]
        if isinstance(e, Results):
            self.off = True
            return
        live[e] = live.get(e, 0) + self.remaining[i]
        gone += [k for k in range(self.mark, len(nodes)) if not live.get(k)]
        self.mark = len(nodes)
        for e in dict.fromkeys(gone):
            n = nodes[e]
            if (
                live.get(e)
                or self.need.get(e)
                or n.op in ("input", "number")
                or not isinstance(n.value, np.ndarray)
                or n.value.nbytes < LEAN_BYTES
            ):
                continue
            _release(e, n.bufs)
            n.bufs = ()
            n.value = _stand_in(n.value)


def _needed(nodes, out):
    """Which values the reverse pass will read (PyTorch's saved tensors), by each op's
    ``saves``: a value nobody's rule reads can go once its last consumer has run."""
    need = [False] * len(nodes)
    need[out] = True
    for c in nodes:
        if c.args and c.requires_grad:
            _mark_saved(need, nodes, c.op, c.id, c.args)
    return need


def _mark_saved(need, nodes, op_name, id, args):
    """need[k] = True for each value k the rule of node ``id`` (requiring grad) reads."""
    saves = OPS[op_name].saves
    if saves in ("all", "out"):
        need[id] = True
    if saves == "pow" and nodes[args[1]].requires_grad:
        need[id] = True
    if saves in ("all", "inputs", "pow"):
        for a in args:
            need[a] = True
    elif saves == "others":
        for k, a in enumerate(args):
            if any(nodes[b].requires_grad for j, b in enumerate(args) if j != k):
                need[a] = True


LEAN_BYTES = 1 << 16  # smaller tensors are not worth dropping or recycling


def _last_uses(nodes, out):
    """For each node, the values that may be dropped right after it is computed (tensors
    of LEAN_BYTES or more: for small ones the bookkeeping costs more than it saves)."""
    need = _needed(nodes, out)
    last = {}
    for c in nodes:
        for a in c.args:
            last[a] = c.id
    drop: list[list[int]] = [[] for _ in nodes]
    for a, c in last.items():
        if (
            not need[a]
            and nodes[a].op not in ("input", "number")
            and nodes[a].value.nbytes >= LEAN_BYTES
        ):
            drop[c].append(a)
    return drop


def _replay(plan, program, arrays, dtype, lean=False):
    """Evaluate a recorded plan. Lean, a run of consecutive elementwise ufunc nodes of one
    shape (tanh(x) * sigmoid(x), 2 * (x + 2) ^ 2) is computed a block at a time (_blocks):
    each node's result still goes to its own buffer, but its operands are read back while
    in cache, not streamed from memory once per node. What the run drops is let go only
    after it is computed (until then its blocks are still to be read)."""
    entries, out, drop = plan
    nodes: list[Node] = []
    run: list = []  # (ufunc, operands, out) of the pending run, in order
    later: list[int] = []  # the values the pending run drops
    for op_name, args, attrs, src, rg, label, name, shape, big in entries:
        p = program.nodes[src]
        mine = None  # the buffer this node's result is written into, if the engine gave one
        if op_name == "input":
            value = arrays[name]
        elif op_name == "number":
            value = p.attrs["value"]
        elif op_name == "const":
            value = _const(p.attrs["value"], dtype)
        else:
            op = OPS[op_name]
            argn = [nodes[a] for a in args]
            maybe = lean and big is not None and op.ufunc is not None and _plain(argn, dtype)
            if run and not (maybe and not attrs):  # (_typed may convert, so read, operands)
                later = _run_done(run, later, nodes)
            operands, out_dtype, forward_fn = _typed(op, argn, dtype, attrs)
            ufunc = op.ufunc if maybe and forward_fn is op.forward else None
            fn = (
                ufunc(operands)
                if ufunc is not None and out_dtype == big and _c_order(operands)
                else None
            )
            blockwise = fn is not None and not attrs and _blockwise(operands, shape)
            if run and not (blockwise and shape == run[0][2].shape):
                later = _run_done(run, later, nodes)
            try:
                if fn is not None:
                    mine = _dying(drop[len(nodes)], nodes, shape, big)
                    if mine is None:
                        spare = _POOL.take(shape, big)
                        mine = _Buffer(np.empty(shape, big) if spare is None else spare)
                    if blockwise and mine.array.flags.c_contiguous:
                        run.append((fn, operands, mine.array))  # computed by _blocks
                        value = mine.array
                    else:
                        if run:
                            later = _run_done(run, later, nodes)
                        value = fn(*operands, out=mine.array)
                else:
                    value = np.asarray(forward_fn(*operands, **_kw(op, attrs)), dtype=out_dtype)
            except GradcliError as e:
                raise _at(e, program, p) from None
        node = Node(len(nodes), op_name, args, attrs, src, value, rg, label, name)
        nodes.append(node)
        if not lean:
            continue
        if mine is not None and value is mine.array:
            node.bufs = (mine,)
            mine.readers.add(node.id)
        else:  # a view or an alias of an operand's buffer?
            near = [b for a in args for b in nodes[a].bufs]
            if near:
                node.bufs = _sharing(value, near)
                for b in node.bufs:
                    b.readers.add(node.id)
        if run:
            later += drop[node.id]
        else:
            _let_go(drop[node.id], nodes)
    if run:
        _run_done(run, later, nodes)
    return nodes, out


def _let_go(dropped, nodes):
    """Values the reverse pass will not read: gone, shapes kept, their buffers freed."""
    for a in dropped:
        _release(nodes[a].id, nodes[a].bufs)
        nodes[a].bufs = ()
        nodes[a].value = _stand_in(nodes[a].value)


def _run_done(run, later, nodes):
    """Compute the pending run, then let go of what it dropped; a fresh list for the next."""
    _blocks(run)
    run.clear()
    _let_go(later, nodes)
    return []


RUN_BLOCK = 1 << 17  # elements a run of elementwise nodes works on at once (_blocks)


def _blockwise(operands, shape):
    """Whether an elementwise ufunc may be computed a block at a time on these operands:
    each is a number, a 0-d array or a C-ordered array of the result's shape (not a
    broadcast one, whose flat blocks would not line up)."""
    return all(o.shape == shape for o in operands if isinstance(o, np.ndarray) and o.ndim)


def _blocks(run):
    """Compute each ``(ufunc, operands, out)`` of ``run``, in order, a block of RUN_BLOCK
    elements at a time: element by element the same calls as on the whole arrays, so the
    same numbers, with a later node reading its operands' blocks while they are in cache.
    A node may write into the buffer of an operand dying with it: each block of it is
    read before it is written, as in the whole. (Nothing the run frees reaches the pool
    before the run is computed: _run_done.)"""
    if len(run) == 1:
        fn, operands, out = run[0]
        fn(*operands, out=out)
        return
    flat = [
        (
            fn,
            [o.reshape(-1) if isinstance(o, np.ndarray) and o.ndim else o for o in operands],
            [k for k, o in enumerate(operands) if isinstance(o, np.ndarray) and o.ndim],
            out.reshape(-1),
        )
        for fn, operands, out in run
    ]
    for s in range(0, flat[0][3].size, RUN_BLOCK):
        e = s + RUN_BLOCK
        for fn, operands, arrays, out in flat:
            block = operands.copy()
            for k in arrays:
                block[k] = operands[k][s:e]
            fn(*block, out=out[s:e])


def _c_order(operands):
    """Whether numpy would lay this result out in C order (all array operands are): a
    buffer of the engine's is, and a different layout would change the order in which a
    later reduction adds, so the last bits of its sum."""
    return all(o.flags.c_contiguous for o in operands if isinstance(o, np.ndarray))


class _Buffer:
    """Memory the engine allocated for a result, and who still reads it: the node it was
    allocated for, nodes whose values are views of it (reshape, transpose, slices...) and,
    in the reverse pass, adjoints that alias it. Each reader is a node id (its value) or
    ``~id`` (its adjoint). The buffer may be overwritten or pooled only once no reader is
    left -- explicit bookkeeping, not reference counts (which CPython does not promise)."""

    __slots__ = ("array", "readers")

    def __init__(self, array):
        self.array = array
        self.readers: set[int] = set()


def _sharing(value, buffers):
    """The buffers among ``buffers`` that ``value`` may read: those it overlaps (a view or
    the operand itself). A value that is not one array (a tuple of results) keeps them all."""
    if not isinstance(value, np.ndarray):
        return tuple(dict.fromkeys(buffers))
    return tuple(dict.fromkeys(b for b in buffers if np.may_share_memory(value, b.array)))


def _release(reader, buffers):
    """``reader`` no longer reads ``buffers``: a buffer with no reader left goes to the pool
    (once: only as its last reader leaves)."""
    for b in dict.fromkeys(buffers) if len(buffers) > 1 else buffers:
        if reader in b.readers:
            b.readers.discard(reader)
            if not b.readers:
                _POOL.keep(b.array)


def _dying(dropped, nodes, shape, dtype):
    """A buffer this node may write its result into: one read only by values dropped right
    after this node (no later node, no view, no saved value reads it), of its shape and
    dtype -- the temporary elision numpy does inside one expression. (numpy's ufuncs give
    the right answer when an output overlaps an input.)"""
    gone = set(dropped)
    for a in dropped:
        for b in nodes[a].bufs:
            if b.readers <= gone and b.array.shape == shape and b.array.dtype == dtype:
                return b
    return None


class _Pool:
    """A few freed buffers kept for later results, as PyTorch's caching allocator does: a
    fresh multi-megabyte buffer costs page faults that reuse avoids. Capped, thread-safe.
    Only the engine's own buffers come here, once nothing reads them (_Buffer). A buffer is
    kept across evaluations only while they reuse it: one that a whole evaluation after
    the one that freed it did not take goes (the recording evaluation frees buffers, a
    convolution's result for one, that its replays never ask for: held, they were memory
    no step used). Evaluations running at once in several threads age it faster, which
    costs only a reuse."""

    def __init__(self, max_bytes=64 << 20, min_bytes=1 << 16):
        import threading

        self.buffers, self.max_bytes, self.min_bytes = [], max_bytes, min_bytes
        self.kept: list[int] = []  # for each buffer, the evaluation that freed it
        self.evaluations = 0
        self.lock = threading.Lock()
        self.steady = False  # _steady_heap has run (at the first buffer large enough here)

    def keep(self, value):
        if value.nbytes < self.min_bytes:
            return
        if not self.steady:
            self.steady = True
            _steady_heap()
        with self.lock:
            if sum(b.nbytes for b in self.buffers) + value.nbytes <= self.max_bytes:
                self.buffers.append(value)
                self.kept.append(self.evaluations)

    def take(self, shape, dtype):
        """A free buffer of this shape and dtype (its contents are garbage), or None: the
        one freed last, whose memory is the likeliest to be still in cache."""
        with self.lock:
            for k in range(len(self.buffers) - 1, -1, -1):
                b = self.buffers[k]
                if b.shape == shape and b.dtype == dtype:
                    del self.kept[k]
                    return self.buffers.pop(k)
        return None

    def evaluation(self):
        """An evaluation begins: buffers freed before the previous one began, which it
        did not take, go."""
        with self.lock:
            self.evaluations += 1
            if self.kept and self.kept[0] < self.evaluations - 1:
                young = [k for k, e in enumerate(self.kept) if e >= self.evaluations - 1]
                self.buffers = [self.buffers[k] for k in young]
                self.kept = [self.kept[k] for k in young]


_POOL = _Pool()

MMAP_THRESHOLD = 4 << 20  # glibc: a block this large or larger is its own mmap
TRIM_THRESHOLD = 8 << 20  # glibc: at most this much freed heap stays resident


def _steady_heap():
    """Fix glibc's malloc thresholds (Linux), once, when the engine first frees a buffer of
    the pool's size: blocks under MMAP_THRESHOLD come from the heap, whose freed pages stay
    resident up to TRIM_THRESHOLD, so each step of a loop (the batch records, a training
    loop through the API) reuses the pages the step before freed. Left to itself, glibc
    moves its mmap threshold as blocks are freed, so whether a step maps and faults fresh
    pages every time depends on the order of earlier frees (benchmarks/cnn.py's network did
    in some layouts: 1.5 MiB extra peak a step and 3.2-3.5 ms against 2.2 ms of CPU time).
    GRADCLI_MALLOC=default leaves glibc as it is."""
    import os

    if os.environ.get("GRADCLI_MALLOC") == "default":
        return
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return
        import ctypes

        # (the process's own symbols, libc's among them: as ctypes.CDLL(None) finds them,
        # without the library object and function class CDLL makes, which stay as cyclic
        # garbage, 3.5 KB, until a collection; this runs within an evaluation, gc off)
        mallopt = ctypes.pythonapi["mallopt"]
        mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
        mallopt(-1, TRIM_THRESHOLD)  # M_TRIM_THRESHOLD
    except (AttributeError, OSError, ValueError):
        pass  # not glibc (macOS, musl, Windows): nothing to fix


def _stand_in(value):
    """A zero-cost array of the same shape and dtype, for rules that read only shapes."""
    return np.broadcast_to(np.zeros((), dtype=value.dtype), value.shape)


def _forward(program, arrays, wrt, dtype, max_elements, lean=False):
    nodes: list[Node] = []
    where = [0] * len(program.nodes)
    # the program node being evaluated, for emit() and error positions
    current: list[int | None] = [None]
    rec = (
        _Recording(program, nodes, where, dtype)
        if lean and _records_leanly(program, arrays)
        else None
    )

    shapes: dict[tuple, tuple] = {}  # (op, its operands' shapes) -> result shape, no attrs
    # 0-d nodes of the program evaluated together, by waves (gradcli.wave)
    waves = _wave.Wave(nodes, dtype) if rec is None and _wave.ENABLED else None
    if waves is not None and waves.dtype.kind != "f":
        waves = None

    def emit(opname, args, attrs=None):
        op = OPS[opname]
        argn = [nodes[a] for a in args]
        attrs = attrs or {}
        # (a long program applies a few ops to a few shapes: each rule is asked once)
        key = (opname, *[a.shape for a in argn]) if not attrs else None
        shape = shapes.get(key) if key is not None else None
        if shape is None:
            shape = op.shape([a.shape for a in argn], attrs)
            check_size(shape, max_elements, lambda: "the result")  # _at() says where
            if key is not None and not attrs:  # (unless the rule filled attrs in)
                shapes[key] = shape
        if waves is not None and waves.pending and waves.waiting(argn):
            waves.flush()  # (its operands' values are computed first)
        operands, out_dtype, fn = _typed(op, argn, dtype, attrs or None)
        if rec is None:
            value = np.asarray(fn(*operands, **_kw(op, attrs)), dtype=out_dtype)
        else:
            value = rec.compute(current[0], op, args, argn, operands, fn, out_dtype, shape, attrs)
        if value.shape != shape:
            raise RuntimeError(f"{opname}: shape rule says {shape}, forward gave {value.shape}")
        # an integer or bool result cuts the graph: it cannot require grad
        rg = False
        if op.grads is not None and value.dtype.kind in "fc":
            for a in argn:
                if a.requires_grad:
                    rg = True
                    break
        label = op.label_for(tuple([a.op == "number" for a in argn]), attrs) if rg else None
        nodes.append(
            Node(len(nodes), opname, tuple(args), attrs or None, current[0], value, rg, label)
        )
        if rec is not None:
            rec.adopt(nodes[-1])
        return len(nodes) - 1

    for i, p in enumerate(program.nodes):
        if rec is not None and i:
            rec.step(i - 1)
        current[0] = i
        if p.op == "number":  # (first: a big program is a quarter numbers)
            nodes.append(Node(len(nodes), "number", (), None, i, p.attrs["value"], name=p.name))
            where[i] = len(nodes) - 1
            continue
        if waves is not None and waves.node(i, p, where, Node):
            continue
        if p.op == "input":
            check_size(arrays[p.name].shape, max_elements, lambda p=p: f"input {short(p.name)}")
            rg = p.name in wrt
            nodes.append(
                Node(
                    len(nodes),
                    "input",
                    (),
                    None,
                    i,
                    arrays[p.name],
                    rg,
                    "AccumulateGrad" if rg else None,
                )
            )
        elif p.op == "const":
            nodes.append(Node(len(nodes), "const", (), None, i, _const(p.attrs["value"], dtype)))
        else:
            try:
                # a call's several results (split, max(dim=)) stand as a Results whose
                # elements are emitted on first use; a list argument takes them all
                args = [where[a] for a in p.args]
                for a in args:
                    if a.__class__ is not int:  # (a Results: spread it, if the op takes all)
                        args = spread(p.op, args)
                        break
                op = OPS[p.op]
                cast = p.attrs.get("dtype") if p.op in dtypes.COPY_FIRST and p.attrs else None
                if cast is not None and nodes[args[0]].value.dtype != cast:  # softmax(dtype=)
                    args[0] = emit("_to_copy", (args[0],), {"dtype": cast})
                if op.lower is not None:
                    if waves is not None:  # (a lowering may read its operands' values)
                        waves.flush()
                    emit_from = op.lower(emit, nodes.__getitem__, args, p.attrs or {})
                else:  # (the program node's args, where they are the same ids: one tuple)
                    same = tuple(args)
                    emit_from = emit(p.op, p.args if same == p.args else same, p.attrs)
            except GradcliError as e:
                if waves is not None:  # (an error of an earlier node comes first)
                    waves.flush()
                raise _at(e, program, p) from None
            where[i] = emit_from
            if isinstance(emit_from, Results):
                continue
            if p.name is not None and nodes[emit_from].name is None:
                nodes[emit_from].name = p.name
            continue
        where[i] = len(nodes) - 1
        nodes[-1].name = p.name
    if rec is not None and program.nodes:
        rec.step(len(program.nodes) - 1)
    if waves is not None:
        waves.flush()
    return nodes, where[program.output]


def _const(value, dtype):
    try:
        return np.asarray(value, dtype=dtype)
    except ValueError:
        raise EvaluationError(
            "a list literal is ragged: every row must have the same length"
        ) from None


def _at(error, program, pnode):
    """Attach the program position of ``pnode`` to an error raised while evaluating it."""
    if error.position is None:
        error.position = program.position(pnode.start)
        error.context = caret(program.text, pnode.start, pnode.end - pnode.start)
        error.message = f"{error.message} (in '{program.source(pnode)}')"
    return error


class AnomalyError(EvaluationError):
    """--detect-anomaly found a non-finite value or gradient."""


def _first_bad(a):
    a = np.asarray(a)
    if a.dtype.kind != "f" or np.isfinite(a).all():
        return None
    idx = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
    return a[idx].item(), list(idx)


def _describe(node, text):
    what = f"node {node.id} '{text(node)}'"
    return what + (f" ({node.label})" if node.label else f" ({node.op})")


def check_forward(nodes, text):
    """The first node, in evaluation order, whose value holds a nan or an infinity."""
    for node in nodes:
        bad = _first_bad(node.value)
        if bad is not None:
            where = f" at index {bad[1]}" if bad[1] else ""
            raise AnomalyError(
                f"anomaly in the forward pass: {_describe(node, text)} is {bad[0]}{where}",
                hint="its inputs are all finite"
                if all(_first_bad(nodes[a].value) is None for a in node.args)
                else None,
            )


def backward(nodes, out, seed, dtype, text=None, on_step=None, free=False):
    """Reverse pass from ``out`` seeded with ``seed``, one node at a time from the output
    back. Sets ``node.grad`` on every node that requires grad and lies on a path to the
    output, and keeps labels only on those nodes. ``on_step(node, adjoint arriving,
    [(input id, contribution sent)])`` sees each step (gradcli explain); ``text`` (node ->
    source) turns on anomaly checks; ``free`` drops each intermediate's value and adjoint as
    soon as the pass is past it (its consumers come after it, so were processed before)."""
    if on_step is None and text is None and _wave.backward(nodes, out, seed, dtype, free):
        return  # (0-d nodes of the ops gradcli.wave stacks: by waves, the same sums)
    adj = [None] * len(nodes)
    held: list[tuple[_Buffer, ...]] = [()] * len(nodes)  # the buffers each adjoint lives in
    reached = [False] * len(nodes)
    adj[out] = seed
    reached[out] = True
    plain = on_step is None and text is None  # (no explain, no anomaly checks)
    for i in range(out, -1, -1):
        g = adj[i]
        node = nodes[i]
        if g is None or not node.args:
            continue
        op = OPS[node.op]
        argn = [nodes[a] for a in node.args]
        vals = _operands(op, argn, dtype, node.attrs)
        attrs = _kw(op, node.attrs)
        # a tuple holds one rule per input; a function (cat, stack) gives all at once
        rules = op.grads
        if (
            plain
            and rules.__class__ is tuple
            and g.nbytes < LEAN_BYTES
            and not held[i]
            and not node.bufs
            and not any([n.bufs for n in argn])
        ):  # a small adjoint, no buffer of the engine's near: the steps below, in short
            value = node.value
            for k, a in enumerate(node.args):
                arg = argn[k]
                rule = rules[k]
                if rule is None or not arg.requires_grad:
                    continue
                ga = np.asarray(rule(g, value, *vals, **attrs))
                if ga.shape != arg.shape or ga.dtype != arg.value.dtype:
                    ga = _unbroadcast(ga, arg.shape, arg.value.dtype)
                if held[a] or ga.nbytes >= LEAN_BYTES:
                    _sum_into(adj, held, a, ga, (g, value, *vals, *attrs.values()), ())
                else:
                    adj[a] = ga if adj[a] is None else adj[a] + ga
                reached[a] = True
            if free and i != out:
                node.value = adj[i] = None
            continue
        every = (
            None
            if rules is None or isinstance(rules, tuple)
            else rules(g, node.value, *vals, **attrs)
        )
        sent = [] if on_step is not None else None
        near = held[i] + node.bufs  # the buffers of the arrays the rules are given
        for n in argn:
            if n.bufs:
                near += n.bufs
        for k, a in enumerate(node.args):
            if not argn[k].requires_grad:
                continue
            if every is not None:
                ga = every[k]
            else:
                assert isinstance(rules, tuple)  # a node needing gradients has rules
                rule = rules[k]
                if rule is None:
                    continue  # no gradient flows to a condition or a class index
                # (explain and --detect-anomaly read g after the rules)
                if op.grad_into and g.nbytes >= LEAN_BYTES and on_step is None and text is None:
                    into = _into(g, held[i], ~i, node, argn[k], vals, free)
                    ga = rule(g, node.value, *vals, into=into, **attrs)
                    if into is not None and into is not g and not np.may_share_memory(ga, into):
                        _POOL.keep(into)  # not used after all
                    into = None
                else:
                    ga = rule(g, node.value, *vals, **attrs)
            ga = _unbroadcast(np.asarray(ga), argn[k].shape, argn[k].value.dtype)
            if text is not None:  # --detect-anomaly: name the first backward step to go bad
                bad = _first_bad(ga)
                if bad is not None and _first_bad(g) is None:
                    raise AnomalyError(
                        f"anomaly in the backward pass: {_describe(node, text)} sent "
                        f"{bad[0]} to its input {k} ({_describe(argn[k], text)}) although "
                        f"the gradient arriving at it was finite"
                    )
            # (explain keeps each contribution: no in-place sums there; small ones, neither)
            if on_step is None and (near or held[a] or ga.nbytes >= LEAN_BYTES):
                seen = (g, node.value, *vals, *attrs.values())  # what the rule was given
                _sum_into(adj, held, a, ga, seen, near)
            else:
                adj[a] = ga if adj[a] is None else adj[a] + ga
            reached[a] = True
            if sent is not None:
                sent.append((a, ga))
        if on_step is not None:
            on_step(node, g, sent)
        if free and i != out:  # nothing later reads this value or adjoint
            if near:
                _release(i, node.bufs)
                _release(~i, held[i])
            node.value, node.bufs, adj[i], held[i] = None, (), None, ()
        # (a dead contribution or buffer is not kept alive through the next step's rules)
        ga = every = seen = near = None
    for node, g, hit in zip(nodes, adj, reached, strict=True):
        if node.requires_grad:
            node.grad = g
        if not hit:
            # Not in the backward graph PyTorch records from the output (it feeds the
            # output only through a comparison or a class index, or not at all): no label.
            node.label = None


def _into(g, bufs, reader, node, arg, vals, free):
    """Where a rule may write its result (of the node's shape and g's dtype, for an input of
    that shape and dtype): the arriving adjoint g itself if only it reads its buffer, the
    node has no other input to send it to and the pass frees it after this step -- or then,
    where the node's own value is a whole buffer that only the node reads (so it dies with
    this step too), that value: handed over (the node no longer reads the buffer), the rule
    may write over it and over g alike, its result in either (elementwise._times_local
    does, and needs no scratch; the caller pools the value if the result is not in it);
    else a pooled buffer. None where dtypes or shapes differ, and when the pool
    has none (the rule then allocates its result, which later joins the pool)."""
    if (
        arg.shape != node.shape
        or g.shape != node.shape
        or any(isinstance(v, np.ndarray) and v.dtype != g.dtype for v in (node.value, *vals))
    ):
        return None
    if free and len(node.args) == 1 and _sole(g, bufs, reader):
        if _sole(node.value, node.bufs, node.id):
            node.bufs[0].readers.discard(node.id)  # (unused, the caller pools it: once)
            node.bufs = ()
            return node.value
        return g
    return _POOL.take(g.shape, g.dtype)


def _sum_into(adj, held, a, ga, seen, near):
    """adj[a] += ga, in place where only this adjoint reads the memory written; ``seen``
    are the arrays ga's rule was given and ``near`` the buffers they live in."""
    adj[a], held[a] = _accumulate(adj[a], held[a], ga, _claim(ga, ~a, seen, near), ~a)


def _claim(ga, reader, seen, near):
    """The engine's buffers an adjoint lives in, now read by ``reader``: those among
    ``near`` (the buffers of the arrays its rule was given) that it overlaps; or, when it
    overlaps none of the arrays its rule was given (``seen``) and owns its memory, a new
    buffer of its own -- a rule's fresh result, which nothing else reads."""
    bufs = _sharing(ga, near)
    if (
        not bufs
        and isinstance(ga, np.ndarray)
        and ga.nbytes >= LEAN_BYTES
        and ga.flags.owndata
        and ga.flags.writeable
        and not any(isinstance(s, np.ndarray) and np.may_share_memory(ga, s) for s in seen)
    ):
        bufs = (_Buffer(ga),)
    for b in bufs:
        b.readers.add(reader)
    return bufs


def _sole(value, bufs, reader):
    """Whether ``value`` is a whole buffer of the engine's that only ``reader`` reads."""
    return len(bufs) == 1 and bufs[0].array is value and bufs[0].readers == {reader}


def _accumulate(old, old_bufs, ga, ga_bufs, reader):
    """old + ga, the adjoint so far plus a contribution (each with its buffers), written
    into whichever of the two only this adjoint reads; the value and its buffers."""
    if old is None:
        return ga, ga_bufs
    if old.shape != ga.shape or old.dtype != ga.dtype:  # (a sum in place would differ)
        new = old + ga
        bufs = _claim(new, reader, (), ())
    elif _sole(old, old_bufs, reader):
        new, bufs = np.add(old, ga, out=old), old_bufs
    elif _sole(ga, ga_bufs, reader):
        new, bufs = np.add(old, ga, out=ga), ga_bufs
    else:
        new = old + ga
        bufs = _claim(new, reader, (), ())
    _release(reader, [b for b in (*old_bufs, *ga_bufs) if b not in bufs])
    return new, bufs


def _unbroadcast(g, shape, dtype, lead=0):
    """Sum a gradient back to the shape of the input it belongs to, after ``lead`` leading
    axes that stay as they are (batch's stacked records)."""
    if g.shape[lead:] != shape:
        extra = g.ndim - lead - len(shape)
        if extra > 0:
            g = g.sum(axis=tuple(range(lead, lead + extra)))
        axes = tuple(lead + i for i, n in enumerate(shape) if n == 1 and g.shape[lead + i] != 1)
        if axes:
            g = g.sum(axis=axes, keepdims=True)
        if g.shape[lead:] != shape:
            g = np.broadcast_to(g, g.shape[:lead] + tuple(shape))
    return g if g.dtype == dtype else g.astype(dtype)


def make_seed(out_node, seed, dtype):
    """The cotangent for the output: ones for a scalar, else the user's seed vector."""
    if not out_node.requires_grad:
        raise EvaluationError(
            "element 0 of tensors does not require grad and does not have a grad_fn",
            hint="the output does not depend on any input that requires grad; check --wrt",
        )
    shape = out_node.shape
    if seed is None:
        if shape != ():
            raise EvaluationError(
                "grad can be implicitly created only for scalar outputs",
                hint=f"the output has shape {fmt_shape(shape)}; pass --seed-vector with that "
                f"shape to get the vector-Jacobian product",
            )
        return np.ones((), dtype=out_node.value.dtype)
    if seed.shape != shape:
        raise EvaluationError(
            f"seed vector has shape {fmt_shape(seed.shape)} but the output has shape "
            f"{fmt_shape(shape)}; they must match (Mismatch in shape: grad_output[0] and "
            f"output[0])"
        )
    return seed.astype(out_node.value.dtype, copy=False)  # read in the output's dtype
