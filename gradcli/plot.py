"""f and its derivative over a range of one input (or a heat map over two): the numbers,
a Unicode plot for a terminal, and an image through matplotlib (the plot extra).

The whole grid goes through one forward and one reverse pass: for a program that is
elementwise in the swept input, the VJP with a seed of ones is the derivative at every
point at once. That is checked, not assumed: the program is run again on every other point
of the grid's first two thirds, and its values and derivatives must be the same there. A
program that mixes points (a reduction, a cumulative sum, a shape that is not the grid's)
is evaluated one point at a time instead, with the swept input a number."""

import math
import re

import numpy as np

from . import engine
from .api import prepare, quietly
from .errors import EvaluationError, GradcliError, InputError
from .inputs import to_array

MAX_POINTS = 100_000  # points per axis
MAX_PASSES = 20_000  # passes when the program is evaluated point by point
_RANGE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.+):(.+)$")


def parse_range(text):
    """NAME=A:B -> (name, a, b), with A < B finite numbers."""
    m = _RANGE.match(text)
    if not m:
        raise InputError(f"--range takes NAME=A:B, got '{text}'", hint="e.g. --range x=-3:3")
    name, a, b = m.group(1), m.group(2), m.group(3)
    try:
        lo, hi = float(a), float(b)
    except ValueError:
        raise InputError(f"--range {name}: '{a}:{b}' is not two numbers A:B") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise InputError(f"--range {name}: need finite A < B, got {a}:{b}")
    return name, lo, hi


def sweep(
    program,
    inputs,
    ranges,
    points,
    *,
    dtype="float32",
    random_seed=None,
    max_elements=None,
    fd=False,
):
    """{"names", "axes" (one grid per name), "value", "grads" (one per name, the value's
    shape), "fd" (central differences, one input only) or None, "elementwise"}."""
    from .api import _LazyRng
    from .parser import parse

    program = parse(program) if isinstance(program, str) else program
    names = [r[0] for r in ranges]
    if len(set(names)) != len(names):
        raise InputError("each --range names a different input")
    for n in names:
        if n not in program.inputs:
            known = ", ".join(program.inputs) or "none"
            raise InputError(
                f"--range {n}: not an input of the program", hint=f"its inputs: {known}"
            )
        if n in inputs:
            raise InputError(f"{n} is swept by --range and also given a value: give one")
    cap = engine.MAX_ELEMENTS if max_elements is None else max_elements
    rng = _LazyRng(random_seed)  # fixed inputs are drawn once, whatever the passes
    fixed = {k: to_array(v, dtype, k, rng, cap) for k, v in inputs.items()}
    if not 3 <= points <= MAX_POINTS:
        raise InputError(f"--points must be between 3 and {MAX_POINTS:,}")
    axes = [np.linspace(lo, hi, points).astype(dtype) for _, lo, hi in ranges]
    grids = np.meshgrid(*axes) if len(axes) > 1 else axes
    with quietly():

        def run(at, want_grad=True, in_dtype=dtype):
            return _pass(
                program,
                {**fixed, **dict(zip(names, at, strict=True))},
                names,
                in_dtype,
                cap,
                want_grad,
            )

        try:
            value, grads = run(grids)
        except GradcliError:  # e.g. the grid does not broadcast with a fixed input
            value, grads = np.zeros(()), []
        # every other point of the first two thirds: not symmetric, so a mean or a sum
        # over the grid changes
        every = tuple(slice(0, max(2 * k // 3, 2), 2) for k in grids[0].shape)
        elementwise = value.shape == grids[0].shape
        if elementwise:
            v2, g2 = run([g[every] for g in grids])
            elementwise = v2.shape == value[every].shape and all(
                _close(a, b[every], dtype) for a, b in zip([v2, *g2], [value, *grads], strict=True)
            )
        if not elementwise:
            value, grads = _pointwise(run, grids)
        out = {
            "names": names,
            "axes": axes,
            "value": value,
            "grads": grads,
            "fd": None,
            "elementwise": elementwise,
        }
        if fd and len(names) == 1:
            x = grids[0].astype("float64")
            h = 1e-5 * np.maximum(1.0, np.abs(x))

            def values(at):
                if elementwise:
                    return run([at], False, "float64")[0]
                return _pointwise(lambda p, w=False: run(p, False, "float64"), [at])[0]

            out["fd"] = (values(x + h) - values(x - h)) / (2 * h)
    return out


def _close(a, b, dtype):
    tol = 1e-4 if dtype == "float32" else 1e-10
    return np.allclose(a, b, rtol=tol, atol=tol, equal_nan=True)


def _pass(program, inputs, names, dtype, cap, want_grad):
    """One forward pass, and one reverse pass seeded with ones: (value, [d value / d name])."""
    program, arrays, wrt, cap, _ = prepare(program, inputs, names, dtype, None, cap)
    nodes, out = engine.forward(program, arrays, set(wrt), dtype, cap)
    o = nodes[out]
    value = np.asarray(o.value, dtype="float64")
    grads = [np.zeros(arrays[n].shape) for n in names]
    if want_grad and o.requires_grad:
        engine.backward(nodes, out, engine.make_seed(o, np.ones(o.shape), dtype), dtype)
        by_name = {n.name: n for n in nodes if n.op == "input"}
        grads = [
            g if (g := by_name[n].grad) is not None else np.zeros(arrays[n].shape) for n in names
        ]
        grads = [np.asarray(g, dtype="float64") for g in grads]
    return value, grads


def _pointwise(run, grids):
    """One pass per grid point, the swept inputs as numbers: each must give one number."""
    shape = grids[0].shape
    if grids[0].size > MAX_PASSES:
        raise EvaluationError(
            f"the program mixes grid points, so each of the {grids[0].size:,} points needs a "
            f"pass of its own: more than {MAX_PASSES:,}",
            hint="use fewer --points",
        )
    value = np.empty(shape)
    grads = [np.empty(shape) for _ in grids]
    for idx in np.ndindex(*shape):
        v, g = run([np.asarray(grid[idx]) for grid in grids])
        if v.shape != ():
            raise EvaluationError(
                "plot needs one number for each value of the swept input, but the program "
                f"gives shape {list(v.shape)} there",
                hint="reduce the output to a number (e.g. sum(...)), or sweep another input",
            )
        value[idx] = v
        for k, gk in enumerate(g):
            grads[k][idx] = gk
    return value, grads


# ---- the terminal ----------------------------------------------------------------------

_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # braille bit per (row, col)
COLOURS = {"f": "#1f77b4", "df": "#d62728", "fd": "#2ca02c"}
_ANSI = {"f": "\x1b[34m", "df": "\x1b[31m", "fd": "\x1b[32m"}
_RESET = "\x1b[0m"


def _ticks(v):
    return f"{v:.4g}"


def terminal(data, expr, *, width=80, height=20, colour=False, derivative=True, log_y=False):
    """The plot as lines of text: braille curves in a frame, y labels, x range, legend.
    Without colour the derivative is dashed, so the two curves stay apart."""
    name = data["names"][0]
    x = data["axes"][0].astype("float64")
    curves = [("f", data["value"])]
    if derivative:
        curves.append(("df", data["grads"][0]))
    ys = [c for _, c in curves] + ([data["fd"]] if data["fd"] is not None else [])
    if log_y:
        ys = [np.where(y > 0, np.log10(np.where(y > 0, y, 1)), np.nan) for y in ys]
    finite = np.concatenate([y[np.isfinite(y)] for y in ys])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if hi - lo < 1e-12 * max(1.0, abs(lo)):
        lo, hi = lo - 1, hi + 1
    margin = 11
    cols, rows = max(width - margin - 1, 10), max(height, 4)
    bits = {k: np.zeros((rows, cols), np.int32) for k, _ in curves}
    px = (x - x[0]) / (x[-1] - x[0]) * (2 * cols - 1)

    def dot_y(v):
        return (hi - v) / (hi - lo) * (4 * rows - 1)

    for (key, _), y in zip(curves, ys, strict=False):
        py = dot_y(y)
        step = 0
        for i in range(len(x) - 1):
            if not (np.isfinite(py[i]) and np.isfinite(py[i + 1])):
                continue
            n = int(max(abs(px[i + 1] - px[i]), abs(py[i + 1] - py[i]))) + 1
            for t in np.linspace(0, 1, n, endpoint=False):
                step += 1
                if key == "df" and not colour and (step // 3) % 2:
                    continue  # dashes
                cx = int(round(px[i] + t * (px[i + 1] - px[i])))
                cy = int(round(py[i] + t * (py[i + 1] - py[i])))
                bits[key][cy // 4, cx // 2] |= _DOTS[cy % 4][cx % 2]
    marks = set()
    if data["fd"] is not None:
        fy = dot_y(ys[-1])
        for i in np.linspace(0, len(x) - 1, min(len(x), cols // 3)).astype(int):
            if np.isfinite(fy[i]):
                marks.add((int(round(float(fy[i]))) // 4, int(round(px[i])) // 2))

    def paint(text, key):
        return _ANSI[key] + text + _RESET if colour else text

    def label(v):
        return _ticks(10**v if log_y else v)

    zero_row = int(round(dot_y(0.0))) // 4 if lo < 0 < hi and not log_y else None
    lines = [f"f({name}) = {expr if len(expr) <= width - 8 else expr[: width - 9] + '…'}"]
    for r in range(rows):
        tick = {0: label(hi), rows - 1: label(lo)}.get(r)
        if r == zero_row and tick is None:
            tick = "0"
        cells = []
        for c in range(cols):
            if (r, c) in marks:
                cells.append(paint("+", "fd"))
                continue
            owner = [k for k, _ in curves if bits[k][r, c]]
            if not owner:
                cells.append("┈" if r == zero_row else " ")
                continue
            b = 0
            for k in owner:
                b |= int(bits[k][r, c])
            cells.append(paint(chr(0x2800 + b), owner[-1]))
        lines.append(f"{tick or '':>{margin - 1}} {'┤' if tick else '│'}" + "".join(cells))
    lines.append(" " * margin + "└" + "─" * cols)
    left, right = _ticks(x[0]), _ticks(x[-1])
    mid = cols - len(left) - len(right)
    lines.append(" " * (margin + 1) + left + f"{name:^{mid}}" + right)
    legend = [paint("⣀⣀", "f") + f" f({name})"]
    if derivative:
        legend.append(paint("⣀⣀" if colour else "⣀ ⣀", "df") + f" f′({name}) = ∂f/∂{name}")
    if data["fd"] is not None:
        legend.append(paint("+", "fd") + " central differences")
    if log_y:
        legend.append("(log scale: positive values only)")
    lines.append(" " * (margin + 1) + "   ".join(legend))
    return "\n".join(lines) + "\n"


# ---- images ----------------------------------------------------------------------------


def figure(data, expr, *, derivative=True, log_y=False):
    """A matplotlib figure: f and f′ (and the differences) for one input, or heat maps of f
    and |∇f| for two. Returns (figure, axes list)."""
    from .svg import need_matplotlib

    plt = need_matplotlib("an image of the plot")
    names = data["names"]
    title = expr if len(expr) <= 70 else expr[:69] + "…"
    if len(names) == 1:
        fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
        x, n = data["axes"][0], names[0]
        ax.plot(x, data["value"], color=COLOURS["f"], lw=2, label=f"f({n})")
        if derivative:
            ax.plot(x, data["grads"][0], color=COLOURS["df"], lw=2, label=f"f′({n}) = ∂f/∂{n}")
        if data["fd"] is not None:
            k = max(1, len(x) // 25)
            ax.plot(
                x[::k],
                data["fd"][::k],
                "o",
                color=COLOURS["fd"],
                mfc="none",
                label="central differences",
            )
        if log_y:
            ax.set_yscale("log")
        ax.set_xlabel(n)
        ax.set_title(f"f({n}) = {title}")
        ax.grid(True, alpha=0.3)
        ax.axhline(0, color="#555555", lw=0.8)
        ax.legend()
        fig.tight_layout()
        return fig, [ax]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=100)
    (x, y), (nx, ny) = data["axes"], names
    extent = (float(x[0]), float(x[-1]), float(y[0]), float(y[-1]))
    norm = np.sqrt(sum(g.astype("float64") ** 2 for g in data["grads"]))
    for ax, z, what in zip(axes, [data["value"], norm], ["f", "|∇f|"], strict=True):
        im = ax.imshow(z, origin="lower", extent=extent, aspect="auto", cmap="viridis")
        fig.colorbar(im, ax=ax)
        ax.set_title(f"{what}({nx}, {ny})")
        ax.set_xlabel(nx)
        ax.set_ylabel(ny)
    fig.suptitle(title)
    fig.tight_layout()
    return fig, list(axes)


IMAGE_SUFFIXES = (".png", ".svg", ".pdf")


def save(data, expr, path, **options):
    fig, _ = figure(data, expr, **options)
    import matplotlib.pyplot as plt

    try:
        fig.savefig(path, metadata=_metadata(path))
    except OSError as e:
        raise InputError(f"cannot write '{path}': {e.strerror or e}") from None
    finally:
        plt.close(fig)


def _metadata(path):
    """No dates or versions in the file: the same plot gives the same bytes."""
    suffix = path.lower().rsplit(".", 1)[-1]
    return {"png": {"Software": None}, "svg": {"Date": None}, "pdf": {"CreationDate": None}}[suffix]


def to_json(data, expr, dtype, points, ranges):
    from .render import json_value

    names = data["names"]
    out = {
        "expr": expr,
        "dtype": dtype,
        "range": {n: [lo, hi] for n, lo, hi in ranges},
        "points": points,
        "elementwise": data["elementwise"],
        "axes": {n: json_value(a) for n, a in zip(names, data["axes"], strict=True)},
        "value": json_value(data["value"]),
        "derivative": {n: json_value(g) for n, g in zip(names, data["grads"], strict=True)},
    }
    if data["fd"] is not None:
        out["fd"] = json_value(data["fd"])
    return out
