"""The graph as a picture, laid out by gradcli itself (no Graphviz): one row of boxes per
layer (a node's layer is the longest path from a leaf to it), fixed-size boxes on a grid so
that no two overlap however large the graph. An edge between neighbouring rows is a curve in
the gap between them; a longer one runs along the free gutters between rows and columns, so
no edge passes behind a box it does not belong to. The SVG
is self-contained: inline styles, the generic monospace font, no scripts or links."""

import shutil
import subprocess
from xml.sax.saxutils import escape

from .errors import EvaluationError, InputError

BOX_W, BOX_H = 260, 92  # every box the same size: a grid cell
GAP_X, GAP_Y, MARGIN = 24, 56, 20
MAX_COLUMNS = 8  # a wider layer wraps onto further rows of its own
LINE_H, FONT = 15, 12
CHARS = (BOX_W - 16) * 10 // (FONT * 6)  # monospace advance is about 0.6 em
COLOURS = {"leaf": "#2e7d32", "output": "#c62828", "node": "#37474f"}
FILLS = {"leaf": "#e8f5e9", "output": "#ffebee", "node": "#f5f7fa"}


def _elide(text, width=CHARS):
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _lines(node):
    """The box's texts: title, grad_fn label, then shape, value, gradient when evaluated."""
    from .graphs import _compact, _title
    from .render import _shape

    lines = [_title(node), node["grad_fn"] or node["op"]]
    if "shape" in node:
        lines.append("shape " + _shape(node["shape"]))
        lines.append(f"value {_compact(node['value'])}")
        lines.append(f"grad {_compact(node['grad'])}")  # _compact(None) is None
    return lines


def layout(g):
    """Boxes and edges: {"boxes": [{id, x, y, kind, lines}], "edges": [(from, to, kind,
    points)] with kind "curve" (a cubic's four points) or "line" (a polyline),
    "width", "height"}. Nodes come in topological order, so one loop finds every depth."""
    depth: dict[int, int] = {}
    for n in g["nodes"]:
        depth[n["id"]] = 1 + max((depth[a] for a in n["inputs"]), default=-1)
    layers: dict[int, list] = {}
    for n in g["nodes"]:
        layers.setdefault(depth[n["id"]], []).append(n)
    rows = []
    for d in sorted(layers):
        nodes = layers[d]
        rows += [nodes[i : i + MAX_COLUMNS] for i in range(0, len(nodes), MAX_COLUMNS)]
    columns = max((len(r) for r in rows), default=1)
    width = 2 * MARGIN + columns * BOX_W + (columns - 1) * GAP_X
    boxes = []
    for r, row in enumerate(rows):
        # centred by whole columns, so the gutters between columns line up in every row
        left = MARGIN + (columns - len(row)) // 2 * (BOX_W + GAP_X)
        for c, n in enumerate(row):
            kind = "output" if n["id"] == g["output"] else ("leaf" if not n["inputs"] else "node")
            boxes.append(
                {
                    "id": n["id"],
                    "x": left + c * (BOX_W + GAP_X),
                    "y": MARGIN + r * (BOX_H + GAP_Y),
                    "kind": kind,
                    "lines": _lines(n),
                }
            )
    height = 2 * MARGIN + len(rows) * BOX_H + max(len(rows) - 1, 0) * GAP_Y
    at = {b["id"]: b for b in boxes}
    edges = []
    for k, (a, t) in enumerate((a, n["id"]) for n in g["nodes"] for a in n["inputs"]):
        edges.append((a, t, *_route(at[a], at[t], k)))
    return {"boxes": boxes, "edges": edges, "width": width, "height": height}


def _route(s, t, k):
    """From the bottom middle of box s to the top middle of box t (a later row)."""
    x1, y1 = s["x"] + BOX_W // 2, s["y"] + BOX_H
    x2, y2 = t["x"] + BOX_W // 2, t["y"]
    if y2 - y1 == GAP_Y:  # neighbouring rows: a curve inside the gap
        bend = GAP_Y // 2
        return "curve", [(x1, y1), (x1, y1 + bend), (x2, y2 - bend), (x2, y2)]
    # down into the gap below s, across to the gutter left of t's column, down the gutter to
    # the gap above t, across and in; k spreads edges sharing a gutter or a gap a little
    spread = (k % 5 - 2) * 3
    gutter = t["x"] - GAP_X // 2 + spread
    below, above = y1 + GAP_Y // 2 + spread, y2 - GAP_Y // 2 + spread
    return "line", [(x1, y1), (x1, below), (gutter, below), (gutter, above), (x2, above), (x2, y2)]


def to_svg(g):
    lay = layout(g)
    w, h = lay["width"], lay["height"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" font-family="monospace" font-size="{FONT}">',
        "<title>" + escape("gradcli graph: " + _elide(g["expr"], 200)) + "</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#78909c"/>'
        "</marker></defs>",
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>',
        '<g fill="none" stroke="#90a4ae" stroke-width="1.5">',
    ]
    for _, _, kind, points in lay["edges"]:
        p = [f"{x},{y}" for x, y in points]
        d = f"M{p[0]} C{' '.join(p[1:])}" if kind == "curve" else f"M{p[0]} L{' '.join(p[1:])}"
        out.append(f'<path d="{d}" marker-end="url(#arrow)"/>')
    out.append("</g>")
    for b in lay["boxes"]:
        kind, x, y = b["kind"], b["x"], b["y"]
        out.append(f'<g id="n{b["id"]}" class="{kind}">')
        out.append("<title>" + escape("\n".join(b["lines"])) + "</title>")
        out.append(
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" fill="{FILLS[kind]}" '
            f'stroke="{COLOURS[kind]}" stroke-width="{3 if kind != "node" else 2}" '
            'shape-rendering="crispEdges"/>'
        )
        for i, line in enumerate(b["lines"]):
            style = ' font-weight="bold"' if i == 0 else ""
            colour = "#6a1b9a" if i == 1 else ("#1b5e20" if line.startswith("grad ") else "#212121")
            text = f"[{b['id']}] {line}" if i == 0 else line
            out.append(
                f'<text x="{x + 8}" y="{y + 18 + i * LINE_H}" fill="{colour}"{style}>'
                + escape(_elide(text))
                + "</text>"
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def _bezier(p, u):
    """The point at u of the cubic with control points p."""
    a, b, c, d = ((1 - u) ** 3, 3 * u * (1 - u) ** 2, 3 * u * u * (1 - u), u**3)
    return tuple(a * p[0][i] + b * p[1][i] + c * p[2][i] + d * p[3][i] for i in (0, 1))


def to_png(g):
    """PNG bytes: the SVG through rsvg-convert when it is installed, else matplotlib (the
    plot extra) drawing the same layout."""
    rsvg = shutil.which("rsvg-convert")
    if rsvg:
        done = subprocess.run(
            [rsvg, "--format", "png"], input=to_svg(g).encode(), capture_output=True
        )
        if done.returncode == 0:
            return done.stdout
        raise EvaluationError(
            "rsvg-convert could not draw the graph: " + done.stderr.decode()[:200]
        )
    return _matplotlib_png(g)


def need_matplotlib(what):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError(
            f"{what} needs matplotlib, which is not installed",
            hint="pip install 'gradcli[plot]'",
        ) from None
    return plt


def _matplotlib_png(g):
    import io

    plt = need_matplotlib("a PNG of the graph")
    from matplotlib.patches import FancyArrowPatch, Rectangle

    lay = layout(g)
    dpi = 100
    fig = plt.figure(figsize=(lay["width"] / dpi, lay["height"] / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, lay["width"])
    ax.set_ylim(lay["height"], 0)
    ax.axis("off")
    for _, _, kind, points in lay["edges"]:
        if kind == "curve":
            points = [_bezier(points, u / 16) for u in range(17)]
        xs, ys = zip(*points, strict=True)
        ax.plot(xs[:-1], ys[:-1], color="#90a4ae", lw=1.2)
        ax.add_patch(
            FancyArrowPatch(
                points[-2], points[-1], arrowstyle="-|>", mutation_scale=10, color="#90a4ae", lw=1.2
            )
        )
    for b in lay["boxes"]:
        k = b["kind"]
        ax.add_patch(Rectangle((b["x"], b["y"]), BOX_W, BOX_H, fc=FILLS[k], ec=COLOURS[k], lw=1.5))
        for i, line in enumerate(b["lines"]):
            text = f"[{b['id']}] {line}" if i == 0 else line
            ax.text(
                b["x"] + 8,
                b["y"] + 18 + i * LINE_H,
                _elide(text),
                family="monospace",
                fontsize=FONT * 0.72,
                weight="bold" if i == 0 else "normal",
            )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def write_png(g):
    """The graph command's PNG on stdout: binary, so never onto a terminal."""
    import sys

    if sys.stdout.isatty():
        raise InputError("a PNG is binary: redirect it to a file", hint="gradcli graph ... > g.png")
    data = to_png(g)
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
