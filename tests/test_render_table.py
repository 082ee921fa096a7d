"""The graph table's fast path (render._grid, _grid_lines; Program.sources) against the
algorithm it replaced, kept here as the reference: the rows built one at a time with a
source text per node split and joined again, piece texts with an owner per source text, and
every line formatted cell by cell. Random programs: names, decompositions (2/x, @), long
texts, nan, inf, -0., integer and bool tensors, arrays of several lines, uneven whitespace."""

import math
import random

import numpy as np
import pytest

import gradcli
from gradcli import parser, render
from gradcli.errors import GradcliError
from gradcli.torchrepr import tensor_str

# ---- the reference: the algorithm before the fast path ----------------------------------


old_elide = parser.elide  # (unchanged: the rule a node's source text follows)


def old_source_texts(result):
    program = result.program
    return [
        old_elide(program.text, program.nodes[n.src].start, program.nodes[n.src].end)
        for n in result.nodes
    ]


def old_piece_texts(result, source):
    nodes = result.nodes
    owner = {}
    for n in nodes:
        o = owner.get(n.src)
        if o is None or nodes[o].op != "input":
            owner[n.src] = n.id
    texts = {}
    bare = [t[1:-1] if t.startswith("(") and t.endswith(")") else t for t in source]
    for n in nodes:
        if n.name is not None or n.op == "number" or n.op == "input":
            continue
        own, src = bare[n.id], n.src
        operand = False
        for a in n.args:
            m = nodes[a]
            if m.src != src and own == (m.name or bare[a]):
                operand = True
                break
        if not operand and owner[src] == n.id:
            continue
        args = []
        for a in n.args:
            t = texts.get(a) or (nodes[a].name or source[a])
            args.append(f"({t})" if any(c in t for c in " +-*/@^") else t)
        pattern = render._PIECES.get(n.op)
        try:
            texts[n.id] = pattern.format(*args, **dict(n.attrs or {})) if pattern else None
        except (IndexError, KeyError):
            texts[n.id] = None
        if texts[n.id] is None:
            texts[n.id] = f"{n.op}({', '.join(args)})"
    return texts


def old_scalar(v):
    if not math.isfinite(v) or v == 0:
        return f"{v:.0f}" + ("." if math.isfinite(v) else "")
    m = abs(v)
    if m > 1.0e8 or m < 1.0e-4:
        return f"{v:.4e}"
    if v == math.ceil(v):
        return f"{v:.0f}."
    return f"{v:.4f}"


def old_cell(value):
    if value is None:
        return ""
    a = np.asarray(value)
    if a.ndim == 0 and a.dtype.kind == "f":
        return old_scalar(a.item())
    return tensor_str(value, 0, render.CELL_WIDTH, render.CELL_THRESHOLD)


def old_rows(result):
    source = old_source_texts(result)
    texts = old_piece_texts(result, source)
    out = []
    for n, text in zip(result.nodes, source, strict=True):
        if n.op == "number":
            continue
        if n.name is not None:
            text = n.name
        text = texts.get(n.id, text)
        if len(text) > render.NODE_TEXT:
            text = text[: render.NODE_TEXT - 1] + "…"
        shape = "[" + ", ".join(str(d) for d in n.shape) + "]"
        out.append((str(n.id), text, n.label or "", shape, old_cell(n.value), old_cell(n.grad)))
    return out


def old_table_lines(headers, rows, right=()):
    table = [tuple(headers), *rows]
    widths = [
        max(max(len(x) for x in c.split("\n")) for c in column)
        for column in zip(*table, strict=True)
    ]
    line = "  ".join(
        ("{:>%d}" if i in right else "{:<%d}") % w for i, w in enumerate(widths)
    ).format
    out = []
    for row in table:
        split = [c.split("\n") for c in row]
        for j in range(max(len(c) for c in split)):
            out.append(line(*[c[j] if j < len(c) else "" for c in split]).rstrip())
    return out


def old_plain(result, width=None):
    head, grads = render._ends(result, width)
    lines = old_table_lines(render.HEADERS, old_rows(result), right={0})
    if not render.fits(lines, width):
        saved = render.piece_texts
        render.piece_texts = lambda result, source=None: old_piece_texts(
            result, old_source_texts(result)
        )
        try:
            lines = render._node_blocks(result, width)
        finally:
            render.piece_texts = saved
    text = head + "\n\n" + "".join(line + "\n" for line in lines)
    return text + "".join(f"\n{title}\n{g}\n" for title, g in grads)


# ---- random programs ----------------------------------------------------------------------

INPUTS = {
    "x": [1.5, -0.0, 2.0],
    "s": 0.75,
    "z": -0.0,
    "A": [[1.0, -2.5, 3.0], [0.5, 1e-5, 2e9], [-1.0, 0.0, 7.25]],
    "i": "int64:[1, -2, 3]",
    "long_input_name_of_many_letters_indeed": 2.5,
}
NUMBERS = ["2", "0.5", "-0.0", "0.0", "3", "1e-5", "2e9", "nan", "inf", "1.25"]


def _expr(rng, depth, names):
    if depth <= 0 or rng.random() < 0.25:
        pick = rng.random()
        if pick < 0.15:
            return rng.choice(NUMBERS)
        if pick < 0.35 and names:
            return rng.choice(names)
        return rng.choice(["x", "s", "z", "s", "x", "long_input_name_of_many_letters_indeed"])
    a = _expr(rng, depth - 1, names)
    kind = rng.randrange(14)
    if kind == 0:
        return f"sin({a})"
    if kind == 1:
        return f"({a})"
    if kind == 2:
        return f"2 / ({a})"
    if kind == 3:
        return f"-{a}" if not a.startswith("-") else f"-({a})"
    if kind == 4:
        return f"exp({a})"
    if kind == 5:
        return f"relu({a})"
    b = _expr(rng, depth - 1, names)
    op = rng.choice(["+", "*", "-", "/", "+", "*"])
    gap = rng.choice([" ", "", "  ", " ", "\t", "\n "]) if rng.random() < 0.3 else " "
    return f"{a}{gap}{op}{gap}{b}"


def random_program(seed):
    """(text, inputs): a few statements, each a random expression, the last one summed."""
    rng = random.Random(seed)
    names: list[str] = []
    lines = []
    for k in range(rng.randrange(1, 4)):
        name = rng.choice(["y", "w", "a_name_longer_than_the_table_column_is", "t"]) + str(k)
        lines.append(f"{name} = {_expr(rng, rng.randrange(1, 5), names)}")
        names.append(name)
    tail = _expr(rng, rng.randrange(1, 5), names)
    extra = rng.choice(
        [
            "",
            " + (A @ x).sum()",
            " + (i * 2 + x).sum()",
            " + (x > 0).sum()",
            " + A.sum() * 0.0",
            " + (x * nan).sum()",
            " + (A * inf).sum()",
            " + torch.std_mean(A)[1]",
            " + " + " + ".join(f"{j % 5 - 2}*sin(x)" for j in range(30)) + ").sum(",
        ]
    )
    body = f"({tail}).sum(){extra}" if not extra.endswith("sum(") else f"(({tail}){extra})"
    sep = rng.choice(["\n", "; ", "\n\n", ";  "])
    return sep.join([*lines, body]) + rng.choice(["", "\n", "  # a comment é\n"]), dict(INPUTS)


def _results(seeds):
    for seed in seeds:
        text, inputs = random_program(seed)
        try:
            yield seed, text, gradcli.evaluate(text, inputs)
        except GradcliError:
            continue


def test_random_programs_evaluate():  # (else the tests below compare few programs)
    assert sum(1 for _ in _results(range(200))) >= 120


@pytest.mark.parametrize("block", range(8))
def test_tables_are_the_old_tables(block, monkeypatch):
    """plain() piped and at several terminal widths, rows(), source_texts() and
    piece_texts() give the reference's text, on random programs; and again with pieces of a
    few lines, which cut the table (and its rows of several lines) into many blocks."""
    for seed, text, result in _results(range(block * 25, block * 25 + 25)):
        source = old_source_texts(result)
        assert render.source_texts(result) == source, text
        assert render.piece_texts(result) == old_piece_texts(result, source), text
        assert render.rows(result) == old_rows(result), text
        for width in (None, 200, 90, 60, 36, 20, 8):
            want = old_plain(result, width)
            assert render.plain(result, width) == want, (seed, text, width)
        monkeypatch.setattr(render, "PIECE_LINES", 3)
        pieces = list(render.plain_pieces(result))
        assert "".join(pieces) == old_plain(result), (seed, text)
        assert len(pieces) >= 2 + len(old_rows(result)) // 3
        monkeypatch.undo()


def test_a_long_one_line_program_is_the_old_table(monkeypatch):
    """The benchmark's kind of program (every span before the one newline at its end, most
    of them long): the same table, piped and on a terminal, in pieces of many sizes."""
    text = " + ".join(f"{(k % 7 + 1) / 100:g}*sin(x)" for k in range(300)) + "\n"
    result = gradcli.evaluate(text, {"x": 1.5})
    want = old_plain(result)
    assert render.plain(result) == want
    assert render.plain(result, 100) == old_plain(result, 100)
    assert render.plain(result, 30) == old_plain(result, 30)
    for lines in (1, 2, 7, 4096):
        monkeypatch.setattr(render, "PIECE_LINES", lines)
        assert "".join(render.plain_pieces(result)) == want


def test_the_rows_of_several_lines_and_empty_grads():
    """Rows whose cells have several lines (a matrix), and rows without a grad (a constant),
    at the edge of a block and inside one: each line padded and stripped as before."""
    text = "c = A * 0.0 + 1; B = A * 2; (B @ B).sum() + (i * 3).sum() + c.sum() + s"
    result = gradcli.evaluate(text, INPUTS)
    assert any("\n" in c for row in render.rows(result) for c in row)
    assert any(row[5] == "" for row in render.rows(result))
    assert render.plain(result) == old_plain(result)
    for lines in range(1, 12):
        saved, render.PIECE_LINES = render.PIECE_LINES, lines
        try:
            assert "".join(render.plain_pieces(result)) == old_plain(result), lines
        finally:
            render.PIECE_LINES = saved


# ---- source texts: Program.source and .sources against elide's split and join -------------

SPACES = [" ", "  ", "\n", "\t", " \n ", "\xa0", "\u3000", "\x1c", "\r\n", "   "]


@pytest.mark.parametrize("seed", range(40))
def test_sources_are_the_split_and_joined_spans(seed):
    """Every span of a text with lone spaces, runs of them, newlines, tabs and the other
    whitespace str.split() knows, long spans and short: source() and sources() give elide's
    split-and-joined text."""
    rng = random.Random(seed)
    kinds = rng.sample(SPACES, rng.randrange(1, 4)) if seed % 4 else [" "]
    words = []
    for _ in range(rng.randrange(5, 80)):
        words.append(rng.choice(["x", "sin(x)", "(2*y)", "é", "a_b", "1.5", "…", "(", ")"]))
        words.append(rng.choice(kinds) if rng.random() < 0.8 else "")
    text = "".join(words)
    if seed % 3 == 0:
        text += "\n"
    spans = [(a, b) for a in range(len(text) + 1) for b in range(a, len(text) + 1)]
    spans = rng.sample(spans, min(len(spans), 600)) + [(0, len(text))]
    nodes = [parser.PNode("x", (), None, a, b) for a, b in spans]
    program = parser.Program(text, nodes, {}, 0)
    want = [old_elide(text, a, b) for a, b in spans]
    assert [program.source(n) for n in nodes] == want
    assert program.sources(nodes) == want
    assert program.sources([nodes[0]] * 3 + nodes[1:3]) == [want[0]] * 3 + want[1:3]
    assert parser.elide(text, 0, len(text)) == want[-1]


def test_the_spaces_are_those_split_knows():
    """_SPACES is every character str.split() splits at but the space, the ASCII ones
    first (an ASCII text looks for those only)."""
    spaces = [chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".split()) == 2]
    assert sorted(parser._SPACES + " ") == sorted(spaces)
    assert parser._SPACES[:9].isascii() and not parser._SPACES[9:].isascii()


def test_a_new_text_is_looked_at_again():
    """The spacing of a program's text is kept with the text it was found in."""
    nodes = [parser.PNode("x", (), None, 0, 5)]
    program = parser.Program("a b c", nodes, {}, 0)
    assert program.source(nodes[0]) == "a b c"
    program.text = "a\n\tc  "
    assert program.source(nodes[0]) == "a c"
    assert program.sources(nodes) == ["a c"]


# ---- cells ---------------------------------------------------------------------------------


def test_scalar_cells_are_the_old_ones():
    from gradcli.torchrepr import _scalar

    values = [0.0, -0.0, 1.0, -1.0, 1e-4, 9.99e-5, 1e8, 1.0000001e8, -1e-4, 0.5, 2.5, 1e300]
    values += [math.nan, math.inf, -math.inf, 5e-324, -123456.0, 3.14159, 0.00012, 99999999.5]
    rng = random.Random(0)
    values += [rng.uniform(-1e9, 1e9) * 10 ** rng.randint(-12, 2) for _ in range(3000)]
    for dtype in (np.float32, np.float64, np.float16):
        for v in values:
            f = float(np.asarray(v, dtype=dtype))
            assert _scalar(f) == old_scalar(f), (f, dtype)


def old_owners(srcs, ops):
    owner: dict = {}
    for i, s in enumerate(srcs):
        o = owner.get(s)
        if o is None or ops[o] != "input":
            owner[s] = i
    return [owner[s] == i for i, s in enumerate(srcs)]


@pytest.mark.parametrize("seed", range(30))
def test_owners_are_the_old_owners(seed):
    """The node standing for each piece of source text, found by runs where the pieces come
    in order and by a dict where they do not, is the old loop's: inputs among them too."""
    rng = random.Random(seed)
    srcs = sorted(rng.randrange(12) for _ in range(rng.randrange(1, 40)))
    if seed % 3 == 0:
        rng.shuffle(srcs)
    ops = [rng.choice(["input", "mul", "mul", "add", "number"]) for _ in srcs]
    assert render._owners(srcs, ops) == old_owners(srcs, ops)


def test_cells_of_other_float_kinds_are_the_old_ones():
    """0-d values of float16, float64 and big-endian float32 (not in the fast path's set of
    dtypes), arrays, ints, bools and Python floats: the same cells as before."""
    result = gradcli.evaluate("y = sin(x) * 2; z = y + 1; (z * y).sum() + s", INPUTS)
    kinds = [
        lambda v: np.asarray(v, dtype=">f4"),
        lambda v: np.asarray(v, dtype=np.float16),
        lambda v: np.asarray(v, dtype=np.float64),
        lambda v: np.asarray(np.sum(v), dtype=np.float32),
        lambda v: np.asarray(v, dtype=np.int64),
        lambda v: np.asarray(v) > 0,
        lambda v: float(np.sum(v)),
        lambda v: np.asarray([np.nan, -0.0, np.inf], dtype=np.float32),
    ]
    for k, n in enumerate(result.nodes):
        if n.value is not None:
            n.value = kinds[k % len(kinds)](n.value)
        if n.grad is not None:
            n.grad = kinds[(k + 3) % len(kinds)](n.grad)
    assert render.rows(result) == old_rows(result)
    assert render.plain(result) == old_plain(result)
    assert render.plain(result, 50) == old_plain(result, 50)
