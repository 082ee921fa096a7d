"""The graph drawn (tree, Graphviz dot, Mermaid, JSON) and the reverse pass explained.
Every walk here is a plain loop or an explicit stack."""

from typing import Any

from . import engine
from .api import prepare, quietly
from .inputs import to_array
from .ops import OPS
from .render import _shape, dumps, fit, hung, json_value, tensor_repr, wrap
from .torchrepr import LINEWIDTH, tensor_str


def _compact(value):
    return None if value is None else tensor_str(value, 0, 48, 8)


def build(
    text,
    inputs=None,
    *,
    seed_vector=None,
    wrt=None,
    dtype="float32",
    random_seed=None,
    max_elements=None,
):
    """The DAG as plain data. Without inputs: the program's structure, with the labels that
    do not depend on shapes. With inputs: the evaluated graph, values, and adjoints (when the
    output is scalar or a seed vector is given). Python-number operands are not nodes here,
    as they are not in PyTorch; their text stays in their consumers'."""
    from .parser import parse

    program = parse(text)
    if program.inputs and not inputs:
        nodes = []
        for i, p in enumerate(program.nodes):
            if p.op == "number":
                continue
            op = OPS.get(p.op)
            kinds = tuple(program.nodes[a].op == "number" for a in p.args)
            label = (
                "AccumulateGrad"
                if p.op == "input"
                else (
                    None
                    if op is None or op.lower is not None or op.grads is None
                    else op.label_for(kinds, p.attrs or {})
                )
            )
            nodes.append(
                {
                    "id": i,
                    "op": p.op,
                    "grad_fn": label,
                    "name": p.name,
                    "text": program.source(p),
                    "inputs": [a for a in p.args if program.nodes[a].op != "number"],
                }
            )
        return {"expr": text, "evaluated": False, "output": program.output, "nodes": nodes}
    with quietly():
        program, nodes, out, names, seed = _evaluated(
            program, inputs, seed_vector, wrt, dtype, random_seed, max_elements
        )
        if nodes[out].op == "number":  # `2`, `y = 3; y`: no tensor, no graph; grad's error
            engine.make_seed(nodes[out], seed, dtype)
        if nodes[out].requires_grad and (seed is not None or nodes[out].shape == ()):
            engine.backward(nodes, out, engine.make_seed(nodes[out], seed, dtype), dtype)
    data = []
    for n in nodes:
        if n.op == "number":
            continue
        data.append(
            {
                "id": n.id,
                "op": n.op,
                "grad_fn": n.label,
                "name": n.name,
                "text": program.source(program.nodes[n.src]),
                "inputs": [a for a in n.args if nodes[a].op != "number"],
                "shape": list(n.shape),
                "value": n.value,
                "grad": n.grad,
            }
        )
    return {"expr": text, "evaluated": True, "output": out, "nodes": data}


def _title(node):
    """x for an input; y = x + 2 for a named node; its source text otherwise."""
    if node["name"] and node["op"] != "input" and node["name"] != node["text"]:
        return f"{node['name']} = {node['text']}"
    return node["name"] if node["op"] == "input" else node["text"]


def _evaluated(expr, inputs, seed_vector, wrt, dtype, random_seed, max_elements):
    """The forward pass, and the seed vector as an array (or None)."""
    program, arrays, names, cap, rng = prepare(expr, inputs, wrt, dtype, random_seed, max_elements)
    nodes, out = engine.forward(program, arrays, set(names), dtype, cap, rng=rng)
    seed = None if seed_vector is None else to_array(seed_vector, dtype, "seed vector", rng, cap)
    return program, nodes, out, names, seed


def _caption(node, lines=True):
    parts = [_title(node)]
    parts.append(node["grad_fn"] or node["op"])
    if "shape" in node:
        parts.append(_shape(node["shape"]))
        if lines:
            parts.append(_hang("value ", _compact(node["value"])))
            if node["grad"] is not None:
                parts.append(_hang("grad ", _compact(node["grad"])))
    return parts


def render(g, kind):
    if kind == "svg":  # laid out by gradcli.svg, without Graphviz
        from .svg import to_svg

        return to_svg(g)
    if kind == "json":
        return dumps(
            {
                **g,
                "nodes": [
                    {
                        **n,
                        **(
                            {"value": json_value(n["value"]), "grad": json_value(n["grad"])}
                            if "value" in n
                            else {}
                        ),
                    }
                    for n in g["nodes"]
                ],
            }
        )
    if kind == "dot":

        def esc(s):  # every line left-aligned (\l), so matrix rows line up
            return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\l") + "\\l"

        out = [
            "digraph gradcli {",
            "  rankdir=TB;",
            '  node [shape=box, style="rounded", fontname="monospace"];',
        ]
        for n in g["nodes"]:
            extra = ", penwidth=2" if n["id"] == g["output"] else ""
            out.append(f'  n{n["id"]} [label="{esc(chr(10).join(_caption(n)))}"{extra}];')
        for n in g["nodes"]:
            out += [f"  n{a} -> n{n['id']};" for a in n["inputs"]]
        return "\n".join(out + ["}"])
    if kind == "mermaid":

        def esc(s):
            return (
                s.replace("&", "#amp;")
                .replace('"', "#quot;")
                .replace("<", "#lt;")
                .replace(">", "#gt;")
                .replace("\n", "<br/>")
            )

        out = ["flowchart TD"]
        for n in g["nodes"]:
            out.append(f'  n{n["id"]}["{"<br/>".join(esc(p) for p in _caption(n))}"]')
        for n in g["nodes"]:
            out += [f"  n{a} --> n{n['id']}" for a in n["inputs"]]
        return "\n".join(out)
    return "\n".join(_tree_lines(g))


TREE_DEPTH = 20  # levels of indentation in a tree; deeper subtrees continue as trees below


def _walk(g):
    """(depth, node, kind) from the output down, each node expanded once: kind is "node"
    (its inputs follow, one level deeper), "shared" (expanded above), "deeper" (at the depth
    cap: its subtree is drawn after this tree, as a tree of its own) or "continued" (the
    root of such a tree). Lines and indentation are bounded, so the drawing is linear in
    the size of the graph however deep the program nests."""
    by_id = {n["id"]: n for n in g["nodes"]}
    seen, deferred = set(), set()
    roots = [g["output"]]
    for k, root in enumerate(roots):  # roots grows as deep subtrees are deferred
        if root in seen:
            continue
        stack = [(root, 0)]
        while stack:
            i, depth = stack.pop()
            node = by_id[i]
            if i in seen:
                yield depth, node, "shared"
                continue
            if depth == TREE_DEPTH and node["inputs"]:
                if i not in deferred:
                    deferred.add(i)
                    roots.append(i)
                yield depth, node, "deeper"
                continue
            seen.add(i)
            yield depth, node, ("continued" if k and depth == 0 else "node")
            stack += [(a, depth + 1) for a in reversed(node["inputs"])]


_NOTES = {
    "shared": "(shared: shown above)",
    "deeper": "(deeper levels: continued below)",
    "continued": "(continued from above)",
}


def _tree_lines(g):
    """The piped tree, drawn with the terminal tree's guides (├─ └─ │)."""
    rows = []
    for depth, node, kind in _walk(g):
        if kind in ("shared", "deeper"):
            caption = f"[{node['id']}] {_caption(node, lines=False)[0]}  {_NOTES[kind]}"
        else:
            caption = f"[{node['id']}] " + "  ".join(_caption(node, lines=False))
            if "value" in node:
                caption += f"  value {_compact(node['value'])}"
                if node["grad"] is not None:
                    caption += f"  grad {_compact(node['grad'])}"
            if kind == "continued":
                caption += f"  {_NOTES[kind]}"
        rows.append((depth, kind == "continued", caption))
    # a node is its parent's last child unless a sibling follows before a shallower line:
    # one backward scan (depths are capped, so clearing deeper levels is bounded)
    last = [True] * len(rows)
    later = [False] * (TREE_DEPTH + 2)
    for i in range(len(rows) - 1, -1, -1):
        depth = rows[i][0]
        last[i] = not later[depth]
        later[depth] = depth > 0
        for k in range(depth + 1, TREE_DEPTH + 2):
            later[k] = False
    lines, open_ = [], [False] * (TREE_DEPTH + 2)
    for (depth, continued, caption), is_last in zip(rows, last, strict=True):
        if continued:
            lines.append("")
        if depth == 0:
            lines.append(caption)
            continue
        open_[depth] = not is_last
        guides = "".join("│  " if open_[k] else "   " for k in range(1, depth))
        lines.append(guides + ("└─ " if is_last else "├─ ") + caption)
    return lines


def rich_tree(g, width=None):
    """The tree for a terminal: one rich Tree, and one more per subtree past the depth cap. A
    label too wide for the terminal puts its value and its grad on lines of their own."""
    from rich.console import Group
    from rich.text import Text
    from rich.tree import Tree

    trees: list[Any] = []
    branches: dict[int, Any] = {}
    for depth, node, kind in _walk(g):
        label = Text()  # Text("...", style=) would style the whole label, dimming it all
        label.append(f"[{node['id']}] ", style="dim")
        title = _caption(node, lines=False)[0]
        if width is not None:  # a long text elided, its grad_fn and shape kept in view
            after = len(node["grad_fn"] or node["op"]) + len(_shape(node.get("shape", ()))) + 4
            room = width - 4 * depth - len(label) - after - 1
            title = fit(title, max(room, 12, width - 4 * depth - len(label) - 1))
        label.append(title, style="bold")
        if kind in ("shared", "deeper"):
            label.append(f"  {_NOTES[kind]}", style="dim")
        else:
            label.append(f"  {node['grad_fn'] or node['op']}", style="magenta")
            if "shape" in node:
                label.append(f"  {_shape(node['shape'])}")
                parts: list[tuple[str, str]] = [(f"value {_compact(node['value'])}", "")]
                if node["grad"] is not None:
                    parts.append((f"grad {_compact(node['grad'])}", "green"))
                one_line = len(label) + sum(len(p) + 2 for p, _ in parts)
                sep = "  "
                too_wide = width is not None and 4 * depth + one_line > width
                if too_wide or any("\n" in p for p, _ in parts):
                    sep, room = (
                        "\n",
                        min(48, (width or 80) - 4 * depth - 1),
                    )  # what the guides leave
                    parts = [
                        (f"{key} " + tensor_str(node[key], len(key) + 1, room, 8), style)
                        for (_, style), key in zip(parts, ("value", "grad"), strict=False)
                    ]
                for text, style in parts:
                    label.append(sep)
                    label.append(text, style=style)
            if kind == "continued":
                label.append(f"  {_NOTES[kind]}", style="dim")
        if depth == 0:
            if trees:
                trees.append(Text(""))
            branches[0] = Tree(label)
            trees.append(branches[0])
        else:
            branches[depth] = branches[depth - 1].add(label)
    return trees[0] if len(trees) == 1 else Group(*trees)


def _hang(prefix, text):
    """``prefix`` then a multi-line text whose later lines keep their place under the first."""
    return prefix + text.replace("\n", "\n" + " " * len(prefix))


def _hung(prefix, value, lw, as_repr=False):
    """A tensor after ``prefix``, ending by column ``lw`` (see render.hung)."""
    if as_repr:
        return hung(prefix, lambda room: tensor_repr(value, linewidth=room), lw)
    return hung(prefix, lambda room: tensor_str(value, 0, room), lw)


def explain(
    text,
    inputs=None,
    *,
    seed_vector=None,
    wrt=None,
    dtype="float32",
    random_seed=None,
    max_elements=None,
    width=None,
):
    """The reverse pass as a textbook walk-through, from the output back to the inputs;
    tensors printed for a terminal of ``width`` columns (None: PyTorch's 80)."""
    with quietly():
        program, nodes, out, names, seed = _evaluated(
            text, inputs, seed_vector, wrt, dtype, random_seed, max_elements
        )
        seed = engine.make_seed(nodes[out], seed, dtype)
        recorded = []
        engine.backward(
            nodes, out, seed, dtype, on_step=lambda node, g, sent: recorded.append((node, g, sent))
        )

    def src(node):
        text = program.source(program.nodes[node.src])
        if node.op == "input" or node.name is None or node.name == text:
            return node.name or text
        return f"{node.name} = {text}"

    steps, lines = [], []
    lw = LINEWIDTH if width is None else max(1, min(LINEWIDTH, width))
    o = nodes[out]
    shown = program.text
    shown = (
        program.source(program.nodes[program.output])
        if len(shown) > 120
        else " ".join(shown.split())
    )
    lines += [
        wrap(f"program: {shown}", width, 9),
        hung("output:  ", lambda room: tensor_repr(o.value, grad_fn=o.label, linewidth=room), lw),
        _hung("seed:    ∂out/∂out = ", seed, lw),
        "",
        wrap(
            "the reverse pass, from the output back (chain rule: what arrives at a node, "
            "times its local derivative, goes to each input):",
            width,
        ),
        "",
    ]
    for node, g, sent in recorded:
        rule = OPS[node.op].rule
        title = f"[{node.id}] {node.label}  "
        lines += [
            title + fit(src(node), None if width is None else max(8, width - len(title))),
            wrap(f"    local rule:  {node.label}: {rule}", width, 17),
            _hung("    arriving:    ", g, lw),
        ]
        for a, ga in sent:
            to = f"    → to [{a}] :  "  # (a long node text elided to the terminal's width)
            text = fit(src(nodes[a]), None if width is None else max(8, width - len(to)))
            lines.append(_hung(f"    → to [{a}] {text}:  ", ga, lw))
        lines.append("")
        steps.append(
            {
                "node": node.id,
                "grad_fn": node.label,
                "text": src(node),
                "rule": rule,
                "adjoint": json_value(g),
                "sends": [
                    {"to": a, "text": src(nodes[a]), "value": json_value(ga)} for a, ga in sent
                ],
            }
        )
    by_name = {n.name: n for n in nodes if n.op == "input"}
    grads = {n: (by_name[n].grad if n in by_name else None) for n in names}
    lines.append(wrap("the gradient (what accumulated at each leaf, AccumulateGrad):", width))
    for n, gr in grads.items():
        prefix = f"    {fit(n, None if width is None else max(8, width - 14))}.grad = "
        lines.append(prefix + "None" if gr is None else _hung(prefix, gr, lw, as_repr=True))
    return {
        "text": "\n".join(lines) + "\n",
        "json": {
            "expr": text,
            "dtype": dtype,
            "value": json_value(o.value),
            "grad_fn": o.label,
            "steps": steps,
            "grad": {n: json_value(v) for n, v in grads.items()},
        },
    }
