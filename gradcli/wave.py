"""Wavefront evaluation of big programs of 0-d values: nodes of the same op that do not depend
on each other are computed by one numpy call on their operands stacked, and a left chain of
the same arithmetic op (``t1 + t2 + t3 + ...``) by one ``ufunc.accumulate``, which adds in the
same order, one rounding per step, as the chain node by node.

Only ops whose stacked rows were checked to give the same bits as one value at a time take
part (WAVE_OPS; tests/test_wave.py compares them at float32 and float64 with nan, inf and -0),
and only on 0-d operands of the evaluation dtype (floating point) or number literals. Every
other node is evaluated as before; a stacked call of a rule is at most ops.core.SMALL
elements, so that the rules' small-tensor paths are the ones a single value takes."""

from typing import Any

import numpy as np

from .ops import OPS
from .ops.core import SMALL, Whole

# Ops whose forward and gradient rules give the same bits on a stack of 0-d values as on each
# value alone (tests/test_wave.py checks every one of them).
WAVE_OPS = frozenset(
    {"add", "sub", "mul", "div", "neg", "sin", "cos", "tan", "exp", "log", "tanh", "sqrt"}
    | {"sigmoid", "abs", "relu", "square", "reciprocal", "atan", "expm1", "log1p"}
)
# Ops that take number literals (as weak scalars, cast to the tensor's dtype: ops.arithmetic's
# _num): a column of them in that dtype gives the same numbers.
NUMBER_OPS = frozenset({"add", "sub", "mul", "div"})
# A left chain of one of these on 0-d values is one accumulate.
CHAINS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}
# Gradient rules that send the arriving adjoint on unchanged (the same array).
PASS = frozenset({("add", 0), ("add", 1), ("sub", 0)})
WHOLE = float(1 << 24)  # a whole-number literal up to this is exact in float32 (_num)

ENABLED = True  # (tests switch it off to compare with node-by-node evaluation)


def _weak(v):
    """Whether a number literal computes as a weak scalar in the tensor's dtype."""
    return v.__class__ is float or (v.__class__ is Whole and -WHOLE <= v <= WHOLE)


class _Group:
    """Nodes of one op, level and operand kinds: one stacked call."""

    __slots__ = ("level", "op", "ids", "result")

    def __init__(self, level, op):
        self.level, self.op, self.ids = level, op, []
        self.result: Any = None


class _Chain:
    """op(op(op(head, r1), r2), r3)...: the values of its links are one accumulate."""

    __slots__ = ("level", "op", "head", "ids", "result")

    def __init__(self, level, op, head):
        self.level, self.op, self.head, self.ids = level, op, head, []
        self.result: Any = None


_CHECKED = _Group(-1, "")  # (a unit computed: no level to wait for, no rows to read)
_CHECKED.result = True


class Wave:
    """The forward pass's deferred nodes: ``defer`` takes a node (returning a stand-in value
    of its shape and dtype) or declines it; ``flush`` computes every deferred value."""

    def __init__(self, nodes, dtype):
        self.nodes = nodes
        self.dtype = np.dtype(dtype)
        # node id -> the _Group or _Chain it was deferred in; _CHECKED for a 0-d operand of
        # the dtype computed otherwise
        self.of: list = []
        self.labels: dict[tuple, str] = {}  # (op, operands that are numbers) -> label
        self.pending = 0  # deferred nodes not computed yet
        self.groups: dict[tuple, _Group] = {}
        self.tails: dict[int, _Chain] = {}  # the last link's id -> its chain
        self.units: list = []
        self.stand_in = np.broadcast_to(np.zeros((), self.dtype), ())  # (read-only)

    def node(self, i, p, where, node_class):
        """Program node ``i`` (``p``) appended to the nodes as a deferred node, as the forward
        pass's emit() would append it, if it is one (an op of WAVE_OPS without attributes on
        0-d operands of the evaluation dtype or weak number literals); else False, and
        nothing is done. Its value is a stand-in until flush()."""
        name = p.op
        if name not in WAVE_OPS or p.attrs:
            return False
        nodes, of = self.nodes, self.of
        known = len(of)
        level = 0
        rg = False
        ids: tuple = ()  # the operands' node ids
        levels: tuple = ()  # their levels, -1 where computed (or a number)
        kinds: tuple = ()  # whether each is a number literal
        for a in p.args:
            a = where[a]
            if a.__class__ is not int:  # (one of several results)
                return False
            u = of[a] if a < known else None
            if u is None:  # (not deferred, nor seen yet: what it is)
                arg = nodes[a]
                v = arg.value
                if arg.op == "number":
                    if name not in NUMBER_OPS or not _weak(v):
                        return False
                    ids += (a,)
                    levels += (-1,)
                    kinds += (True,)
                    continue
                ev = self.dtype
                if (
                    v.__class__ is not np.ndarray
                    or v.shape
                    or (v.dtype is not ev and v.dtype != ev)
                ):
                    return False
                if a >= known:
                    of.extend([None] * (a + 1 - known))
                    known = a + 1
                u = of[a] = _CHECKED  # (a value computed before stays as it is)
            if nodes[a].requires_grad:
                rg = True
            lv = u.level if u.result is None else -1
            if lv >= level:
                level = lv + 1
            ids += (a,)
            levels += (lv,)
            kinds += (False,)
        if False not in kinds:  # (numbers only)
            return False
        args = p.args if ids == p.args else ids
        n = len(nodes)
        unit: _Group | _Chain | None = None
        if name in CHAINS and levels[0] >= 0:
            first = args[0]
            chain = self.tails.get(first)
            if chain is not None and chain.op == name and levels[1] < chain.level:
                del self.tails[first]
            elif nodes[first].op == name:  # a chain starts from an earlier link
                chain = _Chain(level, name, first)
                self.units.append(chain)
            else:
                chain = None
            if chain is not None:
                self.tails[n] = unit = chain
        if unit is None:
            key = (level, name, kinds)
            unit = self.groups.get(key)
            if unit is None:
                unit = self.groups[key] = _Group(level, name)
                self.units.append(unit)
        unit.ids.append(n)
        if known < n:
            of.extend([None] * (n - known))
        of.append(unit)
        self.pending += 1
        label = None
        if rg:
            known_as = (name, kinds)
            label = self.labels.get(known_as)
            if label is None:
                op = OPS[name]
                if op.grads is None:
                    rg = False
                else:
                    label = self.labels[known_as] = op.label_for(kinds, {})
        nodes.append(node_class(n, name, args, None, i, self.stand_in, rg, label, p.name))
        where[i] = n
        return True

    def waiting(self, argn):
        """Whether any of these nodes' values is deferred and not computed yet."""
        of = self.of
        for a in argn:
            u = of[a.id] if a.id < len(of) else None
            if u is not None and u.result is None:
                return True
        return False

    def flush(self):
        """Compute every deferred value, by levels; a unit that fails in any way is
        computed node by node, as the forward pass would have (its error is theirs)."""
        if not self.pending:
            return
        units = sorted(self.units, key=lambda u: u.level)  # (stable: groups in order made)
        self.pending, self.groups, self.tails, self.units = 0, {}, {}, []
        nodes = self.nodes
        for unit in units:
            ids = unit.ids
            try:
                values = self._chain(unit) if isinstance(unit, _Chain) else self._group(unit)
            except Exception:  # (never expected: then exactly as node by node)
                values = None
            if values is None:
                for i in ids:
                    nodes[i].value = _one(nodes, i, self.dtype)
                    self.of[i] = None
                continue
            unit.result = values
            for k, i in enumerate(ids):
                nodes[i].value = values[k, ...]

    def _column(self, ids):
        """The 0-d values (or weak number literals) of nodes ``ids`` as one array."""
        nodes, of = self.nodes, self.of
        first = ids[0]
        u = of[first] if first < len(of) else None
        if u is not None and u.result is not None and ids == u.ids:
            return u.result  # (a whole unit's results, in order: the common case)
        if all(i == first for i in ids):
            return np.full(len(ids), nodes[first].value, self.dtype)
        return np.fromiter((float(nodes[i].value) for i in ids), self.dtype, len(ids))

    def _group(self, unit):
        nodes, ev = self.nodes, self.dtype
        ids = unit.ids
        fn = OPS[unit.op].forward
        arity = len(nodes[ids[0]].args)
        cols = [self._column([nodes[i].args[k] for i in ids]) for k in range(arity)]
        out = np.empty(len(ids), ev)
        for s in range(0, len(ids), SMALL):
            part = np.asarray(fn(*[c[s : s + SMALL] for c in cols]), dtype=ev)
            if part.shape != out[s : s + SMALL].shape:
                return None
            out[s : s + SMALL] = part
        # A nan's sign and payload depend on the order in which a loop of numpy's takes two
        # nan operands, which differs between its loops: those are computed one by one.
        for j in np.flatnonzero(np.isnan(out)):
            out[j] = _one(nodes, ids[j], self.dtype)
        return out

    def _chain(self, unit):
        nodes, ev = self.nodes, self.dtype
        ids = unit.ids
        col = np.empty(len(ids) + 1, ev)
        col[0] = nodes[unit.head].value
        col[1:] = self._column([nodes[i].args[1] for i in ids])
        acc = CHAINS[unit.op].accumulate(col, dtype=ev)
        return None if np.isnan(acc[-1]) else acc[1:]  # (a nan goes on: see _group)


def _typed(op, argn, dtype):
    from .engine import _typed

    return _typed(op, argn, dtype)


def _one(nodes, i, dtype):
    """Node ``i``'s value computed alone, as the forward pass computes it."""
    node = nodes[i]
    op = OPS[node.op]
    operands, out_dtype, fn = _typed(op, [nodes[a] for a in node.args], dtype)
    return np.asarray(fn(*operands), dtype=out_dtype)


FOLD = 16  # an adjoint summed from more contributions than this is one accumulate


def _gather(values, ev):
    """0-d values (arrays, numpy scalars, weak number literals) as one array of dtype ev."""
    first = values[0]
    if all(v is first for v in values):
        return np.full(len(values), first, ev)
    return np.fromiter(map(float, values), ev, len(values))


def _sent(got, made, row, results):
    """What ``got`` (2 * consumer + arg position, each) was sent, as one column, where one
    rule's stacked array sent it all; else None."""
    w = np.fromiter(got, np.int64, len(got))
    if w.min() < 0:
        return None
    which = made[w]
    first = which[0]
    if (which != first).any():
        return None
    return results[first][row[w]]


def backward(nodes, out, seed, dtype, free=False):
    """engine.backward's reverse loop, by waves, where every node the pass runs a rule for is
    a 0-d node of WAVE_OPS on 0-d operands (and weak number literals) of the evaluation
    dtype: each rule is one stacked call for all its nodes of one level, and each adjoint is
    the same sum, in the same order, as node by node. Returns False, having changed
    nothing, where that does not hold (the caller then runs the loop itself)."""
    ev = np.dtype(dtype)
    if (
        not ENABLED
        or ev.kind != "f"
        or seed.__class__ is not np.ndarray
        or seed.shape
        or seed.dtype != ev
    ):
        return False
    # The structure, from the output back: who sends what to whom, and the level of each
    # node (one more than its consumers' where a rule computes what it is sent; the same
    # where the adjoint is sent on unchanged).
    level = [-1] * (out + 1)
    level[out] = 0
    # node id -> what it is sent, in order: ~i for consumer i's own adjoint sent on, else
    # 2 * i + k for what consumer i's rule for its argument k computes
    sources: list = [None] * (out + 1)
    by_level: list[list[int]] = [[]]  # node ids of each level, from the output back
    rules_at: list[dict] = [{}]  # level -> (op, arg position) -> consumer ids
    # op -> (rule, whether it sends the adjoint on, its key) for each argument position
    per_op: dict[str, tuple] = {}
    # node id -> whether its value was seen to be 0-d of dtype ev (values do not change here)
    good = [False] * (out + 1)
    for i in range(out, -1, -1):
        lv = level[i]
        if lv < 0:
            continue
        by_level[lv].append(i)
        node = nodes[i]
        args = node.args
        if not args:
            continue
        name = node.op
        if name not in WAVE_OPS or node.attrs or node.bufs:
            return False
        if not good[i]:
            v = node.value
            if v.__class__ is not np.ndarray or v.shape or v.dtype != ev:
                return False
        how = per_op.get(name)
        if how is None:
            rules = OPS[name].grads
            how = per_op[name] = tuple(
                (rules[k], (name, k) in PASS, (name, k)) for k in range(len(rules))
            )
        for k, a in enumerate(args):
            arg = nodes[a]
            if not good[a]:
                if arg.op == "number":
                    if name not in NUMBER_OPS or not _weak(arg.value):
                        return False
                    continue
                w = arg.value
                if w.__class__ is not np.ndarray or w.shape or w.dtype != ev:
                    return False
                good[a] = True
            rule, passes, key = how[k]
            if rule is None or not arg.requires_grad:
                continue
            if passes:
                la = lv
                what = ~i
            else:
                la = lv + 1
                at = rules_at[lv]
                got = at.get(key)
                if got is None:
                    at[key] = [i]
                else:
                    got.append(i)
                what = 2 * i + k
            if level[a] < la:
                level[a] = la
                if la == len(by_level):
                    by_level.append([])
                    rules_at.append({})
            got = sources[a]
            if got is None:
                sources[a] = what
            elif got.__class__ is int:
                sources[a] = [got, what]
            else:
                got.append(what)
    # The numbers, level by level: each adjoint, then every rule of that level at once. An
    # input sent one thing has it as its adjoint; what is sent to one of several waits, as
    # its stacked array and row (numpy columns: ``made[w]`` indexes ``results``, ``row[w]``
    # the row in it), for the sum.
    adj: list = [None] * (out + 1)
    adj[out] = seed
    asarray = np.asarray
    results: list = []  # each rule's stacked array, in the order computed
    made = np.empty(2 * (out + 1), np.int32)  # 2 * consumer id + arg position -> result
    row = np.empty(2 * (out + 1), np.int32)  # -> its row there (entries written are read)

    def part(w):  # (what a rule sends is an array, node by node: np.asarray of its result)
        if w < 0:
            return asarray(adj[~w])
        return results[made[w]][row[w], ...]

    def number(w):
        if w < 0:
            return float(adj[~w])
        return float(results[made[w]][row[w]])

    for lv, ids in enumerate(by_level):
        for a in ids:  # (from the last back: a sent-on adjoint is summed before its use)
            got = sources[a]
            if got is None:
                continue
            sources[a] = None
            if got.__class__ is int:
                if got < 0:
                    adj[a] = asarray(adj[~got])
                continue  # (else set by the rule)
            if len(got) > FOLD:
                col = _sent(got, made, row, results)
                if col is None:  # (sent on, or from several rules: one by one)
                    col = np.fromiter(map(number, got), ev, len(got))
                acc = np.add.accumulate(col, dtype=ev)
                if not np.isnan(acc[-1]):  # (a nan: one by one, see Wave._group)
                    adj[a] = ev.type(acc[-1])  # (0-d + 0-d is a numpy scalar, node by node)
                    continue
            g = part(got[0])
            for w in got[1:]:
                g = g + part(w)
            adj[a] = g
        for (name, k), consumers in rules_at[lv].items():
            rule = OPS[name].grads[k]
            n = len(consumers)
            g = _gather([adj[i] for i in consumers], ev)
            o = _gather([nodes[i].value for i in consumers], ev)
            arity = len(nodes[consumers[0]].args)
            cols = [
                _gather([nodes[nodes[i].args[j]].value for i in consumers], ev)
                for j in range(arity)
            ]
            result = np.empty(n, ev)
            for s in range(0, n, SMALL):
                e = s + SMALL
                part_ = np.asarray(rule(g[s:e], o[s:e], *[c[s:e] for c in cols]))
                if part_.shape != result[s:e].shape:
                    return False
                result[s:e] = part_  # (a cast to the input's dtype, as _unbroadcast's)
            for nan_at in np.flatnonzero(np.isnan(result)):  # (see Wave._group)
                i = consumers[nan_at]
                node = nodes[i]
                argn = [nodes[a] for a in node.args]
                vals = _typed(OPS[name], argn, dtype)[0]
                result[nan_at] = np.asarray(rule(adj[i], node.value, *vals))
            several = []  # rows sent to an input of several sources
            for j, i in enumerate(consumers):
                a = nodes[i].args[k]
                if sources[a].__class__ is int:  # (its only source)
                    adj[a] = result[j, ...]
                else:
                    several.append(j)
            if several:
                rows = np.array(several, np.int32)
                w = 2 * np.array(consumers, np.int64)[rows] + k
                made[w] = len(results)
                row[w] = rows
                results.append(result)
    for node in nodes:
        i = node.id
        if free and i < out and node.args and level[i] >= 0:
            node.value = None
            adj[i] = None
        if node.requires_grad:
            node.grad = adj[i] if i <= out else None
        if i > out or level[i] < 0:
            node.label = None
    return True
