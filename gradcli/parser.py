"""Program text -> graph: a flat list of nodes, each naming only earlier nodes.

The LALR parser calls the Builder's methods as it reduces rules, so nodes are made in
evaluation order and nothing recurses on the nesting depth of the user's program. Python
semantics are kept on purpose: arithmetic on plain numbers folds to a number (``2*3`` is 6
before any tensor sees it, as in Python), and names bound to numbers stay numbers, so a
node's PyTorch label is chosen exactly as PyTorch would choose it.
"""

import functools
import gc
import math
import os
import re
import unicodedata
from collections.abc import Callable
from math import copysign
from typing import Any, ParamSpec, TypeVar, cast

from . import ops as _ops
from .errors import EvaluationError, GradcliError, ParseError, UnknownNameError
from .ops import INTEGER_OR_TUPLE_PARAMS, INTEGER_PARAMS, KEYWORDS, REQUIRED, SEQUENCE_PARAMS
from .ops import results as _results
from .ops.core import DTYPE_NAMES, DType, Whole

CONSTANT_NAMES = {"True": True, "False": False, "None": None}


def _takes_inplace(op, namespace=None):
    """Whether PyTorch's function for ``op`` has ``inplace=False`` (F.relu, F.elu, ...): read
    from its signature line, the one place that records PyTorch's argument names. Called in
    another namespace (torch.relu, x.relu()), PyTorch's function has no ``inplace``."""
    from . import signatures

    line = signatures.load().get(op.name)
    if line is None or "inplace=False" not in line:
        return False
    return namespace is None or line.partition("(")[0].rpartition(".")[0] == namespace


NUMBER_NAMES = {"inf": math.inf, "nan": math.nan}  # handy in a calculator: clamp(x, max=inf)
COMPARISONS = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}
CHOICES = {"reduction": ("mean", "sum", "none", "batchmean"), "approximate": ("none", "tanh")}
# what to do with a call's several results where one tensor is needed
_PICK = "pick one result: [0], .values / .indices, or unpack them: a, b = ..."
MAX_TEXT = 120  # node source text kept in output (long texts are elided in the middle)


class PNode:
    """One node of a parsed program. ``args`` are ids of earlier nodes."""

    __slots__ = ("op", "args", "attrs", "start", "end", "name")

    def __init__(self, op, args, attrs, start, end, name=None):
        self.op, self.args, self.attrs = op, args, attrs
        self.start, self.end, self.name = start, end, name


class Program:
    """A parsed program: nodes in evaluation order, free inputs, and the output node."""

    def __init__(self, text, nodes, inputs, output):
        self.text = text
        self.nodes = nodes
        self.inputs = inputs  # name -> node id, in order of first use
        self.output = output
        self.plans = {}  # evaluation plans by input shapes (engine.forward)
        self.once = False  # evaluated only once (api.evaluate on text): no plan recorded

    def source(self, node):
        """The source text of a node, elided in the middle when long (in constant time: a
        deep program has many long, nested spans). A span whose only whitespace is lone
        spaces (all of a one-line program's) is cut out as it is, not split and joined."""
        text, start, end = self.text, node.start, node.end
        _, first, lines = self._spaces()
        if end - start <= MAX_TEXT and (
            end <= first or (lines and text.find("\n", start, end) < 0)
        ):
            return text[start:end].strip(" ")
        return elide(text, start, end)

    def sources(self, nodes):
        """[self.source(node) for node in nodes], a run of one node as one text; the spans
        before the text's first newline (or other uneven whitespace) without a call each."""
        text, (_, first, _), source = self.text, self._spaces(), self.source
        half = MAX_TEXT // 2 - 1
        out: list[str] = []
        append, last, t = out.append, None, ""
        for node in nodes:
            if node is not last:
                last, start, end = node, node.start, node.end
                if end > first:
                    t = source(node)
                elif end - start <= MAX_TEXT:
                    t = text[start:end].strip(" ")
                else:
                    t = text[start : start + half].strip(" ") + " … "
                    t += text[end - half : end].strip(" ")
            append(t)
        return out

    def _spaces(self):
        known = self.__dict__.get("_spacing")
        if known is None or known[0] is not self.text:
            known = self._spacing = _spacing(self.text)
        return known

    def position(self, offset):
        return position_of(self.text, offset)


# the whitespace str.split() splits at but a space, the ASCII ones first (tests check it)
_SPACES = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
_SPACES += "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def _spacing(text):
    """(text, where its first whitespace other than a lone space is, whether all such is
    newlines): a span before that, or without a newline then, has only lone spaces."""
    odd = [c for c in ("  ", *(_SPACES[:9] if text.isascii() else _SPACES)) if c in text]
    return text, min((text.find(c) for c in odd), default=len(text)), set(odd) <= {"\n"}


def elide(text, start=0, end=None, limit=MAX_TEXT):
    """``text[start:end]`` on one line, with its middle cut out past ``limit`` characters."""
    end = len(text) if end is None else end
    if end - start <= limit:
        return " ".join(text[start:end].split())
    half = limit // 2 - 1
    return (
        " ".join(text[start : start + half].split())
        + " … "
        + " ".join(text[end - half : end].split())
    )


def short(name, limit=40):
    """A user's name for an error message: long ones are elided, with their length."""
    if len(name) <= limit:
        return name
    return f"{name[:24]}…{name[-8:]} ({len(name)} characters)"


def position_of(text, offset):
    """1-based (line, column) of a character offset."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def caret(text, offset, width=1):
    """The source line around ``offset`` with a caret under it (long lines are windowed)."""
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    line = text[start:] if end < 0 else text[start:end]
    col = offset - start
    if len(line) > 100:  # keep the context readable on one screen line
        lo = max(0, col - 50)
        line, col = (
            ("…" if lo else "") + line[lo : lo + 100] + ("…" if lo + 100 < len(line) else ""),
            col - lo + (1 if lo else 0),
        )
    line = "".join(c if c.isprintable() and c.isascii() else "?" for c in line)
    return line + "\n" + " " * col + "^" * max(1, min(width, len(line) - col))


class E:
    """A value while parsing: a number, a node, a list literal or a constant (str/bool/None)."""

    __slots__ = ("kind", "value", "start", "end")

    def __init__(self, kind, value, start, end):
        self.kind, self.value, self.start, self.end = kind, value, start, end


# An E or PNode made by the hot paths of a long program (number, name, x + y, sin(x)) is
# filled in place, one slot a statement: about half what a call of its __init__ costs in 3.11.
_new = object.__new__


def _node_value(nodes, op, args, start, end):
    """E("node", node_id(op, args, None, start, end), start, end) for a tuple ``args``,
    without the two __init__ calls: the direct paths' node."""
    n = _new(PNode)
    n.op = op
    n.args = args
    n.attrs = None
    n.start = start
    n.end = end
    n.name = None
    nodes.append(n)
    e = _new(E)
    e.kind = "node"
    e.value = len(nodes) - 1
    e.start = start
    e.end = end
    return e


class _PostLex:
    """Drops separators inside brackets and collapses runs of them (Python's rule); the lean
    loop (gradcli.lalr) applies the same rule with these names."""

    always_accept = ("_SEP",)
    SEP, OPEN, CLOSE = "_SEP", ("LPAR", "LSQB"), ("RPAR", "RSQB")

    def process(self, stream):
        depth, pending, started = 0, None, False
        for tok in stream:
            kind = tok.type
            if kind == self.SEP:
                if depth == 0 and started:
                    pending = tok
                continue
            if pending is not None:
                yield pending
                pending = None
            if kind in self.OPEN:
                depth += 1
            elif kind in self.CLOSE and depth:
                depth -= 1
            started = True
            yield tok


_PY_COMPARE = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
}
FOLDABLE = {"add", "sub", "mul", "div", "pow", "neg", "floor_divide", "remainder", *_PY_COMPARE}
# Python's integer operators, on numbers that are whole
INTEGER_FOLDS: dict[str, Callable[..., int]] = {
    "bitwise_and": lambda a, b: a & b,
    "bitwise_or": lambda a, b: a | b,
    "lshift": lambda a, b: a << b,
    "rshift": lambda a, b: a >> b,
    "bitwise_not": lambda a: ~a,
}


def _fold(op, a: Any, b: Any = None):  # b: a number, None for the unary ops
    """Python-number arithmetic with IEEE results instead of exceptions (1/0 -> inf)."""
    try:
        if _both_whole(a, b):
            whole = _whole_fold(op, a, b)  # Python's int arithmetic stays int
            if whole is not None:
                return whole
        if op == "add":
            return a + b
        if op == "sub":
            return a - b
        if op == "mul":
            return a * b
        if op == "neg":
            return -a
        if op == "div":
            if b == 0:
                return (
                    math.nan
                    if a == 0 or math.isnan(a)
                    else math.copysign(math.inf, a) * math.copysign(1, b)
                )
            return a / b
        if op in _PY_COMPARE:
            return float(_PY_COMPARE[op](a, b))
        if op == "floor_divide":
            return _fold("div", a, b) if b == 0 else a // b
        if op == "remainder":
            return math.nan if b == 0 else a % b
        if op == "pow":
            if a < 0 and b != int(b) if math.isfinite(b) else False:
                return math.nan
            r = a**b
            return r if isinstance(r, float) else math.nan
    except ZeroDivisionError:
        return math.inf
    except OverflowError:
        return math.inf if a > 0 or (b == int(b) and int(b) % 2 == 0) else -math.inf
    except ValueError:
        return math.nan
    raise AssertionError(op)


def _both_whole(a, b):
    """Whether a fold's operands are integer literals (b: None for the unary ops)."""
    return isinstance(a, Whole) and (b is None or isinstance(b, Whole))


def _whole_fold(op, a, b):
    """+, -, *, //, % and ** (a power >= 0) of integer literals: an integer, as in Python."""
    if op not in ("add", "sub", "mul", "neg", "floor_divide", "remainder", "pow"):
        return None
    if (op in ("floor_divide", "remainder") and b == 0) or (op == "pow" and b < 0):
        return None
    r = _fold(op, float(a), None if b is None else float(b))
    return Whole(r) if math.isfinite(r) and r.is_integer() else None


_PLAIN_SEVERAL: dict[str, str | None] = {}  # tuple_row(name, {}) by name, as plain calls ask


class Builder:
    """The parser's callbacks: each reduce makes at most one node."""

    direct = True  # the short paths of x + y, 2 * x and sin(x) (tests compare them with off)

    def __init__(self, text):
        self.text = text
        self.nodes = []
        self.env = {}
        self.inputs = {}
        self.numbers = {}  # a number literal's attrs, one dict per value (read only)
        self.unary: dict[str, str] = {}  # unary_op() by name

    # -- helpers ------------------------------------------------------------------------
    def error(self, cls, message, start, end=None, hint=None):
        return cls(
            message,
            position=position_of(self.text, start),
            context=caret(self.text, start, (end or start + 1) - start),
            hint=hint,
        )

    def node(self, op, args, attrs, start, end):
        return E("node", self.node_id(op, args, attrs, start, end), start, end)

    def node_id(self, op, args, attrs, start, end):
        """node() without its value: the new node's id."""
        nodes = self.nodes
        nodes.append(PNode(op, args if args.__class__ is tuple else tuple(args), attrs, start, end))
        return len(nodes) - 1

    def as_node(self, e, what="an operand"):
        """The node id of a value used as a tensor (numbers and list literals become nodes)."""
        kind = e.kind
        if kind == "node":
            return e.value
        if kind == "ns":
            return self.ns_value(e).value
        if kind == "num":
            return self.number_node(e)
        if e.kind == "list":
            return self.node("const", (), {"value": self.literal(e)}, e.start, e.end).value
        if e.kind == "tuple":
            raise self.error(
                ParseError,
                f"{what} must be a tensor, not {self.tuple_type(e)}",
                e.start,
                e.end,
                hint=_PICK,
            )
        raise self.error(
            ParseError,
            f"{what} must be a tensor or a number, not {_describe(e.value)}",
            e.start,
            e.end,
        )

    def number_node(self, e):
        """The id of a new number node for the number ``e``."""
        v = e.value  # (-0.0 == 0.0 and 2 == 2.0, but they are different literals)
        key = (v.__class__, v, copysign(1.0, v))
        attrs = self.numbers.get(key)
        if attrs is None:
            attrs = self.numbers[key] = {"value": v}
        nodes = self.nodes
        n = _new(PNode)  # PNode("number", (), attrs, e.start, e.end), without __init__
        n.op = "number"
        n.args = ()
        n.attrs = attrs
        n.start = e.start
        n.end = e.end
        n.name = None
        nodes.append(n)
        return len(nodes) - 1

    def literal(self, e):
        """A list literal of numbers as nested Python lists (checked, without recursion)."""
        out: list[Any] = []  # numbers and nested lists of them
        stack = [(e, out)]
        while stack:
            item, dest = stack.pop()
            for el in item.value:
                if isinstance(el, tuple):
                    raise self.error(
                        ParseError, "keyword arguments are not allowed in a list", el[2].start
                    )
                if el.kind == "num":
                    dest.append(el.value)
                elif el.kind == "list":
                    sub: list[Any] = []
                    dest.append(sub)
                    stack.append((el, sub))
                else:
                    raise self.error(
                        ParseError,
                        "a list literal holds numbers only (use variables as inputs instead)",
                        el.start,
                        el.end,
                    )
        return out

    def apply(self, op, args, attrs, start, end):
        """An operator applied to values: numbers fold as in Python, anything else is a node."""
        if op in FOLDABLE:
            for a in args:
                if a.kind != "num":
                    break
            else:
                return E("num", _fold(op, *[a.value for a in args]), start, end)
        if op == "div" and args[0].kind == "num" and args[1].kind != "num":
            # Python's `2 / x` is `x.reciprocal() * 2` in PyTorch: two nodes.
            rec = self.node("reciprocal", [self.as_node(args[1])], None, args[1].start, args[1].end)
            return self.node("mul", [rec.value, self.as_node(args[0])], None, start, end)
        ids = tuple([a.value if a.kind == "node" else self.as_node(a) for a in args])
        return E("node", self.node_id(op, ids, attrs, start, end), start, end)

    def inplace_false(self, name, value, tok):
        """PyTorch's ``inplace=`` of an activation: False is the only meaning gradcli has
        (True would overwrite a tensor a later use of the same name reads)."""
        if value.kind == "const" and value.value is False:
            return
        if value.kind == "const" and value.value is True:
            raise self.error(
                EvaluationError,
                f"{name}(inplace=True) overwrites its input, which a later use of the same name "
                "would then read; gradcli values never change in place",
                tok.start_pos,
                tok.end_pos,
                hint=f"use {name}(..., inplace=False) (the same numbers on a fresh tensor)",
            )
        raise self.error(
            ParseError, f"{name}(): inplace must be True or False", tok.start_pos, tok.end_pos
        )

    def call(self, name_tok, args, end, receiver=None, namespace=None, spelled=None):
        """A call by name: bare (namespace None), a method (namespace "Tensor", with the
        receiver as first argument) or qualified (torch.sum, F.relu: a module's path)."""
        name = str(name_tok)
        spelled = spelled or name
        op = _ops.lookup(name, namespace)
        if receiver is None and op is not None and not op.params and self.plain_args(op, args):
            return self.plain_call(op, args, name_tok.start_pos, end)
        if op is None:
            message, hint = _ops.unknown(spelled, name, namespace)
            raise self.error(
                UnknownNameError, message, name_tok.start_pos, name_tok.end_pos, hint=hint
            )
        positional = []
        keywords = {}
        tensor_kw = {}  # tensor arguments by name: torch.add(input=x, other=y)
        for a in args or ():
            if a is None:
                continue
            if isinstance(a, tuple):
                kw, value, tok = a[1], a[2], a[3]
                if kw not in op.params and kw not in op.inputs:  # axis=, keepdims=, ord=
                    kw = op.keywords.get(kw, KEYWORDS.get(kw, kw))
                if kw in op.inputs and kw not in op.params:
                    if kw in tensor_kw:
                        raise self.error(
                            ParseError, f"{name}() got argument '{kw}' twice", tok.start_pos
                        )
                    tensor_kw[kw] = (value, tok)
                    continue
                if kw == "inplace" and kw not in op.params and _takes_inplace(op, namespace):
                    self.inplace_false(name, value, tok)  # F.relu(x, inplace=False)
                    continue
                if kw not in op.params:
                    import difflib

                    close = (
                        difflib.get_close_matches(kw, list(op.params), n=1) if len(kw) < 64 else []
                    )
                    raise self.error(
                        UnknownNameError,
                        f"{name}() got an unexpected keyword argument '{short(kw)}'",
                        tok.start_pos,
                        tok.end_pos,
                        hint=f"did you mean '{close[0]}'?"
                        if close
                        else (f"it takes {', '.join(op.params)}" if op.params else None),
                    )
                if kw in keywords:
                    raise self.error(
                        ParseError,
                        f"{name}() got argument '{kw}' twice",
                        tok.start_pos,
                        tok.end_pos,
                    )
                keywords[kw] = value
            else:
                if keywords:
                    raise self.error(
                        ParseError,
                        "a positional argument follows a keyword argument",
                        a.start,
                        a.end,
                    )
                positional.append(a)
        ahead = op.inputs[len(positional) : op.receiver]  # x.polygamma(n=1): n comes by name
        mine = op.inputs[min(op.receiver, len(op.inputs) - 1)]
        if receiver is not None and ahead and mine not in tensor_kw and {*ahead} <= {*tensor_kw}:
            tensor_kw[mine] = (receiver, None)
        elif receiver is not None:  # x.where(c, y) is where(c, x, y): the row says where x goes
            positional.insert(min(op.receiver, len(positional)), receiver)
        if (
            op.tensor_overload
            and len(positional) > op.arity
            and self.value(positional[op.arity]).kind == "node"
        ):
            op = _ops.OPS[op.tensor_overload]  # torch.max(a, b) is torch.maximum(a, b)
            extra = [kw for kw in keywords if kw not in op.params]
            if extra:  # torch.max(a, b, dim=0): PyTorch has no such overload either
                raise self.error(
                    ParseError,
                    f"{name}() with two tensors is {op.name}(), which takes no argument "
                    f"'{extra[0]}'",
                    receiver.start if receiver is not None else name_tok.start_pos,
                    end,
                )
        start = receiver.start if receiver is not None else name_tok.start_pos
        for k, iname in enumerate(op.inputs):
            if iname not in tensor_kw:
                continue
            value, tok = tensor_kw.pop(iname)
            if len(positional) != k:
                raise self.error(
                    ParseError,
                    f"{name}() got argument '{iname}' twice"
                    if len(positional) > k
                    else f"{name}(): '{iname}' given by name, but an argument before it is missing",
                    tok.start_pos,
                    tok.end_pos,
                )
            positional.append(value)
        if tensor_kw:  # a later tensor argument by name with an earlier one missing
            iname, (value, tok) = next(iter(tensor_kw.items()))
            raise self.error(
                ParseError,
                f"{name}(): '{iname}' given by name, but an argument before it is missing",
                tok.start_pos,
                tok.end_pos,
            )
        if op.name == "where" and receiver is None and len(positional) == 1 and not keywords:
            # torch.where(condition) (or condition=m) is torch.nonzero(condition, as_tuple=True)
            e = self.apply("nonzero_tuple", positional, {"as_tuple": True}, start, end)
            return E("tuple", e.value, start, end)
        # dtype= is keyword-only, as in PyTorch's signatures (x.to(dtype) says otherwise)
        params = [p for p in op.params if p != "dtype" or p in op.free]
        if op.listarg and op.variadic:  # einsum('ij,jk', a, b) or einsum('ij,jk', [a, b])
            if not positional or positional[0].kind != "const":
                raise self.error(
                    ParseError,
                    f"{name}() takes an equation string first, e.g. {name}('ij,jk->ik', a, b)",
                    start,
                    end,
                )
            rest = positional[1:]
            if len(rest) == 1 and rest[0].kind == "list":
                rest = rest[0].value
            positional = [E("list", rest, start, end), positional[0]]
        elif op.variadic and len(positional) > op.arity + 1:  # reshape(x, 3, 2)
            rest = positional[op.arity :]
            positional = positional[: op.arity] + [E("list", rest, rest[0].start, rest[-1].end)]
        if op.name in _results.TENSOR_VARARGS and positional and positional[0].kind == "node":
            tensors = [p for p in positional if p.kind == "node"]  # meshgrid(a, b)
            positional = [E("list", tensors, tensors[0].start, tensors[-1].end)] + positional[
                len(tensors) :
            ]
        if op.listarg and positional and positional[0].kind == "list":
            for k, t in enumerate(positional[0].value):
                if isinstance(t, E) and t.kind == "tuple":  # cat([x.split(2)])
                    raise self.error(
                        ParseError,
                        f"{name}(): expected Tensor as element {k} in argument 0, but got "
                        f"{self.tuple_type(t)}",
                        t.start,
                        t.end,
                        hint=f"pass the results themselves: {name}(x.split(2))",
                    )
        if op.listarg and positional and positional[0].kind == "tuple":
            # torch.cat(x.split(2)), torch.stack(torch.std_mean(x)): a call's several results
            positional = [E("list", [positional[0]], positional[0].start, positional[0].end)] + (
                positional[1:]
            )
        if op.listarg:  # cat([a, b], dim): the tensors come in one list
            if not positional or positional[0].kind != "list":
                raise self.error(
                    ParseError,
                    f"{name}() takes a list of tensors first, e.g. {name}([a, b], dim=0)",
                    start,
                    end,
                )
            tensors = positional[0].value
            if not tensors or any(isinstance(t, tuple) for t in tensors):
                raise self.error(
                    ParseError,
                    f"{name}() needs a non-empty list of tensors",
                    positional[0].start,
                    positional[0].end,
                )
            positional = positional[1:]
        arity = 0 if op.listarg else op.arity
        if len(positional) < arity or len(positional) > arity + len(params):
            want = f"{op.arity} tensor argument{'s' if op.arity != 1 else ''}"
            if params:
                want += f" and up to {len(params)} more ({', '.join(params)})"
            raise self.error(
                ParseError, f"{name}() takes {want}, got {len(positional)}", start, end
            )
        attrs: dict[str, object] = {}
        optional: dict[str, E] = {}
        for pname, e in list(zip(params, positional[arity:], strict=False)) + list(
            keywords.items()
        ):
            if pname in attrs:
                raise self.error(
                    ParseError, f"{name}() got argument '{pname}' twice", e.start, e.end
                )
            if pname in op.tensor_params and e.kind != "const":
                optional[pname] = e  # conv2d's bias, layer_norm's weight: one more tensor
                attrs[pname] = True
                continue
            attrs[pname] = self.attr(op, name, pname, e)
            if pname == "dim" and attrs[pname] is None and op.reduction:
                attrs[pname] = ()  # dim=None given: PyTorch's dim overload, every dimension
        for pname, default in op.params.items():
            if pname not in attrs and default is REQUIRED:
                raise self.error(ParseError, f"{name}() needs the argument '{pname}'", start, end)
            attrs.setdefault(pname, default)
        args = (
            tensors
            if op.listarg
            else positional[:arity] + [optional[p] for p in params if p in optional]
        )
        several = _results.tuple_row(op.name, attrs)
        for k, a in enumerate(args):
            if a.kind == "tuple":
                if op.listarg and len(args) == 1:  # the elements, spread when evaluated
                    e = self.node(several or op.name, [a.value], attrs or None, start, end)
                    return E("tuple" if several else "node", e.value, start, end)
                raise self.error(
                    ParseError,
                    f"{name}(): argument '{op.inputs[min(k, len(op.inputs) - 1)]}' (position "
                    f"{k + 1}) must be Tensor, not {self.tuple_type(a)}",
                    a.start,
                    a.end,
                    hint=_PICK,
                )
        e = self.apply(several or op.name, args, attrs or None, start, end)
        return E("tuple", e.value, start, end) if several else e

    @staticmethod
    def plain_args(op, args):
        """Whether call() would take ``args`` as they are: as many tensors or numbers as
        the op (one without parameters or list arguments) takes, nothing by keyword."""
        if op.listarg or op.name in _results.TENSOR_VARARGS or len(args or ()) != op.arity:
            return False
        return all(a.__class__ is E and a.kind != "tuple" for a in args or ())

    def plain_call(self, op, args, start, end):
        """call() for plain_args: what its checks would come to, without them (sin(x))."""
        several = _PLAIN_SEVERAL.get(op.name, False)
        if several is False:
            several = _PLAIN_SEVERAL[op.name] = _results.tuple_row(op.name, {})
        e = self.apply(several or op.name, args or (), None, start, end)
        return E("tuple", e.value, start, end) if several else e

    def attr(self, op, fname, pname, e):
        """A constant argument (dim=, keepdim=, ...), checked for its kind."""
        if e.kind == "ns":
            e = self.ns_value(e)
        value: Any  # a number, a nested list of numbers, a string, a bool or None
        if e.kind == "num":
            value = e.value
        elif e.kind == "list":
            value = self.literal(e)
        elif e.kind == "const":
            value = e.value
        else:
            raise self.error(
                ParseError, f"{fname}(): '{pname}' must be a constant, not a tensor", e.start, e.end
            )
        default = op.params[pname]
        if pname in op.free:
            return value
        if pname == "dtype":  # sum(x, dtype=torch.float64)
            if not (isinstance(value, DType) or (value is None and default is None)):
                raise self.error(
                    ParseError,
                    f"{fname}(): dtype must be a dtype such as torch.float64, not "
                    f"{_describe(value)}",
                    e.start,
                    e.end,
                )
            return value
        integer = pname in INTEGER_PARAMS or (
            isinstance(default, int) and not isinstance(default, bool)
        )
        sequence = pname in SEQUENCE_PARAMS
        if pname in INTEGER_OR_TUPLE_PARAMS:
            # stride=2 or stride=(2, 2): an integer, or one per spatial dimension (padding
            # may also be 'same' or 'valid', divisor_override None: the row checks those)
            if isinstance(value, str) or value is None:
                return value
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(v, float) and math.isfinite(v) and v.is_integer() for v in items):
                raise self.error(
                    ParseError,
                    f"{fname}(): {pname} must be an integer or a list of integers",
                    e.start,
                    e.end,
                )
            value = tuple(int(v) for v in value) if isinstance(value, list) else int(value)
        elif pname == "dim" or sequence or integer:
            if value is None and default is None:
                return None
            many = sequence or (pname == "dim" and op.dim_list)
            items = value if isinstance(value, list) else [value]
            if (isinstance(value, list) and not many) or not all(
                isinstance(v, float) and math.isfinite(v) and v.is_integer() for v in items
            ):
                raise self.error(
                    ParseError,
                    f"{fname}(): {pname} must be an integer"
                    + (" or a list of integers" if many else ""),
                    e.start,
                    e.end,
                )
            assert value is not None  # None is not an integer: the check above raised
            value = tuple(int(v) for v in value) if isinstance(value, list) else int(value)
            if sequence and isinstance(value, int):
                value = (value,)  # x.flip(0) is x.flip((0,))
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise self.error(
                    ParseError, f"{fname}(): {pname} must be True or False", e.start, e.end
                )
        elif pname in CHOICES:
            if value not in CHOICES[pname]:
                raise self.error(
                    ParseError,
                    f"{fname}(): {pname} must be one of "
                    f"{', '.join(repr(c) for c in CHOICES[pname])}",
                    e.start,
                    e.end,
                )
        elif (isinstance(default, float) or default is None or default is REQUIRED) and not (
            isinstance(value, float) or (value is None and default is None)
        ):
            raise self.error(
                ParseError,
                f"{fname}(): {pname} must be a number" + (" or None" if default is None else ""),
                e.start,
                e.end,
            )
        return value

    # -- callbacks, one per grammar alias ---------------------------------------------
    def start(self, *stmts):
        return stmts[-1]

    def assign(self, name_tok, e):
        name = str(name_tok)
        if name in CONSTANT_NAMES or name in NUMBER_NAMES:
            raise self.error(ParseError, f"cannot assign to {name}", name_tok.start_pos)
        if e.kind == "node" and self.nodes[e.value].name is None:
            self.nodes[e.value].name = name
        self.env[name] = e
        return E(e.kind, e.value, e.start, e.end)

    def tuple_type(self, e):
        """The Python type a call's several results have: 'tuple', 'torch.return_types.max'."""
        return _results.type_name(self.nodes[cast(int, e.value)].op)

    def result_item(self, results, index, unpack, start, end):
        """One element of a call's several results (checked when evaluated: the number of
        elements may depend on shapes)."""
        attrs = {"index": index, "unpack": unpack}
        return self.node("result_item", [results.value], attrs, start, end)

    def targets(self, *names):
        return [n for n in names if n is not None]

    def unpack(self, names, e):
        """a, b = x.max(dim=0); p, q = torch.split(x, 2); x0, x1 = x (a tensor unpacks
        along its first dimension, as Python iterates over it: unbind(0))."""
        e = self.value(e)
        if e.kind == "node":
            at = {"dim": 0}
            e = E("tuple", self.node("unbind", [e.value], at, e.start, e.end).value, e.start, e.end)
        if e.kind == "list":  # a, b = (x, y)
            if len(e.value) != len(names):
                raise self.error(
                    ParseError,
                    f"{'too many' if len(e.value) > len(names) else 'not enough'} values to "
                    f"unpack (expected {len(names)}, got {len(e.value)})",
                    e.start,
                    e.end,
                )
            for tok, item in zip(names, e.value, strict=True):
                self.assign(tok, item)
            return e
        if e.kind != "tuple":
            raise self.error(
                ParseError, f"cannot unpack {_describe(e.value)}: it is not a tensor", e.start
            )
        for k, tok in enumerate(names):
            self.assign(tok, self.result_item(e, k, len(names), e.start, e.end))
        return e

    def number(self, tok):
        e = _new(E)  # E("num", value, tok.start_pos, tok.end_pos), without __init__
        e.kind = "num"
        # written as an integer: a Python int to type promotion
        e.value = Whole(tok) if tok.isdigit() else float(tok)
        e.start = tok.start_pos
        e.end = tok.end_pos
        return e

    def string(self, tok):
        return E("const", str(tok)[1:-1], tok.start_pos, tok.end_pos)

    def name(self, tok):
        e = self.env.get(tok)
        if e is not None:
            return E(e.kind, e.value, tok.start_pos, tok.end_pos)
        i = self.inputs.get(tok)  # (an input's name, unless it is F or nn: a module first)
        if i is not None and tok not in _ops.ROOTS:
            e = _new(E)  # E("node", i, tok.start_pos, tok.end_pos)
            e.kind = "node"
            e.value = i
            e.start = tok.start_pos
            e.end = tok.end_pos
            return e
        name = str(tok)
        if name in CONSTANT_NAMES:
            return E("const", CONSTANT_NAMES[name], tok.start_pos, tok.end_pos)
        if name in NUMBER_NAMES:
            return E("num", NUMBER_NAMES[name], tok.start_pos, tok.end_pos)
        if name in _ops.ROOTS:  # torch, F, nn, math: a module, unless used as a value
            return E("ns", name, tok.start_pos, tok.end_pos)
        return self.input(name, tok.start_pos, tok.end_pos)

    def input(self, name, start, end):
        if name not in self.inputs:
            n = self.node("input", (), None, start, end)
            self.nodes[n.value].name = name
            self.inputs[name] = n.value
        return E("node", self.inputs[name], start, end)

    def ns_value(self, e):
        """A module name used as a value: F and nn may be inputs (names like any other);
        torch.fft or torch.float32 is PyTorch's, and not a tensor gradcli has."""
        path = e.value
        if path in ("F", "nn"):
            return self.input(path, e.start, e.end)
        full = _ops.canonical(path)
        if full in _ops.NAMESPACES:
            message = f"{path} is a module, not a tensor"
        elif _ops.known(full):
            message = f"{path} is not supported"
        else:
            message = f"unknown name '{short(path)}'"
        raise self.error(UnknownNameError, message, e.start, e.end)

    def member(self, obj, name_tok):
        """``obj.name`` where obj is a module path: a longer path, a constant, or -- for F
        and nn when PyTorch's module has no such name -- an input's attribute (None)."""
        path = f"{obj.value}.{name_tok}"
        full = _ops.canonical(path)
        if full in _ops.CONSTANTS:
            return E("num", _ops.CONSTANTS[full], obj.start, name_tok.end_pos)
        dtype_name = full[6:] if full is not None and full.startswith("torch.") else None
        if dtype_name in DTYPE_NAMES:  # torch.int64, torch.long
            return E("const", DType(DTYPE_NAMES[dtype_name]), obj.start, name_tok.end_pos)
        if obj.value in ("F", "nn") and not _ops.known(full) and _ops.known(f"Tensor.{name_tok}"):
            return None  # F.sum(): F is an input
        return E("ns", path, obj.start, name_tok.end_pos)

    @staticmethod
    def _binary(op, spelled=False):
        """The callback of a binary operator: (a, b), or (a, its token, b) where the grammar
        names the operator's terminal (``spelled``)."""

        def callback(self, a, b):
            ka = a.kind
            if self.direct and b.kind == "node":
                # what apply() comes to for a tensor right operand (x + y, 2 * sin(x)), as
                # directly as it can be said: the hot path of a long program
                if ka == "node":
                    x = a.value
                elif ka == "num" and op != "div":
                    x = self.number_node(a)
                else:
                    return self.apply(op, [a, b], None, a.start, b.end)
                return _node_value(self.nodes, op, (x, b.value), a.start, b.end)
            return self.apply(op, [a, b], None, a.start, b.end)

        if not spelled:
            return callback

        def with_token(self, a, tok, b):
            return callback(self, a, b)

        return with_token

    add, sub, pow = _binary("add", True), _binary("sub", True), _binary("pow", True)
    mul, div, matmul = _binary("mul"), _binary("div"), _binary("matmul")
    floordiv, mod = _binary("floor_divide"), _binary("remainder")

    def integer_fold(self, op, args, tok):
        """&, |, <<, >>, ~ on Python numbers: Python's integer operators, for whole numbers."""
        values = [a.value for a in args]
        if not all(math.isfinite(v) and v.is_integer() for v in values):
            raise self.error(
                ParseError, f"'{tok}' takes whole numbers or boolean tensors", tok.start_pos
            )
        try:
            out = INTEGER_FOLDS[op](*[int(v) for v in values])
            return E("num", Whole(out), args[0].start, args[-1].end)
        except (ValueError, OverflowError) as e:  # a negative or huge shift count
            raise self.error(ParseError, f"'{tok}': {e}", tok.start_pos) from None

    @staticmethod
    def _logic(op):
        def callback(self, a, tok, b):
            a, b = self.value(a), self.value(b)
            if a.kind == "num" and b.kind == "num":
                return self.integer_fold(op, [a, b], tok)
            return self.apply(op, [a, b], None, a.start, b.end)

        return callback

    bitand, bitor = _logic("bitwise_and"), _logic("bitwise_or")

    def shift(self, a, tok, b):
        a, b = self.value(a), self.value(b)
        if a.kind == "num" and b.kind == "num":
            return self.integer_fold("lshift" if str(tok) == "<<" else "rshift", [a, b], tok)
        op = "bitwise_left_shift" if str(tok) == "<<" else "bitwise_right_shift"
        return self.apply(op, [a, b], None, a.start, b.end)

    def invert(self, tilde, e):
        e = self.value(e)
        if e.kind == "num":
            folded = self.integer_fold("bitwise_not", [e], tilde)
            return E("num", folded.value, tilde.start_pos, e.end)
        return self.apply("bitwise_not", [e], None, tilde.start_pos, e.end)

    def compare(self, a, tok, b):
        a, b = self.value(a), self.value(b)
        if a.kind not in ("num", "node", "list") or b.kind not in ("num", "node", "list"):
            raise self.error(ParseError, f"'{tok}' compares numbers and tensors", tok.start_pos)
        return self.apply(COMPARISONS[str(tok)], [a, b], None, a.start, b.end)

    def tuple(self, lpar, first, args, rpar):
        """(a, b): a sequence like a list literal, held as a Python tuple so that an index
        can tell x[(0, 1)] (x[0, 1]) from x[[0, 1]]."""
        items = (first, *(a for a in (args or ()) if a is not None))
        return E("list", items, lpar.start_pos, rpar.end_pos)

    def empty_tuple(self, lpar, rpar):
        return E("list", (), lpar.start_pos, rpar.end_pos)

    def subscripts(self, *items):
        return [i for i in items if i is not None]

    def slice2(self, start, stop):
        return ("slice", start, stop, None)

    def slice3(self, start, stop, step):
        return ("slice", start, stop, step)

    def ellipsis(self, tok):
        return ("ellipsis", tok)

    def index(self, obj, lsqb, items, rsqb):
        """x[i], x[a:b:c], A[i, j], A[:, j], x[None], A[..., 0], x[t], x[[0, 2]], x[m]: constant
        integer indices, slices, None (a new axis), one Ellipsis, and integer-tensor, list and
        boolean-mask indices (which come as further arguments)."""
        obj = self.value(obj)
        if len(items) == 1 and isinstance(items[0], E) and items[0].kind == "tuple":
            # x[torch.nonzero(m, as_tuple=True)], x[torch.where(m)]: a call's several results
            # index as the tuple of their tensors (how many is known when evaluated)
            attrs = {"items": (("tensors",),), "multi": True}
            args = [self.as_node(obj), items[0].value]
            return self.node("index", args, attrs, obj.start, rsqb.end_pos)
        if obj.kind == "tuple":  # torch.split(x, 2)[0], x.max(0)[-1]
            item = items[0] if len(items) == 1 else None
            if not isinstance(item, E) or item.kind != "num" or not item.value.is_integer():
                raise self.error(
                    ParseError,
                    f"{self.tuple_type(obj)} indices must be integers",
                    lsqb.start_pos,
                    rsqb.end_pos,
                )
            return self.result_item(obj, int(item.value), None, obj.start, rsqb.end_pos)
        if len(items) == 1 and isinstance(items[0], E) and isinstance(items[0].value, tuple):
            items = items[0].value  # x[(0, 1)] is x[0, 1], as in Python
            for item in items:
                if isinstance(item, tuple):
                    raise self.error(ParseError, "an index cannot hold keywords", item[3].start_pos)
        elif len(items) == 1 and _sequence_as_tuple(items[0]):
            items = items[0].value  # A[[[0, 1], [1, 0]]] is A[[0, 1], [1, 0]], as in PyTorch
        out: list[tuple] = []
        tensors = []  # integer-tensor, list and mask indices, as further arguments
        for item in items:
            if isinstance(item, tuple) and item[0] == "ellipsis":
                if ("ellipsis",) in out:
                    raise self.error(
                        ParseError,
                        "an index can only have a single ellipsis ('...')",
                        item[1].start_pos,
                    )
                out.append(("ellipsis",))
            elif isinstance(item, tuple):
                out.append(("slice",) + tuple(self.index_number(b, none_ok=True) for b in item[1:]))
            elif item.kind == "const" and item.value is None:
                out.append(("none",))
            elif item.kind == "node":
                out.append(("tensor",))
                tensors.append(item)
            elif item.kind == "tuple":  # x[t, 0]: a call's results as a sequence, as in PyTorch
                out.append(("tensor",))
                seq = self.node("index_sequence", [item.value], None, item.start, item.end)
                tensors.append(seq)
            elif item.kind == "list" and _tensors_and_numbers(item.value):  # x[(i, j), 0]
                out.append(("tensor",))
                ids = [self.as_node(el) for el in item.value]
                tensors.append(self.node("index_sequence", ids, None, item.start, item.end))
            elif item.kind == "list" or (item.kind == "const" and isinstance(item.value, bool)):
                # x[[0, 2]] indexes with torch.tensor([0, 2]) (int64; [] too), x[[True, False]]
                # masks with a bool tensor, x[True] is x[torch.tensor(True)]
                data = {"data": self.index_literal(item), "dtype": None}
                if data["data"] == []:
                    data["dtype"] = DType("int64")
                out.append(("tensor",))
                tensors.append(self.node("tensor", (), data, item.start, item.end))
            else:
                out.append(("int", self.index_number(item)))
        attrs = {"items": tuple(out), "multi": len(items) > 1}
        return self.apply("index", [obj, *tensors], attrs, obj.start, rsqb.end_pos)

    def index_literal(self, e):
        """A list index (or True, False) as torch.tensor's data: numbers, or booleans, which
        in a list that also holds numbers count as 1 and 0 (x[[True, 1]] is x[[1, 1]])."""
        if e.kind == "const":
            return e.value
        out: list[Any] = []
        stack, leaves = [(e, out)], []
        while stack:
            item, dest = stack.pop()
            for el in item.value:
                if isinstance(el, E) and el.kind == "list":
                    dest.append([])
                    stack.append((el, dest[-1]))
                elif isinstance(el, E) and el.kind == "const" and isinstance(el.value, bool):
                    dest.append(el.value)
                    leaves.append((dest, len(dest) - 1))
                elif isinstance(el, E) and el.kind == "num":
                    dest.append(el.value)
                else:  # (literal's message for anything else)
                    self.literal(E("list", [el], e.start, e.end))
        if any(type(x) is not bool for x in _leaf_values(out)):
            for dest, k in leaves:
                dest[k] = Whole(int(dest[k]))
        return out

    def index_number(self, e, none_ok=False):
        if none_ok and (e is None or (e.kind == "const" and e.value is None)):
            return None
        if e is None or e.kind != "num" or not math.isfinite(e.value) or not e.value.is_integer():
            raise self.error(
                ParseError,
                "indices must be integers, slices, None, ..., lists or tensors",
                e.start if e else 0,
                e.end if e else None,
            )
        return int(e.value)

    def neg(self, minus, e):
        return self.apply("neg", [e], None, minus.start_pos, e.end)

    def pos(self, plus, e):
        e = self.value(e)
        if e.kind not in ("num", "node"):
            raise self.error(ParseError, "unary + needs a number or a tensor", plus.start_pos)
        return E(e.kind, e.value, plus.start_pos, e.end)  # +x is x itself, as in PyTorch

    def paren(self, lpar, e, rpar):
        return E(e.kind, e.value, lpar.start_pos, rpar.end_pos)

    def list(self, lsqb, args, rsqb):
        return E("list", [a for a in (args or ()) if a is not None], lsqb.start_pos, rsqb.end_pos)

    def args(self, *items):
        if None not in items:  # (f(x): one argument, no trailing comma's placeholder)
            return [*items]
        return [a for a in items if a is not None]

    def kwarg(self, name_tok, e):
        return ("kw", str(name_tok), e, name_tok)

    def call_(self, name_tok, args, rpar):  # (args: None for f())
        end = rpar.end_pos
        if self.direct and args is not None and len(args) == 1:
            a = args[0]
            if a.__class__ is E and a.kind == "node":
                op = self.unary.get(name_tok)
                if op is None:
                    op = self.unary[name_tok] = self.unary_op(str(name_tok))
                if op:  # sin(x): what call() comes to, directly
                    return _node_value(self.nodes, op, (a.value,), name_tok.start_pos, end)
        return self.call(name_tok, args, end)

    @staticmethod
    def unary_op(name):
        """The op name a bare call ``name(t)`` of one tensor makes a node of, where call()
        takes the plain path and apply() makes the node as it is; else ''."""
        op = _ops.lookup(name, None)
        if op is None or op.params or op.arity != 1 or op.name in FOLDABLE:
            return ""
        if op.listarg or op.name in _results.TENSOR_VARARGS or _results.tuple_row(op.name, {}):
            return ""
        return op.name

    def value(self, e):
        """``e`` as an operand: a module name becomes an input or an error."""
        return self.ns_value(e) if e.kind == "ns" else e

    def method(self, obj, name_tok, *rest):
        args, end = rest[0] if len(rest) == 2 else None, rest[-1].end_pos
        if obj.kind == "ns":
            target = self.member(obj, name_tok)
            if target is not None:  # torch.sum(x), F.relu(x): a function of a module
                return self.call(
                    name_tok, args, end, namespace=_ops.canonical(obj.value), spelled=target.value
                )
            obj = self.value(obj)
        if obj.kind == "tuple":
            raise self.error(
                ParseError,
                f"'{self.tuple_type(obj)}' object has no attribute '{short(str(name_tok))}'",
                name_tok.start_pos,
                name_tok.end_pos,
                hint=_PICK,
            )
        if obj.kind == "num":
            raise self.error(
                ParseError,
                f"a number has no methods: .{short(str(name_tok))}() needs a tensor",
                obj.start,
                name_tok.end_pos,
                hint="numbers are Python numbers, as in PyTorch; use an input or torch.tensor",
            )
        if obj.kind not in ("node", "list"):
            raise self.error(ParseError, f"{_describe(obj.value)} has no methods", obj.start)
        return self.call(
            name_tok, args, end, receiver=obj, namespace="Tensor", spelled=f"Tensor.{name_tok}"
        )

    def attr_(self, obj, name_tok):
        if obj.kind == "ns":
            target = self.member(obj, name_tok)
            if target is not None:
                return target
            obj = self.value(obj)
        if obj.kind == "tuple":  # x.max(dim=0).values, torch.aminmax(x).min
            row = self.nodes[cast(int, obj.value)].op
            k = _results.field(row, str(name_tok))
            if k is None:
                raise self.error(
                    ParseError,
                    f"'{_results.type_name(row)}' object has no attribute '{short(str(name_tok))}'",
                    name_tok.start_pos,
                    name_tok.end_pos,
                    hint=_PICK,
                )
            return self.result_item(obj, k, None, obj.start, name_tok.end_pos)
        if str(name_tok) != "T":
            from .ops import pytorch

            name = short(str(name_tok))
            supported = str(name_tok) in pytorch.names()["Tensor"]
            raise self.error(
                UnknownNameError,
                f"Tensor.{name} is not supported" if supported else f"unknown attribute '.{name}'",
                name_tok.start_pos,
                name_tok.end_pos,
                hint="tensors have .T; methods are called with ()",
            )
        return self.apply("permute_T", [obj], None, obj.start, name_tok.end_pos)


def _describe(value):
    if isinstance(value, DType):
        return f"the dtype {value!r}"
    if isinstance(value, str):
        return f"the string '{value}'"
    return repr(value)


_parser = None


def _grammar_path():
    here = os.path.dirname(os.path.abspath(__file__))
    shipped = os.path.join(here, "grammars", "gradcli.lark")  # inside the wheel
    return (
        shipped if os.path.exists(shipped) else os.path.join(here, "..", "grammars", "gradcli.lark")
    )


def _sequence_as_tuple(e):
    """PyTorch's treatSequenceAsTuple: a list index of fewer than 32 items holding a list, a
    tensor or None is a tuple of indices, not one tensor."""
    if not isinstance(e, E) or e.kind != "list" or len(e.value) >= 32:
        return False
    return any(
        isinstance(el, E)
        and (el.kind in ("list", "node") or (el.kind, el.value) == ("const", None))
        for el in e.value
    )


def _tensors_and_numbers(items):
    """Whether a list or tuple item of an index holds tensors, and numbers at most (as
    PyTorch reads it: one index of their values; other mixes keep the list's own rules)."""
    kinds = {el.kind if isinstance(el, E) else "keyword" for el in items}
    return "node" in kinds and kinds <= {"node", "num"}


def _leaf_values(data):
    out, stack = [], [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        else:
            out.append(item)
    return out


LARK_OPTIONS = {"parser": "lalr", "lexer": "basic", "maybe_placeholders": True}
_grammar_text = None


def _grammar():
    global _grammar_text
    if _grammar_text is None:
        with open(_grammar_path(), encoding="utf-8") as f:
            _grammar_text = f.read()
    return _grammar_text


def _get_parser():
    """Lark's parser for the grammar: from the per-user cache, or built (and cached, with
    the lean loop's tables made from it)."""
    global _parser, _entry
    if _parser is None:
        from . import grammar_cache  # never Lark's cache=True: see grammar_cache

        options = {"postlex": _PostLex(), "transformer": _Transformer()}
        entry = _cache_entry()
        parser = None
        if isinstance(entry.get("lark"), bytes):
            parser = grammar_cache.lark_from(entry["lark"], **options)
        if parser is None:
            from lark import Lark

            from . import lalr

            parser = Lark(_grammar(), **options, **LARK_OPTIONS)
            try:
                lean = lalr.derive(parser)
            except lalr.Refused:
                lean = None
            _entry = {"lark": grammar_cache.lark_data(parser), "lean": lean}
            grammar_cache.store(_tables_key(), _entry)
        _parser = parser
    return _parser


_entry: Any = None  # what the per-user cache holds for the grammar: {"lark": ..., "lean": ...}
_tables: Any = None  # gradcli.lalr.Tables for the grammar, False when the lean loop cannot run


def _cache_entry():
    global _entry
    if _entry is None:
        from . import grammar_cache

        _entry = grammar_cache.load(_tables_key()) or {}
    return _entry


def _get_tables():
    """The lean loop's tables: from the per-user cache (without importing Lark), or made
    from Lark's parser."""
    global _tables
    if _tables is None:
        from . import lalr

        if "lean" not in _cache_entry():
            _get_parser()  # builds the tables, and the entry with them
        _tables = False
        data = _cache_entry().get("lean")
        if data is not None:
            try:
                _tables = lalr.Tables(data)
            except Exception:  # noqa: BLE001 - damaged: Lark's loop does the work
                _tables = False
    return _tables or None


def _tables_key():
    """Everything the lean loop's tables depend on: the grammar, Lark's options, the
    callbacks' names, Lark's installed copy (found without importing it) and Python."""
    import importlib.util
    import sys

    from . import lalr

    spec = importlib.util.find_spec("lark")
    origin = spec.origin if spec is not None else None
    try:
        st = os.stat(origin) if origin else None
    except OSError:
        st = None
    lark_id = (origin, st.st_mtime_ns, st.st_size) if st else origin
    targets = sorted(_Transformer.TARGETS.items())
    return repr((lalr.FORMAT, _grammar(), LARK_OPTIONS, targets, lark_id, sys.version_info[:2]))


class _Transformer:
    """What Lark calls for each rule; dispatches to the current Builder."""

    _names = (
        "start",
        "assign",
        "unpack",
        "targets",
        "number",
        "string",
        "name",
        "add",
        "sub",
        "mul",
        "div",
        "matmul",
        "pow",
        "neg",
        "pos",
        "paren",
        "list",
        "args",
        "kwarg",
        "call",
        "method",
        "attr",
        "compare",
        "tuple",
        "empty_tuple",
        "subscripts",
        "slice2",
        "slice3",
        "ellipsis",
        "index",
        "floordiv",
        "mod",
        "bitand",
        "bitor",
        "shift",
        "invert",
    )
    TARGETS = {n: {"call": "call_", "attr": "attr_"}.get(n, n) for n in _names}  # Builder's

    def __init__(self):
        self.builder: Builder | None = None
        for n, target in self.TARGETS.items():
            setattr(self, n, self._forward(target))

    def _forward(self, target):
        def callback(children):
            return getattr(self.builder, target)(*children)

        callback.target = target  # type: ignore[attr-defined]  # what gradcli.lalr calls
        return callback

    # Lark looks callbacks up with getattr and wraps them; __default__ is never needed
    # because every rule that survives inlining has an alias above.


class paused_gc:
    """No cyclic garbage collection inside: building a graph of 10^6 nodes makes objects that
    hold no cycles, and the collector would walk them all again and again (a quarter of the
    time of a long program)."""

    def __enter__(self):
        self.was = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.was:
            gc.enable()


_P = ParamSpec("_P")
_R = TypeVar("_R")


def without_gc(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fn`` run inside paused_gc() (for the passes over a whole graph)."""

    @functools.wraps(fn)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with paused_gc():
            return fn(*args, **kwargs)

    return paused


@without_gc
def parse(text):
    """Parse program text into a Program. Raises ParseError/UnknownNameError."""
    return _parse(text)


def _parse(text):
    _check_characters(text)
    if not text.strip() or _only_comments(text):
        raise ParseError("empty program: write an expression, e.g. 'mean(x^2)'")
    tables = _get_tables()
    builder = Builder(text)
    out = None
    if tables is not None:
        from . import lalr

        try:  # Lark's tables and callbacks, without its per-token cost
            out = cast(E, lalr.parse(tables, text, _PostLex, builder))
        except lalr.Refused:  # a parse error: Lark's own loop reports it, as always
            builder = Builder(text)
    if out is None:
        out = _lark_parse(text, builder)
    return _finish(text, builder, out)


def _lark_parse(text, builder):
    """Lark's own loop, with the Builder's callbacks; its errors as gradcli's."""
    from lark.exceptions import (
        UnexpectedCharacters,
        UnexpectedEOF,
        UnexpectedInput,
        UnexpectedToken,
    )
    from lark.lexer import Token

    parser = _get_parser()
    transformer = cast(_Transformer, parser.options.transformer)  # the one _get_parser gave
    transformer.builder = builder
    try:
        return cast(E, parser.parse(text))  # the transformer's callbacks build an E
    except GradcliError:
        raise
    except UnexpectedCharacters as e:
        pos = e.pos_in_stream
        assert pos is not None  # Lark's lexer always says where the character is
        ch = text[pos] if pos < len(text) else ""
        raise builder.error(ParseError, f"unexpected character {_show_char(ch)}", pos) from None
    except UnexpectedEOF as e:
        raise builder.error(
            ParseError,
            "unexpected end of program" + _expected(e),
            len(text.rstrip()),
            hint=_unclosed(text),
        ) from None
    except UnexpectedToken as e:
        tok: Token = e.token
        if tok.type == "$END":
            raise builder.error(
                ParseError,
                "unexpected end of program" + _expected(e),
                len(text.rstrip()),
                hint=_unclosed(text),
            ) from None
        what = "line break" if tok == "\n" else f"'{tok}'"
        raise builder.error(
            ParseError, f"unexpected {what}" + _expected(e), tok.start_pos, tok.end_pos
        ) from None
    except UnexpectedInput as e:  # any other parse failure Lark reports
        raise ParseError(f"cannot parse the program: {e}") from None
    finally:
        transformer.builder = None


def _finish(text, builder, out):
    if out.kind == "tuple":
        raise builder.error(
            ParseError,
            f"the program's output is a {builder.tuple_type(out)} of "
            f"tensors; it must be one tensor",
            out.start,
            out.end,
            hint=_PICK,
        )
    if out.kind == "const":
        raise builder.error(
            ParseError,
            f"the program's output is {_describe(out.value)}; it must be a tensor expression",
            out.start,
            out.end,
        )
    output = builder.as_node(out)
    return _live(Program(text, builder.nodes, builder.inputs, output))


def _live(program):
    """Keep only the nodes the output depends on. PyTorch's graph, walked from the output,
    never contains a statement that does not feed it, so neither does ours; and such a
    statement costs nothing to evaluate."""
    nodes = program.nodes
    keep = [False] * len(nodes)
    keep[program.output] = True
    for i in range(program.output, -1, -1):
        if keep[i]:
            for a in nodes[i].args:
                keep[a] = True
    if all(keep):
        return program
    new_id = {}
    kept: list[PNode] = []
    for i, n in enumerate(nodes):
        if keep[i]:
            new_id[i] = len(kept)
            n.args = tuple(new_id[a] for a in n.args)
            kept.append(n)
    inputs = {k: new_id[v] for k, v in program.inputs.items() if keep[v]}
    return Program(program.text, kept, inputs, new_id[program.output])


_SUSPECT = re.compile(r"[^\t\n\r\f\x20-\x7e]")


def _check_characters(text):
    """Program text is ASCII. A control character (NUL...), a bidi or other format character,
    or a Unicode look-alike is named by its code point, even inside a comment, where it could
    make the program read differently from what it does. (Printable non-ASCII text in a
    comment is fine.)"""
    # Linear however long a line is: each stretch of text is searched once, and the rest of
    # a line from the first non-ASCII character in its comment is checked at C speed.
    at, searched = 0, 0
    while (m := _SUSPECT.search(text, at)) is not None:
        at = m.start()
        line = text.rfind("\n", searched, at) + 1  # the previous match's line was skipped
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        hidden = _hidden_in_comment(text, line, at, end)
        if hidden is None:  # the rest of the line is a comment of printable text
            at = searched = end
            continue
        at = hidden
        ch = text[at]
        raise ParseError(
            f"unexpected character {_show_char(ch)}: program text must be ASCII"
            + (
                ""
                if ch.isprintable()
                else " (it holds an invisible control or formatting character)"
            ),
            position=position_of(text, at),
            context=caret(text, at),
            hint="names are ASCII letters, digits and _; retype the character",
        )


_LAYOUT = re.compile(r"[\t\r\f]")  # allowed anywhere, but not "printable" to Python


def _hidden_in_comment(text, line, at, end):
    """None when ``text[at:end]`` lies in the comment of the line starting at ``line`` and
    holds only printable characters; else where the first character to report is."""
    hash_at = text.find("#", line, at)
    if hash_at < 0:
        return at  # not in a comment: program text must be ASCII
    if all(part.isprintable() for part in _LAYOUT.split(text[at:end])):
        return None
    for i in range(at, end):  # a control or format character: find it (once, to report)
        if not text[i].isprintable() and text[i] not in "\t\r\f":
            return i
    return None


def _only_comments(text):
    return all(not line.strip() or line.strip().startswith("#") for line in text.splitlines())


def _show_char(ch):
    if ch.isprintable() and ch.isascii():
        return f"'{ch}'"
    name = unicodedata.name(ch, "")
    label = f"U+{ord(ch):04X}" + (f" {name}" if name else "")
    return f"'{ch}' ({label})" if ch.isprintable() else label


_TOKEN_NAMES = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "RPAR": "')'",
    "LPAR": "'('",
    "RSQB": "']'",
    "LSQB": "'['",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "POW": "'^'",
    "TILDE": "'~'",
    "AMP": "'&'",
    "PIPE": "'|'",
    "SHIFT": "'<<' or '>>'",
    "ELLIPSIS": "'...'",
    "COMPARE": "a comparison",
    "_SEP": "a line break or ';'",
    "$END": "the end of the program",
}


def _unclosed(text):
    """Where the innermost bracket left open at the end of the program is, if any."""
    stack = []
    try:
        for tok in _get_parser().lex(text):
            if tok.type in ("LPAR", "LSQB"):
                stack.append(tok)
            elif tok.type in ("RPAR", "RSQB") and stack:
                stack.pop()
    except Exception:  # noqa: BLE001 - only a hint; the parse error itself is reported
        return None
    if not stack:
        return None
    tok = stack[-1]
    return f"the '{tok}' at line {tok.line}, column {tok.column} is not closed"


def _expected(e):
    names = set()
    parser = _get_parser()
    for t in getattr(e, "expected", None) or ():
        if t in _TOKEN_NAMES:
            names.add(_TOKEN_NAMES[t])
            continue
        try:
            pattern = parser.get_terminal(t).pattern
            names.add(f"'{pattern.value}'" if pattern.type == "str" else t)
        except KeyError:
            names.add(t)
    if not names or len(names) > 6:
        return ""
    return "; expected " + " or ".join(sorted(names))
