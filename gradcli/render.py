"""Rendering a Result: PyTorch-style text (rich on a terminal, plain when piped) and JSON.
Rendering never computes anything."""

import json

from .api import json_value
from .torchrepr import tensor_repr, tensor_str

HEADERS = ("id", "node", "grad_fn", "shape", "value", "grad")
CELL_WIDTH, CELL_THRESHOLD = 56, 24  # table cells: narrower lines, earlier summarising
NODE_TEXT = 32


def dumps(obj):
    """Strict JSON (RFC 8259): non-finite numbers were made strings by json_value."""
    return json.dumps(obj, allow_nan=False)  # ASCII-only: safe on any terminal encoding


def to_json(result, nodes=True):
    return dumps(result.to_dict(nodes=nodes))


def _shape(shape):
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _cell(value):
    if value is None:
        return ""
    return tensor_str(value, 0, CELL_WIDTH, CELL_THRESHOLD)


def _node_text(result, node):
    text = node.name if node.name is not None else result.text(node)
    return text if len(text) <= NODE_TEXT else text[:NODE_TEXT - 1] + "…"


def rows(result):
    """The graph table: one row per tensor node (Python-number operands are not tensors in
    PyTorch and are left out; they stay in the JSON ``nodes``)."""
    out = []
    for n in result.nodes:
        if n.op == "number":
            continue
        out.append((str(n.id), _node_text(result, n), n.label or "", _shape(n.shape),
                    _cell(n.value), _cell(n.grad)))
    return out


def sections(result):
    """(output repr, table rows, [(name, grad repr)]) — what both renderers show."""
    out = result.output
    head = tensor_repr(out.value, grad_fn=result.grad_fn, requires_grad=out.requires_grad)
    grads = [(name, "None" if g is None else tensor_repr(g)) for name, g in result.grad.items()]
    return head, rows(result), grads


def plain(result):
    head, table, grads = sections(result)
    lines = [head, ""]
    lines += _plain_table(HEADERS, table)
    for name, text in grads:
        lines += ["", f"{name}.grad", text]
    return "\n".join(lines) + "\n"


def _plain_table(headers, rows):
    """Aligned columns; cells may hold several lines."""
    split = [[c.split("\n") for c in row] for row in [headers] + rows]
    widths = [max(max(len(line) for line in row[i]) for row in split) for i in range(len(headers))]
    right = {0}  # ids right-aligned
    out = []
    for row in split:
        height = max(len(c) for c in row)
        for k in range(height):
            parts = []
            for i, c in enumerate(row):
                text = c[k] if k < len(c) else ""
                parts.append(text.rjust(widths[i]) if i in right else text.ljust(widths[i]))
            out.append("  ".join(parts).rstrip())
    return out


def rich_print(result, console):
    """The same content as plain(), as a rich table with colour (terminal only)."""
    from rich.table import Table
    from rich.text import Text

    head, table, grads = sections(result)
    console.print(Text(head, style="bold"))
    console.print()
    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for h in HEADERS:
        t.add_column(h, justify="right" if h == "id" else "left",
                     style={"grad_fn": "magenta", "id": "dim", "grad": "green"}.get(h))
    for row in table:
        t.add_row(*[Text(c) for c in row])
    console.print(t)
    for name, text in grads:
        console.print()
        console.print(Text(f"{name}.grad", style="bold cyan"))
        console.print(Text(text))


def error_json(error):
    return dumps({"error": error.to_dict()})


__all__ = ["plain", "rich_print", "to_json", "dumps", "error_json", "json_value"]
