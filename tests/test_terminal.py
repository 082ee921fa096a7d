"""What a person sees: the installed ``gradcli`` under a real pseudo-terminal (rich's table
and tree, with colour), and piped (plain aligned text, no escape codes).

The terminal's screen is rebuilt from the bytes the program wrote: its text, and for each
character the SGR attributes (bold, dim, colour) in force when it was drawn.
"""

import fcntl
import json
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time

import pytest

EXPR = "mean(2*(x+2)^2)"
X = "x=-1.0475,0.2038,0.2971"
GRAD_TEXT = """\
tensor(7.3604, grad_fn=<MeanBackward0>)

id  node             grad_fn         shape  value                        grad
 0  x                AccumulateGrad  [3]    [-1.0475,  0.2038,  0.2971]  [1.2700, 2.9384, 3.0628]
 2  x+2              AddBackward0    [3]    [0.9525, 2.2038, 2.2971]     [1.2700, 2.9384, 3.0628]
 4  (x+2)^2          PowBackward0    [3]    [0.9073, 4.8567, 5.2767]     [0.6667, 0.6667, 0.6667]
 6  2*(x+2)^2        MulBackward0    [3]    [ 1.8145,  9.7135, 10.5533]  [0.3333, 0.3333, 0.3333]
 7  mean(2*(x+2)^2)  MeanBackward0   []     7.3604                       1.

x.grad
tensor([1.2700, 2.9384, 3.0628])
"""
SGR = re.compile(r"\x1b\[([0-9;]*)m")
ESCAPE = re.compile(r"\x1b[\[\]()]")
COLOURS = {*map(str, range(30, 38)), *map(str, range(90, 98)), "38"}


def _exe():
    exe = shutil.which("gradcli", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("the gradcli console script is not installed beside this Python")
    return exe


def _env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADCLI_")}
    # A colour terminal of a known size, with nothing that overrides rich's own detection.
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TTY_COMPATIBLE", "CLICOLOR"):
        env.pop(name, None)
    env.update(TERM="xterm-256color", LC_ALL="C.UTF-8", PYTHONIOENCODING="utf-8")
    return env


def on_terminal(*args, columns=120, rows=40, timeout=60):
    """Run gradcli with stdin, stdout and stderr on a pseudo-terminal of the given size:
    (exit status, the bytes written to the terminal, decoded)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    p = subprocess.Popen(
        [_exe(), *args], stdin=slave, stdout=slave, stderr=slave, env=_env(), close_fds=True
    )
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the program closed the terminal (it exited)
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        if p.poll() is None:
            p.kill()
    status = p.wait(timeout=10)
    return status, out.decode("utf-8")


def piped(*args):
    r = subprocess.run([_exe(), *args], capture_output=True, env=_env(), timeout=60)
    return r.returncode, r.stdout.decode("utf-8"), r.stderr.decode("utf-8")


def screen(raw):
    """The text a terminal shows (lines without trailing blanks) and, per character of that
    text, the set of SGR parameters in force (rich ends every styled span with a reset)."""
    text, styles, current = [], [], set()
    pos = 0
    raw = raw.replace("\r\n", "\n")
    for m in SGR.finditer(raw + "\x1b[m"):
        for ch in raw[pos : m.start()]:
            text.append(ch)
            styles.append(frozenset(current))
        params = m.group(1)
        if params in ("", "0"):
            current = set()
        else:
            current |= set(params.split(";"))
        pos = m.end()
    assert not ESCAPE.search("".join(text)), "escape sequences other than SGR"
    lines, line_styles, start = [], [], 0
    joined = "".join(text)
    for line in joined.split("\n"):
        lines.append(line.rstrip())
        line_styles.append(styles[start : start + len(line)])
        start += len(line) + 1
    return lines, line_styles


def style_of(lines, line_styles, needle, occurrence=0):
    """The attributes of every character of the occurrence'th ``needle`` on the screen
    (their union), e.g. {"1"} for bold, {"2", "35"} for dim magenta."""
    seen = 0
    for line, styles in zip(lines, line_styles, strict=True):
        start = line.find(needle)
        while start != -1:
            if seen == occurrence:
                return set().union(*styles[start : start + len(needle)])
            seen += 1
            start = line.find(needle, start + 1)
    raise AssertionError(f"{needle!r} is not on the screen:\n" + "\n".join(lines))


def coloured(attrs):
    return bool(attrs & COLOURS)


def test_grad_piped_is_plain_aligned_text():
    status, out, err = piped("grad", EXPR, X)
    assert (status, err) == (0, "")
    assert out == GRAD_TEXT
    assert "\x1b" not in out


def test_grad_on_a_terminal_is_a_coloured_table_of_the_same_content():
    status, raw = on_terminal("grad", EXPR, X)
    assert status == 0, raw
    assert SGR.search(raw), "no colour or style at all on a terminal"
    lines, styles = screen(raw)
    # The same text as piped, row for row and column for column.
    assert lines == GRAD_TEXT.split("\n"), "\n".join(lines)
    assert "1" in style_of(lines, styles, "tensor(7.3604, grad_fn=<MeanBackward0>)")
    for header in ("id", "node", "grad_fn", "shape", "value", "grad"):
        assert "1" in style_of(lines, styles, header), header  # the header row is bold
    for label in ("AccumulateGrad", "AddBackward0", "PowBackward0", "MulBackward0"):
        assert coloured(style_of(lines, styles, label)), label
    # The grad column is coloured, the values are not; the id column is dimmed.
    assert coloured(style_of(lines, styles, "[0.6667, 0.6667, 0.6667]"))
    assert not coloured(style_of(lines, styles, "[0.9073, 4.8567, 5.2767]"))
    assert "2" in style_of(lines, styles, " 7  ")
    # The gradient of each input: its heading styled, PyTorch's repr plain.
    heading = style_of(lines, styles, "x.grad")
    assert "1" in heading and coloured(heading)
    assert lines[lines.index("x.grad") + 1] == "tensor([1.2700, 2.9384, 3.0628])"
    assert style_of(lines, styles, "tensor([1.2700, 2.9384, 3.0628])") == set()


@pytest.mark.parametrize(
    "columns",
    [
        80,
        60,
        40,
    ],
)
def test_grad_on_a_narrow_terminal_keeps_every_label_and_node(columns):
    # Where the table would not fit, each node is a block of its own: nothing is cut short.
    status, raw = on_terminal("grad", EXPR, X, columns=columns)
    assert status == 0, raw
    lines, _ = screen(raw)
    assert max(len(line) for line in lines) <= columns, "\n".join(lines)
    assert lines[0] == "tensor(7.3604, grad_fn=<MeanBackward0>)"
    assert lines[-3:] == ["x.grad", "tensor([1.2700, 2.9384, 3.0628])", ""]
    # a table row (" 0  x  AccumulateGrad ...") or, where the table would not fit, the title
    # of the node's block ("[0]  x  AccumulateGrad  [3]")
    rows = {
        m.group(1): m.group(2).split()[:2]
        for m in (re.match(r" ?\[?(\d+)\]?  (.*)", line) for line in lines)
        if m
    }
    assert rows == {
        "0": ["x", "AccumulateGrad"],
        "2": ["x+2", "AddBackward0"],
        "4": ["(x+2)^2", "PowBackward0"],
        "6": ["2*(x+2)^2", "MulBackward0"],
        "7": ["mean(2*(x+2)^2)", "MeanBackward0"],
    }, "\n".join(lines)
    assert "…" not in "\n".join(lines)


GRAPH = "y = x + 2; z = y * y * 2; z.mean()"


def test_graph_tree_on_a_terminal():
    status, raw = on_terminal("graph", GRAPH, X)
    assert status == 0, raw
    lines, styles = screen(raw)
    assert lines[:6] == [
        "[6] z.mean()  MeanBackward0  []  value 7.3604  grad 1.",
        "└── [5] z = y * y * 2  MulBackward0  [3]  value [ 1.8145,  9.7135, 10.5533]  "
        "grad [0.3333, 0.3333, 0.3333]",
        "    └── [3] y * y  MulBackward0  [3]  value [0.9073, 4.8567, 5.2767]  "
        "grad [0.6667, 0.6667, 0.6667]",
        "        ├── [2] y = x + 2  AddBackward0  [3]  value [0.9525, 2.2038, 2.2971]  "
        "grad [1.2700, 2.9384, 3.0628]",
        "        │   └── [0] x  AccumulateGrad  [3]  value [-1.0475,  0.2038,  0.2971]  "
        "grad [1.2700, 2.9384, 3.0628]",
        "        └── [2] y = x + 2  (shared: shown above)",
    ], "\n".join(lines)
    # Node names stand out (bold, not dimmed); ids and the shared note recede; labels and
    # gradients are coloured.
    for name in ("z.mean()", "z = y * y * 2", "y * y", "x  "):
        attrs = style_of(lines, styles, name)
        assert "1" in attrs and "2" not in attrs, (name, attrs)
    assert "2" in style_of(lines, styles, "[6] ")
    assert "2" in style_of(lines, styles, "(shared: shown above)")
    for label in ("MeanBackward0", "MulBackward0", "AddBackward0", "AccumulateGrad"):
        assert coloured(style_of(lines, styles, label)), label
    assert coloured(style_of(lines, styles, "grad [1.2700, 2.9384, 3.0628]"))
    assert not coloured(style_of(lines, styles, "value [0.9525, 2.2038, 2.2971]"))


def test_graph_tree_piped_is_indented_text():
    status, out, err = piped("graph", GRAPH, X)
    assert (status, err) == (0, "")
    assert "\x1b" not in out
    assert out.splitlines()[0] == "[6] z.mean()  MeanBackward0  []  value 7.3604  grad 1."
    assert out.splitlines()[-1] == "      └─ [2] y = x + 2  (shared: shown above)"


def _ops_rows():
    status, out, _ = piped("ops", "--json")
    assert status == 0
    return [json.loads(line) for line in out.splitlines()]


def _check_ops_rows(lines, rows):
    # A header, then one line per operator, every column starting where its heading does.
    header = lines[0]
    assert header.split() == ["call", "PyTorch", "grad_fn", "derivative"], header
    at = [header.index(h) for h in ("PyTorch", "grad_fn", "derivative")]
    body = lines[1:]
    assert len(body) == len(rows), "\n".join(body[:6])
    for row, line in zip(rows, body, strict=True):
        assert line.startswith(row["call"] + " "), line
        assert line[at[0] :].startswith(row["mirror"] + " "), line
        assert line[at[1] :].startswith((row["labels"] or "") + " "), line
        assert line[at[2] :].rstrip() == row["rule"], line
    add = body[0]
    assert add.split()[:2] == ["add(a,", "b)"] and "AddBackward0" in add


def test_ops_piped_lists_every_operator_with_its_rule():
    rows = _ops_rows()
    assert len(rows) >= 80
    status, out, err = piped("ops")
    assert (status, err) == (0, "")
    assert "\x1b" not in out
    _check_ops_rows(out.splitlines(), rows)


def test_ops_piped_is_an_aligned_table_with_a_header():
    rows = _ops_rows()
    status, out, _ = piped("ops")
    lines = out.splitlines()
    header, first = lines[0], lines[1]
    assert not header.startswith(rows[0]["call"]), "no header line"
    mirror_at, labels_at = first.index(rows[0]["mirror"]), first.rindex(rows[0]["labels"])
    assert header[mirror_at - 1] == " " != header[mirror_at]
    assert header[labels_at - 1] == " " != header[labels_at]
    body = [line for line in lines[1:] if not line.startswith(" ")]
    assert len(body) == len(rows)
    for row, line in zip(rows, body, strict=True):
        assert line[mirror_at:].startswith(row["mirror"] + " "), line
        assert line[labels_at:].startswith(row["labels"]), line


def test_ops_on_a_terminal_shows_the_piped_table():
    # The table is wider than 200 columns, so on a terminal each operator is a block of its
    # own lines: nothing wraps, and every operator is there.
    status, raw = on_terminal("ops", columns=200, rows=50)
    assert status == 0, raw
    lines, _ = screen(raw)
    # (a cell's text longer than the terminal, such as einsum's list of labels, is left to
    # the terminal to wrap: a known limit of the block layout)
    assert all(len(line) <= 200 or line.startswith("  grad_fn ") for line in lines)
    text = "\n".join(lines)
    for row in _ops_rows():
        assert row["call"] in text and row["rule"] in text, row["name"]
