"""The lean LALR loop (gradcli.lalr) against Lark's own loop over the same tables: the same
graph for every program, the same error for every bad one."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradcli import parser
from gradcli.errors import GradcliError

PROGRAMS = [
    "mean(2*(x+2)^2)",
    "x",
    "-x^2 + +x - ~m",
    "2^3^2 * x ** -1",
    "a = x * 2; b = a + 1\nb * a",
    "\n\n# a comment\ny = x  # trailing\n\n;; z = y*y ;\nz\n",
    "y = sum(x,\n dim=0,\n keepdim=True)\ny",
    "torch.sum(x * x, dim=(0,))",
    "x.sum()",
    "x.clamp(min=0, max=1).mean()",
    "(x * x).relu().sum(0)",
    "x[0] + x[1:] .sum() + x[::2].sum() + x[:1].sum() + x[1::].sum() + x[:].sum()",
    "A[..., 0].sum() + A[None, :, 1].sum() + A[(0, 1)] + A[0, ]",
    "x[1:3:1].sum() + x[:3:].sum() + x[::].sum() + x[1:2:].sum()",
    "F.relu(x) + torch.nn.functional.relu(x) + nn.functional.relu(x)",
    "torch.einsum('i,i->', x, x) + torch.einsum(\"i,i->\", [x, x])",
    "cat([x, x], dim=0).sum() + stack((x, x)).sum() + stack([x, x,]).sum()",
    "reshape(x, 3, 1).sum() + x.view(-1).sum() + x.reshape((3,)).sum()",
    "x @ x + x / 2 + 2 / x + x // 2 + x % 2",
    "(x > 0) & (x < 1) | (x == 2)",
    "sum(x * (x != 1))",
    "torch.zeros(3) + torch.tensor([1, 2, 3]) * x",
    "x.to(torch.float64).sum() + x.double().sum()",
    "y = x \\\n + 1\ny.sum()",
    "[[1, 2], [3, 4]] @ x2",
    "max(x) + torch.max(x, x).sum()",
    "1 << 2 >> 1 | 4 & 5 + x",
    "((((((x))))))",
    "c = 2; c = c + 1; c * x",
    "mean(x,)",
    "x.T.sum()",
    "x.sum(dim=[0]) + x.mean(dim=None)",
    "nan * x + inf * x + 1e-3 * x + .5 * x",
    "# é ü — a comment of unicode text\ny = x * 2  # ∂y/∂x = 2\ny.sum()",
    "a, b = x.max(dim=0)\nv, w = (x, 2 * x)\nc = a + b; c.sum() + v.sum() + w.sum()",
    "s, m = torch.std_mean(x); s * m",
    "y = x;\n;\n\n y = y + 1 ;; y = y * y\n\n",
    "x.max(dim=0)[0].sum() + x.max(dim=0).values.sum() + torch.aminmax(x).min",
    "F.softmax(x, dim=-1).sum() + x.float().sum() + (2 - x).sum() + (x ** 2.5).sum()",
    "f = x\n" + "f = f * 1.5 + sin(f)\n" * 200 + "f.sum()",
    " + ".join(f"{i % 97 / 7:.3f}*cos(x{i % 3})" for i in range(3000)),
    "sum([" + ", ".join(str(i) for i in range(3000)) + "] * x)",
    "(" * 300 + "x" + " + 1)" * 300,
]


def _lark_only(monkeypatch):
    monkeypatch.setattr(parser, "_tables", False)


def _graph(program):
    return (
        [(n.op, n.args, n.attrs, n.start, n.end, n.name) for n in program.nodes],
        program.inputs,
        program.output,
    )


def _outcome(text):
    try:
        return ("ok", _graph(parser.parse(text)))
    except GradcliError as e:
        return (type(e).__name__, e.message, e.position, e.context, e.hint)


def test_the_lean_loop_runs():
    assert parser._get_tables() is not None  # else every test here compares Lark with Lark


@pytest.mark.parametrize("text", PROGRAMS)
def test_same_graph(text, monkeypatch):
    lean = _outcome(text)
    _lark_only(monkeypatch)
    assert _outcome(text) == lean


def test_most_programs_build():  # so that test_same_graph compares graphs, not errors
    built = [t for t in PROGRAMS if _outcome(t)[0] == "ok"]
    assert len(built) >= len(PROGRAMS) - 3


BAD = [
    "x +",
    "x + * 2",
    "(x + 1",
    "sum(x",
    "x $ 2",
    "x = ",
    "1 < 2 < x",
    "x[1:2:3:4]",
    "f(x=1, 2)",
    "sin(x, y, z)",
    "unknownfn(x)",
    "x.nosuch",
    "a = 1\nb = (2\n",
    "x\n)",
    "'abc",
    "2 = x",
    "x[...,...]",
    "x = 1; ; True",
    "x + é",
    "# é\nx + 1 +",
    "y = x * 2  # ü\ny +* 3",
    "x\u200b + 1",
    "x + \x00",
    "a, b = 1",
    "(x, y)",
    "'s'",
    "x.max(dim=0)",
    "x.max(dim=0).nosuch",
    "sum(x, dim=1.5)",
    "x ` 2",
    "y = (x +\n 1\n" + "z = y * 2\n" * 50,
    " + ".join("sin(x)" for _ in range(3000)) + " +",
    " + ".join("sin(x)" for _ in range(3000)) + " ) ",
    "x" + " + x" * 2000 + " $",
    "x; " * 500 + "x x",
]


@pytest.mark.parametrize("text", BAD)
def test_same_error(text, monkeypatch):
    lean = _outcome(text)
    assert lean[0] != "ok"
    _lark_only(monkeypatch)
    assert _outcome(text) == lean


ALPHABET = ["x", "y", "2", "1.5", "+", "-", "*", "/", "^", "(", ")", "[", "]", ",", ":", ";"]
ALPHABET += ["\n", " ", "sum(", "x.mean(", "dim=", "...", "None", "'s'", "=", ".", "==", "~"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(ALPHABET), max_size=14))
def test_random_text_same_outcome(parts):
    text = "".join(parts)
    lean = _outcome(text)
    saved = parser._tables
    parser._tables = False
    try:
        assert _outcome(text) == lean
    finally:
        parser._tables = saved


def test_deep_and_long_programs_do_not_recurse():
    deep = "(" * 50_000 + "x" + ")" * 50_000
    assert len(parser.parse(deep).nodes) == 1
    calls = "sin(" * 20_000 + "x" + ")" * 20_000
    assert len(parser.parse(calls).nodes) == 20_001
    lines = "\n".join(f"y{i} = x * {i}" for i in range(50_000)) + "\ny49999"
    assert len(parser.parse(lines).nodes) == 3  # (x, 49999 and their product)
    args = "stack([" + ", ".join("x" for _ in range(50_000)) + "]).sum()"
    assert len(parser.parse(args).nodes) == 3
    long = " + ".join(f"{i % 7 + 1}*sin(x)" for i in range(20_000))
    program = parser.parse(long)
    assert len(program.nodes) == 1 + 3 * 20_000 + 19_999  # x, then number, sin, mul; adds


WARM = """
import sys
from gradcli import parser
program = parser.parse(sys.argv[1])
print(len(program.nodes), "lark" in sys.modules)
try:
    parser.parse("x +")
except parser.ParseError as e:
    print(e.message, "lark" in sys.modules)
"""


def test_a_warm_cache_parses_without_lark(tmp_path):
    """The first start stores Lark's tables and the lean loop's in one file; the next parses
    from that file without importing Lark, which is imported only to report an error."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def run():
        p = subprocess.run(
            [sys.executable, "-c", WARM, "mean(2*(x+2)^2)"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return p.stdout.splitlines()

    first = run()
    assert first == ["8 True", "unexpected end of program True"]
    assert [p.name for p in (tmp_path / "cache" / "gradcli").iterdir()][0].startswith("tables-")
    assert run() == ["8 False", "unexpected end of program True"]


# ---- the text table's fast path against the plain rule it implements ---------------------


def reference_table(headers, rows, right=()):
    """Aligned columns, cells of several lines: each line of each cell padded to its
    column's widest line, two spaces between columns, trailing spaces cut."""
    split = [[c.split("\n") for c in row] for row in [headers] + rows]
    widths = [max(max(len(line) for line in row[i]) for row in split) for i in range(len(headers))]
    out = []
    for row in split:
        for k in range(max(len(c) for c in row)):
            parts = []
            for i, c in enumerate(row):
                text = c[k] if k < len(c) else ""
                parts.append(text.rjust(widths[i]) if i in right else text.ljust(widths[i]))
            out.append("  ".join(parts).rstrip())
    return out


CELL = st.text(alphabet="ab1 .-[]\n…{}", max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 5).flatmap(
        lambda n: st.tuples(
            st.tuples(*[CELL] * n),
            st.lists(st.tuples(*[CELL] * n), max_size=6),
            st.sets(st.integers(0, n - 1)),
        )
    )
)
def test_plain_table_is_the_plain_rule(case):
    from gradcli import render

    headers, rows, right = case
    want = reference_table(headers, rows, right)
    assert render._plain_table(headers, list(rows), right) == want
    consumed = list(rows)
    assert render._plain_table(headers, consumed, right, consume=True) == want
    assert consumed == []


def test_cells_of_scalars_are_tensor_str():
    """The 0-d fast path and its memo give tensor_str's text, -0. and nan included."""
    import numpy as np

    from gradcli import render
    from gradcli.torchrepr import tensor_str

    seen = {}
    values = [0.0, -0.0, 1.0, -1.0, 1e-5, 123456789.0, 0.5, np.nan, np.inf, -np.inf, 3.14159]
    for dtype in (np.float32, np.float64):
        for v in values * 2:
            a = np.asarray(v, dtype=dtype)
            assert render._cell(a, seen) == tensor_str(a, 0, render.CELL_WIDTH, 24), (v, dtype)
    assert render._cell(np.asarray([1.0, 2.0])) == tensor_str(np.asarray([1.0, 2.0]), 0, 56, 24)


def test_rows_are_the_cells_and_texts_of_each_node():
    """The table's rows, built in one pass with 0-d floats inline, are what the general
    helpers (_node_text, _cell) give each tensor node: names, pieces of decompositions
    (2/x), long texts cut, -0., nan, inf and arrays included."""
    import gradcli
    from gradcli import render

    cases = [
        ("y = 2 / (x + 1); z = y * -0.0 + y / 0.0; (z + x * nan).sum()", {"x": [1.0, 2.0]}),
        ("a = x * 2; b = a.sum() * 0.0; b * -1 + a[0] * inf", {"x": [1.5, -2.0]}),
        (" + ".join(f"{i % 5 - 2}*sin(x)" for i in range(60)), {"x": 1.5}),
        ("(" + " + ".join(f"{i % 5 - 2}*sin(x)" for i in range(60)) + ").sum()", {"x": [1.5, 2]}),
        ("v, i = A.max(dim=0); (v @ A).sum() + torch.std_mean(A)[1]", {"A": [[1, 2], [3, 4]]}),
        ("x_with_a_name_longer_than_the_column = x * 3; x_with_a_name_longer_than_the_column", 2),
    ]
    for text, inputs in cases:
        if not isinstance(inputs, dict):
            inputs = {"x": float(inputs)}
        result = gradcli.evaluate(text, inputs)
        texts = render.piece_texts(result)
        want = [
            (
                str(n.id),
                render._node_text(result, n, texts),
                n.label or "",
                render._shape(n.shape),
                render._cell(n.value),
                render._cell(n.grad),
            )
            for n in result.nodes
            if n.op != "number"
        ]
        assert render.rows(result) == want, text


# ---- the short paths of a long program's evaluation, against the general ones -------------

EVALUATED = [
    ("mean(2*(x+2)^2)", {"x": [-1.0, 0.25, 3.0]}),
    (" + ".join(f"{i % 5 - 2}*sin(x)" for i in range(40)), {"x": 1.5}),
    ("y = x * 2; z = y * y + y; z.sum() + (x / 3).sum()", {"x": [1.0, -2.0]}),
    (
        "(x + b).sum() * c - (c * x).mean()",
        {"x": [[1.0, 2.0], [3.0, 4.0]], "b": [1.0, 0.5], "c": 2.0},
    ),
    ("(x * -0.0 + x * 0.0 + 1 / (x * -0.0)).sum()", {"x": [1.0, 2.0]}),
    ("(i * 2 + x * 2.0 + i * 2.5).sum()", {"i": "int64:[1, 2]", "x": [0.5, 1.5]}),
    ("relu(x).sum() + abs(x).sum() + max(x) + (x > 0).sum()", {"x": [-1.0, 0.0, 1.0, 1.0]}),
    ("sin(x).sum() + torch.cos(x).sum() + x.exp().sum() + tanh(x)[0]", {"x": [0.1, 0.2]}),
]


def _everything(result):
    import numpy as np

    def arr(v):
        return None if v is None else (np.asarray(v).dtype.str, np.asarray(v).tobytes())

    return (
        [
            (n.op, n.args, n.attrs, n.name, n.label, n.shape, arr(n.value), arr(n.grad))
            for n in result.nodes
        ],
        {k: arr(v) for k, v in result.grad.items()},
    )


@pytest.mark.parametrize(("text", "inputs"), EVALUATED)
def test_one_shot_evaluation_is_the_recorded_one(text, inputs):
    """api.evaluate on text evaluates once and records no plan; the same program parsed
    first records one, and its replays: the same nodes, values and gradients, bit for bit."""
    import gradcli

    once = gradcli.evaluate(text, inputs)
    assert once.program.once and not once.program.plans
    program = parser.parse(text)
    recorded = gradcli.evaluate(program, inputs)
    assert not program.once and program.plans
    replayed = gradcli.evaluate(program, inputs)
    assert _everything(once) == _everything(recorded) == _everything(replayed)


@pytest.mark.parametrize(("text", "inputs"), EVALUATED)
def test_backward_short_path_is_the_long_one(text, inputs):
    """The reverse pass's short path for small adjoints gives the long path's adjoints
    (the long one runs when each step is watched, as gradcli explain does)."""
    import gradcli
    from gradcli import engine

    short = gradcli.evaluate(text, inputs)
    program, arrays, wrt, cap, rng = gradcli.api.prepare(text, inputs, None, "float32")
    program.once = True
    with gradcli.api.quietly():
        nodes, out = engine.forward(program, arrays, set(wrt), "float32", cap, rng=rng)
        seed = engine.make_seed(nodes[out], None, "float32")
        engine.backward(nodes, out, seed, "float32", on_step=lambda *step: None)
    long = gradcli.api.Result(program, nodes, out, wrt, "float32")
    assert _everything(short) == _everything(long)


def test_each_shape_rule_is_asked_again_for_new_shapes():
    """Shapes are looked up per op and operand shapes: another pair of shapes is checked
    (and refused) by the rule itself."""
    import gradcli
    from gradcli.errors import GradcliError

    ok = gradcli.evaluate("(x + x).sum() + (y + y).sum()", {"x": [1.0, 2.0], "y": [[1.0]]})
    assert float(ok.value) == 8.0
    with pytest.raises(GradcliError, match="cannot be broadcast"):
        gradcli.evaluate("(x + x).sum() + (x + y).sum()", {"x": [1.0, 2.0], "y": [1.0, 2.0, 3.0]})


def test_number_literals_keep_their_sign_and_kind():
    """Number nodes share one attrs dict per literal value, but -0.0 is not 0.0 and 2 is
    not 2.0 (an integer literal keeps int64 arithmetic int64)."""
    import math

    from gradcli.ops.core import Whole

    program = parser.parse("x * 0.0 + x * -0.0 + x * 2 + x * 2.0 + x * 0.0 + i * 2")
    numbers = [n.attrs["value"] for n in program.nodes if n.op == "number"]
    assert [math.copysign(1, v) for v in numbers] == [1, -1, 1, 1, 1, 1]
    assert [isinstance(v, Whole) for v in numbers] == [False, False, True, False, False, True]
    zeros = [n.attrs for n in program.nodes if n.op == "number" and n.attrs["value"] == 0]
    assert zeros[0] is zeros[2] and zeros[0] is not zeros[1]


def _public_ops():
    from gradcli.ops import TABLE

    return sorted(op.name for op in TABLE if op.public and not op.params and op.bare)


@pytest.mark.parametrize("name", _public_ops())
def test_plain_calls_are_calls(name, monkeypatch):
    """The Builder's short path for calls without parameters (sin(x)) builds what the
    general path builds, or fails as it fails, for every such operator and argument count."""
    texts = [f"{name}(x)", f"{name}(x, y)", f"{name}(x, 2)", f"{name}(x, y, z)", f"{name}()"]
    texts += [f"{name}((x, y))", f"{name}(x, dim=0)", f"{name}(x.max(dim=0))"]
    short = [_outcome(t) for t in texts]
    monkeypatch.setattr(parser.Builder, "plain_args", staticmethod(lambda op, args: False))
    monkeypatch.setattr(parser.Builder, "direct", False)  # (sin(x) without call())
    assert [_outcome(t) for t in texts] == short


def test_plain_calls_are_taken():  # (else the test above compares the general path with itself)
    taken = []
    plain_call = parser.Builder.plain_call

    def spy(self, *args):
        taken.append(args[0].name)
        return plain_call(self, *args)

    saved, parser.Builder.plain_call = parser.Builder.plain_call, spy
    parser.Builder.direct = False  # (which takes sin(x) before call() is reached)
    try:
        parser.parse("sin(x) + exp(sin(x))")
    finally:
        parser.Builder.plain_call = saved
        parser.Builder.direct = True
    assert taken == ["sin", "sin", "exp"]


def test_piped_text_in_pieces_is_the_text(monkeypatch):
    """The piped answer written a few lines at a time is plain()'s text, and the command's
    output is that text."""
    from click.testing import CliRunner

    import gradcli
    from gradcli import render
    from gradcli.cli import main

    text = " + ".join(f"{i % 7 + 1}*sin(x)" for i in range(30))
    result = gradcli.evaluate(text, {"x": 0.5})
    whole = render.plain(result)
    monkeypatch.setattr(render, "PIECE_LINES", 7)
    pieces = list(render.plain_pieces(result))
    assert len(pieces) > 4 and "".join(pieces) == whole
    assert render.plain(result) == whole
    assert whole.count("\n") == len(whole.splitlines())  # (one final newline)
    run = CliRunner().invoke(main, ["grad", text, "x=0.5"])
    assert run.exit_code == 0 and run.output == whole


@pytest.mark.parametrize(
    ("text", "inputs"),
    [
        *EVALUATED,
        ("mean(2*(x+2)^2) + nan * x.sum() + (1 / x).sum()", {"x": [0.0, 1.0, -2.0]}),
        ("x.double().sum() * torch.nan + inf * y", {"x": [1.0], "y": 2.0}),
        ("sum(log(x)) + y.sum()", {"x": "rand(70000)", "y": [1.0, 2.0]}),
        ('y = sum(x,  # é, ü: "quoted"\n dim=0)\ny * -0.0 + y * 0.1', {"x": [1.0, 2.0]}),
        (
            "v, i = x.max(dim=0); (v * y).sum() + x.double().sum()",
            {"x": [[1, 5], [3, 2]], "y": 2.0},
        ),
    ],
)
@pytest.mark.parametrize("block", [1, 2, 4096])
def test_json_in_pieces_is_the_json(text, inputs, block, monkeypatch):
    """grad --json streamed (the nodes spelled a block at a time, large arrays in blocks,
    non-finite numbers spelled) is the JSON of the whole answer."""
    import json

    import gradcli
    from gradcli import render

    monkeypatch.setattr(render, "NODE_BLOCK", block)
    result = gradcli.evaluate(text, inputs, random_seed=0)
    pieces = list(render.json_pieces(render.result_json(result)))
    streamed = "".join(pieces)
    assert streamed == render.dumps(result.to_dict()) == render.dumps(render.result_json(result))
    json.loads(streamed)  # (strict JSON: no NaN literals)
    if block == 1:
        assert len(pieces) > len(result.nodes)  # (a piece per node: the blocks were cut)
