"""The lean loop's direct reductions (a callback given the children it takes, read off the
stack) against its general one (the children sliced off, picked and passed as a tuple), and
both against Lark's own loop with the Builder's plain paths."""

import pytest
from test_parse_speed2 import SUMS, _outcome
from test_parser_speed_paths import BAD, PROGRAMS

from gradcli import lalr, parser

MORE = [
    "-x^2 + -2**x - -x ** -2 + (-x)^2 + 2^3^2 * x - 2**-1**2 * x + ~(x > 0) * x",
    "x ** 2 ^ 3 * x + x ^ -x ** 2 + +x - +-x + -(-x) * - - x",
    "a = x.clamp(min=0, max=1); b = a.sum(dim=0, keepdim=True); b.mean() + a.mean(0)",
    "torch.clamp(x, min=-1, max=inf).sum() + F.softmax(x, dim=-1).sum(dim=(0,))",
    "y = x # a comment\n# another one\n\ny * 2 # the end",
    "y = x  # é ü — ∂y/∂x\ny.sum()",
    " + ".join(f"{i % 7 - 3}*x" for i in range(500)) + " - x",
    " * ".join(["x"] * 300) + " / 2 // 3 % 4 @ x",
    "f = x\n" + "f = -f * 0.5 + cos(f) ** 2\n" * 100 + "f.sum()",
    "sum(x, ) + mean(x,) + max(x) + x.sum(0, ) + x[0, ].sum() + stack([x, x, ]).sum()",
    "-0.0 * x + 0 * x - -0.0 - nan * x + -inf * x + 1e400 * x + 0 / x + 2 / x",
    "max(2 * x) + sin(x) * sin(2) * 2 * sin(x) + sin(-x) - neg(x)",
    "a, b = x.max(dim=0); c, d = (x, 2); a.sum() + b.sum() + c.sum() * d",
    "x.sum() if x else x",
    "é + x",
    "x + y_é",
    "x ** * 2",
    "f(x, y=1, 2)",
    "x.sum(dim=)",
    "sin(x) + cos(",
    "x - -",
]


def _general(size, how, picks, target, builder):
    """lalr._call with every rule on the general path (arity 0)."""
    call = _call(size, how, picks, target, builder)
    return (0, size, call[6], None, None, call[5], call[6])


_call = lalr._call


@pytest.mark.parametrize("text", SUMS + PROGRAMS + BAD + MORE)
def test_direct_reductions_are_the_general_ones(text, monkeypatch):
    direct = _outcome(text)
    with monkeypatch.context() as m:
        m.setattr(lalr, "_call", _general)
        assert _outcome(text) == direct
    with monkeypatch.context() as m:
        m.setattr(parser, "_tables", False)
        m.setattr(parser.Builder, "direct", False)
        assert _outcome(text) == direct


def test_the_direct_reductions_are_taken():
    tables = parser._get_tables()
    builder = parser.Builder("x")
    calls = [_call(s, how, p, t, builder) for s, _, how, p, t in tables.rules]
    arities: dict = {}
    for rule, call in zip(tables.rules, calls, strict=True):
        arities.setdefault(rule[4], set()).add(call[0])
    assert arities["number"] == arities["name"] == {1}
    assert arities["mul"] == {2} and arities["add"] == {3}
    assert arities["call_"] == {3, 0}  # sin(x); f() has a placeholder: the general path
    assert 1 in arities["args"]
    assert calls[0][0] == 0  # (start: a helper rule's children spliced in)


def test_the_general_path_runs(monkeypatch):
    seen = []

    def general(*args):
        call = _general(*args)
        seen.append(call[0])
        return call

    monkeypatch.setattr(lalr, "_call", general)
    assert _outcome("2 * sin(x) + x").startswith("('ok'")
    assert seen and set(seen) == {0}


@pytest.mark.parametrize("text", MORE)
def test_more_programs_are_lark_s(text, monkeypatch):
    lean = _outcome(text)
    monkeypatch.setattr(parser, "_tables", False)
    assert _outcome(text) == lean


def test_most_of_the_more_programs_build():
    built = [t for t in MORE if _outcome(t).startswith("('ok'")]
    assert len(built) == 13  # (the first 13; the rest are errors)
