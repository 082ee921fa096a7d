"""Stacked evaluation for batch: records that share a program, dtype, wrt and input shapes
are evaluated together, their inputs stacked along a new leading axis, so that each node
costs one numpy call for the whole group instead of one per record.

How the leading axis passes through an op is data on its row (Op.stack): "elementwise"
(operands broadcast against each other with the axis in front), "reduce" (a reduction
whose dims move one place right), "loss" (elementwise, then each record's reduction),
"matmul" (numpy's stacked matmul where it was checked to give the same bytes) or "rows"
(the op called once per record). A program with an op without a rule, a random generator,
a seed vector or a task other than grad is evaluated one record at a time, as is every
record of a group whose stacked evaluation fails in any way: each answer is the one its
record gives alone, byte for byte (tests/test_stacked.py compares them)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import api, batch, engine, jsonio
from .errors import GradcliError
from .ops import OPS
from .ops.core import SMALL

MIN_GROUP = 3  # fewer records than this are answered one by one
# Every stacked value has at most this many elements: the rules' small-tensor paths
# (ops.core.SMALL) are then the ones a single record takes, and the answers stay identical.
MAX_ELEMENTS = SMALL


class _Job:
    """A record that may be stacked: its id, program and prepared inputs."""

    __slots__ = ("index", "line_no", "record_id", "program", "arrays", "wrt", "dtype", "cap")

    def __init__(self, index, line_no, record_id, program, arrays, wrt, dtype, cap):
        self.index, self.line_no, self.record_id = index, line_no, record_id
        self.program, self.arrays, self.wrt, self.dtype, self.cap = program, arrays, wrt, dtype, cap


def answer_many(
    items: list[tuple[int, bytes | None]],
    defaults: batch.Defaults,
    cache: batch.ProgramCache | None = None,
) -> list[tuple[str, bool]]:
    """batch.answer() for each (line number, bytes), in order, with the records that can be
    stacked evaluated in groups."""
    cache = batch._CACHE if cache is None else cache
    answers: list[Any] = [None] * len(items)
    groups: dict[tuple, list[_Job]] = {}
    for k, (line_no, raw) in enumerate(items):
        job = _stackable(k, line_no, raw, defaults, cache)
        if job is None:
            answers[k] = batch.answer(line_no, raw, defaults, cache)
        else:
            groups.setdefault(_key(job), []).append(job)
    for jobs in groups.values():
        for k, pair in _group(jobs):
            answers[k] = pair
        for job in jobs:
            if answers[job.index] is None:
                answers[job.index] = batch.answer(job.line_no, items[job.index][1], defaults, cache)
    return answers


def _key(job):
    return (
        id(job.program),
        job.dtype,
        tuple(job.wrt),
        job.cap,
        tuple((n, a.shape, a.dtype.str, a.flags.c_contiguous) for n, a in job.arrays.items()),
    )


def _stackable(index, line_no, raw, defaults, cache):
    """The record as a _Job, or None: one the ordinary path answers (anything unusual,
    every error included, goes there, which says what is wrong in its own words)."""
    if raw is None or defaults.nodes or defaults.detect_anomaly:
        return None
    try:
        record = batch._record(raw, defaults.max_line_bytes)
        if any(k not in batch.COMMON for k in record) or record.get("task", "grad") != "grad":
            return None
        record_id = batch._check_id(record.get("id", line_no))
        expr = record.get("expr")
        if expr is None and "expr" not in record:
            program = defaults.program()
        elif isinstance(expr, str):
            program = cache.get(expr)
        else:
            return None
        inputs = record.get("inputs", {})
        dtype = record.get("dtype", defaults.dtype)
        wrt = record.get("wrt", defaults.wrt)
        if not isinstance(inputs, dict) or not isinstance(dtype, str):
            return None
        if any(_generated(v) for v in inputs.values()):
            return None  # randn(3), "1,2,3": the ordinary path reads VALUE strings
        if wrt is not None and not isinstance(wrt, (str, list)):
            return None
        _, arrays, names, cap, _ = api.prepare(
            program, inputs, wrt, dtype, None, defaults.max_elements
        )
    except (GradcliError, RecursionError, MemoryError, TypeError, ValueError):
        return None
    return _Job(index, line_no, record_id, program, arrays, names, dtype, cap)


def _generated(value):
    """A VALUE string (randn(3), "1,2,3") or a typed one holding a string."""
    return isinstance(value, str) or (
        isinstance(value, dict) and isinstance(value.get("data"), str)
    )


_PLAIN: dict[int, tuple[Any, bool]] = {}  # id(program) -> (program, no op draws random numbers)


def _plain_program(program):
    seen = _PLAIN.get(id(program))
    if seen is None or seen[0] is not program:
        if len(_PLAIN) >= 4 * batch.CACHE_SIZE:
            _PLAIN.clear()
        ok = not any(getattr(OPS.get(n.op), "random", False) for n in program.nodes)
        seen = _PLAIN[id(program)] = (program, ok)
    return seen[1]


def _group(jobs):
    """(index, answer) for the records of one group that its stacked evaluation answered;
    none where the group is too small, or anything goes wrong (they go one by one)."""
    first = jobs[0]
    if len(jobs) < MIN_GROUP or not _plain_program(first.program):
        return []  # (a program's every node is looked at only for a group worth stacking)
    try:
        template, out = _template(first)
        size = max(max(int(np.prod(n.shape)) for n in template), 1)
        per = MAX_ELEMENTS // size
        if per < MIN_GROUP:
            return []
        done = []
        for start in range(0, len(jobs), per):
            part = jobs[start : start + per]
            if len(part) >= MIN_GROUP:
                done += _stack(part, template, out)
        return done
    except Exception:  # noqa: BLE001 - whatever it is, the records are answered one by one
        return []


def _template(job):
    """The nodes of one record's evaluation (kept whole): every node's op, arguments,
    shape, label and the constants, for the stacked passes to follow."""
    nodes, out = engine.forward(job.program, job.arrays, set(job.wrt), job.dtype, job.cap)
    for node in nodes:
        if node.op not in ("input", "number", "const") and OPS[node.op].stack is None:
            raise _Unstackable(node.op)
    engine.backward(nodes, out, engine.make_seed(nodes[out], None, job.dtype), job.dtype)
    return nodes, out


class _Unstackable(Exception):
    pass


def _kind(op, node, template):
    """The op's stacking rule for this node: a reduction of a number goes by rows (dim=()
    there would mean every dim, the record axis too)."""
    if op.stack == "reduce" and not template[node.args[0]].shape:
        return "rows"
    return op.stack


def _loss_shape(node, template):
    """A loss's elementwise shape (before its reduction): its inputs' broadcast."""
    return np.broadcast_shapes(*(template[a].shape for a in node.args))


def _reduced(loss, attrs):
    """ops.losses._reduce_loss for each record: over every dim but the record axis."""
    axes = tuple(range(1, loss.ndim))
    if attrs.get("reduction", "mean") == "mean":
        return np.mean(loss, axis=axes)
    if attrs.get("reduction", "mean") == "sum":
        return np.sum(loss, axis=axes)
    return loss


def _spread(g, attrs, shape):
    """ops.losses._loss_grad_scale for each record: the gradient arriving at a reduced
    loss, spread over its elementwise losses (the same division, by the same count)."""
    reduction = attrs.get("reduction", "mean")
    if reduction == "none":
        return g
    n = math.prod(shape)
    g = g.reshape(g.shape[:1] + (1,) * len(shape))
    if reduction == "mean" and n:
        g = g / n
    return np.broadcast_to(g, g.shape[:1] + tuple(shape))


def _stand_in(node, value):
    """An engine.Node of the template's op and kind, holding the stacked value."""
    return engine.Node(node.id, node.op, node.args, node.attrs, node.src, value)


def _aligned(values, stacked, argn, rank):
    """Stacked operands with the record axis in front and ones after it up to ``rank``
    record dimensions, so that numpy's broadcasting lines up the records' own dims."""
    out = []
    for v, s, n in zip(values, stacked, argn, strict=True):
        if s:
            shape = n.shape
            v = v.reshape((v.shape[0],) + (1,) * (rank - len(shape)) + shape)
        out.append(v)
    return out


def _moved(attrs, ndim):
    """A reduction's attributes with its dims one place right (past the record axis)."""
    attrs = dict(attrs)
    dim = attrs.get("dim")
    if dim is None or dim == ():  # (dim=() is every dim, as PyTorch's dim=[])
        attrs["dim"] = tuple(range(1, ndim + 1))
    else:
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        attrs["dim"] = tuple(d + 1 if d >= 0 else d for d in dims)
    return attrs


def _rows(fn, values, stacked, b, attrs):
    """fn on each record's slice of the stacked values (the others as they are)."""
    return [
        fn(*[v[r, ...] if s else v for v, s in zip(values, stacked, strict=True)], **attrs)
        for r in range(b)
    ]


def _stack(jobs, template, out):
    b = len(jobs)
    dtype = jobs[0].dtype
    values: list[Any] = []
    stacked: list[bool] = []
    for node in template:
        if node.op == "input":
            values.append(np.stack([job.arrays[node.name] for job in jobs]))
            stacked.append(True)
            continue
        flags = [stacked[a] for a in node.args]
        if not any(flags):  # a number, a constant, or made from them: the same in every record
            values.append(node.value)
            stacked.append(False)
            continue
        op = OPS[node.op]
        argn = [_stand_in(template[a], values[a]) for a in node.args]
        operands, out_dtype, fn = engine._typed(op, argn, dtype, node.attrs)
        attrs = engine._kw(op, node.attrs)
        kind = _kind(op, node, template)
        if kind == "elementwise":
            ops = _aligned(operands, flags, [template[a] for a in node.args], len(node.shape))
            value = np.asarray(fn(*ops, **attrs), dtype=out_dtype)
        elif kind == "reduce":
            moved = _moved(attrs, len(template[node.args[0]].shape))
            value = np.asarray(fn(*operands, **moved), dtype=out_dtype)
        elif kind == "loss":
            shape = _loss_shape(node, template)
            ops = _aligned(operands, flags, [template[a] for a in node.args], len(shape))
            value = np.asarray(
                _reduced(fn(*ops, **{**attrs, "reduction": "none"}), attrs), dtype=out_dtype
            )
        else:

            def exact(fn=fn, operands=operands, flags=flags, attrs=attrs, out_dtype=out_dtype):
                rows = _rows(fn, operands, flags, b, attrs)
                return np.stack([np.asarray(v, dtype=out_dtype) for v in rows])

            fast = _BATCHED.get(node.op) if kind == "matmul" else None
            if fast is None:
                value = exact()
            else:
                key = (node.op, "forward", _shapes(node, template, operands, flags))
                batched = fast[0]
                value = _checked(
                    key,
                    exact,
                    lambda: np.asarray(batched(*operands), out_dtype),  # noqa: B023 (at once)
                )
        if value.shape != (b, *node.shape) or value.dtype != node.value.dtype:
            raise _Unstackable(node.op)
        values.append(value)
        stacked.append(True)
    grads = _backward(template, out, values, stacked, b, dtype)
    head = template[out]
    lines = jsonio.grad_lines(
        [job.record_id for job in jobs],
        jobs[0].program.text,
        list(head.shape),
        None if head.op == "input" else head.label,
        values[out],
        {n: grads.get(n) for n in jobs[0].wrt},
    )
    answers = [(job.index, (line, True)) for job, line in zip(jobs, lines, strict=True)]
    return answers


def _backward(template, out, values, stacked, b, dtype):
    """engine.backward's reverse loop over the stacked values: the gradient of each input
    that requires grad (name -> stacked array), the same sums in the same order."""
    adj: list[Any] = [None] * len(template)
    adj[out] = np.ones((b, *template[out].shape), dtype=values[out].dtype)
    for i in range(out, -1, -1):
        g = adj[i]
        node = template[i]
        if g is None or not node.args:
            continue
        op = OPS[node.op]
        rules = op.grads
        if not isinstance(rules, tuple):
            raise _Unstackable(node.op)
        flags = [stacked[a] for a in node.args]
        argn = [_stand_in(template[a], values[a]) for a in node.args]
        vals = engine._operands(op, argn, dtype, node.attrs)
        attrs = engine._kw(op, node.attrs)
        kind = _kind(op, node, template)
        for k, a in enumerate(node.args):
            arg = template[a]
            if not arg.requires_grad or rules[k] is None:
                continue
            rule = rules[k]
            if kind == "elementwise":
                ops = _aligned(vals, flags, [template[x] for x in node.args], len(node.shape))
                ga = _unbroadcast(np.asarray(rule(g, values[i], *ops, **attrs)), b, arg)
            elif kind == "reduce":
                moved = _moved(attrs, len(arg.shape))
                ga = _unbroadcast(np.asarray(rule(g, values[i], *vals, **moved)), b, arg)
            elif kind == "loss":
                shape = _loss_shape(node, template)
                ops = _aligned(vals, flags, [template[x] for x in node.args], len(shape))
                spread = _spread(g, attrs, shape)
                got = rule(spread, values[i], *ops, **{**attrs, "reduction": "none"})
                ga = _unbroadcast(np.asarray(got), b, arg)
            else:

                def exact(rule=rule, g=g, i=i, vals=vals, flags=flags, attrs=attrs, arg=arg):
                    rows = _rows(rule, [g, values[i], *vals], [True, True, *flags], b, attrs)
                    dt = arg.value.dtype
                    return np.stack(
                        [engine._unbroadcast(np.asarray(v), arg.shape, dt) for v in rows]
                    )

                fast = _BATCHED.get(node.op) if kind == "matmul" else None
                if fast is None:
                    ga = exact()
                else:
                    key = (node.op, k, _shapes(node, template, vals, flags))
                    rule_k = fast[1][k]
                    ga = _checked(
                        key,
                        exact,
                        # (called at once, in this pass of the loop)
                        lambda: _unbroadcast(np.asarray(rule_k(g, *vals)), b, arg),  # noqa: B023
                    )
            if ga.shape != (b, *arg.shape):
                raise _Unstackable(node.op)
            adj[a] = ga if adj[a] is None else adj[a] + ga
    return {n.name: adj[n.id] for n in template if n.op == "input" and n.requires_grad}


# Matrix products on a stack of records, by numpy's stacked matmul: each record's product
# is one BLAS call either way, but not necessarily the same call, so each is used only
# once it gave the same bytes as one call per record (_checked), else one per record.
def _matmul_vec(a, v):
    return np.matmul(a, v[..., None])[..., 0]


def _t(a):
    return np.swapaxes(a, -1, -2)


_BATCHED: dict[str, tuple[Any, tuple[Any, Any]]] = {
    "mv": (
        _matmul_vec,
        (lambda g, a, v: g[..., :, None] * v[..., None, :], lambda g, a, v: _matmul_vec(_t(a), g)),
    ),
    "mm": (
        np.matmul,
        (lambda g, a, m: np.matmul(g, _t(m)), lambda g, a, m: np.matmul(_t(a), g)),
    ),
}
_VERIFIED: dict[tuple, bool] = {}  # (op, which pass, shapes) -> the stacked call is exact


def _shapes(node, template, operands, flags):
    """What the BLAS calls depend on: each operand's record shape, dtype and layout."""
    return tuple(
        (
            template[a].shape,
            getattr(o, "dtype", None),
            o.strides[1:] if f else getattr(o, "strides", None),
            f,
        )
        for a, o, f in zip(node.args, operands, flags, strict=True)
    )


def _checked(key, exact, fast):
    """fast() where it has given exact()'s bytes for this key before; the first time both,
    compared (a shape and layout whose stacked call differs stays on the exact path)."""
    known = _VERIFIED.get(key)
    if known:
        return fast()
    if known is False:
        return exact()
    want = exact()
    got = fast()
    _VERIFIED[key] = (
        got.shape == want.shape and got.dtype == want.dtype and got.tobytes() == want.tobytes()
    )
    return want


def _unbroadcast(g, b, arg):
    """engine._unbroadcast for each record: sum a stacked gradient back to (b, *shape)."""
    if g.ndim == 0 or g.shape[0] != b:
        raise _Unstackable("a rule's result lost the record axis")
    return engine._unbroadcast(g, arg.shape, arg.value.dtype, lead=1)
