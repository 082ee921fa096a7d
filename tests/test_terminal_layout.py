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


LONG = "a_really_long_input_name_for_the_weights_of_layer_one"  # 53 characters
LONG_TEXT = [  # long names and long node texts, in every command's block layout
    ["grad", f"h = relu({LONG} @ x); sum(h * h)", f"{LONG}=[[1,2],[3,4]]", "x=1,2"],
    ["grad", "sum(relu(x * 2 + 1) * sigmoid(x - 3) * tanh(x + 4) * exp(x / 5))", "x=1,2"],
    ["grad", "out = conv2d(x, w, padding=1); out.sum()", "x=randn(1,1,3,3)", "w=randn(1,1,2,2)"],
    ["jvp", f"sin({LONG}) * 2", f"{LONG}=1,2", "--tangent", f"{LONG}=1,0"],
    ["jacobian", f"{LONG} * 2", f"{LONG}=1,2"],
    ["hessian", f"sum({LONG}^3 * y)", f"{LONG}=1,2", "y=3,4", "--dtype", "float64"],
    ["check", f"sum({LONG}^3)", f"{LONG}=1,2"],
    ["explain", f"sum({LONG}^3)", f"{LONG}=1,2"],
    ["graph", f"y = relu({LONG} * 2 + 1) * sigmoid({LONG} - 3); sum(y)", f"{LONG}=1,2"],
    ["ops"],
    ["ops", "scaled_dot_product_attention"],
]


@pytest.mark.parametrize("columns", [40, 80, 200])
@pytest.mark.parametrize("argv", LONG_TEXT, ids=lambda a: " ".join(a)[:40])
def test_long_names_and_texts_are_elided_to_the_terminal(argv, columns):
    code, screen = terminal([*argv, "--random-seed", "0"] if argv[0] != "ops" else argv, columns)
    assert code == 0, screen
    assert_fits(screen, columns)
    if LONG in screen.replace("\n", "") and columns == 40:  # a name shown: elided, ends kept
        assert "…" in screen and LONG not in screen
        assert any(re.search(r"a_real\w*…\w*_one", line) for line in screen.splitlines())


def test_a_long_name_is_whole_where_it_fits():
    code, screen = terminal(LONG_TEXT[0], 200)
    assert code == 0 and f"{LONG}.grad" in screen.splitlines()
    code, screen = terminal(LONG_TEXT[4], 80)
    assert code == 0 and f"∂out/∂{LONG}  (shape [2, 2])" in screen.splitlines()


# ---- output control: colour, -o, --no-nodes; any terminal ---------------------------------

ESC = "\x1b["


def raw_terminal(argv, columns, env=None):
    """Like terminal(), but the escape codes kept."""
    global ANSI
    saved, ANSI = ANSI, re.compile(r"(?!)")
    try:
        return terminal(argv, columns, env)
    finally:
        ANSI = saved


ONE = ["grad", "mean(2*(x+2)^2)", X]


def test_a_terminal_gets_colour_and_no_color_removes_every_style():
    assert ESC in raw_terminal(ONE, 200)[1]
    for env, flag in (({"NO_COLOR": "1"}, []), ({}, ["--color", "never"])):
        code, screen = raw_terminal(ONE + flag, 200, env)
        assert code == 0 and ESC not in screen  # no colour, no bold, no dim
        assert "AccumulateGrad" in screen
    assert ESC in raw_terminal(ONE + ["--color", "always"], 200, {"NO_COLOR": "1"})[1]


def batch_progress(args, tmp_path, env=None):
    """What `gradcli batch FILE -o OUT ARGS` draws on a terminal (its progress bar on stderr,
    the answers in a file), escape codes kept."""
    records = tmp_path / "records.jsonl"
    records.write_text('{"expr": "sum(x * x)", "inputs": {"x": [1, 2]}}\n' * 2000)
    out = tmp_path / "answers.jsonl"
    code, raw = raw_terminal(["batch", str(records), "-o", str(out), *args], 100, env)
    assert code == 0 and len(out.read_text().splitlines()) == 2000
    return raw


SGR_STYLE = re.compile(r"\x1b\[[0-9;]*[1-9][0-9;]*m")  # bold, dim or a colour (not a reset)


def test_batch_takes_color_like_every_command(tmp_path):
    """gradcli batch --color never: its progress bar without colour or bold; NO_COLOR too;
    --color always wins over NO_COLOR."""
    assert SGR_STYLE.search(batch_progress([], tmp_path))
    for env, flag in (({"NO_COLOR": "1"}, []), ({}, ["--color", "never"])):
        raw = batch_progress(flag, tmp_path, env)
        assert "answered" in raw and not SGR_STYLE.search(raw)
    assert SGR_STYLE.search(batch_progress(["--color", "always"], tmp_path, {"NO_COLOR": "1"}))


def test_term_dumb_gets_plain_text_at_its_width():
    code, screen = raw_terminal(ONE, 40, {"TERM": "dumb"})
    assert code == 0 and ESC not in screen
    assert_fits(screen, 40)


def test_force_color_and_color_always_style_a_pipe(tmp_path):
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    p = subprocess.run([GRADCLI, *ONE], capture_output=True, text=True, env=env)
    assert ESC not in p.stdout
    forced = subprocess.run(
        [GRADCLI, *ONE], capture_output=True, text=True, env={**env, "FORCE_COLOR": "1"}
    )
    assert ESC in forced.stdout and "AccumulateGrad" in forced.stdout
    always = subprocess.run([GRADCLI, *ONE, "--color", "always"], capture_output=True, text=True)
    assert ESC in always.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ONE,
        ["jvp", "sin(x) * y", "x=1,2", "y=3,4", "--tangent", "x=1,0"],
        ["jacobian", "A @ x", "A=[[1,2],[3,4],[5,6]]", "x=1,2"],
        ["hessian", "sum(x^3 * y)", "x=1,2", "y=3,4"],
        ["check", "sum(exp(x))", "x=0.1,0.2"],
        ["graph", "y = x + 2; y * y", "x=1,2", "--seed-vector", "1,1"],
        ["explain", "mean(exp(x))", "x=1,2"],
        ["ops"],
    ],
    ids=lambda a: a[0],
)
def test_output_file_on_every_command(argv, tmp_path):
    """-o FILE: the piped answer goes to the file, the terminal shows nothing."""
    import subprocess

    target = tmp_path / "answer.txt"
    code, screen = terminal([*argv, "-o", str(target)], 80)
    assert code == 0 and screen.strip() == ""
    piped = subprocess.run([GRADCLI, *argv], capture_output=True, text=True)
    assert target.read_text(encoding="utf-8") == piped.stdout


def test_output_file_that_cannot_be_written():
    code, screen = terminal([*ONE, "-o", "/nonexistent/dir/out.txt"], 80)
    assert code == 2 and screen.startswith("error: cannot write '/nonexistent/dir/out.txt'")


def test_no_nodes_keeps_grad_json_small():
    import json
    import subprocess

    args = [GRADCLI, "grad", "sum(x * x)", "x=arange(1000)", "--json"]
    full = json.loads(subprocess.run(args, capture_output=True, text=True).stdout)
    small = json.loads(subprocess.run([*args, "--no-nodes"], capture_output=True, text=True).stdout)
    assert "nodes" in full and "nodes" not in small
    assert small == {k: v for k, v in full.items() if k != "nodes"}


@pytest.mark.parametrize("columns", ["5", "0", "100000"])
def test_any_columns(columns):
    code, screen = terminal(ONE, 80, {"COLUMNS": columns})
    assert code == 0 and "x.grad" in screen and "Traceback" not in screen
    assert "tensor([1.2700, 2.9384, 3.0628])" in screen.replace("\n", "") or columns == "5"


def test_piped_graph_tree_draws_the_terminal_guides():
    import subprocess

    p = subprocess.run(
        [GRADCLI, "graph", "y = x + 2; z = y * y * 2; z.mean() + y.sum()", "x=1,2"],
        capture_output=True,
        text=True,
    )
    lines = p.stdout.splitlines()
    assert lines[1].startswith("├─ [6] z.mean()")
    assert lines[2].startswith("│  └─ [5] z = y * y * 2")
    assert lines[4].startswith("│        ├─ [2] y = x + 2")
    assert lines[5].startswith("│        │  └─ [0] x")
    assert lines[7].startswith("└─ [7] y.sum()")
