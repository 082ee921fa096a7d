"""`gradcli plot`: the numbers (one pass over the grid, or one per point), the terminal plot
under a pseudo-terminal, and the image decoded and checked where the values say."""

import builtins
import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios

import numpy as np
import pytest
from click.testing import CliRunner
from pictures import decode_png, need, need_module, rgb

from gradcli import plot
from gradcli.cli import main
from gradcli.errors import EvaluationError, InputError


def test_elementwise_program_is_one_pass_over_the_grid():
    data = plot.sweep("tanh(x) * a", {"a": "2"}, [("x", -3.0, 3.0)], 101, dtype="float64")
    x = data["axes"][0]
    assert data["elementwise"]
    np.testing.assert_allclose(data["value"], 2 * np.tanh(x), rtol=1e-12)
    np.testing.assert_allclose(data["grads"][0], 2 * (1 - np.tanh(x) ** 2), rtol=1e-12)


def test_program_that_mixes_points_is_evaluated_point_by_point():
    # x - mean(x) over the grid is not f at each point: as a number, x - mean(x) is 0
    data = plot.sweep("x - mean(x)", {}, [("x", -1.0, 1.0)], 9)
    assert not data["elementwise"]
    assert (data["value"] == 0).all() and (data["grads"][0] == 0).all()
    data = plot.sweep("sum(x * w)", {"w": "1,2,3"}, [("x", 0.0, 2.0)], 5)
    assert not data["elementwise"]
    np.testing.assert_allclose(data["value"], 6 * data["axes"][0])
    np.testing.assert_allclose(data["grads"][0], 6)


def test_programs_that_cannot_be_plotted_say_why():
    with pytest.raises(EvaluationError, match="one number for each value"):
        plot.sweep("x * w", {"w": "1,2"}, [("x", 0.0, 1.0)], 5)
    with pytest.raises(InputError, match="not an input"):
        plot.sweep("x * 2", {}, [("y", 0.0, 1.0)], 5)
    with pytest.raises(InputError, match="also given a value"):
        plot.sweep("x * 2", {"x": "1"}, [("x", 0.0, 1.0)], 5)
    for bad in ["x=3:1", "x=1", "x=a:b", "x=-inf:0"]:
        with pytest.raises(InputError):
            plot.parse_range(bad)
    r = CliRunner().invoke(main, ["plot", "x*y", "--range", "x=0:1", "--range", "y=0:1"])
    assert r.exit_code == 2 and "-o heat.png" in r.stderr
    r = CliRunner().invoke(main, ["plot", "x * w", "--range", "x=0:1", "w=1,2"])
    assert r.exit_code == 1 and "error:" in r.stderr and "Traceback" not in r.output


def test_central_differences_and_two_inputs():
    data = plot.sweep("exp(x) * sin(x)", {}, [("x", -2.0, 2.0)], 41, fd=True)
    np.testing.assert_allclose(data["fd"], data["grads"][0], rtol=1e-3, atol=1e-3)
    data = plot.sweep("x * y^2", {}, [("x", -1.0, 1.0), ("y", 0.0, 2.0)], 7, dtype="float64")
    xs, ys = np.meshgrid(*data["axes"])
    assert data["elementwise"] and data["value"].shape == (7, 7)
    np.testing.assert_allclose(data["grads"][0], ys**2)
    np.testing.assert_allclose(data["grads"][1], 2 * xs * ys)


def test_json_answer():
    r = CliRunner().invoke(main, ["plot", "x^2", "--range", "x=0:2", "--points", "3", "--json"])
    assert r.exit_code == 0, r.output
    import json

    out = json.loads(r.stdout)
    assert out["axes"]["x"] == [0, 1, 2] and out["value"] == [0, 1, 4]
    assert out["derivative"]["x"] == [0, 2, 4] and out["elementwise"] is True


# ---- the terminal ----------------------------------------------------------------------

_SGR = re.compile(r"\x1b\[(\d+)m")


def _in_pty(args, env=None, cols=100, lines=30):
    """The installed console script on a pseudo-terminal of the given size: its screen."""
    script = shutil.which("gradcli") or os.path.join(os.path.dirname(sys.executable), "gradcli")
    need(os.path.exists(script), "the gradcli console script")
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, cols, 0, 0))
    env = {**os.environ, **(env or {})}
    for k in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR"):
        if k not in (env or {}) or env[k] is None:
            env.pop(k, None)
    proc = subprocess.Popen([script, *args], stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=30)
    os.close(master)
    assert proc.returncode == 0, b"".join(chunks).decode()
    return b"".join(chunks).decode().replace("\r\n", "\n")


def _cells(line):
    """(character, ANSI colour code or None) for each column of a line."""
    out, colour, pos = [], None, 0
    for m in _SGR.finditer(line):
        out += [(c, colour) for c in line[pos : m.start()]]
        code = int(m.group(1))
        colour = None if code == 0 else code
        pos = m.end()
    return out + [(c, colour) for c in line[pos:]]


def test_terminal_plot_in_a_pseudo_terminal():
    screen = _in_pty(["plot", "sin(x)", "--range", "x=-3:3"], cols=100)
    lines = screen.rstrip("\n").split("\n")
    assert lines[0] == "f(x) = sin(x)"
    assert "└" in lines[-3] and lines[-2].split() == ["-3", "x", "3"]
    assert "f(x)" in lines[-1] and "f′(x) = ∂f/∂x" in lines[-1]
    plot_rows = [_cells(line) for line in lines[1:-3]]
    assert re.match(r"\s*1 ┤", lines[1]) or re.match(r"\s*0.9\d* ┤", lines[1])
    frame = lines[1].index("┤") + 1

    def columns(row, colour):
        return [i - frame for i, (c, k) in enumerate(row) if k == colour and "⠀" < c <= "⣿"]

    width = len(plot_rows[0]) - frame
    # the top row: sin peaks at pi/2 (blue), its derivative cos at 0 (red)
    blue, red = columns(plot_rows[0], 34), columns(plot_rows[0], 31)
    assert blue and red
    assert abs(np.mean(blue) / width - (np.pi / 2 + 3) / 6) < 0.05
    assert abs(np.mean(red) / width - 0.5) < 0.05
    # the bottom row: sin at -pi/2, and cos at both ends of [-3, 3]
    blue, red = columns(plot_rows[-1], 34), columns(plot_rows[-1], 31)
    assert abs(np.mean(blue) / width - (3 - np.pi / 2) / 6) < 0.05
    assert min(red) < 0.1 * width and max(red) > 0.9 * width
    # the curves are connected: every column has a point of one, nearly all of each (where
    # they cross, the derivative is drawn over f)
    seen = [{i for row in plot_rows for i in columns(row, colour)} for colour in (34, 31)]
    assert seen[0] | seen[1] == set(range(width))
    assert min(len(s) for s in seen) > 0.9 * width


def test_no_color_plot_has_no_escapes_and_a_dashed_derivative():
    screen = _in_pty(["plot", "sin(x)", "--range", "x=-3:3", "--fd"], env={"NO_COLOR": "1"})
    assert "\x1b[" not in screen
    assert "⣀ ⣀ f′(x)" in screen and "+ central differences" in screen
    assert sum(c == "+" for c in screen) > 10


# ---- images ----------------------------------------------------------------------------


def _near(image, px, py, colour, r=2):
    patch = image[py - r : py + r + 1, px - r : px + r + 1].astype(int)
    return (np.abs(patch - np.array(colour)).sum(axis=2) < 60).any()


def test_png_has_both_curves_where_the_values_say(tmp_path):
    need_module("matplotlib", "plot")
    data = plot.sweep("sin(x)", {}, [("x", -3.0, 3.0)], 200)
    fig, (ax,) = plot.figure(data, "sin(x)")
    path = tmp_path / "p.png"
    fig.canvas.draw()
    to_pixels = ax.transData.transform
    height = fig.canvas.get_width_height()[1]
    fig.savefig(path)
    image = decode_png(path.read_bytes())
    assert image.shape[0] == height
    f, df = rgb(plot.COLOURS["f"]), rgb(plot.COLOURS["df"])
    for x in (-2.5, -1.0, 0.5, 2.2):
        for y, colour in ((np.sin(x), f), (np.cos(x), df)):
            px, py = to_pixels((x, y))
            px, py = int(round(px)), int(round(height - py))
            assert _near(image, px, py, colour), (x, y)
            assert not _near(image, px, py + 40, colour, r=0)
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_cli_writes_images(tmp_path):
    need_module("matplotlib", "plot")
    png = tmp_path / "tanh.png"
    r = CliRunner().invoke(main, ["plot", "tanh(x)", "--range", "x=-3:3", "--fd", "-o", str(png)])
    assert r.exit_code == 0, r.output
    image = decode_png(png.read_bytes())
    for key in ("f", "df", "fd"):
        near = np.abs(image.astype(int) - np.array(rgb(plot.COLOURS[key]))).sum(axis=2) < 30
        assert near.sum() > 50, key
    heat = tmp_path / "heat.svg"
    r = CliRunner().invoke(
        main, ["plot", "x*y", "--range", "x=0:1", "--range", "y=0:1", "-o", str(heat)]
    )
    assert r.exit_code == 0, r.output
    assert "|∇f|" in heat.read_text() or "∇" in heat.read_text()
    pdf = tmp_path / "p.pdf"
    r = CliRunner().invoke(main, ["plot", "x^2", "--range", "x=0:1", "--log-y", "-o", str(pdf)])
    assert r.exit_code == 0 and pdf.read_bytes()[:4] == b"%PDF"


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path):
    real = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    r = CliRunner().invoke(main, ["plot", "x", "--range", "x=0:1", "-o", str(tmp_path / "a.png")])
    assert r.exit_code == 2 and "pip install 'gradcli[plot]'" in r.stderr
