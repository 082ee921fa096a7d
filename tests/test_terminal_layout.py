"""What a person sees: the installed console script under a real pseudo-terminal at 40, 80 and
200 columns. No line is longer than the terminal (so the terminal never wraps a tensor), and
each vector and each matrix row stays whole on one line."""

import fcntl
import os
import pathlib
import pty
import re
import struct
import sys
import termios

import pytest

GRADCLI = str(pathlib.Path(sys.executable).parent / "gradcli")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
X = "x=-1.0475,0.2038,0.2971"
README = pathlib.Path(__file__).parent.parent / "README.md"


def terminal(argv, columns, env=None):
    """(exit status, the screen's text without colour codes) for ``gradcli argv``."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: a terminal of ``columns`` columns
        e = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR")}
        e.update({"COLUMNS": str(columns), "LINES": "50", "TERM": "xterm-256color"})
        e.update(env or {})
        try:
            os.execve(GRADCLI, [GRADCLI, *argv], e)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:  # EIO: the child has gone and closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return os.waitstatus_to_exitcode(status), ANSI.sub("", text)


def assert_fits(screen, columns):
    wide = [line for line in screen.splitlines() if len(line.rstrip()) > columns]
    assert not wide, f"lines wider than {columns} columns: {wide}"


def assert_whole(screen, *pieces):
    """Each piece (a vector, a matrix row) stands on one line of the screen."""
    lines = screen.splitlines()
    for piece in pieces:
        assert any(piece in line for line in lines), f"{piece!r} is split or missing:\n{screen}"


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_grad_one_liner_never_wraps_a_tensor(columns):
    code, screen = terminal(["grad", "mean(2*(x+2)^2)", X], columns)
    assert code == 0
    assert_fits(screen, columns)
    assert_whole(
        screen,
        "tensor(7.3604, grad_fn=<MeanBackward0>)",
        "[-1.0475,  0.2038,  0.2971]",
        "[ 1.8145,  9.7135, 10.5533]",
        "[1.2700, 2.9384, 3.0628]",
        "tensor([1.2700, 2.9384, 3.0628])",
    )
    for label in ("AccumulateGrad", "AddBackward0", "PowBackward0", "MulBackward0"):
        assert label in screen
    if columns == 200:  # room enough: the table, one row per node
        assert re.search(r"^id +node +grad_fn +shape +value +grad", screen, re.M)
        assert re.search(r"^ 0  x +AccumulateGrad +\[3\] +\[-1\.0475", screen, re.M)
    else:  # one block per node, value and gradient in PyTorch's repr
        assert re.search(r"^\[0\]  x  AccumulateGrad  \[3\]$", screen, re.M)
        assert "grad  tensor([1.2700, 2.9384, 3.0628])" in screen


def test_readme_first_example_is_what_an_80_column_terminal_shows():
    readme = README.read_text(encoding="utf-8")
    block = readme.split("$ gradcli grad 'mean(2*(x+2)^2)' x=-1.0475,0.2038,0.2971\n")[1]
    expected = block.split("```")[0]
    code, screen = terminal(["grad", "mean(2*(x+2)^2)", X], 80)
    assert code == 0
    assert [line.rstrip() for line in screen.splitlines()] == expected.splitlines()


MLP = [
    "grad",
    "h = relu(W1 @ x + b1); y = W2 @ h; mean((y - t)^2)",
    "W1=[[0.5,-1.25,2,0.75],[1.5,0.25,-0.5,1],[-2,1,0.5,0.25]]",
    "x=1,2,-1,0.5",
    "b1=0.1,-0.2,0.3",
    "W2=[[1,-1,0.5],[0.25,2,-1]]",
    "t=1,0",
]


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_matrices_keep_their_rows(columns):
    code, screen = terminal(MLP, columns)
    assert code == 0
    assert_fits(screen, columns)
    assert_whole(
        screen,
        "[ 0.5000, -1.2500,  2.0000,  0.7500]",
        "[ 1.5000,  0.2500, -0.5000,  1.0000]",
        "[-2.0000,  1.0000,  0.5000,  0.2500]",
        "[ 1.0000, -1.0000,  0.5000]",
        "[ 0.2500,  2.0000, -1.0000]",
    )
    # as many lines as a person needs: not one number per line
    assert len(screen.splitlines()) < 80


OTHERS = [
    (["jvp", "sin(x) * y", "x=1,2", "y=3,4", "--tangent", "x=1,0"], ["tensor([1.6209, 0.0000])"]),
    (
        ["jacobian", "A @ x", "A=[[1,2],[3,4],[5,6]]", "x=1,2"],
        ["tensor([[1., 2.],", "[3., 4.],", "[5., 6.]])"],
    ),
    (["hessian", "sum(x^3 * y)", "x=1,2", "y=3,4", "--dtype", "float64"], ["[ 0., 12.]]"]),
    (["check", "sum(exp(x) * sin(y))", "x=0.1,0.2", "y=0.3,-0.4"], ["reverse", "forward"]),
    (
        ["explain", "y = x + 2; z = y * y * 2; z.mean()", X],
        ["[0.3333, 0.3333, 0.3333]", "x.grad =", "tensor([1.2700, 2.9384, 3.0628])"],
    ),
    (["graph", "y = x + 2; z = y * y * 2; z.mean()", X], ["[ 1.8145,  9.7135, 10.5533]"]),
]


@pytest.mark.parametrize("columns", [40, 80, 200])
@pytest.mark.parametrize("argv,whole", OTHERS, ids=[a[0] for a, _ in OTHERS])
def test_every_command_fits_the_terminal(argv, whole, columns):
    code, screen = terminal(argv, columns)
    assert code == 0, screen
    assert_fits(screen, columns)
    assert_whole(screen, *whole)
