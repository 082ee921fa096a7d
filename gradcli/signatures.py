"""PyTorch's signature of each operator, with PyTorch's argument names, for `gradcli ops NAME`
(``add(input, other, *, alpha=1)``, not the table's ``add(a, b)``). They are data, shipped in
ops/signatures.txt (one ``NAME QUALIFIED(ARGS)`` line per operator), so that showing a card never
imports torch; a test checks every line against the installed torch's own signatures (its
docstrings, and inspect.signature for functions written in Python).

``python -m gradcli.signatures`` prints the lines for operators the file does not have yet,
made from the installed torch by collect(); review them (a reduction's ``dim=None`` merges two
overloads) and append them to the file."""

import contextlib
import os
import re

_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops", "signatures.txt")
_signatures: dict[str, str] | None = None
# how the card spells a PyTorch namespace: F.conv2d is conv2d, Tensor.view stays Tensor.view
_SHORT = ("torch.nn.functional.", "torch.")


def load():
    """{operator name: its PyTorch signature, qualified}, read once."""
    global _signatures
    if _signatures is None:
        out = {}
        with open(_FILE, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    name, _, signature = line.partition(" ")
                    out[name] = signature.strip()
        _signatures = out
    return _signatures


def signature(op):
    """How `gradcli ops NAME` shows the operator's call: PyTorch's signature when the file has
    one (``conv2d(input, weight, bias=None, ...)``, ``Tensor.view(*shape)``), else one made
    from the row's own argument names (``name(input, other, dim=0)``)."""
    qualified = load().get(op.name)
    if qualified is None and op.call:  # a[i], a.T: spelt, not called
        return op.call
    if qualified is None:
        from .ops import REQUIRED

        params = [k if v is REQUIRED else f"{k}={v!r}" for k, v in op.params.items()]
        return f"{op.name}({', '.join([*op.inputs, *params])})"
    for prefix in _SHORT:
        if qualified.startswith(prefix) and "." not in qualified[len(prefix) :].split("(")[0]:
            return qualified[len(prefix) :]
    return qualified


def not_taken(op):
    """PyTorch's arguments that the row does not take by name: (optional ones it does not
    take at all, so PyTorch's default always applies (``add``'s ``alpha``); required ones it
    takes by position only (``conv2d``'s ``weight``))."""
    qualified = load().get(op.name)
    if qualified is None:
        return [], []
    taken = {*op.inputs, *op.params, *op.keywords}
    params = [p for p in parse(qualified)[1] if p[0] not in taken and not p[3]]
    return [p[0] for p in params if p[1] is not None], [p[0] for p in params if p[1] is None]


# ---- reading signatures, and PyTorch's own (for the test and for collect) -----------------


def split_args(args):
    """``"input, dim=(0, 1), *, s='a,b'"`` -> ["input", "dim=(0, 1)", "*", "s='a,b'"]: commas
    outside brackets and quotes."""
    out, depth, quote, start = [], 0, None, 0
    for i, c in enumerate(args):
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(args[start:i].strip())
            start = i + 1
    if args[start:].strip():
        out.append(args[start:].strip())
    return out


def parse(text):
    """``"torch.add(input, other, *, alpha=1)"`` -> ("torch.add", [(name, default text or
    None, keyword-only, varargs)]); ``out`` and private (``_stacklevel``) parameters left out."""
    m = re.fullmatch(r"\s*([\w.]+)\((.*)\)\s*", text, re.S)
    if m is None:
        raise ValueError(f"not a signature: {text!r}")
    params, keyword_only = [], False
    for arg in split_args(m.group(2)):
        if arg == "*":
            keyword_only = True
            continue
        name, eq, default = arg.partition("=")
        name = name.split(":")[0].strip()  # (inspect's "dim: int | None")
        varargs = name.startswith("*")
        name = name.lstrip("*")
        if name in ("out", "self") or name.startswith("_"):
            continue
        params.append((name, default.strip() if eq else None, keyword_only, varargs))
        keyword_only = keyword_only or varargs
    return m.group(1), params


def resolve(torch, qualified):
    """The PyTorch object a qualified name means (``Tensor.view`` is torch.Tensor.view)."""
    import importlib

    module, _, name = qualified.rpartition(".")
    obj = torch.Tensor if module == "Tensor" else importlib.import_module(module)
    return getattr(obj, name)


def torch_signatures(torch, qualified):
    """Every signature PyTorch documents for ``qualified``, parsed: each overload its
    docstring names (``sum(input, *, dtype=None)``, ``.. function:: sum(input, dim, ...)``),
    inspect's for a function written in Python, and for torch.f, the Tensor method's too
    (``x.squeeze(dim=None)`` is ``torch.squeeze(x, dim=None)``)."""
    import inspect

    f = resolve(torch, qualified)
    module, _, name = qualified.rpartition(".")
    out = []
    try:
        text = str(inspect.signature(f)).split(" -> ")[0]
        if "*args" not in text:  # (a dispatching wrapper's (*args, **kwargs) says nothing)
            out.append(parse(f"{name}{_strip_annotations(text)}")[1])
    except (TypeError, ValueError):
        pass
    out += _documented(name, f.__doc__)
    if module == "torch" and hasattr(torch.Tensor, name):
        out += [[("input", None, False, False), *o] for o in _documented(name, None, torch)]
    if module == "torch":  # the names ATen's schemas give, on the documented overloads
        out += [
            [(n, *p[1:]) for n, p in zip(names, o, strict=True)]
            for o in list(out)
            for names in _schema_names(torch, name)
            if len(names) == len(o) and names != [p[0] for p in o]
        ]
    return out


def _schema_names(torch, name):
    """The argument names of each schema of ``aten::name``: what PyTorch's argument parser
    reads, where a docstring may name an argument otherwise (masked_scatter's ``source`` is
    ``tensor`` there). ``self`` is ``input``; ``.out`` overloads and ``out`` are left out."""
    try:
        schemas = torch._C._jit_get_schemas_for_operator(f"aten::{name}")
    except RuntimeError:
        return []
    out = []
    for schema in schemas:
        if not schema.overload_name.endswith("out"):
            names = ["input" if a.name == "self" else a.name for a in schema.arguments]
            out.append([n for n in names if n != "out" and not n.startswith("_")])
    return out


def _documented(name, doc, torch=None):
    """The signatures a docstring starts its lines with: ``name(args) -> Tensor``, or
    ``name(args)`` alone on its line; arguments may run over several lines. With ``torch``:
    the docstring of the Tensor method ``name``."""
    if torch is not None:
        doc = getattr(torch.Tensor, name).__doc__
    args = r"((?:[^()]|\((?:[^()]|\([^()]*\))*\))*)"  # brackets nested twice: dims=((0,), (1,))
    pattern = (
        rf"^\s*(?:\.\. (?:function|method):: )?(?:[\w.]+\.)?{re.escape(name)}\({args}\)\s*(?:->|$)"
    )
    out = []
    for found in re.findall(pattern, doc or "", re.M):
        with contextlib.suppress(ValueError):  # (prose that looks like a call)
            found = found.replace("\\*", "*")  # (reStructuredText's escaped star)
            out.append(parse(f"{name}({' '.join(found.split())})")[1])
    return out


def _strip_annotations(text):
    """inspect's ``(input: Tensor, dim: int | None = None)`` as ``(input, dim=None)``."""
    args = []
    for arg in split_args(text[1:-1]):
        name, eq, default = arg.partition("=")
        args.append(name.split(":")[0].strip() + (f"={default.strip()}" if eq else ""))
    return "(" + ", ".join(args) + ")"


def same_default(a, b):
    """Two default texts that mean the same value (``1`` and ``1.0``, ``'mean'`` and
    ``"mean"``, ``1`` and ``(1, 1)`` for stride)."""
    import ast

    if a == b:
        return True
    try:
        va, vb = ast.literal_eval(a), ast.literal_eval(b)
    except (ValueError, SyntaxError):
        return False
    if isinstance(vb, (tuple, list)) and not isinstance(va, (tuple, list)):
        va, vb = vb, va
    if isinstance(va, (tuple, list)) and not isinstance(vb, (tuple, list)):
        return all(v == vb for v in va)
    return va == vb and isinstance(va, bool) == isinstance(vb, bool)


def matches(params, overloads):
    """Whether ``params`` is one of PyTorch's ``overloads``: the same names in the same order,
    keyword-only where PyTorch's are, and the same defaults, except that ``dim=None`` may stand
    for an overload that leaves the argument out (``sum(input)`` and ``sum(input, dim)`` are
    ``sum(input, dim=None)``)."""
    names = [p[0] for p in params]
    for theirs in overloads:
        if [p[0] for p in theirs] != names:
            continue
        ok = True
        for (name, default, kw, varargs), (_, their_default, their_kw, their_varargs) in zip(
            params, theirs, strict=True
        ):
            if (kw, varargs) != (their_kw, their_varargs):
                ok = False
            elif their_default is None and default is not None:  # dim=None: dim left out
                ok = (
                    ok
                    and default == "None"
                    and any(
                        name not in {p[0] for p in o} and {p[0] for p in o} <= set(names)
                        for o in overloads
                    )
                )
            elif their_default is not None and not (
                default is not None and same_default(default, their_default)
            ):
                ok = False
        if ok:
            return True
    return False


def candidates(op, torch):
    """The PyTorch callables an operator may mirror, the one its row names first (F.conv2d
    before torch.conv2d): torch.f, F.f, torch.special.f, torch.linalg.f, then Tensor.f."""
    import importlib

    spaces = ["torch", "torch.nn.functional", "torch.special", "torch.linalg"]
    if op.mirror.startswith("F."):
        spaces.insert(0, spaces.pop(1))
    out = [
        f"{ns}.{op.name}"
        for ns in spaces
        if ns in op.namespaces and hasattr(importlib.import_module(ns), op.name)
    ]
    return out + [f"Tensor.{m}" for m in op.methods if hasattr(torch.Tensor, m)]


def render(qualified, params):
    args, star = [], False
    for name, default, kw, varargs in params:
        if kw and not star and not varargs:
            args.append("*")
        star = star or kw or varargs
        args.append(("*" if varargs else "") + name + ("" if default is None else f"={default}"))
    return f"{qualified}({', '.join(args)})"


def collect(torch, ops):
    """{operator name: signature} from the installed torch for ``ops``: the documented
    overload that has the most of the row's parameters, with ``dim=None`` where another
    overload leaves dim out (a reduction over everything)."""
    out = {}
    for op in ops:
        found = [(q, o) for q in candidates(op, torch) if (o := torch_signatures(torch, q))]
        if not found:
            continue
        qualified, overloads = found[0]
        ours = set(op.params) | set(op.inputs)
        best = max(
            overloads,
            key=lambda o: (
                len(ours & {p[0] for p in o}),  # the most of the row's parameters,
                -sum(p[0] not in ours and p[1] is None for p in o),  # no others it needs,
                len(o),  # and the most spelt out
            ),
        )
        merged = []
        for name, default, kw, varargs in best:
            if default is None and op.params.get(name, ...) is None:
                default = "None"
            merged.append((name, default, kw, varargs))
        if not matches(merged, overloads):
            merged = best
        out[op.name] = render(qualified, merged)
    return out


if __name__ == "__main__":
    import torch

    from .ops import TABLE

    have = load()
    for name, line in collect(torch, [op for op in TABLE if op.public]).items():
        if name not in have:
            print(f"{name} {line}")
