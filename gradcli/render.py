"""Rendering a Result: PyTorch-style text (rich on a terminal, plain when piped) and JSON.
Rendering never computes anything."""

import json
import math
from itertools import chain, islice
from operator import attrgetter, itemgetter, ne
from typing import Any

import numpy as np

from .api import _special, json_value
from .parser import paused_gc
from .torchrepr import LINEWIDTH, _scalar, tensor_repr, tensor_str

HEADERS = ("id", "node", "grad_fn", "shape", "value", "grad")
CELL_WIDTH, CELL_THRESHOLD = 56, 24  # table cells: narrower lines, earlier summarising
NODE_TEXT = 32


def dumps(obj):
    """Strict JSON (RFC 8259): non-finite numbers were made strings by json_value; numpy
    arrays are converted the same way."""
    # ASCII-only (json's default): safe on any terminal encoding
    return json.dumps(obj, allow_nan=False, default=_array_value)


def _array_value(obj):
    import numpy as np

    if isinstance(obj, (np.ndarray, np.generic)):
        return json_value(obj)
    if isinstance(obj, _Nodes):  # (result_json's nodes, dumped whole rather than streamed)
        return obj.result.to_dict(nodes=True)["nodes"]
    raise TypeError(f"{type(obj).__name__} is not JSON")


JSON_CHUNK = 1 << 16  # array elements formatted at a time


def json_pieces(obj):
    """The text of dumps(obj) in pieces: numpy arrays (and floats, nan as "nan") are
    formatted JSON_CHUNK elements at a time, so a tensor of 5,000,000 elements never becomes
    a list of 5,000,000 Python floats. Walks ``obj`` with an explicit stack."""
    import numpy as np

    todo = [obj]
    while todo:
        item = todo.pop()
        if isinstance(item, _Raw):
            yield item
        elif isinstance(item, _Nodes):
            yield from item.pieces()
        elif isinstance(item, dict) and (text := _small(item)) is not None:
            yield text
        elif isinstance(item, dict):
            parts: list[str] = []
            for k, v in item.items():
                parts += [_Raw(", " if parts else "{"), _Raw(json.dumps(str(k)) + ": "), v]
            todo += reversed(parts + [_Raw("}" if parts else "{}")])
        elif isinstance(item, (list, tuple)) and (text := _ready(item)) is not None:
            yield text
        elif isinstance(item, (list, tuple)):
            parts = []
            for v in item:
                parts += [_Raw(", " if parts else "["), v]
            todo += reversed(parts + [_Raw("]" if parts else "[]")])
        elif isinstance(item, np.ndarray) and item.size > JSON_CHUNK:
            yield from _array_pieces(item)
        elif isinstance(item, (float, np.ndarray, np.generic)):
            yield dumps(json_value(item))
        else:
            yield dumps(item)


def _small(obj):
    """The JSON of a dict of small values (a node of grad --json's "nodes"), in one call of
    json's encoder; None for one with a large array or a nested dict to stream, or a
    non-finite float to spell."""
    import numpy as np

    for v in obj.values():
        if isinstance(v, (dict, _Nodes)) or (isinstance(v, np.ndarray) and v.size > JSON_CHUNK):
            return None
        if isinstance(v, (list, tuple)) and any(isinstance(e, (dict, np.ndarray)) for e in v):
            return None
    try:
        return dumps(obj)
    except ValueError:  # (a nan float: json_pieces spells it)
        return None


def _ready(items):
    """The JSON of a list that is JSON-ready already (lists from json_value), at C speed; or
    None for one that holds dicts or arrays to stream, or a non-finite float to spell."""
    import numpy as np

    if any(isinstance(v, (dict, np.ndarray)) for v in items):
        return None
    try:
        return json.dumps(items, allow_nan=False)
    except (ValueError, TypeError):
        return None


class _Raw(str):
    """JSON text to emit as it is."""


def _array_pieces(arr):
    """A large array as JSON text, a block of whole sub-arrays at a time (explicit stack)."""
    yield "["
    stack = [(arr, 0)]
    while stack:
        a, i = stack.pop()
        if i >= len(a):
            yield "]"
            continue
        if i:
            yield ", "
        per = a[0].size
        if per > JSON_CHUNK:
            stack += [(a, i + 1), (a[i], 0)]
            yield "["
        else:
            k = max(1, JSON_CHUNK // max(per, 1))
            stack.append((a, i + k))
            yield dumps(json_value(a[i : i + k]))[1:-1]


def to_json(result, nodes=True):
    return dumps(result.to_dict(nodes=nodes))


def result_json(result, nodes=True):
    """grad --json's object with the tensors left as arrays, for json_pieces; its "nodes"
    list is a _Nodes, whose text json_pieces makes a block of nodes at a time (a program of
    10^6 nodes never has 10^6 dicts alive)."""
    if nodes and result.keep != "all":
        return result.to_dict(nodes=True)  # (which says why there are no nodes)
    obj = result.to_dict(nodes=False, encode=_keep)
    if nodes:
        obj["nodes"] = _Nodes(result)
    return obj


NODE_BLOCK = 4096  # nodes per piece of _Nodes.pieces()


class _Nodes:
    """grad --json's "nodes" of a Result, as json_pieces streams them: exactly the text
    dumps() gives the list of Result.to_dict()'s node dicts."""

    def __init__(self, result):
        self.result = result

    def pieces(self):
        from json.encoder import encode_basestring_ascii as quote

        nodes = self.result.nodes
        if not nodes:
            yield "[]"
            return
        texts = _source_iter(self.result)
        lists: dict[tuple, str] = {}  # the JSON of an args tuple or a shape, by value
        numbers: dict[float, str] = {}  # the JSON of a 0-d float's value (not 0 or nan)
        block: list[str] = []
        opening = "["
        for n, text in zip(nodes, texts, strict=True):
            args, shape = lists.get(n.args), lists.get(n.shape)
            if args is None:
                args = lists[n.args] = _int_list(n.args)
            if shape is None:
                shape = lists[n.shape] = _int_list(n.shape)
            head = (
                f'{{"id": {n.id}, "name": {"null" if n.name is None else quote(n.name)}, '
                f'"text": {quote(text)}, "op": {quote(n.op)}, '
                f'"grad_fn": {"null" if n.label is None else quote(n.label)}, '
                f'"inputs": {args}, "shape": {shape}, "value": '
            )
            value, grad = _json_leaf(n.value, numbers), _json_leaf(n.grad, numbers)
            if value is None or grad is None:  # a large array: streamed in blocks
                if block:
                    yield opening + ", ".join(block)
                    block, opening = [], ", "
                yield opening + head
                opening = ", "
                yield from json_pieces(n.value) if value is None else [value]
                yield ', "grad": '
                yield from json_pieces(n.grad) if grad is None else [grad]
                yield "}"
                continue
            block.append(f'{head}{value}, "grad": {grad}}}')
            if len(block) == NODE_BLOCK:
                yield opening + ", ".join(block)
                block, opening = [], ", "
        yield (opening + ", ".join(block) if block else "") + "]"


def _int_list(items):
    return "[" + ", ".join([str(int(k)) for k in items]) + "]"


def _json_leaf(value, numbers):
    """The JSON of a node's value or gradient (json_value's, in dumps()'s spelling), or
    None for an array large enough to stream."""
    import numpy as np

    if value is None:
        return "null"
    if type(value) is np.ndarray and value.ndim == 0 and value.dtype.kind == "f":
        v = value.item()
    elif type(value) is float:
        v = value
    elif isinstance(value, np.ndarray) and value.size > JSON_CHUNK:
        return None
    else:
        return dumps(json_value(value))
    text = numbers.get(v)
    if text is None:
        text = float.__repr__(v) if math.isfinite(v) else f'"{_special(v)}"'
        if v != 0 and v == v:  # (0.0 == -0.0 and nan != nan: those are never kept)
            numbers[v] = text
    return text


def _keep(value):
    return value


def _shape(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _cell(value, seen=None):
    """A value's table cell; ``seen`` (a dict) keeps the texts of 0-d floats made so far."""
    if value is None:
        return ""
    if type(value) is np.ndarray and value.ndim == 0 and value.dtype.kind == "f":
        # what tensor_str gives a 0-d float, without its checks (by float: 0.0 == -0.0, so
        # zeros are not kept; a nan is never found again, so it is made each time)
        v = value.item()
        if seen is None or v == 0:
            return _scalar(v)
        text = seen.get(v)
        if text is None:
            text = seen[v] = _scalar(v)
        return text
    return tensor_str(value, 0, CELL_WIDTH, CELL_THRESHOLD)


def _node_text(result, node, texts=None, limit: int | None = NODE_TEXT, source=None):
    """``source``: the source texts by node id, when the caller has them already."""
    if node.name is not None:
        text = node.name
    else:
        text = result.text(node) if source is None else source[node.id]
    if texts is not None:
        text = texts.get(node.id, text)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


_PIECES = {  # what a node PyTorch makes by decomposition computes, from its operands' texts
    "reciprocal": "1/{0}",
    "unsqueeze": "{0}.unsqueeze({dim})",
    "squeeze": "{0}.squeeze({dim})",
    "mm": "{0} @ {1}",
    "mv": "{0} @ {1}",
    "dot": "{0} @ {1}",
    # elements of a call's several results, when a list argument takes them all
    "split_part": "{0}[{start}:{stop}] (dim {dim})",
    "unbind_part": "{0}.select({dim}, {index})",
    "std_mean_std": "std_mean({0})[0]",
    "std_mean_mean": "std_mean({0})[1]",
    "var_mean_var": "var_mean({0})[0]",
    "var_mean_mean": "var_mean({0})[1]",
    "aminmax_min": "{0}.aminmax().min",
    "aminmax_max": "{0}.aminmax().max",
}


def piece_texts(result, source=None):
    """Texts for the nodes a decomposition made (`2/x` is 2 * x.reciprocal(): the reciprocal
    is `1/x`, not `x`): every node but the last that came from one piece of source text is
    named for what it computes. One pass, in node order. ``source``: source_texts(result)."""
    nodes = result.nodes
    if source is None:
        source = source_texts(result)
    srcs = list(map(_SRC, nodes))
    owns = _owners(srcs, list(map(_OP, nodes)))
    names = list(map(_NAME, nodes))
    bare = [t[1:-1] if t[:1] == "(" and t[-1:] == ")" else t for t in source]
    texts: dict[Any, Any] = {}
    for n in nodes:
        if n.name is not None:
            continue
        op = n.op
        if op == "number" or op == "input":
            continue
        i, src, own = n.id, n.src, bare[n.id]
        for a in n.args:  # the text of an operand from elsewhere: 2/(x+1)'s reciprocal
            if own == (names[a] or bare[a]) and srcs[a] != src:
                break
        else:
            if owns[i]:  # the source text names it already
                continue
        args = []
        for a in n.args:
            t = texts.get(a) or (names[a] or source[a])
            args.append(f"({t})" if any(c in t for c in " +-*/@^") else t)
        attrs = dict(n.attrs or {})
        pattern = _PIECES.get(op)
        try:
            texts[i] = (pattern or "").format(*args, **attrs) if pattern else None
        except (IndexError, KeyError):
            texts[i] = None
        if texts[i] is None:
            texts[i] = f"{op}({', '.join(args)})"
    return texts


_SRC, _OP, _NAME = attrgetter("src"), attrgetter("op"), attrgetter("name")


def _owners(srcs, ops):
    """Whether each node stands for the piece of source text it came from: the first input
    that came from it, else the last node (ids are places in the list). Where the nodes of
    each piece come one after another (sorted, as forward makes them), the last of a run."""
    inputs: dict[Any, int] = {}
    for i in _places(ops, "input"):
        inputs.setdefault(srcs[i], i)
    try:
        runs = srcs == sorted(srcs)
    except TypeError:
        runs = False
    if not runs:
        owner: dict[Any, int] = dict(zip(srcs, range(len(srcs)), strict=True))
        owner.update(inputs)
        return [owner[s] == i for i, s in enumerate(srcs)]
    owns = list(map(ne, srcs, islice(chain(srcs, [_END]), 1, None)))
    for s, i in inputs.items():  # (its run: the nodes before and after it from s)
        j, k = i, i + 1
        while j and srcs[j - 1] == s:
            j -= 1
        while k < len(srcs) and srcs[k] == s:
            k += 1
        owns[j:k] = [False] * (k - j)
        owns[i] = True
    return owns


_END = object()  # (after the last node: not any node's source)


def _places(items, item):
    """The places of ``item`` in the list ``items``, found at C speed."""
    at = -1
    while True:
        try:
            at = items.index(item, at + 1)
        except ValueError:
            return
        yield at


def source_texts(result):
    """Every node's source text, by id (the nodes a decomposition made from one program
    node come one after another, and share its text); equal texts as one string."""
    out: list[str] = []
    for block in _source_blocks(result, share=True):
        out += block
    return out


def _source_iter(result):
    """source_texts(result), one at a time (equal texts not made one)."""
    for block in _source_blocks(result):
        yield from block


def _source_blocks(result, share=False):
    """The nodes' source texts, NODE_BLOCK at a time; ``share``: equal texts as one string
    (for a list that keeps them all: a long program repeats a few)."""
    program = result.program
    pnodes = map(program.nodes.__getitem__, map(_SRC, result.nodes))
    kept: dict[str, str] = {}
    while block := program.sources(islice(pnodes, NODE_BLOCK)):
        yield list(map(kept.setdefault, block, block)) if share else block


def rows(result):
    """The graph table: one row per tensor node (Python-number operands are not tensors in
    PyTorch and are left out; they stay in the JSON ``nodes``)."""
    with paused_gc():  # (strings and tuples of them: nothing for the collector to find)
        table = _grid(result)
    return [(str(r[0]), *r[1:]) for r in table.rows]


class _Grid:
    """The graph table's rows, each (id, text, grad_fn, shape, value, grad) with the id an
    int, and what its lines need: each column's width (the headers' included), the places
    of the rows with a cell of several lines, and whether a line may end in whitespace."""

    def __init__(self, rows, widths, tall, ragged):
        self.rows, self.widths, self.tall, self.ragged = rows, widths, tall, ragged


def _grid(result):
    source = source_texts(result)
    texts = piece_texts(result, source)
    out: list[tuple] = []
    append = out.append
    shapes: dict[tuple, str] = {}
    kept: dict[str, str] = {}  # one copy of each cut text: rows of sin(x) share one
    values: dict[float, str] = {}  # the cells of 0-d floats, by value, per column
    grads: dict[float, str] = {}
    widths = [len(h) for h in HEADERS]
    tall: list[int] = []
    ragged = False  # a grad cell empty or ending in whitespace: lines are stripped
    ndarray, floats = np.ndarray, _FLOATS
    for n, text in zip(result.nodes, source, strict=True):
        if n.op == "number":
            continue
        shape = shapes.get(n.shape)
        if shape is None:
            shape = shapes[n.shape] = _shape(n.shape)
        # _node_text(result, n, texts, source=source), inline: once per row
        if n.name is not None:
            text = n.name
        if texts:
            text = texts.get(n.id, text)
        if len(text) > NODE_TEXT:
            text = text[: NODE_TEXT - 1] + "…"
            text = kept.setdefault(text, text)
        # _cell(value, seen), its 0-d floats inline
        value = n.value
        if type(value) is ndarray and not value.ndim and value.dtype in floats:
            cell = values.get(v := value.item()) or _new_scalar(v, values, widths, 4)
        else:
            cell = _other_cell(value, widths, 4, tall, len(out))
        value = n.grad
        if type(value) is ndarray and not value.ndim and value.dtype in floats:
            grad = grads.get(v := value.item()) or _new_scalar(v, grads, widths, 5)
        else:
            grad = _other_cell(value, widths, 5, tall, len(out))
            ragged = ragged or not grad or grad[-1].isspace()
        append((n.id, text, n.label or "", shape, cell, grad))
    if out:
        widths[0] = max(widths[0], len(str(out[-1][0])))  # (ids grow)
        widths[1] = max(widths[1], *map(len, map(_TEXT, out)))
        widths[2] = max(widths[2], *map(len, map(_LABEL, out)))
        widths[3] = max(widths[3], *map(len, shapes.values()))
    return _Grid(out, widths, tall, ragged)


def _new_scalar(v, seen, widths, column):
    """The cell of a 0-d float not in ``seen`` yet, kept there (but 0.0 == -0.0 and nan !=
    nan: those are not), the column widened to it."""
    cell = _scalar(v)
    widths[column] = max(widths[column], len(cell))
    if v != 0 and v == v:
        seen[v] = cell
    return cell


def _other_cell(value, widths, column, tall, row):
    """_cell(value) for any other value, the column widened to its widest line and ``row``
    noted in ``tall`` when it has several."""
    cell = _cell(value)
    if "\n" in cell:
        if not tall or tall[-1] != row:
            tall.append(row)
        widths[column] = max(widths[column], *map(len, cell.split("\n")))
    else:
        widths[column] = max(widths[column], len(cell))
    return cell


_TEXT, _LABEL = itemgetter(1), itemgetter(2)
_FLOATS = frozenset(np.dtype(t) for t in np.typecodes["Float"])  # (by dtype: a 0-d one's cell)


def sections(result, width=None):
    """(output repr, table rows, [(name, grad repr)]) — what both renderers show."""
    head, grads = _ends(result, width)
    return head, rows(result), grads


def _ends(result, width):
    """(output repr, [(name, grad repr)]): what stands before and after the table."""
    out = result.output
    head = fitted_repr(out.value, width, grad_fn=result.grad_fn, requires_grad=out.requires_grad)
    grads = [
        (grad_title(name, width), "None" if g is None else fitted_repr(g, width))
        for name, g in result.grad.items()
    ]
    return head, grads


def grad_title(name, width):
    """``x.grad``, a long input name elided to the terminal's width."""
    return fit(name, None if width is None else max(1, width - 5)) + ".grad"


def linewidth(width):
    """PyTorch's 80-column lines, or the terminal's width when it is narrower."""
    return LINEWIDTH if width is None else max(1, min(LINEWIDTH, width))


def fits(lines, width):
    return width is None or all(len(line) <= width for line in lines)


def fit(text, room):
    """``text`` in at most ``room`` characters (a terminal's): the middle elided with one
    "…" when it is longer, so that both ends of a name or an expression stay readable."""
    if room is None or len(text) <= room:
        return text
    if room < 2:
        return text[:room]
    head = room // 2
    return text[:head] + "…" + text[len(text) - (room - 1 - head) :]


def fitted_repr(value, width, **suffixes):
    """PyTorch's repr at the terminal's width. PyTorch's line width leaves out the closing
    brackets (``]]]])``), which then pass a narrow terminal's edge: narrower line widths are
    tried until every line fits. Piped (``width`` None): PyTorch's own 80 columns."""
    lw = linewidth(width)
    text = tensor_repr(value, linewidth=lw, **suffixes)
    if width is None:
        return text
    for narrower in range(lw - 1, max(lw - 2 - getattr(value, "ndim", 0), 0), -1):
        if fits(text.split("\n"), width):
            break
        text = tensor_repr(value, linewidth=narrower, **suffixes)
    return text


def plain(result, width=None):
    """The text answer. ``width`` is the terminal's (None when piped): a graph table wider
    than that becomes one block per node, so that no tensor is ever wrapped by the terminal."""
    return "".join(plain_pieces(result, width))


PIECE_LINES = 4096  # table lines per piece of plain_pieces()


def plain_pieces(result, width=None):
    """plain()'s text in pieces of at most PIECE_LINES table lines each: piped, a table of
    10^6 rows is never in memory as one text (nor as a list of lines)."""
    head, grads = _ends(result, width)
    yield head + "\n\n"
    with paused_gc():  # (strings and tuples of them: nothing for the collector to find)
        grid = _grid(result)
    if width is None:  # (every line fits)
        for block in _grid_lines(grid):
            yield "\n".join(block) + "\n"
    else:
        lines = [line for block in _grid_lines(grid) for line in block]
        if not fits(lines, width):
            lines = _node_blocks(result, width)
        for k in range(0, len(lines), PIECE_LINES):
            yield "\n".join(lines[k : k + PIECE_LINES]) + "\n"
        del lines
    del grid
    for title, text in grads:
        yield f"\n{title}\n{text}\n"


def _grid_lines(grid):
    """The lines _table_lines(HEADERS, rows, right={0}) gives the grid's rows, a list of
    PIECE_LINES at a time (the header's included); the rows let go as they are made lines.
    A row of one-line cells is one % of its tuple (the id right-aligned, no padding after the
    grad); a row with a cell of several lines is a line per line of its cells."""
    rows, widths = grid.rows, grid.widths
    cells = [f"%-{w}s" for w in widths[1:]]
    padded = "  ".join([f"%{widths[0]}s", *cells])  # every cell a str
    line = "  ".join([f"%{widths[0]}d", *cells[:-1], "%s"])
    tall, ragged = set(grid.tall), grid.ragged
    lines = [(padded % HEADERS).rstrip()]
    start = 0
    while True:
        stop = start + PIECE_LINES - len(lines)
        block = rows[start:stop]
        rows[start:stop] = [None] * len(block)
        if tall and not tall.isdisjoint(range(start, stop)):
            for k, row in enumerate(block, start):
                if k not in tall:
                    lines.append((line % row).rstrip() if ragged else line % row)
                    continue
                split = [c.split("\n") for c in (str(row[0]), *row[1:])]
                for j in range(max(map(len, split))):
                    text = padded % tuple([c[j] if j < len(c) else "" for c in split])
                    lines.append(text.rstrip())
        elif ragged:
            lines += [(line % row).rstrip() for row in block]
        else:
            lines += map(line.__mod__, block)
        yield lines
        if stop >= len(rows):
            return
        start, lines = stop, []


def node_blocks(result, width):
    """[(title, [(key, text)])]: per tensor node, its id, text, grad_fn and shape, then its
    value and gradient in PyTorch's repr at the terminal's width (matrix rows kept whole)."""
    lw = linewidth(width)
    out = []
    texts = piece_texts(result)
    for n in result.nodes:
        if n.op == "number":
            continue
        text = _node_text(result, n, texts, limit=None)  # (elided to the width by block_title)
        title = block_title(f"[{n.id}]", text, n.label, n.shape, width)
        parts = [
            (key, _labelled(key, value, lw))
            for key, value in (("value", n.value), ("grad", n.grad))
            if value is not None
        ]
        out.append((title, parts))
    return out


def block_title(ident, text, label, shape, width):
    """``[id]  text  grad_fn  shape`` for a node's block; on a terminal too narrow for that,
    the text elided (keeping both ends), and the grad_fn and shape on a line of their own
    under it when even an elided text would leave too little of itself."""
    rest = "  ".join(p for p in (label or "", _shape(shape)) if p)
    title = f"{ident}  {text}  {rest}"
    if width is None or len(title) <= width:
        return title
    room = width - len(ident) - len(rest) - 4
    if room >= min(len(text), 16):
        return f"{ident}  {fit(text, room)}  {rest}"
    indent = " " * (len(ident) + 2)
    return f"{ident}  {fit(text, width - len(indent))}\n{indent}{fit(rest, width - len(indent))}"


def _labelled(key, value, lw):
    """``  value tensor(...)``; on a terminal too narrow for that, the repr on a line of its
    own, or at last only its body (``[[...], ...]``, as in the table) from column 2: whichever
    keeps the tensor in the fewest lines (matrix rows whole where they fit at all)."""
    text = hung(f"  {key:<5} ", lambda room: tensor_repr(value, linewidth=room), lw)
    lines = text.count("\n") - (not text.startswith(f"  {key:<5} "))  # the tensor's own
    body = tensor_str(value, 0, max(1, lw - 2))
    bare = f"  {key}\n" + _hang("  ", body)
    if fits(bare.split("\n"), lw) and body.count("\n") < lines:
        return bare
    return text


def hung(prefix, fmt, lw):
    """``prefix`` and the tensor text ``fmt(room)`` beside it, ending by column ``lw``; or the
    text on a line of its own, indented a little deeper, when there it fits in fewer lines (a
    narrow terminal): a short tensor is never broken only because its label is long."""
    beside = _hang(prefix, fmt(max(1, lw - len(prefix))))
    indent = len(prefix) - len(prefix.lstrip()) + 2
    body = fmt(max(1, lw - indent))
    below = prefix.rstrip() + "\n" + _hang(" " * indent, body)
    if fits(below.split("\n"), lw) and (
        not fits(beside.split("\n"), lw) or body.count("\n") < beside.count("\n")
    ):
        return below
    return beside


def _node_blocks(result, width):
    lines = []
    for title, parts in node_blocks(result, width):
        lines += title.split("\n")
        lines += [text for _, text in parts]
    return lines


def _hang(prefix, text):
    """``prefix`` then a multi-line text whose later lines keep their place under the first."""
    return prefix + text.replace("\n", "\n" + " " * len(prefix))


def _plain_table(headers, rows, right=(), consume=False):
    """Aligned columns (those in ``right`` right-aligned); cells may hold several lines.
    ``consume`` empties ``rows``, and each row is let go once it is a line (a big table is
    then never in memory twice)."""
    return list(_table_lines(headers, rows, right, consume))


def _table_lines(headers, rows, right=(), consume=False):
    """_plain_table's lines, one at a time (the widths are worked out first)."""
    table = [tuple(headers), *rows]
    if consume:
        rows.clear()
    widths = []
    tall: set[int] = set()  # the rows with a cell of several lines
    for column in zip(*table, strict=True):
        if "\n" in "\0".join(column):
            tall.update(k for k, c in enumerate(column) if "\n" in c)
            widths.append(max(max(map(len, c.split("\n"))) for c in column))
        else:
            widths.append(max(map(len, column)))
    line = "  ".join(
        ("{:>%d}" if i in right else "{:<%d}") % w if w else "{}" for i, w in enumerate(widths)
    ).format
    for k, row in enumerate(table):
        if consume:
            table[k] = None
        if k not in tall:
            yield line(*row).rstrip()
            continue
        split = [c.split("\n") for c in row]
        for j in range(max(len(c) for c in split)):
            yield line(*[c[j] if j < len(c) else "" for c in split]).rstrip()


def rich_print(result, console):
    """The same content as plain(), as a rich table with colour (terminal only); one block
    per node when the table is wider than the terminal."""
    from rich.table import Table
    from rich.text import Text

    width = console.width
    head, table, grads = sections(result, width)
    console.print(Text(head, style="bold"), soft_wrap=True)
    console.print()
    if fits(_plain_table(HEADERS, table, right={0}), width):
        t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
        for h in HEADERS:
            t.add_column(
                h,
                justify="right" if h == "id" else "left",
                style={"grad_fn": "magenta", "id": "dim", "grad": "green"}.get(h),
                no_wrap=True,
            )
        for row in table:
            t.add_row(*[Text(c) for c in row])
        console.print(t)
    else:
        for title, parts in node_blocks(result, width):
            console.print(Text(title, style="bold"), soft_wrap=True)
            for key, text in parts:
                console.print(Text(text, style="green" if key == "grad" else ""), soft_wrap=True)
    for title, text in grads:
        console.print()
        console.print(Text(title, style="bold cyan"), soft_wrap=True)
        console.print(Text(text), soft_wrap=True)


def error_json(error):
    return dumps({"error": error.to_dict()})


__all__ = [
    "plain",
    "rich_print",
    "to_json",
    "result_json",
    "json_pieces",
    "dumps",
    "error_json",
    "json_value",
]


# ---- jvp, jacobian, hessian, check ------------------------------------------------------


def _meta(job):
    return {"expr": job.text, "dtype": job.dtype}


def _head(value, grad_fn, width=None):
    return fitted_repr(value, width, grad_fn=grad_fn) + "\n"


def block_heading(template, names, shape, width):
    """``∂out/∂x  (shape [2, 2])`` from ``template`` ("∂out/∂{0}") and the input names; on
    a terminal too narrow for it, the names elided, and the shape on a line of its own when
    the names would keep too little of themselves beside it."""
    tail = f"  (shape {_shape(shape)})"
    head = template.format(*names)
    if width is None or len(head) + len(tail) <= width:
        return head + tail
    bare = len(template.format(*[""] * len(names)))
    room = (width - bare - len(tail)) // len(names)
    if room >= 12:
        return template.format(*(fit(n, room) for n in names)) + tail
    room = max(1, (width - bare) // len(names))
    return template.format(*(fit(n, room) for n in names)) + "\n" + fit(tail.strip(), width)


def jvp_json(out, job):
    return {
        **_meta(job),
        "value": out["value"],
        "shape": list(out["shape"]),
        "jvp": out["jvp"],
    }


def jvp_text(out, dtype, width=None):
    """As torch.func.jvp returns them: the value (a plain tensor, no grad_fn) and J·t."""
    return (
        fitted_repr(out["value"], width)
        + "\n\njvp (J·t, forward mode)\n"
        + fitted_repr(out["jvp"], width)
        + "\n"
    )


def jacobian_json(out, job):
    return {
        **_meta(job),
        "value": out["value"],
        "mode": out["mode"],
        "passes": out["passes"],
        "jacobian": out["jacobian"],
    }


def jacobian_text(out, dtype, width=None):
    lines = [_head(out["value"], out["grad_fn"], width)]
    for name, block in out["jacobian"].items():
        heading = block_heading("∂out/∂{0}", [name], block.shape, width)
        lines.append(f"{heading}\n{fitted_repr(block, width)}\n")
    passes = out["passes"]
    lines.append(
        f"by {out['mode']} mode: {passes} {out['mode']} pass{'es' if passes != 1 else ''}\n"
    )
    return "\n".join(lines)


def hessian_json(out, job):
    return {
        **_meta(job),
        "value": out["value"],
        "hessian": out["hessian"],
    }


def hessian_text(out, dtype, width=None):
    lines = [_head(out["value"], out["grad_fn"], width)]
    for a, row in out["hessian"].items():
        for b, block in row.items():
            heading = block_heading("∂²out/∂{0}∂{1}", [a, b], block.shape, width)
            lines.append(f"{heading}\n{fitted_repr(block, width)}\n")
    return "\n".join(lines)


def check_json(out, job):
    obj = {
        "expr": job.text,
        "ok": out["ok"],
        **({"not_finite": bad} if (bad := _not_finite(out["value"])) else {}),
        "eps": out["eps"],
        "atol": out["atol"],
        "rtol": out["rtol"],
        "value": out["value"],
        "inputs": out["inputs"],
    }
    if "sweep" in out:
        obj["sweep"] = out["sweep"]
    return obj


def table_or_blocks(headers, rows, width, title=1):
    """An aligned table, or, when it is wider than the terminal, one block per row: its first
    ``title`` cells, then each other cell under its header's name."""
    lines = _plain_table(headers, rows)
    if fits(lines, width):
        return lines
    out = []
    key = max(len(h) for h in headers[title:])
    for row in rows:
        rest = "".join("  " + c for c in row[1:title])
        out.append(fit(row[0], max(1, width - len(rest))) + rest)  # a long name, elided
        for h, c in zip(headers[title:], row[title:], strict=True):
            prefix = f"  {h:<{key}}  "
            cell = _hang(prefix, c)
            if "\n" not in c and not fits([cell], width):  # prose (a rule): wrapped
                cell = wrap(prefix + c, width, len(prefix))
            out.append(cell)
    return out


def wrap(text, width, indent=0):
    """Prose for a terminal: wrapped at its width between words, later lines indented by
    ``indent`` (piped: as it is)."""
    import textwrap

    if width is None or len(text) <= width:
        return text
    lines = textwrap.wrap(
        text, max(width, indent + 20), subsequent_indent=" " * indent, break_on_hyphens=False
    )
    return "\n".join(lines)


def _not_finite(value):
    """'nan' or 'inf' when the function's value at the input has such an element, else None."""
    import numpy as np

    v = np.asarray(value, dtype=np.float64)
    if np.isnan(v).any():
        return "nan"
    if np.isinf(v).any():
        return "inf"
    return None


def check_text(out, plot=False, width=None):
    bad = _not_finite(out["value"])
    if bad is not None:
        head = wrap(
            f"FAILED: the function is {bad} at this input, so it has no derivative there to "
            "check: choose an input inside its domain",
            width,
        )
        return head + "\n\n" + fitted_repr(out["value"], width) + "\n"
    lines = [
        wrap(
            f"{'ok' if out['ok'] else 'FAILED'}: reverse and forward mode against central "
            f"finite differences (float64, eps={out['eps']:g}, atol={out['atol']:g}, "
            f"rtol={out['rtol']:g})",
            width,
        ),
        "",
    ]
    rows = []
    for name, entry in out["inputs"].items():
        for mode, r in entry.items():
            rows.append(
                (
                    name,
                    mode,
                    f"{r['max_abs_error']:.3e}",
                    f"{r['max_rel_error']:.3e}",
                    "yes" if r["ok"] else "NO",
                )
            )
    headers = ("input", "mode", "max abs error", "max rel error", "ok")
    lines += table_or_blocks(headers, rows, width, title=2)
    if "sweep" in out:
        lines += [
            "",
            wrap(
                "finite-difference error as the step shrinks (truncation error falls "
                "with the step, rounding error grows as it shrinks):",
                width,
            ),
            "",
        ]
        sweep = out["sweep"]
        lines += _plain_table(
            ("step", "max abs error"),
            [(f"{r['step']:.0e}", f"{r['max_abs_error']:.3e}") for r in sweep],
        )
        if plot:
            lines += [""] + _sweep_plot(sweep, min(40, max(1, (width or 80) - 30)))
    return "\n".join(lines) + "\n"


def _sweep_plot(sweep, width=40):
    import math

    logs = [math.log10(r["max_abs_error"]) if r["max_abs_error"] > 0 else -17.0 for r in sweep]
    lo, hi = min(logs), max(logs)
    out = []
    for r, v in zip(sweep, logs, strict=True):
        n = 1 + int((v - lo) / (hi - lo) * (width - 1)) if hi > lo else 1
        out.append(f"{r['step']:.0e} │{'█' * n:<{width}}│ 1e{v:+.1f}")
    return out


# ---- the operator table and one operator's card -----------------------------------------


def operator_table(rows, width=None):
    """`gradcli ops`: one aligned row per operator under a header (one block per operator on
    a terminal too narrow for the table)."""
    headers = ("call", "PyTorch", "grad_fn", "derivative")
    cells = [(r["call"], r["mirror"], r["labels"], r["rule"]) for r in rows]
    return "\n".join(table_or_blocks(headers, cells, width)) + "\n"


def operator_card(card, width=None):
    """`gradcli ops NAME`: PyTorch's signature, the PyTorch call it mirrors, labels, rule, the
    arguments not taken, and an example."""
    call = card.get("signature") or card["call"]
    lines = [wrap(call, width, 4), ""]
    fields = [
        ("PyTorch", card["mirror"]),
        ("grad_fn", card["labels"]),
        ("derivative", card["rule"]),
    ]
    if card.get("not_taken"):  # PyTorch's arguments the row does not take (yet)
        fields.append(("not taken", ", ".join(card["not_taken"]) + " (always PyTorch's default)"))
    if card.get("positional_only"):
        fields.append(("positional", ", ".join(card["positional_only"]) + " (not as keywords)"))
    fields.append(("example", card.get("example") or "(none in the table)"))
    for key, text in fields:
        lines.append(wrap(f"  {key + ':':<12}{text}", width, 14))
    return "\n".join(lines) + "\n"
