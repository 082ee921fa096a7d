"""The E and PNode values the Builder's hot paths fill in place (without their __init__)
against the ones __init__ makes: every slot set, to the same value, on every path."""

import math

import pytest
from test_parse_speed2 import SUMS, _outcome
from test_parse_speed4 import MORE
from test_parser_speed_paths import BAD, PROGRAMS

from gradcli import parser
from gradcli.ops.core import Whole

UNSET = object()


def _slots(obj):
    return {k: getattr(obj, k) for k in type(obj).__slots__}


def _recording(made):
    """parser._new that prefills every slot with UNSET (a slot the hot path forgets would
    otherwise stay unset) and keeps what it made."""
    new = parser._new

    def recording(cls):
        obj = new(cls)
        for k in cls.__slots__:
            setattr(obj, k, UNSET)
        made.append(obj)
        return obj

    return recording


@pytest.mark.parametrize("text", SUMS + PROGRAMS + BAD + MORE)
def test_every_slot_is_filled(text, monkeypatch):
    before = _outcome(text)
    made: list = []
    monkeypatch.setattr(parser, "_new", _recording(made))
    assert _outcome(text) == before
    for obj in made:
        assert type(obj) in (parser.E, parser.PNode)
        assert UNSET not in _slots(obj).values(), (text, _slots(obj))


def test_the_hot_paths_fill_in_place(monkeypatch):
    made: list = []
    monkeypatch.setattr(parser, "_new", _recording(made))
    parser.parse("a = x; 2 * sin(x) + a * 0.5 + sin(2 * x)")
    kinds = {(type(o).__name__, o.kind if type(o) is parser.E else o.op) for o in made}
    assert kinds == {("E", "num"), ("E", "node"), ("PNode", "number"), ("PNode", "sin")} | {
        ("PNode", "mul"),
        ("PNode", "add"),
    }


def _token(text, start):
    from gradcli.lalr import Token

    tok = str.__new__(Token, text)
    tok.type, tok.start_pos, tok.end_pos = "NUMBER", start, start + len(text)
    return tok


@pytest.mark.parametrize(
    "text", ["0", "7", "007", "2.5", "0.0", "1e400", "1e-400", "3.", ".5", "2e3", "2E+3"]
)
def test_number_is_main_s(text):
    """Builder.number against main's E("num", Whole(tok) if tok.isdigit() else float(tok))."""
    tok = _token(text, 3)
    got = parser.Builder("   " + text).number(tok)
    want = parser.E("num", Whole(tok) if tok.isdigit() else float(tok), 3, 3 + len(text))
    assert type(got) is parser.E
    assert repr(_slots(got)) == repr(_slots(want))
    assert type(got.value) is type(want.value)
    if isinstance(want.value, float):
        assert math.copysign(1, got.value) == math.copysign(1, want.value)


def test_nodes_are_main_s_on_nan_inf_and_zeros(monkeypatch):
    """The direct paths (filling in place) against the plain ones (__init__ throughout)."""
    text = "nan * x + inf * sin(x) - -inf * x + -0.0 * x + 0 * x + (x + x) * 0.0 + 1e400 * x"
    direct = _outcome(text)
    monkeypatch.setattr(parser.Builder, "direct", False)
    assert _outcome(text) == direct
    assert direct.startswith("('ok'")
