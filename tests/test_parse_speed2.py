"""The lean loop's lexing and interned stacks, and the Builder's direct paths (x + y, 2 * x,
sin(x)), against the plain paths: Lark's own loop, and the Builder's general apply()/call()."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_parser_speed_paths import BAD, PROGRAMS
from test_parser_speed_paths import _outcome as _plain_outcome

from gradcli import lalr, parser


def _outcome(text):
    return repr(_plain_outcome(text))  # (a folded nan is not equal to itself)


SUMS = [
    " + ".join(f"{(i % 1000 + 1) / 100:g}*sin(x)" for i in range(2000)) + "\n",
    "2 * x + x * 2 + 2 / x + x / 2 + x - 2 - x + 0 * x + -0.0 * x + x @ x + x ** 2 + 2 ** x",
    "nan * x + inf * x - inf * x + x * nan + 1e308 * 1e308 * x + (-0.0) * x + 0 - x",
    "exp(x) + sin(2) + neg(x) + neg(2) + abs(x) * cos(x) + max(x) + sum(x) + sigmoid(x)",
    "a = sin(x); b = a * a; c = 2 * b + a; sin(c) - c / 3 + a // 2 + a % 3",
    "F = x; nn = 2; F * nn + sin(F)",
    "F * 2 + nn * x",
    "torch + x",
    "zeros(0) * x + x[[]].sum()",
    "sin(x, y) + x",
    "sin((x, y))",
    "sin(x.max(dim=0))",
    "x.max(dim=0) * 2",
    "2 * x.max(dim=0)",
    "'s' * x",
    "nosuch(x) * 2",
]


def _all_paths(text, monkeypatch):
    """The outcome on the lean loop with the direct paths, and with neither."""
    fast = _outcome(text)
    with monkeypatch.context() as m:
        m.setattr(parser, "_tables", False)
        m.setattr(parser.Builder, "direct", False)
        plain = _outcome(text)
    return fast, plain


@pytest.mark.parametrize("text", SUMS + PROGRAMS + BAD)
def test_fast_paths_are_the_plain_ones(text, monkeypatch):
    fast, plain = _all_paths(text, monkeypatch)
    assert fast == plain


def test_the_direct_paths_are_taken(monkeypatch):
    seen = []
    monkeypatch.setattr(parser.Builder, "apply", lambda self, *a: seen.append(a[0]))
    monkeypatch.setattr(parser.Builder, "call", lambda self, *a: seen.append(str(a[0])))
    parser.parse("2 * sin(x) + x")
    assert seen == []  # (each of the three went the direct way)


OPERANDS = ["x", "y", "2", "0", "-0.0", "1.5", "nan", "inf", "-inf", "sin(x)", "exp(2)"]
OPERANDS += ["(x, y)", "[1, 2]", "'s'", "True", "torch", "F", "x.max(dim=0)"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(OPERANDS), st.sampled_from(["+", "-", "*", "/", "@", "**"])),
        min_size=1,
        max_size=6,
    ),
    st.sampled_from(OPERANDS),
)
def test_random_sums_same_outcome(pairs, last):
    text = "".join(f"{a} {op} " for a, op in pairs) + last
    fast = _outcome(text)
    saved = parser._tables, parser.Builder.direct
    parser._tables, parser.Builder.direct = False, False
    try:
        assert _outcome(text) == fast
    finally:
        parser._tables, parser.Builder.direct = saved


def test_stacks_forgotten_midway_parse_the_same(monkeypatch):
    """Past LIMIT interned stacks the loop forgets all but the current one: the same graph."""
    texts = [SUMS[0], "(" * 300 + "x" + " + 1)" * 300, "sin(" * 500 + "x" + ")" * 500]
    before = [_outcome(t) for t in texts]
    monkeypatch.setattr(lalr, "LIMIT", 3)
    assert [_outcome(t) for t in texts] == before


def test_lexemes_are_lark_tokens():
    """The findall lexemes and the kind each text is told to be are Lark's own tokens."""
    lark_parser = parser._get_parser()
    tables = parser._get_tables()
    text = "y = x.sum(dim=-1) ** 2 // 3 <= 1e-3 # c\n  z=[1, 2.][0] ; 'a' + \"b\" \\\n + ... | ~y"
    lark = [(t.type, str(t), t.start_pos) for t in lark_parser.lex(text)]
    kinds, pos, ours = lalr._Kinds(tables), 0, []
    for lexeme in tables.lexeme.findall(text):
        name = tables.names[kinds[lexeme]]
        if kinds[lexeme] not in tables.ignore:
            ours.append((name, lexeme, pos))
        pos += len(lexeme)
    assert ours == lark


@pytest.mark.parametrize(
    ("regex", "looks"),
    [
        (r"[^'\n]*", False),
        (r"\^|\*\*", False),
        (r"\bx", True),
        (r"x$", True),
        (r"^x", True),
        (r"x(?=y)", True),
        (r"(?<!y)x", True),
        (r"(a)\1", True),
    ],
)
def test_terminals_that_look_around_are_refused(regex, looks):
    assert lalr._looks_around(regex) is looks
